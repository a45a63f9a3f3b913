"""Model galleries: image records in a dense 0-based sequence per model, and the upload service.

Sequence 0 is the cover. Deleting compacts the sequence; reordering rewrites it. Stored files
belong to image contents (see image_files) and are removed once no record uses them.
"""
from __future__ import annotations

import asyncio
import json
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlite_utils import Database

from . import image_files, schemas
from .errors import Invalid, NotFound
from .store import Store

_COLUMNS = ("id, seq, image_sha256, width, height, nsfw_level, prompt, negative_prompt, "
            "generation_params, source, created_at")


@dataclass(frozen=True)
class ImageFields:
    """What the uploader says about the picture."""

    prompt: str = ""
    negative_prompt: str = ""
    generation_params: dict | None = None
    nsfw_level: int = 0
    source: str = "upload"


def url(sha256: str, seq: int, image_sha256: str) -> str:
    """The image's address; `v` names its content so browsers may cache it for good."""
    return f"/api/images/{sha256}_{seq}.webp?v={image_sha256[:16]}"


def list_images(db: Database, sha256: str) -> list[dict]:
    rows = db.execute(f"SELECT {_COLUMNS} FROM images WHERE sha256 = ? ORDER BY seq", [sha256])
    return [_record(sha256, row) for row in rows]


def _record(sha256: str, row: tuple) -> dict:
    id_, seq, content, width, height, nsfw, prompt, negative, params, source, created = row
    return {"id": id_, "seq": seq, "url": url(sha256, seq, content), "image_sha256": content,
            "width": width, "height": height, "nsfw_level": nsfw, "prompt": prompt,
            "negative_prompt": negative, "generation_params": json.loads(params),
            "source": source, "created_at": created}


def covers_of(db: Database, sha256s: list[str]) -> dict[str, tuple[int, str | None]]:
    """(image count, cover url) of many models in one query."""
    if not sha256s:
        return {}
    rows = db.execute(
        f"""SELECT sha256, count(*), max(CASE WHEN seq = 0 THEN image_sha256 END)
            FROM images WHERE sha256 IN ({','.join('?' * len(sha256s))}) GROUP BY sha256""",
        sha256s)
    return {sha: (count, url(sha, 0, cover) if cover else None) for sha, count, cover in rows}


def heroes_of(db: Database, sha256s: list[str]) -> dict[str, dict]:
    """The cover (image 0) record of many models in one query; models without images are left out."""
    if not sha256s:
        return {}
    rows = db.execute(f"SELECT sha256, {_COLUMNS} FROM images WHERE seq = 0 AND sha256 IN "
                      f"({','.join('?' * len(sha256s))})", sha256s)
    return {row[0]: _record(row[0], row[1:]) for row in rows}


def get_image(db: Database, sha256: str, image_id: int) -> dict:
    """One image of one model by its id; an image of another model is not found."""
    row = db.execute(f"SELECT {_COLUMNS} FROM images WHERE sha256 = ? AND id = ?",
                     [sha256, image_id]).fetchone()
    if row is None:
        require_model(db, sha256)
        raise NotFound(f"Model {sha256} has no image with id {image_id}", code="IMAGE_NOT_FOUND",
                       sha256=sha256, id=image_id)
    return _record(sha256, row)


def update_image(db: Database, sha256: str, image_id: int, columns: dict,
                 params_patch: dict) -> dict:
    """Set some of prompt / negative_prompt / nsfw_level and merge-patch generation_params."""
    with db.atomic():
        current = get_image(db, sha256, image_id)
        changes = {k: columns[k] for k in ("prompt", "negative_prompt", "nsfw_level") if k in columns}
        if params_patch:
            params = {**current["generation_params"]}
            for key, value in params_patch.items():
                if value is None:
                    params.pop(key, None)
                else:
                    params[key] = value
            schemas.check(schemas.GENERATION_PARAMS, params, "generation_params")
            changes["generation_params"] = json.dumps(params, ensure_ascii=False)
        if changes:
            db["images"].update(image_id, changes)
        return get_image(db, sha256, image_id)


def delete_image_by_id(db: Database, images_dir: Path, sha256: str, image_id: int) -> None:
    delete_image(db, images_dir, sha256, get_image(db, sha256, image_id)["seq"])


def find_content(db: Database, sha256: str, seq: int) -> str:
    row = db.execute("SELECT image_sha256 FROM images WHERE sha256 = ? AND seq = ?",
                     [sha256, seq]).fetchone()
    if row is None:
        raise NotFound(f"Model {sha256} has no image {seq}", code="IMAGE_NOT_FOUND",
                       sha256=sha256, seq=seq)
    return row[0]


def count_images(db: Database, sha256: str) -> int:
    require_model(db, sha256)
    return db.execute("SELECT count(*) FROM images WHERE sha256 = ?", [sha256]).fetchone()[0]


def add_image(db: Database, sha256: str, stored: image_files.StoredImage, fields: ImageFields,
              now_ms: int) -> dict:
    """Append an image to the model's gallery; returns its record."""
    with db.atomic():
        require_model(db, sha256)
        seq = db.execute("SELECT coalesce(max(seq) + 1, 0) FROM images WHERE sha256 = ?",
                         [sha256]).fetchone()[0]
        db.execute(
            """INSERT INTO images(sha256, seq, image_sha256, width, height, nsfw_level, prompt,
                   negative_prompt, generation_params, source, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [sha256, seq, stored.image_sha256, stored.width, stored.height, fields.nsfw_level,
             fields.prompt, fields.negative_prompt, json.dumps(fields.generation_params or {}),
             fields.source, now_ms])
    return list_images(db, sha256)[seq]


def delete_image(db: Database, images_dir: Path, sha256: str, seq: int) -> None:
    """Remove one image, close the gap, and delete its files if nothing else shows them."""
    with db.atomic():
        content = find_content(db, sha256, seq)
        db.execute("DELETE FROM images WHERE sha256 = ? AND seq = ?", [sha256, seq])
        _renumber(db, sha256, _seqs(db, sha256))
    remove_unused(db, images_dir, [content])


def reorder(db: Database, sha256: str, order: list[int]) -> list[dict]:
    """Put the gallery in the given order of current sequence numbers (a full permutation)."""
    schemas.check(schemas.IMAGE_ORDER, {"order": order})
    with db.atomic():
        require_model(db, sha256)
        current = _seqs(db, sha256)
        if sorted(order) != current:
            raise Invalid("order must list every current image sequence exactly once",
                          code="BAD_ORDER", current=current)
        _renumber(db, sha256, order)
    return list_images(db, sha256)


def set_cover(db: Database, sha256: str, seq: int) -> list[dict]:
    """Make image `seq` the cover (sequence 0), keeping the others in their order."""
    with db.atomic():
        find_content(db, sha256, seq)
        return reorder(db, sha256, [seq, *[s for s in _seqs(db, sha256) if s != seq]])


def unused(db: Database, contents: list[str]) -> list[str]:
    return [c for c in dict.fromkeys(contents) if db.execute(
        "SELECT 1 FROM images WHERE image_sha256 = ? LIMIT 1", [c]).fetchone() is None]


def remove_unused(db: Database, images_dir: Path, contents: list[str]) -> None:
    """Delete the files of contents no record uses. Runs on the store thread, so no upload can
    record one of them between the check and the delete."""
    image_files.remove(images_dir, unused(db, contents))


def _seqs(db: Database, sha256: str) -> list[int]:
    return [r[0] for r in db.execute("SELECT seq FROM images WHERE sha256 = ? ORDER BY seq", [sha256])]


def _renumber(db: Database, sha256: str, old_seqs_in_new_order: list[int]) -> None:
    # Move out of the way first: UNIQUE(sha256, seq) is checked row by row.
    db.execute("UPDATE images SET seq = -1 - seq WHERE sha256 = ?", [sha256])
    db.conn.executemany("UPDATE images SET seq = ? WHERE sha256 = ? AND seq = ?",
                   [(new, sha256, -1 - old) for new, old in enumerate(old_seqs_in_new_order)])


def require_model(db: Database, sha256: str) -> None:
    if db.execute("SELECT 1 FROM models WHERE sha256 = ?", [sha256]).fetchone() is None:
        raise NotFound(f"Model {sha256} is not in the library", code="MODEL_NOT_FOUND",
                       sha256=sha256)


class Gallery:
    """Upload and delete images: Pillow work on the image threads, records on the store."""

    def __init__(self, store: Store, images_dir: Path, executor: Executor) -> None:
        self.store = store
        self.images_dir = images_dir
        self.executor = executor

    async def upload(self, sha256: str, source: BinaryIO, fields: ImageFields, now_ms: int) -> dict:
        await self.store.run(require_model, sha256)
        stored = await self._ingest(source)
        try:
            record = await self.store.run(add_image, sha256, stored, fields, now_ms)
        except NotFound:  # the model was deleted while the picture was being processed
            await self.store.run(remove_unused, self.images_dir, [stored.image_sha256])
            raise
        if not image_files.is_complete(self.images_dir, stored.image_sha256):
            await self._ingest(source)  # a delete removed the same picture's files meanwhile
        return record

    async def _ingest(self, source: BinaryIO) -> image_files.StoredImage:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, image_files.ingest, source, self.images_dir)
