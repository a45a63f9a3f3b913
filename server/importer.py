"""Promote pending items into the library by sha256, with conflict strategies and a 207 report.

`import_pending` is plain and runs on the store thread: one transaction per item, using hashes
already known (the pending row's, or its file's while size and mtime are unchanged), so a
re-submit after a conflict never re-reads a file. The HTTP import (import_job.Importer) hashes
and converts previews in worker threads first, then calls it.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from sqlite_utils import Database

from . import image_files, images, pending, schemas
from .errors import ApiError, Invalid

log = logging.getLogger(__name__)

STRATEGIES = ("override", "merge", "ignore", "delete")
BUCKETS = ("success", "conflict", "ignored", "deleted", "failed")
DROPPED_META = ("images", "images_count")  # v1 leftovers: the picture is the `image` column
KEPT_ON_OVERRIDE = ("notes",)  # the user's own notes survive an override
COMMIT_EVERY = 50

Progress = Callable[[int, int], None]


class ItemFailed(ApiError):
    """One pending item cannot be imported; the rest of the batch goes on."""

    status, code = 422, "IMPORT_FAILED"


@dataclass(frozen=True)
class Prepared:
    """Work done off the store thread before `import_pending`: previews already converted (or
    the reason they could not be), and items whose hashing failed."""

    images: Mapping[int, image_files.StoredImage] = field(default_factory=dict)
    image_errors: Mapping[int, str] = field(default_factory=dict)
    failures: Mapping[int, ItemFailed] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingItem:
    """A pending row as the import reads it (v1 leftovers dropped from its meta)."""

    id: int
    path: str
    sha256: str | None
    name: str
    type: str
    size_bytes: int
    created_at: int
    meta: dict
    image: str


@dataclass(frozen=True)
class _Batch:
    images_dir: Path
    pending_dir: Path
    strategy: str | None
    now_ms: int
    prepared: Prepared


@dataclass(frozen=True)
class _Outcome:
    bucket: str
    entry: Any
    release: str = ""  # the stored preview to delete once the item's change is committed
    promoted: image_files.StoredImage | None = None
    image_error: str = ""


def strategy_of(value: object) -> str | None:
    """The conflict strategy from a request: None (also the string "null") or one of STRATEGIES."""
    if value is None or value == "null":
        return None
    if value in STRATEGIES:
        return value  # type: ignore[return-value]
    raise Invalid(f"conflict_strategy must be null or one of: {', '.join(STRATEGIES)}",
                  code="INVALID_CHOICE", field="conflict_strategy", options=list(STRATEGIES))


def pending_id(value: object) -> int:
    """A pending id from a request's list: an integer, or its digits as a string."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        number = int(value)
    # Past SQLite's 64 bits the lookup itself would fail (found by bench/fuzz.py).
    if number is None or not 0 <= number < 2**63:
        raise ItemFailed("Invalid id: pending ids are integers", code="INVALID_ID")
    return number


# --- the store-thread half ------------------------------------------------------------------

def import_pending(db: Database, images_dir: Path, ids: Sequence, strategy: str | None,
                   now_ms: int, *, prepared: Prepared | None = None,
                   progress: Progress | None = None, pending_dir: Path | None = None) -> dict:
    """Import pending items; returns the report {total, success, conflict, ignored, deleted,
    failed, image_errors}.

    Each item is its own savepoint, so a failing item changes nothing and never undoes another;
    COMMIT_EVERY items share a commit (a commit costs more than importing an item), and files
    are deleted only once committed. Items must be hashed already (else they fail with
    NOT_HASHED). Previews not in `prepared` are converted here, on the calling thread.
    `pending_dir` defaults to the data dir's.
    """
    batch = _Batch(Path(images_dir), Path(pending_dir or Path(images_dir).parent / "pending"),
                   strategy_of(strategy), now_ms, prepared or Prepared())
    unique = list(dict.fromkeys(ids))
    report: dict[str, Any] = {"total": len(unique), **{b: [] for b in BUCKETS}, "image_errors": []}
    for start in range(0, len(unique), COMMIT_EVERY):
        with db.atomic():
            outcomes = [(raw_id, _import_one(db, batch, raw_id))
                        for raw_id in unique[start:start + COMMIT_EVERY]]
        for done, (raw_id, outcome) in enumerate(outcomes, start + 1):
            _after_commit(db, batch, outcome)
            report[outcome.bucket].append(outcome.entry)
            if outcome.image_error:
                report["image_errors"].append({"id": raw_id, "error": outcome.image_error})
            if progress is not None:
                progress(done, len(unique))
    log.info("Import (%s): %s", batch.strategy or "no strategy",
             ", ".join(f"{len(report[b])} {b}" for b in BUCKETS))
    return report


def _import_one(db: Database, batch: _Batch, raw_id: object) -> _Outcome:
    try:
        item_id = pending_id(raw_id)
        if item_id in batch.prepared.failures:
            raise batch.prepared.failures[item_id]
        with db.atomic():
            return _apply(db, batch, load_item(db, item_id))
    except (ApiError, OSError, sqlite3.Error) as exc:
        log.warning("Pending item %r not imported: %s", raw_id, describe(exc))
        return _Outcome("failed", {"id": raw_id, "error": describe(exc),
                                   "code": getattr(exc, "code", "IMPORT_FAILED")})


def _apply(db: Database, batch: _Batch, item: PendingItem) -> _Outcome:
    sha, file_stat = cached_sha256(db, item.path, item.sha256, item.size_bytes)
    if sha is None:
        raise ItemFailed("The file has not been hashed yet; import it again once the hash job "
                         "has reached it", code="NOT_HASHED", path=item.path)
    existing = existing_path(db, sha, item.path)
    if existing is not None:
        if batch.strategy is None:
            return _Outcome("conflict", {"pending": {"id": item.id, "path": item.path},
                                         "existing": {"sha256": sha, "path": existing}})
        if batch.strategy == "ignore":
            return _Outcome("ignored", item.id)
        if batch.strategy == "delete":
            db.execute("DELETE FROM pending_import WHERE id = ?", [item.id])
            return _Outcome("deleted", item.id, release=item.image)
        _update_model(db, item, sha, batch.strategy, batch.now_ms)
    else:
        _create_model(db, item, sha, file_stat.st_size, batch.now_ms)
    db.execute("""INSERT OR IGNORE INTO model_tags(sha256, tag_id)
                  SELECT ?, tag_id FROM pending_tags WHERE pending_id = ?""", [sha, item.id])
    record_file(db, item.path, item.type, sha, file_stat, batch.now_ms)
    promoted, image_error = _promote_image(db, batch, item, sha)
    db.execute("DELETE FROM pending_import WHERE id = ?", [item.id])
    return _Outcome("success", item.id, release=item.image if promoted else "",
                    promoted=promoted, image_error=image_error)


def _create_model(db: Database, item: PendingItem, sha256: str, size: int, now_ms: int) -> None:
    # Plain statements rather than library.add_model: sqlite-utils' insert reads the table's
    # schema on every call, which made a 1 000-item import take twice as long.
    meta = dict(item.meta)
    base_model = meta.pop("base_model", "")  # metadata found beside the file (pending_metadata)
    schemas.check(schemas.META, meta, "meta")
    db.execute("""INSERT INTO models(sha256, name, type, base_model, size_bytes, created_at,
                                     updated_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
               [sha256, item.name, item.type, base_model if isinstance(base_model, str) else "",
                size, item.created_at, now_ms, json.dumps(meta, ensure_ascii=False)])


def record_file(db: Database, path: str, kind: str, sha256: str, file_stat: os.stat_result,
                now_ms: int) -> None:
    """The file's row as library.record_file writes it, keyed by the stat it was hashed at."""
    db.execute(
        """INSERT INTO files(path, sha256, size_bytes, mtime_ns, inode, kind, state, seen_at)
           VALUES (?, ?, ?, ?, ?, ?, 'present', ?)
           ON CONFLICT(path) DO UPDATE SET sha256 = excluded.sha256,
               size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns,
               inode = excluded.inode, kind = excluded.kind, state = 'present',
               seen_at = excluded.seen_at""",
        [path, sha256, file_stat.st_size, file_stat.st_mtime_ns, file_stat.st_ino, kind, now_ms])


def cached_sha256(db: Database, path: str, pending_sha: str | None,
                  pending_size: int) -> tuple[str | None, os.stat_result]:
    """The file's known hash (None if it must be hashed) and its stat. Known = its `files` row's
    while size and mtime are unchanged, else (no row) the pending row's if the size matches."""
    file_stat = stat_file(path)
    row = db.execute("SELECT sha256, size_bytes, mtime_ns FROM files WHERE path = ?",
                     [path]).fetchone()
    if row is not None and (row[1], row[2]) != (file_stat.st_size, file_stat.st_mtime_ns):
        return None, file_stat  # changed since it was hashed
    if row is not None and row[0]:
        return row[0], file_stat
    known = pending_sha if pending_sha and pending_size == file_stat.st_size else None
    return known, file_stat


def stat_file(path: str) -> os.stat_result:
    """The stat of a model file, or ItemFailed saying why it cannot be imported."""
    try:
        file_stat = os.stat(path)
    except FileNotFoundError:
        raise ItemFailed(f"The file is gone: {path}", code="FILE_MISSING", path=path) from None
    except OSError as exc:
        raise ItemFailed(f"The file cannot be read: {exc.strerror}", code="FILE_UNREADABLE",
                         path=path) from None
    if not stat.S_ISREG(file_stat.st_mode):
        raise ItemFailed(f"Not a regular file: {path}", code="FILE_UNREADABLE", path=path)
    return file_stat


def load_item(db: Database, item_id: int) -> PendingItem:
    row = db.execute("""SELECT id, path, nullif(sha256, ''), name, type, size_bytes, created_at,
                               meta, image FROM pending_import WHERE id = ?""", [item_id]).fetchone()
    if row is None:
        raise pending.not_found(item_id)
    meta = {k: v for k, v in json.loads(row[7]).items() if k not in DROPPED_META}
    return PendingItem(*row[:7], meta=meta, image=row[8])


def existing_path(db: Database, sha256: str, own_path: str) -> str | None:
    """None if the content is not in the library, else the path of its model ("" if none)."""
    if db.execute("SELECT 1 FROM models WHERE sha256 = ?", [sha256]).fetchone() is None:
        return None
    row = db.execute("""SELECT path FROM files WHERE sha256 = ? AND path != ?
                        ORDER BY state != 'present', path LIMIT 1""", [sha256, own_path]).fetchone()
    return row[0] if row else ""


def _update_model(db: Database, item: PendingItem, sha256: str, strategy: str, now_ms: int) -> None:
    name, type_, base, meta = db.execute(
        "SELECT name, type, base_model, meta FROM models WHERE sha256 = ?", [sha256]).fetchone()
    incoming = dict(item.meta)
    item_base = incoming.pop("base_model", "")
    item_base = item_base if isinstance(item_base, str) else ""
    if strategy == "override":
        name, type_, base = item.name or name, item.type or type_, item_base or base
        merged = overlay(json.loads(meta), incoming, keep=KEPT_ON_OVERRIDE)
    else:
        name, type_, base = name or item.name, type_ or item.type, base or item_base
        merged = fill_blanks(json.loads(meta), incoming)
    schemas.check(schemas.META, merged, "meta")
    db.execute("UPDATE models SET name = ?, type = ?, base_model = ?, meta = ?, updated_at = ? "
               "WHERE sha256 = ?",
               [name, type_, base, json.dumps(merged, ensure_ascii=False), now_ms, sha256])


def overlay(current: dict, incoming: dict, keep: Sequence[str] = ()) -> dict:
    """`current` with every non-blank field of `incoming` written over it (objects field by
    field); keys in `keep` are left alone."""
    result = dict(current)
    for key, value in incoming.items():
        if key in keep or is_blank(value):
            continue
        both_objects = isinstance(value, dict) and isinstance(result.get(key), dict)
        result[key] = overlay(result[key], value) if both_objects else value
    return result


def fill_blanks(current: dict, incoming: dict) -> dict:
    """`current` with only its blank or absent fields taken from `incoming`."""
    result = dict(current)
    for key, value in incoming.items():
        if is_blank(result.get(key)):
            if not is_blank(value):
                result[key] = value
        elif isinstance(value, dict) and isinstance(result[key], dict):
            result[key] = fill_blanks(result[key], value)
    return result


def is_blank(value: object) -> bool:
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, dict):
        return all(is_blank(v) for v in value.values())
    return value is None or value == []


def _promote_image(db: Database, batch: _Batch, item: PendingItem,
                   sha256: str) -> tuple[image_files.StoredImage | None, str]:
    """Make the item's stored preview the model's next gallery image (once per picture)."""
    if not item.image:
        return None, ""
    if item.id in batch.prepared.image_errors:
        return None, batch.prepared.image_errors[item.id]
    stored = batch.prepared.images.get(item.id)
    try:
        stored = stored or convert_preview(batch.pending_dir, item.image, batch.images_dir)
    except (ApiError, OSError) as exc:
        return None, describe(exc)
    if db.execute("SELECT 1 FROM images WHERE sha256 = ? AND image_sha256 = ?",
                  [sha256, stored.image_sha256]).fetchone() is None:
        images.add_image(db, sha256, stored, images.ImageFields(source="import"), batch.now_ms)
    return stored, ""


def convert_preview(pending_dir: Path, name: str, images_dir: Path) -> image_files.StoredImage:
    """Store a pending preview as gallery tiers (Pillow: call it in a worker thread)."""
    with open(pending.stored_path(pending_dir, name), "rb") as source:
        return image_files.ingest(source, images_dir)


def _after_commit(db: Database, batch: _Batch, outcome: _Outcome) -> None:
    try:
        if outcome.promoted and not image_files.is_complete(batch.images_dir,
                                                            outcome.promoted.image_sha256):
            # A clean-up removed the same picture's files between conversion and record; the
            # record is committed now, so nothing can remove them again.
            convert_preview(batch.pending_dir, outcome.release, batch.images_dir)
        pending.release_image(db, batch.pending_dir, outcome.release)
    except (ApiError, OSError) as exc:
        log.warning("Pending preview %s of an imported item: %s", outcome.release, describe(exc))


def describe(exc: BaseException) -> str:
    """A failure as the one line a report shows."""
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__
