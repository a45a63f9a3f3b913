"""Export and import of the user's data (models' metadata, tags, galleries, settings, servers).

The document is one JSON object, `{"format": "hikaze-user-data", "schema_version": 1, ...}`;
model files and the file/hash cache are not in it (a scan finds those again). An import merges
by sha256 and never duplicates, so importing the same document twice changes nothing:

- a model not in the library is added; one already there keeps every field it has, and takes
  the document's value only where its own is empty (name, type, base model, each meta field,
  also inside prompts/source/recommended) and not a field the user cleared on purpose;
- tags are got-or-created by name (without case) and added to the model, never removed;
- an image is keyed by (model sha256, picture sha256): one already in the gallery is left as it
  is, a new one is appended; one whose picture files are neither here nor in the archive is
  skipped (reported), never recorded without its files;
- a setting or a server alias already stored keeps its value.
"""
from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from . import (__version__, backups, image_archive, image_files, images, library, metadata,
               schemas, store, tags)
from .config import Config
from .errors import Conflict, Invalid, NotFound

FORMAT = "hikaze-user-data"
SCHEMA_VERSION = 1
_MODEL_COLUMNS = "sha256, name, type, base_model, size_bytes, created_at, updated_at, meta"
_IMAGE_FIELDS = ("image_sha256", "width", "height", "nsfw_level", "prompt", "negative_prompt",
                 "generation_params", "source", "created_at")


# --- export -----------------------------------------------------------------------------------

def export_document(db: Database) -> dict:
    """Everything the user made, as the document an import reads."""
    with db.atomic():  # one consistent snapshot, even while a manager writes
        models = [_exported_model(db, row) for row in db.execute(
            f"SELECT {_MODEL_COLUMNS} FROM models ORDER BY sha256")]
        return {
            "format": FORMAT, "schema_version": SCHEMA_VERSION,
            "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "app_version": __version__,
            "models": models,
            "tags": [r[0] for r in db.execute("SELECT name FROM tags ORDER BY name")],
            "settings": {key: _json_or_text(value) for key, value in
                         db.execute("SELECT key, value FROM settings ORDER BY key")},
            "servers": [dict(zip(("alias", "url", "created_at", "updated_at"), row)) for row in
                        db.execute("SELECT alias, url, created_at, updated_at FROM servers "
                                   "ORDER BY alias")],
        }


def _exported_model(db: Database, row: tuple) -> dict:
    model = dict(zip(("sha256", "name", "type", "base_model", "size_bytes", "created_at",
                      "updated_at"), row[:7]))
    model["meta"] = json.loads(row[7])
    model["tags"] = [r[0] for r in db.execute(
        "SELECT t.name FROM model_tags mt JOIN tags t ON t.id = mt.tag_id WHERE mt.sha256 = ? "
        "ORDER BY t.name", [row[0]])]
    model["images"] = [{k: image[k] for k in _IMAGE_FIELDS}
                       for image in images.list_images(db, row[0])]
    return model


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def image_contents(document: dict) -> set[str]:
    return {image["image_sha256"] for model in document["models"] for image in model["images"]}


# --- reading a document -----------------------------------------------------------------------

def parse(text: str) -> dict:
    """The document in `text`, checked (Invalid with a clear message otherwise)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(f"Not a JSON document: {exc}", code="BAD_JSON") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise Invalid(f"Not a Hikaze export: its 'format' must be '{FORMAT}'",
                      code="WRONG_FORMAT")
    version = document.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise Invalid(f"This export has schema_version {version}, made by a newer Hikaze; this "
                      f"one reads up to {SCHEMA_VERSION}. Update the manager, then import again",
                      code="NEWER_VERSION", schema_version=version)
    schemas.check(schemas.USER_DATA, document, "export")
    for model in document["models"]:
        model.setdefault("images", [])
        model.setdefault("tags", [])
    return document


# --- import -----------------------------------------------------------------------------------

def import_document(db: Database, document: dict, available: set[str], dry_run: bool) -> dict:
    """Merge a parsed document in one transaction (rolled back for a dry run); `available` are
    the pictures whose files are stored. Returns what changed."""
    report = dict.fromkeys(("models_added", "models_merged", "models_unchanged", "tags_created",
                            "tags_linked", "images_added", "images_present",
                            "images_without_files", "settings_added", "servers_added"), 0)
    with store.transaction(db, keep=not dry_run):
        tags_before = db.execute("SELECT count(*) FROM tags").fetchone()[0]
        tags.ensure_tags(db, document.get("tags", []))
        for model in document["models"]:
            _import_model(db, model, available, report)
        report["tags_created"] = db.execute("SELECT count(*) FROM tags").fetchone()[0] - tags_before
        for key, value in document.get("settings", {}).items():
            report["settings_added"] += db.execute(
                "INSERT OR IGNORE INTO settings(key, value) VALUES (?, ?)",
                [key, json.dumps(value)]).rowcount
        for server in document.get("servers", []):
            now = library.now_ms()
            report["servers_added"] += db.execute(
                "INSERT OR IGNORE INTO servers(alias, url, created_at, updated_at) "
                "VALUES (?, ?, ?, ?)", [server["alias"], server["url"].rstrip("/"),
                                        server.get("created_at", now),
                                        server.get("updated_at", now)]).rowcount
    return report


def _import_model(db: Database, model: dict, available: set[str], report: dict) -> None:
    sha = model["sha256"]
    row = db.execute(f"SELECT {_MODEL_COLUMNS} FROM models WHERE sha256 = ?", [sha]).fetchone()
    if row is None:
        library.add_model(db, library.NewModel(
            sha256=sha, name=model.get("name", ""), type=model.get("type", ""),
            size_bytes=model.get("size_bytes", 0),
            created_at=model.get("created_at", library.now_ms()), meta=model.get("meta", {}),
            base_model=model.get("base_model", "")))
        db.execute("UPDATE models SET updated_at = ? WHERE sha256 = ?",
                   [model.get("updated_at", library.now_ms()), sha])
        report["models_added"] += 1
        changed = True
    else:
        changed = _fill_blanks(db, model, row)
    linked = _link_tags(db, sha, model["tags"])
    report["tags_linked"] += linked
    added = _add_images(db, sha, model["images"], available, report)
    if row is not None:
        report["models_merged" if changed or linked or added else "models_unchanged"] += 1


def _fill_blanks(db: Database, model: dict, row: tuple) -> bool:
    current = dict(zip(("name", "type", "base_model", "size_bytes"), row[1:5]))
    meta = json.loads(row[7])
    changes = {key: model[key] for key in current if not current[key] and model.get(key)}
    sources = meta.get("sources") if isinstance(meta.get("sources"), dict) else {}
    cleared = {key for key, source in sources.items() if source == metadata.USER}
    incoming = {k: v for k, v in model.get("meta", {}).items() if k not in cleared}
    if "name" in cleared:
        changes.pop("name", None)
    merged = _fill(meta, incoming)
    if merged != meta:
        schemas.check(schemas.META, merged, "meta")
        changes["meta"] = json.dumps(merged, ensure_ascii=False)
    if changes:
        db["models"].update(row[0], {**changes, "updated_at": library.now_ms()})
    return bool(changes)


def _fill(current: dict, incoming: dict) -> dict:
    """`current` with its empty fields (nested objects too) taken from `incoming`."""
    result = dict(current)
    for key, value in incoming.items():
        mine = result.get(key)
        if isinstance(mine, dict) and isinstance(value, dict):
            result[key] = _fill(mine, value)
        elif mine in (None, "", [], {}) and value not in (None, "", [], {}):
            result[key] = value
    return result


def _link_tags(db: Database, sha256: str, names: list[str]) -> int:
    tag_ids = [tag["id"] for tag in tags.ensure_tags(db, names)]
    return sum(db.execute("INSERT OR IGNORE INTO model_tags(sha256, tag_id) VALUES (?, ?)",
                          [sha256, tag_id]).rowcount for tag_id in tag_ids)


def _add_images(db: Database, sha256: str, records: list[dict], available: set[str],
                report: dict) -> int:
    gallery = {r[0] for r in db.execute("SELECT image_sha256 FROM images WHERE sha256 = ?",
                                        [sha256])}
    added = 0
    for record in sorted(records, key=lambda r: r.get("seq", 0)):
        content = record["image_sha256"]
        if content in gallery:
            report["images_present"] += 1
        elif content not in available:
            report["images_without_files"] += 1
        else:
            stored = image_files.StoredImage(content, record["width"], record["height"], "")
            fields = images.ImageFields(
                prompt=record.get("prompt", ""), negative_prompt=record.get("negative_prompt", ""),
                generation_params=record.get("generation_params", {}),
                nsfw_level=record.get("nsfw_level", 0), source=record.get("source", "upload"))
            images.add_image(db, sha256, stored, fields, record.get("created_at", library.now_ms()))
            gallery.add(content)
            added += 1
    report["images_added"] += added
    return added


# --- the commands -----------------------------------------------------------------------------

def open_library(db_path: Path, create: bool) -> Database:
    """The library, refused while it is missing (unless `create`) or damaged."""
    if not db_path.exists():
        if not create:
            raise NotFound(f"There is no library at {db_path}", code="NO_LIBRARY")
    elif problem := backups.quick_check(db_path):
        raise Conflict(f"The library {db_path} is damaged ({problem}); restore a backup first "
                       "(python -m server restore-backup)", code="DAMAGED_LIBRARY")
    try:
        return store.connect(db_path)
    except sqlite3.Error as exc:
        raise Conflict(f"Cannot open the library {db_path}: {exc}", code="LIBRARY_LOCKED") from exc


def export_library(config: Config, archive: Path | None) -> tuple[dict, dict]:
    """The document (and the pictures archive written, if asked for), with a short report."""
    db = open_library(config.db_path, create=False)
    try:
        document = export_document(db)
    finally:
        db.conn.close()
    report = {"models": len(document["models"]), "tags": len(document["tags"])}
    if archive is not None:
        report["image_files"] = image_archive.write(config.images_dir, image_contents(document),
                                                    archive)
    return document, report


def import_library(config: Config, file: Path, archive: Path | None, dry_run: bool) -> dict:
    """Check the document and archive first (nothing is written when either is unusable), back
    the library up, copy the pictures in, then merge the document in one transaction."""
    try:
        document = parse(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"Cannot read {file}: {exc}", code="BAD_FILE") from exc
    in_archive = image_archive.complete_contents(archive) if archive else set()
    wanted = image_contents(document)
    fresh = dry_run and not config.db_path.exists()
    db = open_library(Path(":memory:") if fresh else config.db_path, create=True)
    try:
        files = {"extracted": 0, "present": 0, "ignored": 0}
        if archive and not dry_run:
            files = image_archive.extract(archive, config.images_dir)
        if not dry_run and db.execute("SELECT count(*) FROM models").fetchone()[0]:
            backups.make(db.conn, backups.folder_of(config.db_path), "import")
        stored = {c for c in wanted if image_files.is_complete(config.images_dir, c)}
        report = import_document(db, document, stored | in_archive, dry_run)
    finally:
        db.conn.close()
    return {"status": "success", "dry_run": dry_run, "schema_version": document["schema_version"],
            **report, "image_files": files}


def write_text_atomic(path: Path, text: str) -> None:
    """Write a whole file through a temp name, so a crash never leaves half an export."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
