"""The model scan: the walk of the model folders compared with `files`, new content queued as
pending, files moved outside the tool recognised; `Scanner` runs scans and hash jobs."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import defaultdict
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping, NamedTuple

from sqlite_utils import Database

from . import hashing, settings
from .events import Events
from .import_job import Importer
from .config import Config
from .errors import ApiError, Conflict
from .jobs import CANCELLED, DONE, QUEUED, Job, Jobs, now_ms
from .pending_metadata import describe_pending
from .store import Store
from .walker import Found, Walk, walk

log = logging.getLogger(__name__)

# A file modified more recently than this may still be written: a later scan picks it up.
SETTLE_SECONDS = 5.0
APPLY_BATCH = 500  # changes per store call, so the store thread stays responsive
IMPORT_BATCH = 200  # auto-imported items per import run (cancellation is checked between)


# ---------------------------------------------------------------- what changed

def known_files(db: Database) -> dict[str, tuple[str, int, int, str, int]]:
    """Every files row as the scan compares it: path → (path, size, mtime_ns, state, listed),
    listed = already pending or in the library. Plain tuples: this is read whole at each scan."""
    rows = db.execute(
        """SELECT f.path, f.size_bytes, f.mtime_ns, f.state,
                  p.id IS NOT NULL OR m.sha256 IS NOT NULL
           FROM files f LEFT JOIN pending_import p ON p.path = f.path
                        LEFT JOIN models m ON m.sha256 = f.sha256""")
    return {row[0]: row for row in rows}


@dataclass(frozen=True)
class Change:
    """One write of a scan. op: new, changed, returned, unlisted (only to queue), moved, gone."""

    op: str
    path: str
    found: Found | None = None
    old: str = ""
    verify: bool = False


@dataclass
class Diff:
    """What differs between the walk and `files`; nothing for unchanged files."""

    changes: list[Change] = field(default_factory=list)  # changed, returned, unlisted
    new: list[Found] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # present rows under a root, not found
    missing: int = 0  # rows already missing
    deferred: int = 0  # new or changed files that may still be written: left for later
    moves: list[Change] = field(default_factory=list)

    def writes(self) -> list[Change]:
        moved = {change.path for change in self.moves} | {change.old for change in self.moves}
        return [*self.changes, *self.moves,
                *(Change("new", new.path, new) for new in self.new if new.path not in moved),
                *(Change("gone", path) for path in self.gone if path not in moved)]


def diff(walk: Walk, known: Mapping[str, tuple[str, int, int, str, int]],
         settle_s: float = SETTLE_SECONDS) -> Diff:
    """Compare the walk with the files rows. A new or changed file that was modified in the
    last `settle_s` seconds, or has a .part/.aria2/... sibling, is left for a later scan."""
    result = Diff()
    now_ns, settle_ns = time.time_ns(), settle_s * 1e9
    for path, found in walk.files.items():
        row = known.get(path)
        changed = row is not None and (row[1], row[2]) != (found.size, found.mtime_ns)
        if (row is None or changed) and (
                path in walk.partial or abs(now_ns - found.mtime_ns) < settle_ns):
            result.deferred += 1  # still downloading, perhaps
        elif row is None:
            result.new.append(found)
        elif changed:
            result.changes.append(Change("changed", path, found))
        elif row[3] != "present":
            result.changes.append(Change("returned", path, found))
        elif not row[4]:
            result.changes.append(Change("unlisted", path, found))
    under = tuple(os.path.join(root, "") for root in walk.roots + walk.missing_roots)
    for path, _, _, state, _ in known.values():
        if state != "present":
            result.missing += 1
        elif path.startswith(under) and path not in walk.files and path not in walk.aliases:
            result.gone.append(path)
    return result


class Vanished(NamedTuple):
    sha256: str | None
    size: int
    mtime_ns: int
    inode: int | None
    quick_fp: str | None


def vanished_files(db: Database, gone: list[str]) -> dict[str, Vanished]:
    """The rows a new path may be a move of: missing ones, and those the walk did not find."""
    rows = db.execute("SELECT path, sha256, size_bytes, mtime_ns, inode, quick_fp FROM files "
                      "WHERE state = 'missing' OR path IN (SELECT value FROM json_each(?))",
                      [json.dumps(gone)])
    return {row[0]: Vanished(*row[1:]) for row in rows}


def find_moves(new: list[Found], vanished: Mapping[str, Vanished],
               fingerprint: Callable[[str, int], str] = hashing.quick_fingerprint) -> list[Change]:
    """New paths that are vanished files moved: the same inode, size and mtime (a rename on
    the same disk: certain, nothing read), or the same size and quick fingerprint as a vanished
    file with a hash (a move between disks: its sha256 is verified later)."""
    by_stat = {(row.inode, row.size, row.mtime_ns): path for path, row in vanished.items()}
    by_size: dict[int, list[str]] = defaultdict(list)
    for path, row in vanished.items():
        if row.sha256 and row.quick_fp:
            by_size[row.size].append(path)
    moves, used = [], set()
    for found in new:
        old = by_stat.get((found.inode, found.size, found.mtime_ns))
        verify = False
        if old is None and by_size.get(found.size):
            try:
                quick = fingerprint(found.path, found.size)
            except OSError:
                continue
            old = next((p for p in by_size[found.size]
                        if vanished[p].quick_fp == quick and p not in used), None)
            verify = True
        if old is not None and old not in used:
            used.add(old)
            moves.append(Change("moved", found.path, found, old, verify))
    return moves


# ---------------------------------------------------------------- writing it down

_QUEUE = """
    INSERT INTO pending_import(path, sha256, name, type, size_bytes, created_at, source)
    SELECT f.path, f.sha256, ?, f.kind, f.size_bytes, f.mtime_ns / 1000000, 'scan' FROM files f
    WHERE f.path = ? AND f.state = 'present'
      AND NOT EXISTS (SELECT 1 FROM pending_import p WHERE p.path = f.path)
      AND NOT EXISTS (SELECT 1 FROM models m WHERE m.sha256 = f.sha256)"""


@dataclass
class Written:
    """What a scan really wrote: paths per op, the new pending ids, and how far its writes moved
    the disk generation."""

    paths: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    pending_ids: list[int] = field(default_factory=list)
    generations: int = 0

    def add(self, other: Written) -> None:
        for op, paths in other.paths.items():
            self.paths[op] += paths
        self.pending_ids += other.pending_ids
        self.generations += other.generations


def apply(db: Database, changes: list[Change]) -> Written:
    """Write a batch of changes in one transaction; each condition is checked again here (the
    library may have changed since the walk)."""
    written, before, seen = Written(), disk_generation(db), now_ms()
    with db.atomic():
        for change in changes:
            op = _write(db, change, seen)
            if op:
                written.paths[op].append(change.path)
            if change.op != "gone":
                cursor = db.execute(_QUEUE, [os.path.basename(change.path), change.path])
                if cursor.rowcount:
                    written.pending_ids.append(cursor.lastrowid)
    written.generations = disk_generation(db) - before
    return written


def disk_generation(db: Database) -> int:
    """A number that moves with every change a scan compares (migration 0004's triggers)."""
    return db.execute("SELECT value FROM disk_generation").fetchone()[0]


def _write(db: Database, change: Change, seen: int) -> str | None:
    """Apply one change; returns what was done (a move whose old row is gone is a new file)."""
    found = change.found
    if change.op == "gone":
        return _run(db, "gone", "UPDATE files SET state = 'missing', seen_at = ? "
                                "WHERE path = ? AND state = 'present'", seen, change.path)
    if change.op == "moved" and _move(db, change, seen):
        return "moved"
    if change.op in ("new", "moved"):
        return _run(db, "new", "INSERT INTO files(path, size_bytes, mtime_ns, inode, kind, state, "
                               "seen_at) VALUES (?, ?, ?, ?, ?, 'present', ?) "
                               "ON CONFLICT(path) DO NOTHING",
                    change.path, found.size, found.mtime_ns, found.inode, found.kind, seen)
    if change.op == "changed":
        db.execute("UPDATE pending_import SET sha256 = NULL, size_bytes = ? WHERE path = ?",
                   [found.size, change.path])
        return _run(db, "changed", "UPDATE files SET sha256 = NULL, quick_fp = NULL, verify = 0, "
                                   "size_bytes = ?, mtime_ns = ?, inode = ?, kind = ?, "
                                   "state = 'present', seen_at = ? WHERE path = ?",
                    found.size, found.mtime_ns, found.inode, found.kind, seen, change.path)
    if change.op == "returned":
        return _run(db, "returned", "UPDATE files SET state = 'present', inode = ?, seen_at = ? "
                                    "WHERE path = ? AND size_bytes = ? AND mtime_ns = ?",
                    found.inode, seen, change.path, found.size, found.mtime_ns)
    return None  # "unlisted": only the queueing below


def _move(db: Database, change: Change, seen: int) -> bool:
    """The row of the vanished file becomes the row of its new path (its sha256 goes with
    it); a pending item of the old path follows it, renamed if it had the file's name."""
    found = change.found
    moved = db.execute(
        "UPDATE files SET path = ?, size_bytes = ?, mtime_ns = ?, inode = ?, kind = ?, "
        "state = 'present', verify = ?, seen_at = ? "
        "WHERE path = ? AND NOT EXISTS (SELECT 1 FROM files WHERE path = ?)",
        [change.path, found.size, found.mtime_ns, found.inode, found.kind, int(change.verify),
         seen, change.old, change.path]).rowcount > 0
    if moved:
        old_name, new_name = os.path.basename(change.old), os.path.basename(change.path)
        db.execute("UPDATE pending_import SET path = ?, name = CASE WHEN name = ? THEN ? "
                   "ELSE name END WHERE path = ? AND NOT EXISTS "
                   "(SELECT 1 FROM pending_import WHERE path = ?)",
                   [change.path, old_name, new_name, change.old, change.path])
    return moved


def _run(db: Database, op: str, sql: str, *params: object) -> str | None:
    return op if db.execute(sql, params).rowcount > 0 else None


# ---------------------------------------------------------------- the jobs

class NoModelFolders(ApiError):
    status, code = 503, "NO_MODEL_FOLDERS"


class ScanFailed(ApiError):
    status, code = 500, "SCAN_FAILED"


class Scanner:
    """Scans one at a time (a second request joins the running scan) and hashes after them;
    at start it resumes unfinished hashing, and scans on a schedule when one is configured."""

    def __init__(self, config: Config, store: Store, jobs: Jobs, threads: Executor,
                 events: Events, settle_s: float = SETTLE_SECONDS) -> None:
        self.config, self.store, self.jobs, self.threads = config, store, jobs, threads
        self.events = events
        self.settle_s = settle_s
        self._scan: asyncio.Task[Job] | None = None
        self._hash: asyncio.Task[None] | None = None
        self._next_hash: Job | None = None
        self._resume: asyncio.Task[None] | None = None
        self._timers: list[asyncio.Task] = []
        self._unchanged: tuple | None = None  # (db version, walk digest) after a quiet scan
        self._stopping = False

    def start(self) -> None:
        self._resume = asyncio.create_task(self._resume_hashing())
        if self.config.scan_interval_minutes > 0:
            self._timers.append(asyncio.create_task(self._every(self.config.scan_interval_minutes)))

    async def stop(self) -> None:
        self._stopping = True
        for timer in self._timers:
            timer.cancel()
        self.jobs.cancel_all()
        await asyncio.gather(*(t for t in (self._resume, self._scan, self._hash, *self._timers)
                               if t), return_exceptions=True)
        self.threads.shutdown(wait=True)

    async def scan(self) -> dict:
        """Scan now (or join the running scan) and report it as GET /api/scan does."""
        if not self.config.kinds:
            raise NoModelFolders("No model folders are configured; add them with --models-dir, "
                                 "--comfyui or 'roots:' in config.yaml")
        job = await self.run_scan()
        if job.state == CANCELLED:
            raise Conflict("The scan was cancelled", code="SCAN_CANCELLED", job=job.id)
        if job.state != DONE:
            raise ScanFailed(f"The scan failed ({job.error}); the sidecar log has the details",
                             job=job.id)
        return {"status": "success", **job.result, "job": job.id}

    def run_scan(self) -> Awaitable[Job]:
        if self._scan is None or self._scan.done():
            self._scan = asyncio.create_task(self.jobs.run(self.jobs.create("scan"), self._work))
        return asyncio.shield(self._scan)

    async def _work(self, job: Job) -> dict:
        loop = asyncio.get_running_loop()
        before = await self.store.run(disk_generation)
        found = await loop.run_in_executor(None, walk, self.config.kinds, job)
        job.set_totals(len(found.files), 0)
        if (before, found.digest) == self._unchanged:
            plan = Diff()  # the same files as last time, and nothing written since
        else:
            plan = await loop.run_in_executor(None, diff, found,
                                              await self.store.run(known_files), self.settle_s)
        if plan.new and (plan.gone or plan.missing):
            vanished = await self.store.run(vanished_files, plan.gone)
            plan.moves = await loop.run_in_executor(None, find_moves, plan.new, vanished)
        job.check_cancelled()
        written, writes = Written(), await loop.run_in_executor(None, plan.writes)
        for start in range(0, len(writes), APPLY_BATCH):
            written.add(await self.store.run(apply, writes[start:start + APPLY_BATCH]))
        after = await self.store.run(disk_generation)
        # The next scan may skip the comparison if it walks the same files and nothing it
        # compares changed but by this scan; not while a file waits to settle (time alone
        # changes that).
        quiet = after == before + written.generations and not plan.deferred
        self._unchanged = (after, found.digest) if quiet else None
        hash_job = self.request_hash() if await self.store.run(hashing.has_work) else None
        return _report(found, plan, written, hash_job)

    async def settled(self) -> None:
        """Wait until no scan or hash job is running or queued."""
        while busy := [task for task in (self._resume, self._scan, self._hash)
                       if task and not task.done()]:
            await asyncio.wait(busy)

    def request_hash(self) -> Job | None:
        """Queue a hash job after the running one (whose work list is already fixed)."""
        if self._stopping:
            return None
        if self._next_hash is None or self._next_hash.state != QUEUED:  # none, or cancelled
            self._next_hash = self.jobs.create("hash")
        if self._hash is None or self._hash.done():
            self._hash = asyncio.create_task(self._hash_jobs())
        return self._next_hash

    async def _hash_jobs(self) -> None:
        while self._next_hash is not None:
            job, self._next_hash = self._next_hash, None
            await self.jobs.run(job, self._hash_work)

    async def _hash_work(self, job: Job) -> dict:
        result = await hashing.hash_files(job, self.store, self.threads, self.config.hash_workers)
        result["described"] = await describe_pending(self.store, self.threads,
                                                     self.config.pending_dir)
        if await self.store.run(settings.auto_import, self.config):
            result["auto_import"] = await self._auto_import(job)
        return result

    async def _auto_import(self, job: Job) -> dict:
        """Import hashed pending files whose content is not in the library yet (one item per
        content: a second copy waits in the queue as the duplicate it is). Like an import the
        user starts, previews are converted on worker threads (the hash threads, low priority),
        never on the store thread."""
        report: dict = {}
        ids = await self.store.run(importable_ids)
        for start in range(0, len(ids), IMPORT_BATCH):
            job.check_cancelled()
            importer = Importer(self.store, self.events, self.config, self.threads)
            part = await importer.run(ids[start:start + IMPORT_BATCH], None)
            for key, value in part.items():
                if isinstance(value, list):
                    report[key] = report.get(key, []) + value
                elif key == "total":
                    report[key] = report.get(key, 0) + value
        return report

    async def _resume_hashing(self) -> None:
        if await self.store.run(hashing.has_work):
            self.request_hash()

    async def _every(self, minutes: float) -> None:
        while True:
            await asyncio.sleep(minutes * 60)
            await self.run_scan()


def _report(found: Walk, plan: Diff, written: Written, hash_job: Job | None) -> dict:
    scanned, added, done = len(found.files), len(written.pending_ids), written.paths
    return {"scanned": scanned, "added": added, "pending_ids": written.pending_ids,
            "skipped": scanned - plan.deferred - added, "deferred": plan.deferred,
            "changed": len(done["changed"]), "moved": len(done["moved"]),
            "missing": len(done["gone"]), "returned": len(done["returned"]),
            "missing_roots": found.missing_roots, "hash_job": hash_job.id if hash_job else None}


def importable_ids(db: Database) -> list[int]:
    return [row[0] for row in db.execute(
        """SELECT min(p.id) FROM pending_import p WHERE p.source = 'scan' AND p.sha256 IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM models m WHERE m.sha256 = p.sha256)
           GROUP BY p.sha256 ORDER BY 1""")]
