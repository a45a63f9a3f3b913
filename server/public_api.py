"""The public API v1: the library, galleries and model files in the shapes other tools expect
(camelCase, seed 000), built on library.py, images.py and tags.py."""
from __future__ import annotations

import asyncio
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

from sqlite_utils import Database

from . import images, library, schemas
from .errors import Forbidden, Invalid, NotFound
from .store import Store

DEFAULT_LIMIT = 40
MAX_LIMIT = 100
MAX_NSFW_LEVEL = 63  # Civitai's level flags 1..32 OR-ed together
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_NUMBER = re.compile(r"-?[0-9]{1,10}(\.[0-9]{1,10})?([eE][-+]?[0-9]{1,3})?")
_INTEGER_FIELDS = ("seed", "steps", "nsfwLevel")
_JSON_FIELDS = ("loras", "comfyWorkflow")


# --- models ----------------------------------------------------------------------------------

def list_models(db: Database, query: library.ListQuery, known_types: list[str]) -> dict:
    """One page of models: `{items, total, page, limit, hasMore}`; `query.offset` is a page start."""
    found = library.list_models(db, query, known_types)
    shas = [model["sha256"] for model in found["models"]]
    heroes = images.heroes_of(db, shas)
    described = library.has_metadata_of(db, shas)
    items = [{
        "sha256": m["sha256"], "name": m["name"], "type": m["type"], "baseModel": m["base_model"],
        "nsfwLevel": m["nsfw_level"], "sizeBytes": m["size_bytes"], "createdAt": m["created_at"],
        "tags": [tag["name"] for tag in m["tags"]], "hasMetadata": described[m["sha256"]],
        "heroImage": hero_image(heroes.get(m["sha256"])),
    } for m in found["models"]]
    return {"items": items, "total": found["total"], "page": query.offset // query.limit + 1,
            "limit": query.limit, "hasMore": query.offset + len(items) < found["total"]}


def get_model(db: Database, sha256: str) -> dict:
    """A model's details: files (missing copies marked), metadata, tags, images."""
    model = library.get_model(db, sha256)
    meta = model["meta_json"]
    source = meta.get("source") or {}
    prompts = meta.get("prompts") or {}
    return {
        "sha256": model["sha256"], "autov2": model["autov2"], "name": model["name"],
        "type": model["type"], "baseModel": model["base_model"], "nsfwLevel": model["nsfw_level"],
        "sizeBytes": model["size_bytes"], "description": meta.get("description", ""),
        "trainedWords": meta.get("trigger_words", []), "notes": meta.get("notes", ""),
        "prompts": {"positive": prompts.get("positive", ""), "negative": prompts.get("negative", "")},
        "communityLinks": meta.get("community_links", ""),
        "source": {"provider": source.get("provider"), "modelId": source.get("model_id"),
                   "versionId": source.get("version_id"), "url": source.get("url")}
        if source else None,
        "tags": [tag["name"] for tag in model["tags"]],
        "hasMetadata": library.has_metadata_of(db, [sha256])[sha256],
        "heroImage": hero_image(model["images"][0] if model["images"] else None),
        "files": [{"path": f["path"], "fileName": os.path.basename(f["path"]),
                   "sizeBytes": f["size_bytes"], "state": f["state"], "kind": f["kind"]}
                  for f in model["files"]],
        "images": [image_record(sha256, image) for image in model["images"]],
        "downloadUrl": f"/api/v1/models/{sha256}/download",
        "createdAt": model["created_at"], "updatedAt": model["updated_at"],
    }


def hero_image(record: dict | None) -> dict | None:
    if record is None:
        return None
    return {"url": record["url"], "width": record["width"], "height": record["height"],
            "nsfwLevel": record["nsfw_level"]}


# --- user images -----------------------------------------------------------------------------

def image_record(sha256: str, record: dict) -> dict:
    return {"id": record["id"], "sha256": sha256, "sortOrder": record["seq"], "url": record["url"],
            "width": record["width"], "height": record["height"],
            "nsfwLevel": record["nsfw_level"], "prompt": record["prompt"],
            "negativePrompt": record["negative_prompt"],
            "generationParams": record["generation_params"], "source": record["source"],
            "createdAt": record["created_at"]}


def list_images(db: Database, sha256: str) -> list[dict]:
    images.require_model(db, sha256)
    return [image_record(sha256, record) for record in images.list_images(db, sha256)]


def upload_fields(form: dict[str, str]) -> images.ImageFields:
    """The multipart text fields of an upload, converted and validated (V1_IMAGE_FIELDS)."""
    values: dict = {}
    for name, text in form.items():
        if name not in schemas.V1_IMAGE_FIELDS["properties"]:
            raise Invalid(f"Unknown field '{name}'; the fields are: "
                          f"{', '.join(schemas.V1_IMAGE_FIELDS['properties'])}",
                          code="UNKNOWN_FIELD", field=name)
        if name in _INTEGER_FIELDS:
            if text.strip():
                values[name] = _integer(name, text.strip())
        elif name == "cfgScale":
            if text.strip():
                values[name] = _number(name, text.strip())
        elif name in _JSON_FIELDS:
            if text.strip():
                values[name] = _json(name, text)
        else:
            values[name] = text
    schemas.check(schemas.V1_IMAGE_FIELDS, values, "form")
    return images.ImageFields(
        prompt=values.get("prompt", ""), negative_prompt=values.get("negativePrompt", ""),
        nsfw_level=values.get("nsfwLevel", 0),
        generation_params={k: values[k] for k in schemas.V1_GENERATION_KEYS if k in values})


def patch_image(db: Database, sha256: str, image_id: int, body: dict) -> dict:
    """Change only the fields sent; a generation field set to null is removed."""
    schemas.check(schemas.V1_IMAGE_PATCH, body)
    columns = {column: body[key] for key, column in (
        ("prompt", "prompt"), ("negativePrompt", "negative_prompt"), ("nsfwLevel", "nsfw_level"))
        if key in body}
    params = {key: body[key] for key in schemas.V1_GENERATION_KEYS if key in body}
    return image_record(sha256, images.update_image(db, sha256, image_id, columns, params))


def _integer(name: str, text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise Invalid(f"{name} must be an integer", code="INVALID_INTEGER", field=name)
    return int(text)


def _number(name: str, text: str) -> float:
    if not _NUMBER.fullmatch(text) or not math.isfinite(float(text)):
        raise Invalid(f"{name} must be a number", code="INVALID_NUMBER", field=name)
    return float(text)


def _json(name: str, text: str) -> object:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"{name} must be JSON: {exc}", code="BAD_JSON", field=name) from None


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


# --- download --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Download:
    """A model file to send: its real path (symlinks resolved) and the name to give it."""

    path: Path
    file_name: str


def present_paths(db: Database, sha256: str) -> list[str]:
    images.require_model(db, sha256)
    return [row[0] for row in db.execute(
        "SELECT path FROM files WHERE sha256 = ? AND state = 'present' ORDER BY path", [sha256])]


def pick_download(paths: Iterable[str], roots: Iterable[Path]) -> Download:
    """The first file that is on disk inside a model root (blocking: run it in a thread).

    Real paths are compared, so a symlink leading out of the roots is refused (403)."""
    real_roots = [os.path.realpath(root) for root in roots]
    outside = False
    for path in paths:
        real = os.path.realpath(path)
        if not os.path.isfile(real):
            continue
        if any(_inside(real, root) for root in real_roots):
            return Download(Path(real), os.path.basename(path))
        outside = True
    if outside:
        raise Forbidden("The model's file lies outside the configured model folders",
                        code="OUTSIDE_ROOTS")
    raise NotFound("No file of this model is on disk", code="FILE_NOT_FOUND")


async def find_download(store: Store, roots: Iterable[Path], sha256: str) -> Download:
    paths = await store.run(present_paths, sha256)
    return await asyncio.to_thread(pick_download, paths, tuple(roots))


def content_disposition(file_name: str) -> str:
    """`attachment` with a plain ASCII `filename` and, for other names, RFC 6266 `filename*`."""
    name = "".join(c for c in file_name if c.isprintable() and c not in '"\\/') or "model"
    plain = "".join(c if ord(c) < 128 else "_" for c in name)
    header = f'attachment; filename="{plain}"'
    return header if plain == name else f"{header}; filename*=UTF-8''{quote(name, safe='')}"


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root
