"""The pending-import queue: items waiting to enter the library, and their preview pictures.

Plain functions over the database (run them on the store thread), plus the file look-ups of
previews (run those in a worker thread): a stored preview is a plain file name under the pending
folder, confined there; a scanned item may have a picture beside its model file instead.
"""
from __future__ import annotations

import json
import logging
import mimetypes
import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from . import image_files, metadata, tags
from .errors import Conflict, Invalid, NotFound, UnsupportedMedia

log = logging.getLogger(__name__)

SOURCES = ("scan", "legacy")
# Pictures sitting beside a model file, in the order a preview is looked for.
# Extensions tried when a stored preview is asked for by its name without (or with another)
# extension, as the v1 UI does with `/api/images/pending/<name>.webp`.
STORED_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif")
MAX_NAME = 255
# Separators of any platform, escapes, drive letters and control characters: none belong in
# a plain file name, and refusing them means a name can never leave the pending folder.
_UNSAFE_NAME = re.compile(r"[/\\%:\x00-\x1f\x7f]|\.\.")
_CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif",
                  "WEBP": "image/webp"}

_LIST_COLUMNS = """p.id, p.name, p.image, p.type, p.size_bytes, p.path, p.created_at, p.source,
    coalesce(nullif(p.sha256, ''), f.sha256) AS sha, m.sha256 AS duplicate_of"""
# The hash of an item is its own column once set, else its file's (the hash job fills both).
_FROM = """pending_import p
    LEFT JOIN files f ON f.path = p.path
    LEFT JOIN models m ON m.sha256 = coalesce(nullif(p.sha256, ''), f.sha256)"""


@dataclass(frozen=True)
class NewPending:
    """An item to queue: a model file found by a scan, or a record of a legacy database."""

    path: str
    created_at: int
    name: str = ""
    type: str = ""
    size_bytes: int = 0
    meta: dict = field(default_factory=dict)
    source: str = "scan"
    legacy_id: int | None = None
    image: str = ""
    sha256: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListQuery:
    type: str | None = None
    offset: int = 0
    limit: int | None = None


@dataclass(frozen=True)
class PreviewSource:
    """Where an item's preview may be: its stored picture, else (scans) beside its model file."""

    id: int
    image: str
    path: str
    source: str


@dataclass(frozen=True)
class Preview:
    data: bytes
    content_type: str


def add_pending(db: Database, item: NewPending) -> int:
    """Queue an item with its tags (created by name if new); returns its id (never reused)."""
    if item.source not in SOURCES:
        raise Invalid(f"source must be one of {', '.join(SOURCES)}", field="source")
    with db.atomic():
        try:
            item_id = db.execute(
                """INSERT INTO pending_import(path, sha256, name, type, size_bytes, created_at,
                       meta, source, legacy_id, image) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [item.path, item.sha256, item.name, item.type, item.size_bytes, item.created_at,
                 json.dumps(item.meta, ensure_ascii=False), item.source, item.legacy_id,
                 item.image]).lastrowid
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"{item.path} is already pending", code="ALREADY_PENDING",
                           path=item.path) from exc
        db.conn.executemany("INSERT OR IGNORE INTO pending_tags(pending_id, tag_id) VALUES (?, ?)",
                            [(item_id, t["id"]) for t in tags.ensure_tags(db, item.tags)])
    return item_id


def list_pending(db: Database, query: ListQuery, known_types: list[str]) -> dict:
    """A page of the queue, oldest first; `type=others` = types that are no known kind."""
    where, params = "1", []
    if query.type is not None and query.type.lower() == "others":
        where = f"p.type NOT IN ({','.join('?' * len(known_types))})"
        params = list(known_types)
    elif query.type is not None:
        where, params = "p.type = ?", [query.type]
    total = db.execute(f"SELECT count(*) FROM pending_import p WHERE {where}", params).fetchone()[0]
    rows = db.execute(
        f"SELECT {_LIST_COLUMNS} FROM {_FROM} WHERE {where} ORDER BY p.created_at, p.id "
        "LIMIT ? OFFSET ?",
        [*params, -1 if query.limit is None else query.limit, query.offset]).fetchall()
    tag_map = tags_of(db, [row[0] for row in rows])
    models = []
    for id_, name, image, type_, size, path, created, source, sha, duplicate in rows:
        models.append({
            "id": id_, "name": name or os.path.basename(path), "image": image,
            "image_url": image_url(id_, image), "type": type_, "tags": tag_map[id_],
            "sha256": sha, "duplicate_of": duplicate, "size_bytes": size, "path": path,
            "created_at": created, "source": source,
        })
    return {"models": models, "total": total, "offset": query.offset, "limit": query.limit}


def get_pending(db: Database, pending_id: int) -> dict:
    """The full record of one pending item."""
    row = db.execute(
        f"SELECT {_LIST_COLUMNS}, p.meta, p.legacy_id FROM {_FROM} WHERE p.id = ?",
        [pending_id]).fetchone()
    if row is None:
        raise not_found(pending_id)
    id_, name, image, type_, size, path, created, source, sha, duplicate, meta, legacy_id = row
    return {
        "id": id_, "path": path, "sha256": sha, "name": name or os.path.basename(path),
        "type": type_, "size_bytes": size, "created_at": created, "meta_json": json.loads(meta),
        "tags": tags_of(db, [id_])[id_], "image": image, "image_url": image_url(id_, image),
        "source": source, "legacy_id": legacy_id, "duplicate_of": duplicate,
    }


def tags_of(db: Database, pending_ids: list[int]) -> dict[int, list[dict]]:
    return tags.tags_of(db, pending_ids, owner="pending")


def image_url(pending_id: int, image: str) -> str | None:
    return f"/api/images/pending/{pending_id}" if image else None


def not_found(pending_id: object) -> NotFound:
    return NotFound(f"Pending model {pending_id} not found", code="PENDING_NOT_FOUND",
                    id=pending_id)


def preview_source(db: Database, pending_id: int) -> PreviewSource:
    row = db.execute("SELECT image, path, source FROM pending_import WHERE id = ?",
                     [pending_id]).fetchone()
    if row is None:
        raise not_found(pending_id)
    return PreviewSource(pending_id, *row)


def release_image(db: Database, pending_dir: Path, name: str) -> None:
    """Delete a stored preview no pending item names any more. Call after the item's row is
    gone (and committed); a legacy database may give several items the same picture."""
    if not name or db.execute("SELECT 1 FROM pending_import WHERE image = ? LIMIT 1",
                              [name]).fetchone():
        return
    try:
        # The name itself, not what it resolves to: a symlink goes, never the file it names.
        (Path(pending_dir) / plain_name(name)).unlink(missing_ok=True)
    except Invalid:
        log.warning("Pending preview %r is no plain file name; left alone", name)
    except OSError as exc:  # a folder of that name, or a read-only data dir
        log.warning("Pending preview %s in %s not deleted: %s", name, pending_dir, exc)


# --- files (worker threads) ------------------------------------------------------------------

def plain_name(name: str) -> str:
    """`name` if it is a plain file name, else Invalid: it can only ever mean a file directly in
    the folder it is looked up in."""
    if (not name or len(name) > MAX_NAME or name.startswith(".") or name != name.strip()
            or _UNSAFE_NAME.search(name) or os.path.isabs(name)):
        raise Invalid("Pending image names are plain file names (no folders, no '..')",
                      code="INVALID_IMAGE_NAME", field="name")
    return name


def stored_path(pending_dir: Path, name: str) -> Path:
    """The real path of the stored preview `name`: a regular file directly in the pending folder
    (a symlink is followed only if it ends there too), else NotFound."""
    root = os.path.realpath(pending_dir)
    target = os.path.realpath(os.path.join(root, plain_name(name)))
    if os.path.dirname(target) != root or not os.path.isfile(target):
        raise NotFound(f"No pending image named {name}", code="PENDING_IMAGE_NOT_FOUND", name=name)
    return Path(target)


def find_stored(pending_dir: Path, name: str) -> Path:
    """A stored preview by its name, or by its stem with any picture extension (`x.webp` and
    `x` both find `x.png`)."""
    plain_name(name)
    stem = name[:-len(".webp")] if name.lower().endswith(".webp") else name
    for candidate in dict.fromkeys([name, *(stem + ext for ext in STORED_EXTENSIONS)]):
        try:
            return stored_path(pending_dir, candidate)
        except NotFound:
            continue
    raise NotFound(f"No pending image named {name}", code="PENDING_IMAGE_NOT_FOUND", name=name)


def sibling_preview(model_path: str) -> Path | None:
    """The first picture beside a model file (`<stem>.preview.png`, `<stem>.png`, ...)."""
    return metadata.find_preview(Path(model_path))


def preview_path(pending_dir: Path, item: PreviewSource) -> Path:
    """The picture to show for an item: its stored preview, else a scanned file's sibling."""
    if item.image:
        try:
            return stored_path(pending_dir, item.image)
        except Invalid:
            log.warning("Pending item %s names its image %r, which is no plain file name",
                        item.id, item.image)
    elif item.source == "scan":
        sibling = sibling_preview(item.path)
        if sibling is not None:
            return sibling
    raise NotFound(f"Pending model {item.id} has no preview image",
                   code="PENDING_IMAGE_NOT_FOUND", id=item.id)


def read_preview(path: Path) -> Preview:
    """The bytes of a preview with the content type its first bytes show (else its extension's;
    answers carry `nosniff`, so a browser never guesses a script out of them)."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise NotFound("The preview image is gone", code="PENDING_IMAGE_NOT_FOUND") from None
    try:
        return Preview(data, _CONTENT_TYPES[image_files.sniff(data[:16])])
    except UnsupportedMedia:  # a legacy preview may be a video or an older format
        guessed = mimetypes.guess_type(path.name)[0] or ""
    return Preview(data, guessed if guessed.startswith(("image/", "video/"))
                   else "application/octet-stream")
