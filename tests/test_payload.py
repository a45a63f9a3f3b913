"""nodes.payload: the canonical shapes, every alias of the original extension, clear errors."""
import json

import pytest

from nodes.payload import (LoraEntry, ModelRef, PayloadError, dump_loras, dump_model, read_loras,
                           read_model)

SHA = "ab" * 32


def test_checkpoint_payload_round_trips():
    ref = ModelRef(path="/m/a.safetensors", sha256=SHA, name="A")
    assert json.loads(dump_model(ref)) == {"ckpt_path": "/m/a.safetensors", "sha256": SHA, "name": "A"}
    assert read_model(dump_model(ref)) == ref


@pytest.mark.parametrize("text", ["", "  ", None, '{"ckpt_path": ""}'])
def test_an_empty_model_payload_is_an_empty_reference(text):
    assert read_model(text).empty


def test_model_payload_accepts_path_aliases_and_normalises_the_hash():
    assert read_model('{"path": "x.safetensors", "sha256": " AB%s "}' % ("ab" * 31)).sha256 == SHA
    assert read_model('{"full_path": "/a/b.pt"}').path == "/a/b.pt"
    assert read_model('{"path": "vae/x.pt"}').label == "x.pt"


@pytest.mark.parametrize("text, message", [("{nope", "not valid JSON"), ("[1]", "JSON object"),
                                           ('{"ckpt_path": 3}', "'ckpt_path' must be a string")])
def test_bad_model_payloads_say_why(text, message):
    with pytest.raises(PayloadError, match=message):
        read_model(text)


def test_lora_document_round_trips():
    entries = [LoraEntry(ModelRef("/l/a.safetensors", SHA, "a"), 0.8, 1.0, True),
               LoraEntry(ModelRef("b.safetensors", "", "b"), -1.5, 0.0, False)]
    text = dump_loras(entries)
    assert json.loads(text)["version"] == 2 and '\n  "loras"' in text
    assert read_loras(text) == entries


def test_lora_reader_accepts_the_reference_aliases():
    bare = '[{"path": "a.safetensors", "MStrength": "0.5", "CStrength": 2, "toggleOn": false}]'
    assert read_loras(bare) == [LoraEntry(ModelRef("a.safetensors"), 0.5, 2.0, False)]
    for key in ("LoRAs", "LoRAList", "loRAList"):
        doc = json.dumps({"version": "1", key: [{"full_path": "x.pt", "sha256": SHA.upper()}]})
        assert read_loras(doc) == [LoraEntry(ModelRef("x.pt", SHA), 1.0, 1.0, True)]


@pytest.mark.parametrize("text", ["", "[]", '{"version": 2, "loras": []}', '{"version": 2}'])
def test_empty_lora_lists(text):
    assert read_loras(text) == []


@pytest.mark.parametrize("text, message", [
    ('{"version": 3, "loras": []}', "version 3"),
    ('{"loras": {}}', "list of LoRAs"),
    ('[{"full_path": "a", "strength_model": true}]', "LoRA #1: strength True"),
    ('[{"full_path": "a"}, {"full_path": "b", "enabled": "yes"}]', "LoRA #2: 'enabled'"),
    ('[{"strength_model": 1}]', "LoRA #1 names no file"),
    ('["a.safetensors"]', "LoRA #1 must be a JSON object"),
    ("[{", "not valid JSON"),
])
def test_unreadable_lora_lists_fail_with_the_reason(text, message):
    with pytest.raises(PayloadError, match=message):
        read_loras(text)
