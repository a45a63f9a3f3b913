"""Copies of the library database in `<data dir>/backups/`: made, listed, pruned and restored.

A backup is taken with SQLite's online backup API (a consistent copy even while the manager
writes, WAL included), written to a temp name and renamed, so a file named `library-*.db` is
always whole. Only the newest KEEP are kept. Restoring moves the current database aside (never
deleting it) and is refused while a manager holds the data folder's lock.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Iterator

log = logging.getLogger(__name__)
KEEP = 10
FOLDER = "backups"
LOCK_FILE = "manager.lock"
REASONS = ("migration", "legacy-import", "import")
_STAMP = "%Y%m%dT%H%M%S_%fZ"
_NAME = re.compile(r"^library-(\d{8}T\d{6}_\d{6}Z)-([a-z-]+)\.db$")


@dataclass(frozen=True)
class Backup:
    path: Path
    reason: str
    created_at: int  # epoch ms, from the file name

    def as_dict(self) -> dict:
        return {"path": str(self.path), "reason": self.reason, "created_at": self.created_at}


def folder_of(db_path: Path) -> Path:
    """Where the backups of the database at `db_path` go (beside it: `<data dir>/backups`)."""
    return db_path.parent / FOLDER


def make(conn: sqlite3.Connection, folder: Path, reason: str, keep: int = KEEP) -> Backup:
    """Copy the open database `conn` into `folder` now, then drop all but the newest `keep`."""
    if reason not in REASONS:
        raise ValueError(f"unknown backup reason {reason!r}")
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    target = folder / f"library-{now.strftime(_STAMP)}-{reason}.db"
    if target.exists():  # two backups in the same microsecond: never overwrite one
        raise FileExistsError(target)
    partial = target.with_name(target.name + ".partial")
    copy = sqlite3.connect(str(partial))
    try:
        conn.backup(copy)
    finally:
        copy.close()
    with open(partial, "rb") as written:
        os.fsync(written.fileno())
    os.replace(partial, target)
    log.info("Backed up the library before a %s: %s", reason, target)
    prune(folder, keep)
    return Backup(target, reason, int(now.timestamp() * 1000))


def listing(folder: Path) -> list[Backup]:
    """The backups in `folder`, newest first (half-written ones are not listed)."""
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = _NAME.match(path.name)
            if match and path.is_file():
                when = datetime.strptime(match[1], _STAMP).replace(tzinfo=timezone.utc)
                found.append(Backup(path, match[2], int(when.timestamp() * 1000)))
    return sorted(found, key=lambda b: b.path.name, reverse=True)


def latest(folder: Path) -> Backup | None:
    backups = listing(folder)
    return backups[0] if backups else None


def prune(folder: Path, keep: int = KEEP) -> None:
    for old in listing(folder)[keep:]:
        old.path.unlink(missing_ok=True)
        log.info("Removed an old backup: %s", old.path)


def quick_check(path: Path) -> str | None:
    """None if SQLite's quick integrity check passes on `path`, else what it found. Opened
    read-only: checking never writes to the file."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            log.warning("Could not check %s now (%s); opening it as usual", path, exc)
            return None  # busy is not damage: the normal open waits for the lock
        return str(exc)
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    return "; ".join(problems[:5]) or None


@contextmanager
def manager_lock(data_dir: Path) -> Iterator[bool]:
    """Hold the data folder's lock while the block runs; yields False when another process
    (a running manager) holds it. The OS releases it if the holder dies."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "a+b") as handle:
        yield _try_lock(handle)


def _try_lock(handle: IO[bytes]) -> bool:
    try:
        if os.name == "nt":
            import msvcrt
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class RestoreRefused(Exception):
    """The backup cannot be restored; the message says why and what to do."""


class ManagerRunning(RestoreRefused):
    """A manager holds the data folder: restoring now would swap the database under it."""


def restore(backup: Path, data_dir: Path) -> dict:
    """Make `backup` the library again: the current database files are moved aside (renamed
    with `.replaced-<time>`), the backup is copied in (temp name, then renamed) and kept."""
    if not backup.is_file():
        raise RestoreRefused(f"{backup} is not a file")
    problem = quick_check(backup)
    if problem:
        raise RestoreRefused(f"{backup} is not a usable database ({problem}); pick another backup")
    db_path = data_dir / "library.db"
    with manager_lock(data_dir) as held:
        if not held:
            raise ManagerRunning(f"A manager is running on {data_dir}; stop it (or ComfyUI) "
                                 "first, then restore again")
        stamp = datetime.now(timezone.utc).strftime(_STAMP)
        moved = []
        for suffix in ("", "-wal", "-shm"):
            current = data_dir / f"library.db{suffix}"
            if current.exists():
                aside = data_dir / f"library.db.replaced-{stamp}{suffix}"
                os.replace(current, aside)
                moved.append(str(aside))
        partial = db_path.with_name(db_path.name + ".partial")
        shutil.copyfile(backup, partial)
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, db_path)
    log.info("Restored %s from %s; the previous database files were kept as %s", db_path,
             backup, ", ".join(moved) or "(none)")
    return {"restored": str(db_path), "from": str(backup), "moved_aside": moved}
