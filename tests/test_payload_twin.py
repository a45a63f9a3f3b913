"""nodes/payload.py and its browser twin web/lib/node-payload.mjs read the same payloads alike:
the same entries from every shape, and a failure where the other fails."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nodes.payload import PayloadError, read_loras, read_model

ROOT = Path(__file__).resolve().parents[1]
SHA = "ab" * 32
LORA_PAYLOADS = [
    "", "[]", '{"version": 2}',
    json.dumps({"version": 2, "loras": [{"name": "a", "full_path": "/x/a.safetensors", "sha256": SHA.upper(),
                                         "strength_model": 0.5, "strength_clip": -1, "enabled": False}]}),
    json.dumps([{"path": "old.safetensors", "MStrength": "0.7", "CStrength": 0.3, "toggleOn": "true"}]),
    json.dumps({"LoRAs": [{"name": "only a name"}]}),
    json.dumps({"version": "1", "LoRAList": [{"sha256": SHA}]}),
    "{not json", "[5]", '{"version": 3, "loras": []}', '{"version": null}', '{"loras": {"a": 1}}',
    '[{"name": "a", "strength_model": "x"}]', '[{"name": "a", "strength_model": true}]',
    '[{"name": "a", "enabled": 1}]', '[{"strength_model": 1}]', '[{"name": 5}]',
]
MODEL_PAYLOADS = ["", '{"ckpt_path": "m.safetensors", "sha256": "' + SHA + '", "name": "M"}',
                  '{"path": "v.pt"}', '{"full_path": "/abs/v.pt"}', "[1]", '{"ckpt_path": 5}', "{oops"]

SCRIPT = """
import { readLoras, readModel } from %s;
const run = (read, text) => { try { return { value: read(text) }; } catch (e) { return { error: e.message }; } };
const input = JSON.parse(process.argv[1]);
console.log(JSON.stringify({ loras: input.loras.map((t) => run(readLoras, t)),
                             models: input.models.map((t) => run(readModel, t)) }));
"""


def python_reading(read, text, shape):
    try:
        return {"value": shape(read(text))}
    except PayloadError:
        return {"error": True}


def lora_dicts(entries):
    return [{"name": e.ref.name, "full_path": e.ref.path, "sha256": e.ref.sha256, "strength_model": e.strength_model,
             "strength_clip": e.strength_clip, "enabled": e.enabled} for e in entries]


def model_dict(ref):
    return {"path": ref.path, "sha256": ref.sha256, "name": ref.name}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_python_and_browser_readers_agree():
    module = json.dumps((ROOT / "web" / "lib" / "node-payload.mjs").as_uri())
    answer = subprocess.run(["node", "--input-type=module", "-e", SCRIPT % module,
                             json.dumps({"loras": LORA_PAYLOADS, "models": MODEL_PAYLOADS})],
                            capture_output=True, text=True, check=True, timeout=60)
    browser = json.loads(answer.stdout)
    for kind, payloads, read, shape in (("loras", LORA_PAYLOADS, read_loras, lora_dicts),
                                        ("models", MODEL_PAYLOADS, read_model, model_dict)):
        for text, js in zip(payloads, browser[kind]):
            py = python_reading(read, text, shape)
            if "error" in py:
                assert "error" in js, f"Python refuses {text!r}, the browser reads {js}"
            else:
                assert js == py, f"{text!r}: browser {js} != Python {py}"
