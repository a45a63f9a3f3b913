"""Fill scanned pending items from what lies beside their files (metadata.read_local): a better
name, base model, trigger words, description, source ids, tags, and the sibling preview, so
the review step shows what the user knows the model by.

Runs after the hash job: reading in worker threads, writing on the store thread.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from concurrent.futures import Executor
from pathlib import Path

from sqlite_utils import Database

from . import image_files, metadata, pending, tags
from .errors import UnsupportedMedia
from .store import Store

log = logging.getLogger(__name__)

MAX_PREVIEW_BYTES = 20 * 1024 * 1024
BATCH = 200
NAMELESS_SOURCES = (None, "file", "safetensors")  # no better than the file name a scan gives


async def describe_pending(store: Store, threads: Executor, pending_dir: Path) -> int:
    """Describe every hashed scanned item not described yet; returns how many were."""
    loop = asyncio.get_running_loop()
    count = 0
    while items := await store.run(undescribed, BATCH):
        found = await asyncio.gather(*(loop.run_in_executor(threads, read_beside, pending_dir, path)
                                       for _, path in items))
        await store.run(apply, pending_dir, [(item_id, *result)
                                             for (item_id, _), result in zip(items, found)])
        count += len(items)
    return count


def undescribed(db: Database, limit: int) -> list[tuple[int, str]]:
    """Scanned, hashed items whose metadata has not been read yet (`meta.sources` marks it)."""
    return db.execute(
        """SELECT id, path FROM pending_import WHERE source = 'scan' AND sha256 IS NOT NULL
           AND json_type(meta, '$.sources') IS NULL ORDER BY id LIMIT ?""", [limit]).fetchall()


def read_beside(pending_dir: Path, path: str) -> tuple[metadata.LocalMetadata, str]:
    """The model's local metadata, and its preview copied into the pending folder (by content)."""
    local = metadata.read_local(Path(path))
    return local, store_preview(pending_dir, local)


def store_preview(pending_dir: Path, local: metadata.LocalMetadata) -> str:
    """Copy the preview (a sibling picture or an embedded thumbnail) into the pending folder;
    returns its file name there, or "" when there is none worth keeping."""
    data = local.preview_bytes
    if local.preview is not None:
        try:
            if local.preview.stat().st_size <= MAX_PREVIEW_BYTES:
                data = local.preview.read_bytes()
        except OSError as exc:
            log.warning("Preview %s cannot be read: %s", local.preview, exc)
    if not data:
        return ""
    try:
        extension = image_files.SIGNATURES[image_files.sniff(data[:16])][0]
    except UnsupportedMedia:
        return ""
    name = f"scan-{hashlib.sha256(data).hexdigest()[:32]}{extension}"
    target = Path(pending_dir) / name
    if not target.exists():
        image_files.write_atomic(target, lambda out: out.write(data))
    return name


def apply(db: Database, pending_dir: Path, found: list[tuple[int, metadata.LocalMetadata, str]]
          ) -> None:
    for item_id, local, image in found:
        with db.atomic():
            used = _describe(db, item_id, local, image)
        if image and not used:
            pending.release_image(db, pending_dir, image)


def _describe(db: Database, item_id: int, local: metadata.LocalMetadata, image: str) -> bool:
    """Merge one item's local metadata into its row; True if `image` became its preview."""
    row = db.execute("SELECT name, meta, image FROM pending_import WHERE id = ?", [item_id]
                     ).fetchone()
    if row is None:  # imported or removed meanwhile
        return False
    name, meta, current_image = row
    incoming = {**local.meta, **({"base_model": local.base_model} if local.base_model else {})}
    merged = metadata.merge_into(json.loads(meta), incoming, "file")
    merged.setdefault("sources", {})
    if local.name and local.meta.get("sources", {}).get("name") not in NAMELESS_SOURCES:
        name = local.name  # a name another tool gave it (a header often just echoes the file's)
    use_image = bool(image) and not current_image
    db.execute("UPDATE pending_import SET name = ?, meta = ?, image = ? WHERE id = ?",
               [name, json.dumps(merged, ensure_ascii=False), image if use_image else current_image,
                item_id])
    db.conn.executemany("INSERT OR IGNORE INTO pending_tags(pending_id, tag_id) VALUES (?, ?)",
                        [(item_id, tag["id"]) for tag in tags.ensure_tags(db, local.tags)])
    return use_image
