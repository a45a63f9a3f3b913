"""The one place that touches ComfyUI: its folders, its server, its arguments, its loaders.

Every ComfyUI module is reached through `Host.module(name)`, imported on first use, so
importing the extension costs nothing and tests hand a Host fake modules instead of ComfyUI's
(`tests/comfy_fake`) without touching `sys.modules`.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

# The weight dtypes ComfyUI's own UNETLoader offers, and the model_options each one sets.
UNET_DTYPES = ("default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2")
# Kinds ComfyUI keeps under another key (folder_paths' legacy names).
KIND_ALIASES = {"clip": "text_encoders", "unet": "diffusion_models"}


@dataclass(frozen=True)
class Listen:
    """Where ComfyUI serves: its first listen address, port and scheme."""

    address: str
    port: int
    scheme: str

    @property
    def origins(self) -> list[str]:
        """The browser origins of ComfyUI's page (both loopback names on a local server)."""
        hosts = [self.address]
        if self.address in ("127.0.0.1", "localhost", "0.0.0.0", "::", "::1"):
            hosts = ["127.0.0.1", "localhost"]
        return [f"{self.scheme}://{'[' + h + ']' if ':' in h else h}:{self.port}" for h in hosts]


@dataclass(frozen=True)
class Host:
    """ComfyUI as our nodes and supervisor see it."""

    importer: Callable[[str], ModuleType] = field(default=importlib.import_module)

    @staticmethod
    def inside_comfyui() -> bool:
        """True when ComfyUI is the running program (it imports these before any extension)."""
        server = sys.modules.get("server")
        return "folder_paths" in sys.modules and hasattr(server, "PromptServer")

    def module(self, name: str) -> ModuleType:
        return self.importer(name)

    # --- folders -------------------------------------------------------------------------
    def kinds(self) -> dict[str, dict[str, list[str]]]:
        """Every model kind with its folders and extensions (extra_model_paths.yaml included)."""
        registry = self.module("folder_paths").folder_names_and_paths
        return {kind: {"folders": [str(p) for p in paths], "extensions": sorted(exts)}
                for kind, (paths, exts) in sorted(registry.items())}

    def find(self, kind: str, relative: str) -> str | None:
        """A path relative to one of ComfyUI's folders for `kind`, or None."""
        folder_paths = self.module("folder_paths")
        for name in dict.fromkeys([kind, KIND_ALIASES.get(kind, kind)]):
            if name in folder_paths.folder_names_and_paths:
                found = folder_paths.get_full_path(name, relative)
                if found:
                    return found
        return None

    def folders(self, kind: str) -> list[str]:
        return list(self.module("folder_paths").get_folder_paths(kind))

    def user_dir(self) -> Path:
        return Path(self.module("folder_paths").get_user_directory())

    def data_dir(self) -> Path:
        """The library's folder inside ComfyUI: `<user dir>/hikaze/` (DESIGN §2)."""
        return self.user_dir() / "hikaze"

    # --- server --------------------------------------------------------------------------
    def listen(self) -> Listen:
        args = self.module("comfy.cli_args").args
        address = (args.listen or "127.0.0.1").split(",")[0].strip() or "127.0.0.1"
        tls = getattr(args, "tls_keyfile", None) and getattr(args, "tls_certfile", None)
        return Listen(address, int(args.port), "https" if tls else "http")

    def routes(self) -> Any:
        """PromptServer.instance.routes: routes added here before start get an /api twin."""
        return self.module("server").PromptServer.instance.routes

    # --- loaders (ComfyUI's own functions) -----------------------------------------------
    def load_checkpoint(self, path: str) -> tuple:
        sd = self.module("comfy.sd")
        out = sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True,
                                              embedding_directory=self.folders("embeddings"))
        return tuple(out[:3])

    def load_lora(self, model: Any, clip: Any, path: str, strength_model: float,
                  strength_clip: float) -> tuple:
        lora = self.module("comfy.utils").load_torch_file(path, safe_load=True)
        return tuple(self.module("comfy.sd").load_lora_for_models(model, clip, lora,
                                                                  strength_model, strength_clip))

    def load_vae(self, path: str) -> Any:
        state = self.module("comfy.utils").load_torch_file(path)
        vae = self.module("comfy.sd").VAE(sd=state)
        check = getattr(vae, "throw_exception_if_invalid", None)
        if check:
            check()
        return vae

    def load_diffusion_model(self, path: str, weight_dtype: str = "default") -> Any:
        return self.module("comfy.sd").load_diffusion_model(path, model_options=self._dtype(weight_dtype))

    def _dtype(self, weight_dtype: str) -> dict:
        if weight_dtype == "default":
            return {}
        torch = self.module("torch")
        dtype = torch.float8_e5m2 if weight_dtype == "fp8_e5m2" else torch.float8_e4m3fn
        options = {"dtype": dtype}
        if weight_dtype == "fp8_e4m3fn_fast":
            options["fp8_optimizations"] = True
        return options

    def clip_types(self) -> list[str]:
        return [member.name.lower() for member in self.module("comfy.sd").CLIPType]

    def load_text_encoder(self, path: str, clip_type: str) -> Any:
        sd = self.module("comfy.sd")
        kind = getattr(sd.CLIPType, clip_type.upper(), sd.CLIPType.STABLE_DIFFUSION)
        return sd.load_clip(ckpt_paths=[path], embedding_directory=self.folders("embeddings"),
                            clip_type=kind)

    def load_controlnet(self, path: str) -> Any:
        controlnet = self.module("comfy.controlnet").load_controlnet(path)
        if controlnet is None:
            raise RuntimeError(f"ComfyUI does not recognise {path} as a ControlNet")
        return controlnet

    def load_upscale_model(self, path: str) -> Any:
        utils = self.module("comfy.utils")
        state = utils.load_torch_file(path, safe_load=True)
        if "module.layers.0.residual_group.blocks.0.norm1.weight" in state:
            state = utils.state_dict_prefix_replace(state, {"module.": ""})
        spandrel = self.module("spandrel")
        model = spandrel.ModelLoader().load_from_state_dict(state).eval()
        if not isinstance(model, spandrel.ImageModelDescriptor):
            raise RuntimeError(f"{path} is not a single-image upscale model")
        return model

