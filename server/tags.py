"""Tags: get-or-create by name (case-insensitive), rename, merge, delete, usage counts."""
from __future__ import annotations

import re
from typing import Iterable

from sqlite_utils import Database

from .errors import Conflict, Invalid, NotFound

MAX_NAME = 100
_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits that fit an SQLite integer


def clean_name(value: object) -> str | None:
    """A usable tag name from client input, or None for non-strings and blanks."""
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())[:MAX_NAME].rstrip()  # a cut may end on a space
    return name or None


def list_tags(db: Database) -> list[dict]:
    rows = db.execute(
        """SELECT t.id, t.name, count(mt.sha256) AS count
           FROM tags t LEFT JOIN model_tags mt ON mt.tag_id = t.id
           GROUP BY t.id ORDER BY t.name COLLATE NOCASE, t.id"""
    ).fetchall()
    return [{"id": id_, "name": name, "count": count} for id_, name, count in rows]


def ensure_tags(db: Database, names: Iterable[object]) -> list[dict]:
    """Get-or-create each usable name; one entry per distinct tag, in first-seen order."""
    found: dict[int, dict] = {}
    with db.atomic():
        for raw in names:
            name = clean_name(raw)
            if name is None:
                continue
            row = db.execute("SELECT id, name FROM tags WHERE name = ?", [name]).fetchone()
            if row is None:
                row = (db.execute("INSERT INTO tags(name) VALUES (?)", [name]).lastrowid, name)
            id_, stored = row
            found.setdefault(id_, {"id": id_, "name": stored})
    return list(found.values())


def get_tag(db: Database, tag_id: int) -> dict:
    row = db.execute("SELECT id, name FROM tags WHERE id = ?", [tag_id]).fetchone()
    if row is None:
        raise NotFound(f"Tag {tag_id} not found", code="TAG_NOT_FOUND", id=tag_id)
    return {"id": row[0], "name": row[1]}


def rename_tag(db: Database, tag_id: int, new_name: str, merge: bool = False) -> dict:
    """Rename a tag; onto another tag's name only with merge=True (links move, this tag goes)."""
    name = clean_name(new_name)
    if name is None:
        raise Invalid("Tag name must not be blank", field="name")
    with db.atomic():
        get_tag(db, tag_id)
        other = db.execute("SELECT id FROM tags WHERE name = ? AND id != ?", [name, tag_id]).fetchone()
        if other is None:
            db.execute("UPDATE tags SET name = ? WHERE id = ?", [name, tag_id])
            return get_tag(db, tag_id)
        if not merge:
            raise Conflict(f"A tag named '{name}' already exists; send merge=true to merge into it",
                           code="TAG_EXISTS", existing_id=other[0])
        db.execute(
            """INSERT OR IGNORE INTO model_tags(sha256, tag_id)
               SELECT sha256, ? FROM model_tags WHERE tag_id = ?""", [other[0], tag_id])
        db.execute("DELETE FROM tags WHERE id = ?", [tag_id])
        return get_tag(db, other[0])


def delete_tag(db: Database, tag_id: int) -> None:
    with db.atomic():
        get_tag(db, tag_id)
        db.execute("DELETE FROM tags WHERE id = ?", [tag_id])


def resolve_refs(db: Database, refs: list) -> list[int]:
    """Tag ids for a list of ids / names / {id} / {name}; names are created, unknown ids refused.

    Call inside the caller's transaction so a refusal leaves nothing behind.
    """
    ids = [r["id"] if isinstance(r, dict) and "id" in r else r for r in refs]
    wanted = [i for i in ids if isinstance(i, int)]
    known = {row[0] for row in db.execute(
        f"SELECT id FROM tags WHERE id IN ({','.join('?' * len(wanted))})", wanted)} if wanted else set()
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise Invalid(f"Unknown tag id(s): {', '.join(map(str, unknown))}", code="UNKNOWN_TAG",
                      ids=unknown)
    names = [r["name"] if isinstance(r, dict) else r for r in ids if not isinstance(r, int)]
    created = [tag["id"] for tag in ensure_tags(db, names)]
    return list(dict.fromkeys([*wanted, *created]))


# Whose tags: the link table and its key column.
_LINKS = {"models": ("model_tags", "sha256"), "pending": ("pending_tags", "pending_id")}


def tags_of(db: Database, keys: list, owner: str = "models") -> dict:
    """The tags of many models (by sha256) or pending items (by id) in one query."""
    table, column = _LINKS[owner]
    result: dict = {key: [] for key in keys}
    if not keys:
        return result
    rows = db.execute(
        f"""SELECT l.{column}, t.id, t.name FROM {table} l JOIN tags t ON t.id = l.tag_id
            WHERE l.{column} IN ({','.join('?' * len(keys))})
            ORDER BY t.name COLLATE NOCASE""", keys)
    for key, id_, name in rows:
        result[key].append({"id": id_, "name": name})
    return result


def find_ids(db: Database, refs: list[str]) -> list[int | None]:
    """Each filter value as a tag id (digits are ids, anything else a name); None if unknown."""
    result: list[int | None] = []
    for ref in refs:
        if _ID.fullmatch(ref):
            row = db.execute("SELECT id FROM tags WHERE id = ?", [int(ref)]).fetchone()
        else:
            row = db.execute("SELECT id FROM tags WHERE name = ?", [ref]).fetchone()
        result.append(row[0] if row else None)
    return result
