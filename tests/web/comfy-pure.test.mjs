// ComfyUI-side pure modules: drop → node mapping, discovery choice, prompt rewriting, drag data.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CHECKPOINT_NODE, dropPlan, kindOfNode, LORA_NODE, pathKeyOf } from "../../web/comfyui/node-kinds.mjs";
import { directOrigin, discover, managerPageUrl, proxyBase } from "../../web/comfyui/discovery.mjs";
import {
  checkpointVariants, loraStrengthVariants, parseStrengths, RewriteError, withCheckpoint, withLora,
} from "../../web/comfyui/prompt-rewrite.mjs";
import { carriesModel, MODEL_DRAG_TYPE, readModelDrag, writeModelDrag } from "../../web/lib/model-drag.mjs";
import { readLoras, readModel } from "../../web/lib/node-payload.mjs";

const SHA = (c) => c.repeat(64);
const ckpt = { type: "checkpoints", sha256: SHA("c"), name: "Ckpt", path: "/m/ckpt.safetensors" };
const lora = { type: "loras", sha256: SHA("d"), name: "Ink", path: "/m/ink.safetensors" };

test("drop: the loader for the kind, set or append on our node, nothing for unknown kinds", () => {
  assert.deepEqual(dropPlan(ckpt, ""), { action: "create", nodeType: CHECKPOINT_NODE });
  assert.deepEqual(dropPlan(ckpt, CHECKPOINT_NODE), { action: "set", nodeType: CHECKPOINT_NODE });
  assert.deepEqual(dropPlan(lora, LORA_NODE), { action: "append", nodeType: LORA_NODE });
  assert.deepEqual(dropPlan(lora, CHECKPOINT_NODE), { action: "create", nodeType: LORA_NODE });
  assert.deepEqual(dropPlan({ ...ckpt, type: "vae" }, "KSampler"), { action: "create", nodeType: "HikazeVAELoader" });
  assert.equal(dropPlan({ ...ckpt, type: "embeddings" }, "").action, "none");
  assert.equal(dropPlan({ ...ckpt, type: "" }).action, "none");
  assert.equal(dropPlan(null).action, "none");
  assert.equal(kindOfNode(LORA_NODE), "loras");
  assert.equal(kindOfNode("KSampler"), "");
  assert.equal(pathKeyOf(CHECKPOINT_NODE), "ckpt_path");
  assert.equal(pathKeyOf("HikazeVAELoader"), "path");
});

test("drag data: written as our type plus text/plain, read back, foreign or broken data ignored", () => {
  const store = new Map();
  const transfer = {
    get types() { return [...store.keys()]; },
    setData: (type, value) => store.set(type, value),
    getData: (type) => store.get(type) ?? "",
  };
  assert.equal(carriesModel(transfer), false);
  writeModelDrag(transfer, { ...ckpt, tags: ["x"], cover: "/img" });
  assert.equal(transfer.effectAllowed, "copy");
  assert.equal(store.get("text/plain"), "Ckpt");
  assert.deepEqual(readModelDrag(transfer), { sha256: ckpt.sha256, name: "Ckpt", type: "checkpoints", path: ckpt.path });
  store.set(MODEL_DRAG_TYPE, "{broken");
  assert.equal(readModelDrag(transfer), null);
  store.set(MODEL_DRAG_TYPE, JSON.stringify({ sha256: "../../etc" }));
  assert.equal(readModelDrag(transfer), null);
  assert.equal(readModelDrag(null), null);
});

const here = { protocol: "http:", hostname: "127.0.0.1", origin: "http://127.0.0.1:8188" };

test("discovery: direct port first, then the proxy, else a message with the state", async () => {
  const probed = [];
  const run = (status, reachable) => discover({
    sniff: async () => status, location: here,
    probe: async (base) => { probed.push(base); return reachable.includes(base); },
  });
  assert.deepEqual(await run({ port: 8189, state: "running" }, ["http://127.0.0.1:8189"]),
    { baseUrl: "http://127.0.0.1:8189", via: "direct" });
  assert.deepEqual(await run({ port: 8189, state: "running" }, ["http://127.0.0.1:8188/api/hikaze/proxy"]),
    { baseUrl: "http://127.0.0.1:8188/api/hikaze/proxy", via: "proxy" });
  const down = await run({ port: 8189, state: "running" }, []);
  assert.equal(down.via, "none");
  assert.match(down.message, /does not answer/);
  probed.length = 0;
  const starting = await run({ port: 0, state: "failed", error: "see sidecar.log" }, []);
  assert.deepEqual([starting.via, starting.state], ["none", "failed"]);
  assert.match(starting.message, /see sidecar.log/);
  assert.deepEqual(probed, [], "nothing probed before the manager has a port");
  const broken = await discover({ sniff: async () => { throw new Error("404"); }, probe: async () => true, location: here });
  assert.equal(broken.via, "none");
  assert.equal(managerPageUrl(broken), "");
  assert.equal(managerPageUrl({ baseUrl: "http://h:1", via: "direct" }), "http://h:1/");
  assert.equal(directOrigin({ protocol: "https:", hostname: "::1" }, 9), "https://[::1]:9");
  assert.equal(proxyBase(here, "/comfy"), "http://127.0.0.1:8188/comfy/api/hikaze/proxy");
});

const basePrompt = () => ({
  1: { class_type: CHECKPOINT_NODE, inputs: { hikaze_payload: '{"ckpt_path": "old.safetensors"}' } },
  3: { class_type: "KSampler", inputs: { model: ["1", 0], seed: 1 } },
  4: { class_type: "CLIPTextEncode", inputs: { clip: ["1", 1], text: "x" } },
  5: { class_type: "VAEDecode", inputs: { vae: ["1", 2] } },
});

test("queue with a checkpoint: every Hikaze checkpoint loader, the original untouched", () => {
  const original = basePrompt();
  const frozen = JSON.stringify(original);
  const prompt = withCheckpoint(original, ckpt);
  assert.deepEqual(readModel(prompt[1].inputs.hikaze_payload), { path: ckpt.path, sha256: ckpt.sha256, name: "Ckpt" });
  assert.equal(JSON.stringify(original), frozen);
  assert.throws(() => withCheckpoint({ 3: basePrompt()[3] }, ckpt), RewriteError);
  const variants = checkpointVariants(original, [ckpt, { ...ckpt, sha256: SHA("e") }]);
  assert.deepEqual(variants.map((p) => readModel(p[1].inputs.hikaze_payload).sha256), [SHA("c"), SHA("e")]);
});

test("queue with a LoRA: appended to the existing loader, replacing the same hash", () => {
  const prompt = basePrompt();
  prompt[2] = { class_type: LORA_NODE, inputs: { model: ["1", 0], clip: ["1", 1], hikaze_payload: JSON.stringify([
    { path: "keep.safetensors", MStrength: 0.4 }, { sha256: lora.sha256, strength_model: 0.1 }]) } };
  const out = withLora(prompt, lora, 0.6);
  const entries = readLoras(out[2].inputs.hikaze_payload);
  assert.deepEqual(entries.map((e) => [e.full_path, e.strength_model]), [["keep.safetensors", 0.4], [lora.path, 0.6]]);
  assert.equal(prompt[2].inputs.hikaze_payload.includes("keep"), true, "the input prompt is not changed");
  prompt[2].inputs.hikaze_payload = "{broken";
  assert.throws(() => withLora(prompt, lora), /not valid JSON/);
});

test("queue with a LoRA: inserted after the checkpoint loader when the workflow has none", () => {
  const out = withLora(basePrompt(), lora, 0.5);
  assert.deepEqual(out[6].inputs.model, ["1", 0]);
  assert.deepEqual(out[6].inputs.clip, ["1", 1]);
  assert.equal(out[6].class_type, LORA_NODE);
  assert.deepEqual(out[3].inputs.model, ["6", 0]);
  assert.deepEqual(out[4].inputs.clip, ["6", 1]);
  assert.deepEqual(out[5].inputs.vae, ["1", 2], "the VAE still comes from the checkpoint");
  const simple = { 7: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "a" } }, 8: { class_type: "KSampler", inputs: { model: ["7", 0] } } };
  assert.deepEqual(withLora(simple, lora)[8].inputs.model, ["9", 0]);
  assert.throws(() => withLora({ 8: simple[8] }, lora), /no checkpoint loader/);
  const variants = loraStrengthVariants(basePrompt(), lora, [0.25, 1]);
  assert.deepEqual(variants.map((p) => readLoras(p[6].inputs.hikaze_payload)[0].strength_clip), [0.25, 1]);
});

test("strength lists", () => {
  assert.deepEqual(parseStrengths("0.25, 0.5 1;-1"), [0.25, 0.5, 1, -1]);
  assert.throws(() => parseStrengths(""), RewriteError);
  assert.throws(() => parseStrengths("0.5, abc"), /'abc' is not a strength/);
});

test("the shared stylesheet is confined to our elements inside ComfyUI", async () => {
  const { scopedLibraryCss } = await import("../../web/comfyui/styles.mjs");
  const css = scopedLibraryCss(":root { --hk-bg: #000; }\ninput, select { color: red; }");
  assert.match(css, /^@scope \(\.hk-comfy\) \{\n/);
  assert.match(css, /:scope \{ --hk-bg: #000; \}/);
  assert.doesNotMatch(css, /:root/);
  assert.match(css, /input, select \{ color: red; \}\n\}\n$/);
});
