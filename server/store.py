"""The library database, owned by one thread: every query runs there via `await store.run(fn)`.

One connection, WAL, foreign keys on. Service functions take the sqlite_utils Database as their
first argument and use `db.atomic()` for multi-step writes, so each call is all-or-nothing.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from sqlite_utils import Database

from . import backups, migrations
from .errors import StorageFull

log = logging.getLogger(__name__)
T = TypeVar("T")


def connect(path: Path) -> Database:
    """Open (creating if needed) the library at `path` with our pragmas and latest schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: a lone statement commits at once; multi-step writes use db.atomic().
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    db = Database(conn)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    # An existing library about to change schema is copied first: a failed or unwanted
    # migration can be undone by restoring that copy (docs/data-safety.md).
    if migrations.migrations.applied(db) and migrations.migrations.pending(db):
        backups.make(conn, backups.folder_of(path), "migration")
    applied = migrations.apply(db)
    if applied:
        log.info("Database %s migrated: %s", path, ", ".join(applied))
    return db


def connect_read_only(path: Path) -> Database:
    """Open a damaged library for reading only: no migration, and SQLite itself refuses
    every write, so the file stays as it was found."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30,
                           isolation_level=None)
    conn.execute("PRAGMA query_only=ON")
    return Database(conn)


@contextmanager
def transaction(db: Database, keep: bool = True) -> Iterator[None]:
    """One write transaction (taking the write lock at once); `keep=False` rolls back what the
    block did, as a dry run does, and an exception always does."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT" if keep else "ROLLBACK")


class Store:
    """Runs database work on its single owner thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hikaze-store")
        self._db: Database | None = None

    async def open(self, read_only: bool = False) -> None:
        self._db = await self._submit(connect_read_only if read_only else connect, self.path)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(db, *args)` on the store thread and return its result. A write the disk has
        no room for is StorageFull (507); SQLite has rolled it back, the rest is intact."""
        if self._db is None:
            raise RuntimeError("store is not open")
        try:
            return await self._submit(fn, self._db, *args)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
                raise
            log.error("The library database %s cannot grow: the disk is full", self.path)
            raise StorageFull("The data folder's disk is full; nothing was changed. Free some "
                              "space and try again", code="DISK_FULL") from exc

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await self._submit(db.conn.close)
        self._executor.shutdown(wait=True)

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
