"""Turn a node's model reference into a file on disk: the sha256 through the library first,
then the path hint, then ComfyUI's folders; a model found nowhere raises ModelNotFound.

The library database is opened read-only for each lookup, so nodes keep working while the
manager process is down or restarting, and never contend with its writer.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .payload import ModelRef

log = logging.getLogger(__name__)
DB_NAME = "library.db"


class Folders(Protocol):
    def find(self, kind: str, relative: str) -> str | None: ...


class ModelNotFound(FileNotFoundError):
    """No file for a model; the message names the model, its sha256 and last known path."""


@dataclass(frozen=True)
class Resolved:
    path: str
    ref: ModelRef
    via: str  # "library", "path" or "folders": how it was found (for the log)

    def stamp(self) -> str:
        """sha256, path, size and mtime: any change of the file makes the node run again."""
        stat = os.stat(self.path)
        return f"{self.ref.sha256}|{self.path}|{stat.st_size}|{stat.st_mtime_ns}"


@dataclass(frozen=True)
class Library:
    """Read-only lookups in the manager's library database."""

    data_dir: Path

    def _connect(self) -> sqlite3.Connection | None:
        path = self.data_dir / DB_NAME
        if not path.is_file():
            return None
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)

    def _query(self, sql: str, args: list) -> list[tuple]:
        try:
            connection = self._connect()
        except sqlite3.Error as exc:
            log.warning("Cannot open the Hikaze library at %s read-only: %s", self.data_dir, exc)
            return []
        if connection is None:
            return []
        try:
            return connection.execute(sql, args).fetchall()
        except sqlite3.Error as exc:  # a library older or newer than this code: resolve by path
            log.warning("Cannot read the Hikaze library at %s: %s", self.data_dir, exc)
            return []
        finally:
            connection.close()

    def paths(self, sha256: str) -> list[str]:
        """Known paths of a model's file, present ones first."""
        rows = self._query("SELECT path FROM files WHERE sha256 = ? "
                           "ORDER BY state != 'present', seen_at DESC, path", [sha256])
        return [row[0] for row in rows]

    def trigger_words(self, sha256: str) -> list[str]:
        rows = self._query("SELECT meta FROM models WHERE sha256 = ?", [sha256])
        if not rows:
            return []
        try:
            words = json.loads(rows[0][0]).get("trigger_words") or []
        except (ValueError, AttributeError):
            return []
        return [w for w in words if isinstance(w, str) and w.strip()]


def resolve(ref: ModelRef, kind: str, library: Library, folders: Folders) -> Resolved:
    """The current file of a model (see the module docstring for the order)."""
    known = library.paths(ref.sha256) if ref.sha256 else []
    found = next((p for p in known if os.path.isfile(p)), None)
    if found:
        return Resolved(found, ref, "library")
    hint = os.path.expanduser(ref.path) if ref.path else ""
    if hint and os.path.isabs(hint) and os.path.isfile(hint):
        return Resolved(hint, ref, "path")
    relative = hint if hint and not os.path.isabs(hint) else ""
    if relative:
        in_folders = folders.find(kind, relative.replace("\\", "/"))
        if in_folders and os.path.isfile(in_folders):
            return Resolved(in_folders, ref, "folders")
    raise ModelNotFound(_missing_message(ref, kind, known))


def _missing_message(ref: ModelRef, kind: str, known: list[str]) -> str:
    if ref.empty:
        return f"No {kind} model chosen: pick one on the node (its payload names no file)"
    last = known[0] if known else (ref.path or "none")
    return (f"{kind} model '{ref.label}' not found: sha256 {ref.sha256 or '(none)'}, "
            f"last known path {last}. Put the file back in one of ComfyUI's model folders and "
            "rescan in the Hikaze manager, or pick another model on the node.")
