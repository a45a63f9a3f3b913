"""Builders of real test data: small valid model files, pictures, and a library over them."""
from __future__ import annotations

import hashlib
import io
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from server import library, safetensors
from server.app_keys import API_KEY, STORE


@dataclass
class ModelFile:
    kind: str
    path: Path
    sha256: str


@dataclass
class ModelTree:
    """A ComfyUI-style models folder made of small but valid files."""

    root: Path
    files: list[ModelFile] = field(default_factory=list)

    def by_name(self, name: str) -> ModelFile:
        return next(f for f in self.files if f.path.name == name)


def write_safetensors(path: Path, seed: int, metadata: dict | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = struct.pack("<16f", *[float(seed + i) for i in range(16)])
    safetensors.write(path, {"lora_up.weight": ("F32", [4, 4], weights)},
                      metadata or {"ss_output_name": path.stem})
    return hashlib.sha256(path.read_bytes()).hexdigest()


def png_bytes(size=(64, 48), colour=(200, 40, 40), mode="RGB", fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, fmt)
    return buffer.getvalue()


def build_tree(root: Path) -> ModelTree:
    """A models folder: nested folders, a duplicate by content, a .ckpt, a sibling preview and
    non-model files."""
    tree = ModelTree(root)
    for kind, relative, seed in [
        ("checkpoints", "sdxl/base.safetensors", 1),
        ("loras", "style/ink.safetensors", 2),
        ("loras", "nested/deep/glow.safetensors", 3),
        ("vae", "clear.safetensors", 4),
    ]:
        path = root / kind / relative
        tree.files.append(ModelFile(kind, path, write_safetensors(path, seed)))
    copy = root / "checkpoints" / "copies" / "ink_copy.safetensors"  # a duplicate by content
    copy.parent.mkdir(parents=True)
    shutil.copyfile(root / "loras" / "style" / "ink.safetensors", copy)
    tree.files.append(ModelFile("checkpoints", copy, tree.by_name("ink.safetensors").sha256))
    ckpt = root / "checkpoints" / "old.ckpt"
    ckpt.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    tree.files.append(ModelFile("checkpoints", ckpt, hashlib.sha256(ckpt.read_bytes()).hexdigest()))
    (root / "loras" / "style" / "ink.preview.png").write_bytes(png_bytes())
    (root / "loras" / "style" / "notes.txt").write_text("not a model")
    (root / "configs").mkdir()
    (root / "configs" / "v1.yaml").write_text("model: {}\n")
    return tree



def add_tree_to_library(database, tree: ModelTree) -> list[str]:
    """Put every distinct file content of the tree in the library, as an import would."""
    added = []
    for item in tree.files:
        if item.sha256 in added:
            library.record_file(database, str(item.path), item.kind, item.sha256)
            continue
        library.add_model(database, library.NewModel(
            sha256=item.sha256, name="", type=item.kind, size_bytes=item.path.stat().st_size,
            created_at=library.now_ms(), paths=(str(item.path),)))
        added.append(item.sha256)
    return added


async def expect_error(response, status: int, code: str | None = None) -> dict:
    """Assert the response is the error envelope with this status (and code); return the body."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error", "code", "details"}
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    if code is not None:
        assert body["code"] == code, body
    return body


@dataclass
class LibraryApi:
    """A test client over a real app whose library holds a ModelTree; route tests extend it."""

    client: object
    tree: ModelTree

    def sha(self, file_name: str) -> str:
        return self.tree.by_name(file_name).sha256

    async def db(self, fn, *args):
        return await self.client.app[STORE].run(fn, *args)


def bearer(client) -> dict[str, str]:
    """The header that lets a script into /api/v1: the app's current API key."""
    return {"Authorization": f"Bearer {client.app[API_KEY].current()}"}


@dataclass
class V1Api(LibraryApi):
    """LibraryApi whose requests carry the /api/v1 key."""

    async def request(self, method: str, path: str, **kwargs):
        headers = {**bearer(self.client), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs):
        return await self.request("GET", path, **kwargs)

    async def json(self, method: str, path: str, status: int = 200, **kwargs):
        response = await self.request(method, path, **kwargs)
        assert response.status == status, await response.text()
        return await response.json()
