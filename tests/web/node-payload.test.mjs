// The JS twin of nodes/payload.py: the same shapes read, the same failures reported.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  applyLoraSelection, dumpLoras, dumpModel, labelOf, PayloadError, readLoras, readModel,
} from "../../web/lib/node-payload.mjs";

const SHA_A = "a".repeat(64);
const SHA_B = "b".repeat(64);

test("single model: the canonical shape, the original's path keys, empty", () => {
  assert.deepEqual(readModel(JSON.stringify({ ckpt_path: "x/m.safetensors", sha256: SHA_A.toUpperCase(), name: "M" })),
    { path: "x/m.safetensors", sha256: SHA_A, name: "M" });
  assert.equal(readModel('{"path": "v.pt"}').path, "v.pt");
  assert.equal(readModel('{"full_path": "/abs/v.pt"}').path, "/abs/v.pt");
  assert.deepEqual(readModel(""), { path: "", sha256: "", name: "" });
  assert.deepEqual(readModel("  "), { path: "", sha256: "", name: "" });
  const ref = { path: "a/b.safetensors", sha256: SHA_A, name: "B" };
  assert.deepEqual(readModel(dumpModel(ref)), ref);
  assert.deepEqual(JSON.parse(dumpModel(ref, "path")), { path: "a/b.safetensors", sha256: SHA_A, name: "B" });
});

test("single model: broken payloads say why", () => {
  assert.throws(() => readModel("{nope"), (e) => e instanceof PayloadError && /not valid JSON/.test(e.message));
  assert.throws(() => readModel("[1]"), /must be a JSON object, not list/);
  assert.throws(() => readModel('{"ckpt_path": 5}'), /'ckpt_path' must be a string, not number/);
  assert.throws(() => readModel('{"sha256": ["x"]}'), /'sha256' must be a string/);
});

test("LoRA list: version 2, a bare array, the original's aliases and numeric strings", () => {
  const v2 = { version: 2, loras: [{ name: "ink", full_path: "/l/ink.safetensors", sha256: SHA_A, strength_model: 0.5, strength_clip: 0.25, enabled: false }] };
  assert.deepEqual(readLoras(JSON.stringify(v2)), v2.loras);
  const old = [{ path: "old.safetensors", MStrength: "0.7", CStrength: 0.3, toggleOn: "true" }];
  assert.deepEqual(readLoras(JSON.stringify(old)), [{ name: "", full_path: "old.safetensors", sha256: "", strength_model: 0.7, strength_clip: 0.3, enabled: true }]);
  assert.equal(readLoras(JSON.stringify({ LoRAs: old })).length, 1);
  assert.equal(readLoras(JSON.stringify({ version: "1", LoRAList: old })).length, 1);
  assert.deepEqual(readLoras(""), []);
  assert.deepEqual(readLoras('{"version": 2}'), []);
  const defaults = readLoras(JSON.stringify([{ sha256: SHA_B }]))[0];
  assert.deepEqual([defaults.strength_model, defaults.strength_clip, defaults.enabled], [1, 1, true]);
});

test("LoRA list: what cannot be read throws, naming the entry", () => {
  assert.throws(() => readLoras("{"), /not valid JSON/);
  assert.throws(() => readLoras('{"version": 3, "loras": []}'), /version 3 is not supported/);
  assert.throws(() => readLoras('{"version": null, "loras": []}'), /version null/);
  assert.throws(() => readLoras('{"loras": {"a": 1}}'), /must hold a list/);
  assert.throws(() => readLoras("[5]"), /LoRA #1 must be a JSON object/);
  assert.throws(() => readLoras('[{"sha256": "' + SHA_A + '"}, {"strength_model": "x"}]'), /LoRA #2: strength "x" is not a number/);
  assert.throws(() => readLoras('[{"name": "a", "strength_model": true}]'), /strength true is not a number/);
  assert.throws(() => readLoras('[{"name": "a", "enabled": 1}]'), /'enabled' must be true or false/);
  assert.throws(() => readLoras('[{"strength_model": 1}]'), /names no file/);
});

test("dump → read is the identity on canonical entries", () => {
  const entries = [
    { name: "a", full_path: "/a.safetensors", sha256: SHA_A, strength_model: 0.8, strength_clip: 1, enabled: true },
    { name: "legacy", full_path: "legacy.safetensors", sha256: "", strength_model: 1, strength_clip: 0.5, enabled: false },
  ];
  const text = dumpLoras(entries);
  assert.equal(JSON.parse(text).version, 2);
  assert.deepEqual(readLoras(text), entries);
});

test("picker selection keeps entries without sha256 and the settings of kept ones", () => {
  const entries = [
    { name: "a", full_path: "/a", sha256: SHA_A, strength_model: 0.3, strength_clip: 0.2, enabled: false },
    { name: "nohash", full_path: "n.safetensors", sha256: "", strength_model: 1, strength_clip: 1, enabled: true },
  ];
  const c = { sha256: "c".repeat(64), name: "C", path: "/c" };
  const kept = applyLoraSelection(entries, [{ sha256: SHA_A, name: "a", path: "/a" }, c]);
  assert.deepEqual(kept.slice(0, 2), entries);
  assert.deepEqual(kept[2], { name: "C", full_path: "/c", sha256: "c".repeat(64), strength_model: 1, strength_clip: 1, enabled: true });
  const dropped = applyLoraSelection(entries, []);
  assert.deepEqual(dropped, [entries[1]], "a deselected hash goes, the entry without a hash stays");
});

test("labels: display name, else file name, else hash", () => {
  assert.equal(labelOf({ name: "N", path: "/x/y.st" }), "N");
  assert.equal(labelOf({ full_path: "C:\\m\\y.safetensors" }), "y.safetensors");
  assert.equal(labelOf({ sha256: SHA_A }), "aaaaaaaaaaaa");
});
