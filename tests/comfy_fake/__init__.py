"""A small faithful fake of the ComfyUI modules an extension touches (COMFYUI.md §8a).

Each FakeComfy holds fresh module objects that are never registered in `sys.modules`; tests
hand them to `nodes.host.Host(importer=fake.import_module)`. Only `install(monkeypatch)` puts
them under ComfyUI's top-level names, for the length of one test, to import the extension the
way ComfyUI does.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"comfy_fake_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeComfy:
    def __init__(self, root: Path, port: int = 8188, listen: str = "127.0.0.1"):
        self.root = Path(root)
        self.folder_paths = _load("folder_paths")
        self.folder_paths.init(self.root)
        self.server = _load("server")
        self.prompt_server = self.server.PromptServer()
        self.cli_args = _load("cli_args")
        self.cli_args.args.port, self.cli_args.args.listen = port, listen
        self.loader = _load("loader")
        comfy = types.ModuleType("comfy")
        comfy.cli_args = self.cli_args
        self.modules = {"folder_paths": self.folder_paths, "server": self.server, "comfy": comfy,
                        "comfy.cli_args": self.cli_args}

    def import_module(self, name: str) -> types.ModuleType:
        try:
            return self.modules[name]
        except KeyError:
            raise ModuleNotFoundError(f"No module named '{name}' in the fake ComfyUI") from None

    def add(self, name: str, module: object) -> None:
        """A stand-in for one ComfyUI module (comfy.sd, comfy.utils, …) at the call boundary."""
        self.modules[name] = module

    def install(self, monkeypatch) -> None:
        """Make the fakes importable under ComfyUI's names until the test ends."""
        for name, module in self.modules.items():
            monkeypatch.setitem(sys.modules, name, module)

    def model(self, kind: str, relative: str, data: bytes = b"weights") -> Path:
        path = self.root / "models" / kind / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path
