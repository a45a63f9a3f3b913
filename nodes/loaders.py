"""The loader nodes (ComfyUI's V1 node API): each resolves its model by sha256 and loads it
with ComfyUI's own functions through the host adapter.

V1 because every ComfyUI from 2024 to 2026 loads it identically, while V3 is still marked
unstable (docs/comfyui.md). Node ids and the `hikaze_payload` input match the original
extension, so its saved workflows load.
"""
from __future__ import annotations

import logging
from typing import Any, ClassVar

from .host import UNET_DTYPES, Host
from .payload import PAYLOAD_INPUT, LoraEntry, ModelRef, PayloadError, read_loras, read_model
from .resolve import Library, ModelNotFound, Resolved, resolve

log = logging.getLogger(__name__)
CATEGORY = "Hikaze Model Manager"
_PAYLOAD_TIP = "Which model: written by the Hikaze picker (sha256 first, path as a hint)."


def _payload_input(default: str) -> tuple:
    return ("STRING", {"default": default, "multiline": True, "tooltip": _PAYLOAD_TIP})


class _Node:
    """What every loader shares: its host, the kind of model, how it finds files."""

    host: ClassVar[Host]
    KIND: ClassVar[str]
    CATEGORY = CATEGORY
    FUNCTION = "load"

    @classmethod
    def find(cls, ref: ModelRef) -> Resolved:
        found = resolve(ref, cls.KIND, Library(cls.host.data_dir()), cls.host)
        if found.via != "library" and ref.sha256:
            log.info("Hikaze: %s '%s' found by its %s (the library does not know sha256 %s)",
                     cls.KIND, ref.label, found.via, ref.sha256)
        return found


class _SingleModel(_Node):
    """A node with one model payload; IS_CHANGED follows the resolved file."""

    DEFAULT_PAYLOAD: ClassVar[str] = '{"path": ""}'
    EXTRA_INPUTS: ClassVar[dict] = {}

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {PAYLOAD_INPUT: _payload_input(cls.DEFAULT_PAYLOAD), **cls.extra_inputs()}}

    @classmethod
    def extra_inputs(cls) -> dict:
        return dict(cls.EXTRA_INPUTS)

    @classmethod
    def IS_CHANGED(cls, hikaze_payload: str = "", **inputs: Any) -> Any:
        try:
            return cls.find(read_model(hikaze_payload)).stamp() + repr(sorted(inputs.items()))
        except (PayloadError, OSError):
            return float("nan")  # run again; execution then reports the problem

    def path_of(self, hikaze_payload: str) -> str:
        return self.find(read_model(hikaze_payload)).path


class HikazeCheckpointLoader(_SingleModel):
    KIND = "checkpoints"
    DEFAULT_PAYLOAD = '{"ckpt_path": ""}'
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    RETURN_NAMES = ("model", "clip", "vae")

    def load(self, hikaze_payload: str) -> tuple:
        return self.host.load_checkpoint(self.path_of(hikaze_payload))


class HikazeVAELoader(_SingleModel):
    KIND = "vae"
    RETURN_TYPES = ("VAE",)

    def load(self, hikaze_payload: str) -> tuple:
        return (self.host.load_vae(self.path_of(hikaze_payload)),)


class HikazeDiffusionModelLoader(_SingleModel):
    KIND = "diffusion_models"
    EXTRA_INPUTS = {"weight_dtype": (list(UNET_DTYPES),)}
    RETURN_TYPES = ("MODEL",)

    def load(self, hikaze_payload: str, weight_dtype: str = "default") -> tuple:
        return (self.host.load_diffusion_model(self.path_of(hikaze_payload), weight_dtype),)


class HikazeTextEncoderLoader(_SingleModel):
    KIND = "text_encoders"
    RETURN_TYPES = ("CLIP",)

    @classmethod
    def extra_inputs(cls) -> dict:
        return {"type": (cls.host.clip_types(), {"default": "stable_diffusion"})}

    def load(self, hikaze_payload: str, type: str = "stable_diffusion") -> tuple:  # noqa: A002
        return (self.host.load_text_encoder(self.path_of(hikaze_payload), type),)


class HikazeControlNetLoader(_SingleModel):
    KIND = "controlnet"
    RETURN_TYPES = ("CONTROL_NET",)

    def load(self, hikaze_payload: str) -> tuple:
        return (self.host.load_controlnet(self.path_of(hikaze_payload)),)


class HikazeUpscaleModelLoader(_SingleModel):
    KIND = "upscale_models"
    RETURN_TYPES = ("UPSCALE_MODEL",)

    def load(self, hikaze_payload: str) -> tuple:
        return (self.host.load_upscale_model(self.path_of(hikaze_payload)),)


class HikazeLoraPowerLoader(_Node):
    """A stack of LoRAs on MODEL and CLIP, plus the enabled LoRAs' trigger words."""

    KIND = "loras"
    RETURN_TYPES = ("MODEL", "CLIP", "STRING")
    RETURN_NAMES = ("model", "clip", "trigger_words")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"model": ("MODEL",), "clip": ("CLIP",),
                             PAYLOAD_INPUT: _payload_input('{"version": 2, "loras": []}')}}

    @classmethod
    def IS_CHANGED(cls, hikaze_payload: str = "", **_: Any) -> Any:
        try:
            return [cls.find(e.ref).stamp() for e in cls.enabled(hikaze_payload)]
        except (PayloadError, OSError):
            return float("nan")

    @staticmethod
    def enabled(payload: str) -> list[LoraEntry]:
        return [e for e in read_loras(payload) if e.enabled]

    def load(self, model: Any, clip: Any, hikaze_payload: str) -> tuple:
        entries = self.enabled(hikaze_payload)
        # Resolve all first: a missing LoRA fails the prompt before any work is done.
        found = [(entry, self.find(entry.ref)) for entry in entries]
        library = Library(self.host.data_dir())
        words: list[str] = []
        for entry, file in found:
            if entry.strength_model or entry.strength_clip:
                model, clip = self.host.load_lora(model, clip, file.path,
                                                  entry.strength_model, entry.strength_clip)
            if entry.ref.sha256:
                words += [w for w in library.trigger_words(entry.ref.sha256) if w not in words]
        return (model, clip, ", ".join(words))


NODES: tuple[type[_Node], ...] = (
    HikazeCheckpointLoader, HikazeLoraPowerLoader, HikazeVAELoader, HikazeDiffusionModelLoader,
    HikazeTextEncoderLoader, HikazeControlNetLoader, HikazeUpscaleModelLoader)
DISPLAY_NAMES = {
    "HikazeCheckpointLoader": "Hikaze Checkpoint Loader",
    "HikazeLoraPowerLoader": "Hikaze LoRA Power Loader",
    "HikazeVAELoader": "Hikaze VAE Loader",
    "HikazeDiffusionModelLoader": "Hikaze Diffusion Model Loader",
    "HikazeTextEncoderLoader": "Hikaze Text Encoder Loader",
    "HikazeControlNetLoader": "Hikaze ControlNet Loader",
    "HikazeUpscaleModelLoader": "Hikaze Upscale Model Loader",
}


def node_classes(host: Host) -> dict[str, type]:
    """The node mappings for ComfyUI, each class bound to `host`."""
    return {node.__name__: type(node.__name__, (node,), {"host": host, "__module__": __name__})
            for node in NODES}


__all__ = ["DISPLAY_NAMES", "ModelNotFound", "node_classes"]
