// The NSFW rule and what the view state asks the server for.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isNsfw, nsfwDisplay } from "../../web/lib/nsfw.mjs";
import { cycleTag, initialQuery, listParams, tagState } from "../../web/lib/library-query.mjs";

test("NSFW by tag (any case) or by level above 0", () => {
  assert.equal(isNsfw({ nsfw_level: 0, tags: [{ id: 1, name: "photo" }] }), false);
  assert.equal(isNsfw({ nsfw_level: 0, tags: [{ id: 7, name: "NSFW" }] }), true);
  assert.equal(isNsfw({ nsfw_level: 4, tags: [] }), true);
  assert.equal(isNsfw({ nsfw_level: null }), false);
  assert.equal(isNsfw(undefined), false);
});

test("hidden by default, blurred with the toggle, plain otherwise", () => {
  const nsfw = { nsfw_level: 2, tags: [] };
  assert.equal(nsfwDisplay(nsfw, false), "hide");
  assert.equal(nsfwDisplay(nsfw, true), "blur");
  assert.equal(nsfwDisplay({ nsfw_level: 0, tags: [] }, false), "show");
});

test("the server leaves NSFW models out unless the toggle is on", () => {
  const state = initialQuery();
  assert.deepEqual(listParams(state), { type: undefined, search: undefined, sort: "name", tags: undefined, exclude_tags: ["nsfw"], max_nsfw_level: 0 });
  const shown = listParams({ ...state, showNsfw: true });
  assert.deepEqual([shown.exclude_tags, shown.max_nsfw_level], [undefined, undefined]);
  const filtered = { ...state, type: "loras", search: "  film ", include: ["style"], exclude: ["NSFW", "photo"] };
  assert.deepEqual(listParams(filtered), { type: "loras", search: "film", sort: "name", tags: ["style"], exclude_tags: ["NSFW", "photo"], max_nsfw_level: 0 });
});

test("a tag cycles neutral → include → exclude → neutral", () => {
  let state = initialQuery();
  state = cycleTag(state, "style");
  assert.equal(tagState(state, "style"), "include");
  state = cycleTag(state, "style");
  assert.equal(tagState(state, "style"), "exclude");
  assert.deepEqual(state.include, []);
  state = cycleTag(state, "style");
  assert.equal(tagState(state, "style"), "");
  assert.deepEqual([state.include, state.exclude], [[], []]);
});
