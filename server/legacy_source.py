"""A Hikaze v1 install as the migration reads it: its database checked, opened read-only and
read into records; its preview pictures read from its images folder and nowhere else.

Runs on a worker thread (SQLite, stat, Pillow). The v1 files are never modified; the only writes
are the pictures stored for the library (image_files) and the pending folder, never in a dry run.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sqlite3
import stat
import uuid
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from . import image_files
from .config import FOLDER_ALIASES, Config
from .errors import (ApiError, Forbidden, Invalid, NotFound, TooLarge, Unprocessable,
                     UnsupportedMedia)

SQLITE_HEADER = b"SQLite format 3\x00"
REQUIRED = {"models": {"id", "path", "type", "hash_hex"}, "tags": {"id", "name"},
            "model_tags": {"model_id", "tag_id"}}
MODEL_COLUMNS = ("id", "path", "name", "type", "size_bytes", "hash_hex", "created_at",
                 "meta_json", "extra_json")
# v1 types are folder names or singular aliases; the library uses ComfyUI's folder keys.
KINDS = {
    **FOLDER_ALIASES,
    "lora": "loras", "loras": "loras", "lycoris": "loras", "locon": "loras",
    "checkpoint": "checkpoints", "checkpoints": "checkpoints", "ckpt": "checkpoints",
    "stable-diffusion": "checkpoints",
    "embedding": "embeddings", "embeddings": "embeddings", "textual_inversion": "embeddings",
    "upscale": "upscale_models", "upscaler": "upscale_models", "upscale_models": "upscale_models",
    "esrgan": "upscale_models",
    "hypernetwork": "hypernetworks", "vae": "vae", "controlnet": "controlnet",
}
TEXT_LIMITS = {"description": 100_000, "community_links": 4000}
PROMPT_LIMIT = 100_000
NAME_LIMIT = 500
CHANGED_FILE = "the file changed since v1 hashed it, so it is not linked; a scan will hash it"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# What a v1 picture can fail with; anything else (a full disk, say) stops the run.
IMAGE_PROBLEMS = (NotFound, Forbidden, TooLarge, UnsupportedMedia, Unprocessable, OSError)


@dataclass(frozen=True)
class Source:
    """A checked v1 database and the folder its preview images are looked up in (or None)."""

    db_path: Path
    images_dir: Path | None


@dataclass(frozen=True)
class LegacyModel:
    """One v1 model (v1 rows with the same hash merged into one), in the library's terms."""

    ids: tuple[int, ...]
    sha256: str  # lowercase, or "" when v1 never hashed the file
    path: str
    name: str
    type: str
    size_bytes: int
    created_at: int
    meta: dict  # description, community_links, prompts{positive, negative}
    extras: dict = field(default_factory=dict)  # v1 data with no library field: params, meta_json
    images: tuple[str, ...] = ()  # v1 references such as /media/model_3_..._preview.png
    tags: tuple[str, ...] = ()
    present: tuple[str, ...] = ()  # paths on disk that still hold the hashed content's size
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """Where a v1 model goes: a library sha256 (None = the pending queue) and which of its
    images still need work."""

    sha256: str | None
    wanted: tuple[str, ...]
    gallery: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Prepared:
    """One v1 image after the worker thread: stored content, a pending preview, or an error."""

    reference: str
    content: image_files.StoredImage | None = None  # None with no error: already in the gallery
    preview: str = ""  # file name under the pending folder
    error: str = ""

    @property
    def name(self) -> str:
        return image_name(self.reference)


def kind_of(legacy_type: str) -> str:
    """The ComfyUI folder key for a v1 type string; unknown ones are kept, lowercased."""
    key = (legacy_type or "").strip().lower()
    return KINDS.get(key, key)


def check(db_path: str, images_dir: str | None = None) -> Source:
    """The user's paths checked: an SQLite file with the v1 tables, an images folder if given.

    Raises Invalid, NotFound, Forbidden or Unprocessable with a message saying what is wrong.
    """
    path = _existing(db_path, "legacy_db_path", folder=False)
    with closing(_open(path)) as conn:
        _model_columns(conn, path)
    if images_dir:
        return Source(path, _existing(images_dir, "legacy_images_dir", folder=True))
    default = path.parent / "images"  # v1 kept data/hikaze_mm.sqlite3 beside data/images/
    return Source(path, default if default.is_dir() else None)


def read(source: Source) -> list[LegacyModel]:
    """Every v1 model with its tags, in id order; rows sharing a hash merged."""
    with closing(_open(source.db_path)) as conn:
        columns = _model_columns(conn, source.db_path)
        try:
            links = _links(conn)
            select = ", ".join(c if c in columns else "NULL" for c in MODEL_COLUMNS)
            rows = conn.execute(f"SELECT {select} FROM models ORDER BY id").fetchall()
        except sqlite3.DatabaseError as exc:
            raise Unprocessable(f"{source.db_path} cannot be read: {exc}",
                                code="LEGACY_DB_UNREADABLE") from exc
    return _merge_by_hash([_model(row, links.get(row[0], [])) for row in rows])


def _existing(raw: str, field_name: str, *, folder: bool) -> Path:
    label = "The v1 images folder" if folder else "The v1 database"
    if "\0" in raw or not os.path.isabs(os.path.expanduser(raw)):
        raise Invalid(f"{label} must be given as an absolute path, not '{raw}'",
                      code="INVALID_PATH", field=field_name)
    path = Path(raw).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NotFound(f"{label} {path} does not exist", code="PATH_NOT_FOUND",
                       field=field_name) from None
    except OSError as exc:
        raise Invalid(f"{label} {path} cannot be read ({exc.strerror})", code="PATH_UNREADABLE",
                      field=field_name) from None
    if folder and not stat.S_ISDIR(mode):
        raise Invalid(f"{label} {path} is not a folder", code="NOT_A_FOLDER", field=field_name)
    if not folder and not stat.S_ISREG(mode):
        raise Invalid(f"{label} {path} is not a file; give the database file itself "
                      "(v1 kept it in data/hikaze_mm.sqlite3)", code="NOT_A_FILE", field=field_name)
    return path.resolve()


def _open(path: Path) -> sqlite3.Connection:
    try:
        with open(path, "rb") as file:
            head = file.read(100)
    except OSError as exc:
        raise Forbidden(f"The v1 database {path} cannot be read ({exc.strerror})",
                        code="LEGACY_DB_UNREADABLE",
                        field="legacy_db_path") from None
    if not head.startswith(SQLITE_HEADER):
        raise Unprocessable(f"{path} is not an SQLite database, so not a Hikaze v1 database",
                            code="NOT_SQLITE",
                            field="legacy_db_path")
    # A WAL database without a -wal file has nothing uncommitted, so it is read as immutable:
    # plain read-only mode would leave new -wal and -shm files beside the user's database.
    immutable = head[18] == 2 and not Path(f"{path}-wal").exists()
    uri = f"{path.as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"
    return sqlite3.connect(uri, uri=True)


def _model_columns(conn: sqlite3.Connection, path: Path) -> set[str]:
    """The columns of v1's models table; Unprocessable naming what a v1 database would have."""
    missing: list[str] = []
    found: dict[str, set[str]] = {}
    try:
        for table, needed in REQUIRED.items():
            found[table] = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            missing += [table] if not found[table] else [f"{table}.{c}" for c in
                                                         sorted(needed - found[table])]
    except sqlite3.DatabaseError as exc:
        raise Unprocessable(f"{path} cannot be read as SQLite: {exc}", code="NOT_SQLITE",
                            field="legacy_db_path") from exc
    if missing:
        raise Unprocessable(f"{path} is not a Hikaze v1 database: it has no {', '.join(missing)}",
                            code="NOT_LEGACY_DB", field="legacy_db_path", missing=missing)
    return found["models"]


def _links(conn: sqlite3.Connection) -> dict[int, list[str]]:
    links: dict[int, list[str]] = {}
    for model_id, name in conn.execute(
            "SELECT mt.model_id, t.name FROM model_tags mt JOIN tags t ON t.id = mt.tag_id "
            "ORDER BY mt.model_id, t.id"):
        if isinstance(name, str):
            links.setdefault(model_id, []).append(name)
    return links


def _model(row: tuple, tag_names: list[str]) -> LegacyModel:
    id_, path, name, type_, size, hash_hex, created, meta_json, extra_json = row
    extra = _json_object(extra_json)
    path = path if isinstance(path, str) else ""
    sha = hash_hex.lower() if isinstance(hash_hex, str) and _HEX64.fullmatch(hash_hex) else ""
    size = size if isinstance(size, int) and size > 0 else 0
    raw_type = type_.strip().lower() if isinstance(type_, str) else ""
    kind = kind_of(raw_type)
    images = extra.get("images") if isinstance(extra.get("images"), list) else []
    extras = {"params": extra.get("params"), "meta": _json_object(meta_json)}
    present = bool(sha) and _unchanged(path, size)
    return LegacyModel(
        ids=(id_,), sha256=sha, path=path, name=_text(name, NAME_LIMIT), type=kind,
        size_bytes=size, created_at=_epoch_ms(created), meta=_meta(extra),
        extras={key: value for key, value in extras.items() if value},
        images=tuple(i for i in images if isinstance(i, str)),
        # v1 tagged every model with its type name; the library's type says that already.
        tags=tuple(t for t in tag_names if t.strip().lower() not in (raw_type, kind)),
        present=(path,) if present else (),
        notes=(CHANGED_FILE,) if sha and not present and _is_file(path) else ())


def _meta(extra: dict) -> dict:
    meta = {key: _text(extra.get(key), limit) for key, limit in TEXT_LIMITS.items()}
    prompts = extra.get("prompts") if isinstance(extra.get("prompts"), dict) else {}
    meta["prompts"] = {key: _text(prompts.get(key), PROMPT_LIMIT)
                       for key in ("positive", "negative")}
    return meta


def _text(value: Any, limit: int) -> str:
    if isinstance(value, list):  # some v1 versions kept several links
        value = "\n".join(str(v) for v in value if v)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _json_object(value: Any) -> dict:
    try:
        parsed = json.loads(value) if isinstance(value, (str, bytes)) else None
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _epoch_ms(value: Any) -> int:
    if not isinstance(value, (int, float)) or value <= 0:
        return 0
    return int(value * 1000) if value < 100_000_000_000 else int(value)  # seconds → ms


def _is_file(path: str) -> bool:
    return os.path.isabs(path) and os.path.isfile(path)


def _unchanged(path: str, size: int) -> bool:
    """True when the file is there with the size v1 recorded (its v1 hash is then trusted)."""
    if not os.path.isabs(path):
        return False
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(info.st_mode) and (size == 0 or info.st_size == size)


def _merge_by_hash(models: list[LegacyModel]) -> list[LegacyModel]:
    """v1 could list one content under several paths; the library has one record for it."""
    result: list[LegacyModel] = []
    position: dict[str, int] = {}
    for model in models:
        if model.sha256 not in position:
            if model.sha256:
                position[model.sha256] = len(result)
            result.append(model)
            continue
        index = position[model.sha256]
        first = result[index]
        result[index] = replace(
            first, ids=first.ids + model.ids, name=first.name or model.name,
            type=first.type or model.type,
            meta=fill_blanks(first.meta, model.meta), extras={**model.extras, **first.extras},
            images=tuple(dict.fromkeys(first.images + model.images)),
            tags=tuple(dict.fromkeys(first.tags + model.tags)),
            present=first.present + model.present, notes=first.notes + model.notes)
    return result


def fill_blanks(current: dict, more: dict) -> dict:
    """`current` with its blank description, link and prompts taken from `more`."""
    result = dict(current)
    for key in TEXT_LIMITS:
        if not result.get(key) and more.get(key):
            result[key] = more[key]
    prompts = dict(result["prompts"]) if isinstance(result.get("prompts"), dict) else {}
    for key, value in (more.get("prompts") or {}).items():
        if not prompts.get(key) and value:
            prompts[key] = value
    result["prompts"] = prompts
    return result


# --- pictures ------------------------------------------------------------------------------

def image_name(reference: str) -> str:
    """The file name a v1 image reference (`/media/<file>`) points at: only its last part."""
    return reference.replace("\\", "/").rsplit("/", 1)[-1]


def prepare_images(model: LegacyModel, target: Target, images_dir: Path | None, config: Config,
                   dry_run: bool) -> list[Prepared]:
    """Gallery images for a library model; for a pending item, its first image that works."""
    prepared: list[Prepared] = []
    seen = set(target.gallery)
    for reference in target.wanted:
        try:
            data = _read_image(images_dir, image_name(reference), config.max_upload_bytes)
            digest = hashlib.sha256(data).hexdigest()
            if target.sha256 is None:  # kept as it is, once its header shows a real picture
                _probe(data, digest)
                prepared.append(Prepared(reference, preview=_preview(
                    data, digest, model.ids[0], config.pending_dir, dry_run)))
                break
            if digest in seen:
                prepared.append(Prepared(reference))
                continue
            seen.add(digest)
            content = _probe(data, digest) if dry_run else image_files.ingest(
                io.BytesIO(data), config.images_dir)
            prepared.append(Prepared(reference, content=content))
        except IMAGE_PROBLEMS as exc:
            prepared.append(Prepared(reference, error=f"{reference}: {message(exc)}"))
    return prepared


def _read_image(images_dir: Path | None, name: str, limit: int) -> bytes:
    """The bytes of `name` inside the v1 images folder; never a file outside it."""
    if images_dir is None:
        raise NotFound("no v1 images folder (give legacy_images_dir)")
    if name in ("", ".", "..") or "\0" in name:
        raise Invalid("not a file name")
    path = (images_dir / name).resolve()
    if not path.is_relative_to(images_dir.resolve()):
        raise Forbidden("it leads outside the images folder")
    if not path.is_file():
        raise NotFound(f"not found in {images_dir}")
    if path.stat().st_size > limit:
        raise TooLarge(f"larger than {limit // (1024 * 1024)} MB")
    return path.read_bytes()


def _preview(data: bytes, digest: str, legacy_id: int, pending_dir: Path, dry_run: bool) -> str:
    """Copy a pending item's picture into the pending folder under a generated name."""
    extension = image_files.SIGNATURES[image_files.sniff(data[:16])][0]
    name = f"legacy-{legacy_id}-{digest[:16]}{extension}"
    target = pending_dir / name
    if not dry_run and not target.is_file():
        pending_dir.mkdir(parents=True, exist_ok=True)
        temp = pending_dir / f".{uuid.uuid4().hex}.tmp"
        try:
            temp.write_bytes(data)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
    return name


def _probe(data: bytes, digest: str) -> image_files.StoredImage:
    """What ingest would store, from the picture's header only: no decoding, nothing stored."""
    fmt = image_files.sniff(data[:16])
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as picture:
            width, height = picture.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
            SyntaxError) as exc:
        raise Unprocessable(f"the image cannot be decoded: {exc}") from exc
    return image_files.StoredImage(digest, width, height, fmt)


def message(exc: Exception) -> str:
    """An error's text for the report."""
    if isinstance(exc, ApiError):
        return exc.message
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
