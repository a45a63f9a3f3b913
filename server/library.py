"""The library: models and the files that hold them, as plain functions over the database."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from . import images, metadata, schemas, tags
from .errors import Invalid, NotFound

SORTS = {
    "name": "m.sort_name, m.sha256",
    "newest": "m.created_at DESC, m.sha256",
    "oldest": "m.created_at, m.sha256",
    "size": "m.size_bytes DESC, m.sha256",
}
MAX_LIMIT = 1000

# A model "has metadata" when something beyond its file name tells about it: a description,
# trigger words or a source id (such as Civitai's). Migration 0006 indexes this expression.
HAS_METADATA = """(
            coalesce(json_extract(m.meta, '$.description'), '') != ''
            OR coalesce(json_array_length(m.meta, '$.trigger_words'), 0) > 0
            OR coalesce(json_extract(m.meta, '$.source.model_id'),
                        json_extract(m.meta, '$.source.version_id'),
                        json_extract(m.meta, '$.source.url'), '') != '')"""

_PATH_OF = """(SELECT f.path FROM files f WHERE f.sha256 = m.sha256
               ORDER BY f.state != 'present', f.path LIMIT 1)"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class ListQuery:
    """What `GET /api/models` asks for, already validated."""

    type: str | None = None
    search: str = ""
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    max_nsfw_level: int | None = None
    base_model: str | None = None
    has_metadata: bool | None = None
    sort: str = "name"
    offset: int = 0
    limit: int = 200


@dataclass(frozen=True)
class NewModel:
    """A model to add to the library, with the files that hold it."""

    sha256: str
    name: str
    type: str
    size_bytes: int
    created_at: int
    meta: dict = field(default_factory=dict)
    base_model: str = ""
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()


def list_models(db: Database, query: ListQuery, known_types: list[str]) -> dict:
    where, params = _filters(db, query, known_types)
    if where is None:
        return {"models": [], "total": 0, "offset": query.offset, "limit": query.limit}
    clause = " AND ".join(where) or "1"
    total = db.execute(f"SELECT count(*) FROM models m WHERE {clause}", params).fetchone()[0]
    # Pick the page first (read from an index in sort order), then fill in only its rows.
    rows = db.execute(
        f"""SELECT m.sha256, m.name, m.type, m.base_model, m.size_bytes, m.created_at,
                   json_extract(m.meta, '$.nsfw_level'), {_PATH_OF}
            FROM (SELECT m.sha256 FROM models m WHERE {clause}
                  ORDER BY {SORTS[query.sort]} LIMIT ? OFFSET ?) page
            JOIN models m ON m.sha256 = page.sha256
            ORDER BY {SORTS[query.sort]}""",
        [*params, query.limit, query.offset]).fetchall()
    shas = [row[0] for row in rows]
    tag_map = tags.tags_of(db, shas)
    covers = images.covers_of(db, shas)
    models = []
    for sha, name, type_, base, size, created, nsfw, path in rows:
        count, cover = covers.get(sha, (0, None))
        models.append({
            "sha256": sha, "name": name or _file_name(path), "type": type_, "base_model": base,
            "path": path or "", "size_bytes": size, "created_at": created,
            "nsfw_level": nsfw or 0, "tags": tag_map[sha], "images_count": count, "cover": cover,
        })
    return {"models": models, "total": total, "offset": query.offset, "limit": query.limit}


def _filters(db: Database, query: ListQuery, known_types: list[str]) -> tuple[list[str] | None, list]:
    where: list[str] = []
    params: list[Any] = []
    if query.type is not None and query.type.lower() == "others":
        where.append(f"m.type NOT IN ({','.join('?' * len(known_types))})")
        params.extend(known_types)
    elif query.type is not None:
        where.append("m.type = ?")
        params.append(query.type)
    if query.search:
        like = "%" + query.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("""(m.name LIKE ? ESCAPE '\\' OR m.sha256 LIKE ? ESCAPE '\\' OR EXISTS (
            SELECT 1 FROM files f WHERE f.sha256 = m.sha256 AND f.path LIKE ? ESCAPE '\\'))""")
        params.extend([like, like, like])
    include = tags.find_ids(db, list(query.tags))
    if None in include:
        return None, []  # a required tag that does not exist matches nothing
    for tag_id in include:
        where.append("m.sha256 IN (SELECT t.sha256 FROM model_tags t WHERE t.tag_id = ?)")
        params.append(tag_id)
    if query.max_nsfw_level is not None:
        where.append("coalesce(json_extract(m.meta, '$.nsfw_level'), 0) <= ?")  # migration 0005's index
        params.append(query.max_nsfw_level)
    if query.base_model is not None:
        where.append("m.base_model = ? COLLATE NOCASE")  # migration 0006's index
        params.append(query.base_model)
    if query.has_metadata is not None:
        where.append(f"{HAS_METADATA} = ?")  # `= ?` lets the planner use the index
        params.append(int(query.has_metadata))
    exclude = [i for i in tags.find_ids(db, list(query.exclude_tags)) if i is not None]
    if exclude:
        where.append(f"""NOT EXISTS (SELECT 1 FROM model_tags t WHERE t.sha256 = m.sha256
                         AND t.tag_id IN ({','.join('?' * len(exclude))}))""")
        params.extend(exclude)
    return where, params


def has_metadata_of(db: Database, sha256s: list[str]) -> dict[str, bool]:
    """HAS_METADATA of many models in one query."""
    rows = db.execute(f"SELECT m.sha256, {HAS_METADATA} FROM models m WHERE m.sha256 IN "
                      f"({','.join('?' * len(sha256s))})", sha256s) if sha256s else []
    return {sha: bool(flag) for sha, flag in rows}


def get_model(db: Database, sha256: str) -> dict:
    row = db.execute(
        "SELECT sha256, name, type, base_model, size_bytes, created_at, updated_at, meta "
        "FROM models WHERE sha256 = ?", [sha256]).fetchone()
    if row is None:
        raise NotFound(f"Model {sha256} is not in the library", code="MODEL_NOT_FOUND", sha256=sha256)
    sha, name, type_, base, size, created, updated, meta = row
    files = [{"path": p, "size_bytes": s, "state": st, "kind": k} for p, s, st, k in db.execute(
        "SELECT path, size_bytes, state, kind FROM files WHERE sha256 = ? "
        "ORDER BY state != 'present', path", [sha])]
    gallery = images.list_images(db, sha)
    path = files[0]["path"] if files else ""
    meta_json = json.loads(meta)
    return {
        "sha256": sha, "autov2": sha[:10], "name": name or _file_name(path), "type": type_,
        "base_model": base, "path": path, "size_bytes": size, "created_at": created,
        "updated_at": updated, "nsfw_level": meta_json.get("nsfw_level") or 0,
        "meta_json": meta_json, "tags": tags.tags_of(db, [sha])[sha], "files": files,
        "images": gallery, "images_count": len(gallery),
        "cover": gallery[0]["url"] if gallery else None,
    }


def patch_model(db: Database, sha256: str, patch: dict) -> dict:
    """Change only the fields sent; `meta_json` is a JSON Merge Patch; `tags` replaces the set.

    All or nothing: an unknown tag id or an invalid merged meta changes nothing.
    """
    schemas.check(schemas.MODEL_PATCH, patch)
    with db.atomic():
        current = db.execute("SELECT meta FROM models WHERE sha256 = ?", [sha256]).fetchone()
        if current is None:
            raise NotFound(f"Model {sha256} is not in the library", code="MODEL_NOT_FOUND",
                           sha256=sha256)
        changes: dict[str, Any] = {k: patch[k] for k in ("name", "type", "base_model") if k in patch}
        if "name" in changes:
            changes["name"] = changes["name"].strip()
        merged = json.loads(current[0])
        if "meta_json" in patch:
            merged = merge_patch(merged, patch["meta_json"])
            schemas.check(schemas.META, merged, "meta_json")
        # Fields the user sets are recorded as source "user" in meta.sources, so metadata
        # imports and Civitai refreshes never overwrite them (see metadata.merge_into).
        changes["meta"] = json.dumps(metadata.mark_user_edits(merged, patch), ensure_ascii=False)
        if "tags" in patch:
            tag_ids = tags.resolve_refs(db, patch["tags"])
            db.execute("DELETE FROM model_tags WHERE sha256 = ?", [sha256])
            db.conn.executemany("INSERT INTO model_tags(sha256, tag_id) VALUES (?, ?)",
                           [(sha256, t) for t in tag_ids])
        changes["updated_at"] = now_ms()
        db["models"].update(sha256, changes)
    return get_model(db, sha256)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge key by key, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def delete_model(db: Database, images_dir: Path, sha256: str) -> None:
    """Remove the library entry; its tags and images go with it, the model files stay."""
    with db.atomic():
        if db.execute("SELECT 1 FROM models WHERE sha256 = ?", [sha256]).fetchone() is None:
            raise NotFound(f"Model {sha256} is not in the library", code="MODEL_NOT_FOUND",
                           sha256=sha256)
        contents = [r[0] for r in db.execute(
            "SELECT DISTINCT image_sha256 FROM images WHERE sha256 = ?", [sha256])]
        db.execute("DELETE FROM models WHERE sha256 = ?", [sha256])
    images.remove_unused(db, images_dir, contents)


def add_model(db: Database, model: NewModel) -> None:
    """Insert a model with its files and tags (used by the demo and by imports)."""
    if len(model.sha256) != 64:
        raise Invalid("sha256 must be 64 hex characters", field="sha256")
    schemas.check(schemas.META, model.meta, "meta")
    with db.atomic():
        db["models"].insert({
            "sha256": model.sha256, "name": model.name, "type": model.type,
            "base_model": model.base_model, "size_bytes": model.size_bytes,
            "created_at": model.created_at, "updated_at": now_ms(),
            "meta": json.dumps(model.meta, ensure_ascii=False),
        })
        for path in model.paths:
            record_file(db, path, model.type, model.sha256)
        tag_ids = [t["id"] for t in tags.ensure_tags(db, model.tags)]
        db.conn.executemany("INSERT OR IGNORE INTO model_tags(sha256, tag_id) VALUES (?, ?)",
                       [(model.sha256, t) for t in tag_ids])


def record_file(db: Database, path: str, kind: str, sha256: str | None) -> None:
    """Remember a model file on disk as present, with its stat (the hash cache key)."""
    stat = os.stat(path)
    db["files"].upsert({
        "path": path, "sha256": sha256, "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
        "inode": stat.st_ino, "kind": kind, "state": "present", "seen_at": now_ms(),
    }, pk="path")


def counts(db: Database) -> dict[str, int]:
    return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("models", "files", "tags", "images")}


def _file_name(path: str | None) -> str:
    return os.path.basename(path) if path else ""
