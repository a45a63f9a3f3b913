"""The library's health at start: a quick integrity check, and read-only mode when it fails.

A damaged database is never written to: the store opens it read-only, no migration runs, the
background jobs stay off, and every mutating request is answered 503 READ_ONLY, so the user can
still look at what SQLite can read, then restore a backup.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sqlite_utils import Database

from . import backups, library
from .errors import error_response

log = logging.getLogger(__name__)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class LibraryState:
    """Set once at start (before the first request): whether the library may be changed."""

    read_only: bool = False
    reason: str = ""

    def check(self, db_path: Path) -> None:
        """Run the quick check on an existing library; on damage, switch to read-only."""
        problem = backups.quick_check(db_path) if db_path.exists() else None
        if problem is None:
            return
        self.read_only, self.reason = True, f"The library database is damaged: {problem}"
        newest = backups.latest(backups.folder_of(db_path))
        if newest is None:
            advice = "There is no backup yet: copy library.db somewhere safe before repairing it."
        else:
            advice = (f"The newest backup is {newest.path}. Stop the manager, then run "
                      f"`python -m server restore-backup {newest.path}` (the damaged file is kept).")
        log.error("%s (%s). The manager runs READ-ONLY: nothing will be changed. %s",
                  self.reason, db_path, advice)


def make_middleware(state: LibraryState):
    @web.middleware
    async def read_only_middleware(request: web.Request, handler) -> web.StreamResponse:
        if state.read_only and request.method in MUTATING:
            return error_response(503, "The library is read-only because its database is "
                                  "damaged; restore a backup (see GET /api/health)", "READ_ONLY",
                                  {"reason": state.reason})
        return await handler(request)

    return read_only_middleware


def counts(db: Database, read_only: bool) -> dict[str, int] | None:
    """The library counts; None when a damaged database cannot even answer those."""
    if not read_only:
        return library.counts(db)
    try:
        return library.counts(db)
    except sqlite3.DatabaseError as exc:
        log.warning("The damaged library cannot be counted: %s", exc)
        return None


def report(state: LibraryState, db_path: Path) -> dict:
    """The health fields this module owns (read on a worker thread: it lists a folder)."""
    newest = backups.latest(backups.folder_of(db_path))
    return {"status": "read_only" if state.read_only else "ok",
            "read_only_reason": state.reason or None,
            "backup": newest.as_dict() if newest else None}
