// The PATCH body: only what changed, meta_json as a merge patch.
import assert from "node:assert/strict";
import { test } from "node:test";
import { draftFromModel, hasChanges, modelPatch } from "../../web/lib/model-diff.mjs";

const model = {
  sha256: "a".repeat(64), name: "Aurora", base_model: "SDXL 1.0",
  tags: [{ id: 1, name: "sdxl" }, { id: 2, name: "photo" }],
  meta_json: {
    description: "Photographic.", trigger_words: ["aur"], prompts: { positive: "a photo", negative: "blurry" },
    notes: "", source: { provider: "demo" }, nsfw_level: 0,
  },
};

test("an untouched draft sends nothing", () => {
  const draft = draftFromModel(model);
  assert.deepEqual(modelPatch(model, draft), {});
  assert.equal(hasChanges(model, draft), false);
});

test("missing meta keys read as empty", () => {
  const draft = draftFromModel({ sha256: "b", name: "x", tags: [] });
  assert.deepEqual(draft, { name: "x", base_model: "", tags: [], description: "", community_links: "",
                            notes: "", positive: "", negative: "", trigger_words: [] });
});

test("only changed fields are sent; meta_json carries only changed keys", () => {
  const draft = { ...draftFromModel(model), name: "Aurora 2", negative: "lowres", trigger_words: ["aur", "xl"] };
  assert.deepEqual(modelPatch(model, draft), {
    name: "Aurora 2",
    meta_json: { prompts: { negative: "lowres" }, trigger_words: ["aur", "xl"] },
  });
});

test("tags are compared as a set, by name, ignoring case and order", () => {
  assert.deepEqual(modelPatch(model, { ...draftFromModel(model), tags: ["Photo", "SDXL"] }), {});
  assert.deepEqual(modelPatch(model, { ...draftFromModel(model), tags: ["sdxl", "new one"] }),
                   { tags: ["sdxl", "new one"] });
});

test("a cleared field is sent empty (recorded as the user's), names are trimmed", () => {
  const draft = { ...draftFromModel(model), description: "", base_model: "  Pony  ", trigger_words: [] };
  assert.deepEqual(modelPatch(model, draft), {
    base_model: "Pony", meta_json: { description: "", trigger_words: [] },
  });
  assert.deepEqual(modelPatch(model, { ...draftFromModel(model), name: " Aurora " }), {});
});
