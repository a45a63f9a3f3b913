"""nodes.loaders: V1 node classes resolving by sha256, with ComfyUI's loading functions
replaced only at the call boundary (comfy.sd, comfy.utils, comfy.controlnet, spandrel)."""
import enum
import json
import math
import os
import types

import pytest

from nodes import loaders
from nodes.host import Host
from nodes.payload import LoraEntry, ModelRef, dump_loras, dump_model
from nodes.resolve import ModelNotFound
from tests.nodes_helpers import add_to_library, make_fake


class Calls(list):
    def record(self, name, result):
        def call(*args, **kwargs):
            self.append((name, args, kwargs))
            return result(*args, **kwargs) if callable(result) else result
        return call


@pytest.fixture
def comfy(tmp_path):
    """A fake ComfyUI whose loading functions record their calls."""
    fake = make_fake(tmp_path / "comfy")
    calls = Calls()
    fake.calls = calls
    fake.add("comfy.utils", types.SimpleNamespace(
        load_torch_file=calls.record("load_torch_file", lambda path, **kw: {"lora": path}),
        state_dict_prefix_replace=calls.record("prefix", lambda sd, m: sd)))
    fake.add("comfy.sd", types.SimpleNamespace(
        load_checkpoint_guess_config=calls.record("checkpoint", ("M", "C", "V", None)),
        load_lora_for_models=calls.record(
            "lora", lambda m, c, lora, sm, sc: (f"{m}+{os.path.basename(lora['lora'])}", f"{c}+")),
        VAE=calls.record("vae", lambda sd: types.SimpleNamespace(sd=sd)),
        load_diffusion_model=calls.record("unet", "UNET"),
        CLIPType=enum.Enum("CLIPType", "STABLE_DIFFUSION SD3 FLUX"),
        load_clip=calls.record("clip", "TE")))
    fake.add("comfy.controlnet", types.SimpleNamespace(load_controlnet=calls.record("controlnet", "CN")))
    descriptor = type("ImageModelDescriptor", (), {"eval": lambda self: self})
    fake.add("spandrel", types.SimpleNamespace(
        ImageModelDescriptor=descriptor,
        ModelLoader=lambda: types.SimpleNamespace(load_from_state_dict=lambda sd: descriptor())))
    fake.nodes = loaders.node_classes(Host(fake.import_module))
    return fake


def _run(comfy, node_id, **inputs):
    cls = comfy.nodes[node_id]
    return getattr(cls(), cls.FUNCTION)(**inputs)


def test_node_mappings_are_v1_with_the_reference_ids(comfy):
    assert set(comfy.nodes) == set(loaders.DISPLAY_NAMES)
    for node_id, cls in comfy.nodes.items():
        spec = cls.INPUT_TYPES()
        assert spec["required"]["hikaze_payload"][0] == "STRING", node_id
        assert cls.FUNCTION == "load" and cls.RETURN_TYPES and cls.CATEGORY
    assert comfy.nodes["HikazeCheckpointLoader"].RETURN_TYPES == ("MODEL", "CLIP", "VAE")
    assert comfy.nodes["HikazeLoraPowerLoader"].RETURN_TYPES == ("MODEL", "CLIP", "STRING")
    assert comfy.nodes["HikazeTextEncoderLoader"].INPUT_TYPES()["required"]["type"][0] == \
        ["stable_diffusion", "sd3", "flux"]


def test_checkpoint_loads_by_sha256_after_a_move(comfy, tmp_path):
    path = comfy.model("checkpoints", "sd15.safetensors", b"ckpt")
    sha = add_to_library(comfy, "checkpoints", path)
    payload = dump_model(ModelRef(path="/old/machine/sd15.safetensors", sha256=sha, name="SD"))
    assert _run(comfy, "HikazeCheckpointLoader", hikaze_payload=payload) == ("M", "C", "V")
    name, args, kwargs = comfy.calls[-1]
    assert (name, args) == ("checkpoint", (str(path),))
    assert kwargs["embedding_directory"] == comfy.folder_paths.get_folder_paths("embeddings")


def test_a_missing_checkpoint_fails_with_name_hash_and_path(comfy):
    payload = dump_model(ModelRef(path="/x/y.safetensors", sha256="12" * 32, name="Lost"))
    with pytest.raises(ModelNotFound, match=f"'Lost' not found: sha256 {'12' * 32}, last known path /x/y"):
        _run(comfy, "HikazeCheckpointLoader", hikaze_payload=payload)
    assert comfy.calls == []


def test_is_changed_follows_hash_and_the_file(comfy):
    cls = comfy.nodes["HikazeCheckpointLoader"]
    path = comfy.model("checkpoints", "c.safetensors", b"one")
    sha = add_to_library(comfy, "checkpoints", path)
    payload = dump_model(ModelRef(sha256=sha))
    first = cls.IS_CHANGED(hikaze_payload=payload)
    assert sha in first and first == cls.IS_CHANGED(hikaze_payload=payload)
    path.write_bytes(b"replaced, longer")
    assert cls.IS_CHANGED(hikaze_payload=payload) != first
    assert math.isnan(cls.IS_CHANGED(hikaze_payload=dump_model(ModelRef(sha256="34" * 32))))


def _loras(*entries):
    return dump_loras([LoraEntry(ModelRef(path=p, sha256=s, name=n), sm, sc, on)
                       for p, s, n, sm, sc, on in entries])


def test_lora_stack_applies_enabled_loras_in_order_and_returns_trigger_words(comfy):
    a = comfy.model("loras", "a.safetensors", b"a")
    b = comfy.model("loras", "style/b.safetensors", b"b")
    c = comfy.model("loras", "c.safetensors", b"c")
    sha_a = add_to_library(comfy, "loras", a, meta={"trigger_words": ["ink", "wash"]})
    sha_c = add_to_library(comfy, "loras", c, meta={"trigger_words": ["never"]})
    sha_b = add_to_library(comfy, "loras", b, meta={"trigger_words": ["wash", "bold"]})
    payload = _loras(("", sha_a, "a", 0.8, 1.0, True), ("", sha_c, "c", 1, 1, False),
                     ("style/b.safetensors", sha_b, "b", -0.5, 0.25, True))
    model, clip, words = _run(comfy, "HikazeLoraPowerLoader", model="M", clip="C", hikaze_payload=payload)
    assert (model, clip, words) == ("M+a.safetensors+b.safetensors", "C++", "ink, wash, bold")
    applied = [(args[3], args[4]) for name, args, _ in comfy.calls if name == "lora"]
    assert applied == [(0.8, 1.0), (-0.5, 0.25)]
    assert ("load_torch_file", (str(a),), {"safe_load": True}) in comfy.calls


def test_lora_reference_payload_by_relative_path(comfy):
    comfy.model("loras", "old.safetensors", b"old")
    bare = json.dumps([{"path": "old.safetensors", "MStrength": 1, "CStrength": 1, "toggleOn": True}])
    assert _run(comfy, "HikazeLoraPowerLoader", model="M", clip="C", hikaze_payload=bare)[0] == "M+old.safetensors"


def test_a_missing_lora_fails_the_prompt_before_any_is_applied(comfy):
    comfy.model("loras", "ok.safetensors", b"ok")
    payload = _loras(("ok.safetensors", "", "ok", 1, 1, True), ("", "56" * 32, "Gone", 1, 1, True))
    with pytest.raises(ModelNotFound, match=f"'Gone' not found: sha256 {'56' * 32}"):
        _run(comfy, "HikazeLoraPowerLoader", model="M", clip="C", hikaze_payload=payload)
    assert not [c for c in comfy.calls if c[0] == "lora"]


def test_a_lora_that_fails_to_load_fails_the_prompt(comfy):
    comfy.model("loras", "bad.safetensors", b"bad")

    def broken(path, **kw):
        raise RuntimeError(f"Error while deserializing header: {path}")
    comfy.modules["comfy.utils"].load_torch_file = broken
    with pytest.raises(RuntimeError, match="bad.safetensors"):
        _run(comfy, "HikazeLoraPowerLoader", model="M", clip="C",
             hikaze_payload=_loras(("bad.safetensors", "", "", 1, 1, True)))


def test_an_unreadable_lora_list_fails_instead_of_loading_nothing(comfy):
    with pytest.raises(ValueError, match="version 9"):
        _run(comfy, "HikazeLoraPowerLoader", model="M", clip="C", hikaze_payload='{"version": 9}')
    assert math.isnan(comfy.nodes["HikazeLoraPowerLoader"].IS_CHANGED(hikaze_payload="{"))


def test_lora_is_changed_covers_every_enabled_lora(comfy):
    a = comfy.model("loras", "a.safetensors", b"a")
    sha = add_to_library(comfy, "loras", a)
    cls = comfy.nodes["HikazeLoraPowerLoader"]
    payload = _loras(("", sha, "a", 1, 1, True))
    before = cls.IS_CHANGED(hikaze_payload=payload)
    a.write_bytes(b"a new file")
    assert sha in before[0] and cls.IS_CHANGED(hikaze_payload=payload) != before
    assert cls.IS_CHANGED(hikaze_payload=_loras(("", sha, "a", 1, 1, False))) == []


@pytest.mark.parametrize("node_id, kind, extra, call, expected", [
    ("HikazeVAELoader", "vae", {}, "load_torch_file", None),
    ("HikazeDiffusionModelLoader", "diffusion_models", {"weight_dtype": "default"}, "unet", "UNET"),
    ("HikazeTextEncoderLoader", "text_encoders", {"type": "sd3"}, "clip", "TE"),
    ("HikazeControlNetLoader", "controlnet", {}, "controlnet", "CN"),
    ("HikazeUpscaleModelLoader", "upscale_models", {}, "load_torch_file", None),
])
def test_other_kinds_load_through_comfyui(comfy, node_id, kind, extra, call, expected):
    path = comfy.model(kind, "m.safetensors", kind.encode())
    sha = add_to_library(comfy, kind, path)
    (out,) = _run(comfy, node_id, hikaze_payload=dump_model(ModelRef(sha256=sha), "path"), **extra)
    assert expected is None or out == expected
    name, args, kwargs = next(c for c in comfy.calls if c[0] == call)
    assert str(path) in args or [str(path)] == kwargs.get("ckpt_paths")
    if node_id == "HikazeTextEncoderLoader":
        assert kwargs["clip_type"].name == "SD3"


def test_a_controlnet_comfyui_does_not_recognise_fails(comfy):
    comfy.modules["comfy.controlnet"].load_controlnet = lambda path: None
    comfy.model("controlnet", "x.pt")
    with pytest.raises(RuntimeError, match="not recognise"):
        _run(comfy, "HikazeControlNetLoader", hikaze_payload='{"path": "x.pt"}')
