"""File identity: the streamed sha256 of a whole file and a quick fingerprint of its ends, accepted
only if the file held still; and the background job that hashes every file not yet hashed."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from blake3 import blake3
from sqlite_utils import Database

from .jobs import Cancelled, Job, now_ms
from .store import Store

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024  # large reads let hashlib release the GIL and keep syscalls few
QUICK_SPAN = 2 * 1024 * 1024  # the quick fingerprint reads this much at each end of a file
RECORD_BATCH = 200  # digests written per store call, so the store thread stays responsive
RECORD_EVERY_S = 0.5
# Small files go to a worker thread in groups: up to this many files or bytes per hand-over.
GROUP_FILES = 64
GROUP_BYTES = 16 * 1024 * 1024
_ADVISE = hasattr(os, "posix_fadvise")


class FileChanged(OSError):
    """The file's size or mtime changed while it was being hashed; try again later."""


@dataclass(frozen=True)
class Digest:
    sha256: str
    quick_fp: str
    size: int
    mtime_ns: int


class _Quick:
    """blake3 of the size (8 bytes, little-endian), the first QUICK_SPAN bytes and the last
    QUICK_SPAN bytes (the whole file when it is smaller than both); fed in file order."""

    def __init__(self, size: int) -> None:
        self.head = min(QUICK_SPAN, size)
        self.tail = max(self.head, size - QUICK_SPAN)
        self.size = size
        self.hasher = blake3(size.to_bytes(8, "little"))

    def update(self, offset: int, chunk: memoryview | bytes) -> None:
        end = min(len(chunk), self.size - offset)
        if offset < self.head:
            self.hasher.update(chunk[:min(end, self.head - offset)])
        start = max(self.tail, offset) - offset  # tail >= head: the two parts never overlap
        if start < end:
            self.hasher.update(chunk[start:end])

    def hexdigest(self) -> str:
        return self.hasher.hexdigest()


def digest_file(path: str | Path, on_read: Callable[[int], None] | None = None,
                expect: tuple[int, int] | None = None) -> Digest:
    """sha256 and quick fingerprint in one streamed pass (never the whole file in memory).

    `expect` = the (size, mtime_ns) the caller knows; a different file raises FileChanged, as
    does a change while reading. The pages read are dropped from the page cache as we go, so
    hashing a library does not push everything else out of memory. `on_read(n)` is called
    after each chunk and may raise to stop.
    """
    before = os.stat(path)
    if expect is not None and (before.st_size, before.st_mtime_ns) != expect:
        raise FileChanged(f"{path} changed since it was scanned")
    digest, quick = hashlib.sha256(), _Quick(before.st_size)
    with open(path, "rb", buffering=0) as source:
        fd = source.fileno()
        _advise(fd, 0, 0, "POSIX_FADV_SEQUENTIAL")
        buffer = bytearray(min(CHUNK, before.st_size + 1))  # small files: no 4 MiB to clear
        view = memoryview(buffer)
        offset = 0
        while read := source.readinto(buffer):
            digest.update(view[:read])
            quick.update(offset, view[:read])
            _advise(fd, offset, read, "POSIX_FADV_DONTNEED")
            offset += read
            if on_read is not None:
                on_read(read)
    after = os.stat(path)
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise FileChanged(f"{path} changed while it was being hashed")
    return Digest(digest.hexdigest(), quick.hexdigest(), after.st_size, after.st_mtime_ns)


def sha256_file(path: str | Path) -> str:
    """Lowercase hex sha256 of the file's content, streamed and stat-guarded."""
    return digest_file(path).sha256


def quick_fingerprint(path: str | Path, size: int) -> str:
    """The quick fingerprint of a file of `size` bytes, reading only its two ends."""
    quick = _Quick(size)
    with open(path, "rb", buffering=0) as source:
        fd = source.fileno()
        quick.update(0, os.pread(fd, quick.head, 0))
        if quick.tail < size:
            quick.update(quick.tail, os.pread(fd, size - quick.tail, quick.tail))
    return quick.hexdigest()


def _advise(fd: int, offset: int, length: int, advice: str) -> None:
    if _ADVISE:
        try:
            os.posix_fadvise(fd, offset, length, getattr(os, advice))
        except OSError as exc:  # only a hint; some file systems refuse it
            log.debug("posix_fadvise(%s) refused: %s", advice, exc)


# ---------------------------------------------------------------- the hash job

@dataclass(frozen=True)
class WorkItem:
    """A present file to hash: no sha256 yet, or one taken over from a moved file (`verify`)."""

    path: str
    size: int
    mtime_ns: int
    sha256: str | None


_UNHASHED = "FROM files WHERE state = 'present' AND sha256 IS NULL"
_TO_VERIFY = "FROM files WHERE verify = 1 AND state = 'present'"  # each reads its own index


def work_list(db: Database) -> list[WorkItem]:
    """Unhashed files first; confirming the hash of moved files waits until they are done."""
    return [WorkItem(*row) for query in (_UNHASHED, _TO_VERIFY) for row in db.execute(
        f"SELECT path, size_bytes, mtime_ns, sha256 {query} ORDER BY path")]


def has_work(db: Database) -> bool:
    return db.execute(f"SELECT EXISTS (SELECT 1 {_UNHASHED}) OR EXISTS (SELECT 1 {_TO_VERIFY})"
                      ).fetchone()[0] == 1


def record(db: Database, digests: list[tuple[WorkItem, Digest]]) -> None:
    """Store digests on files rows that still describe the file hashed, and on its pending item."""
    seen = now_ms()
    with db.atomic():
        for item, digest in digests:
            if item.sha256 and item.sha256 != digest.sha256:
                log.warning("%s was taken for a moved copy of %s but its content differs "
                            "(sha256 %s); it is a new file now", item.path, item.sha256,
                            digest.sha256)
            updated = db.execute(
                "UPDATE files SET sha256 = ?, quick_fp = ?, verify = 0, seen_at = ? WHERE path = ? "
                "AND size_bytes = ? AND mtime_ns = ? AND state = 'present'",
                [digest.sha256, digest.quick_fp, seen, item.path, digest.size, digest.mtime_ns])
            if updated.rowcount:
                db.execute("UPDATE pending_import SET sha256 = ? WHERE path = ?",
                           [digest.sha256, item.path])


def hash_one(item: WorkItem, job: Job) -> tuple[str, Digest | None]:
    """Hash one file: ("hashed"|"verified"|"changed"|"failed", digest). Raises Cancelled."""
    job.advance(current=item.path)
    read = 0

    def on_read(count: int) -> None:
        nonlocal read
        read += count
        job.advance(bytes_=count)
        job.check_cancelled()

    digest = None
    try:
        digest = digest_file(item.path, on_read, expect=(item.size, item.mtime_ns))
        outcome = "verified" if item.sha256 else "hashed"
    except FileChanged:
        outcome = "changed"  # the next scan records its new stat; it is hashed after that
    except OSError as exc:
        log.warning("Cannot hash %s (%s); it is tried again after the next scan", item.path, exc)
        outcome = "failed"
    job.advance(files=1, bytes_=max(0, item.size - read))
    return outcome, digest


def hash_group(group: list[WorkItem], job: Job) -> list[tuple[WorkItem, str, Digest | None]]:
    """Hash a few files in one worker call (small files together, so handing work to a thread
    costs little next to hashing it); what is done is kept when the job is cancelled."""
    results = []
    for item in group:
        if job.cancel_requested:
            break
        try:
            results.append((item, *hash_one(item, job)))
        except Cancelled:
            break
    return results


def groups(items: list[WorkItem]) -> Iterator[list[WorkItem]]:
    group: list[WorkItem] = []
    size = 0
    for item in items:
        group.append(item)
        size += item.size
        if size >= GROUP_BYTES or len(group) >= GROUP_FILES:
            yield group
            group, size = [], 0
    if group:
        yield group


async def hash_files(job: Job, store: Store, threads: Executor, workers: int) -> dict:
    """The hash job's work: every file on the work list, `workers` threads at a time, digests
    written in small batches; a cancelled job keeps what it finished (the rest waits for the
    next run, as does everything after a restart: the work list is read from the database)."""
    items = await store.run(work_list)
    job.set_totals(len(items), sum(item.size for item in items))
    loop = asyncio.get_running_loop()
    todo = groups(items)
    running: set[asyncio.Future] = set()
    counts = dict.fromkeys(("hashed", "verified", "changed", "failed"), 0)
    batch: list[tuple[WorkItem, Digest]] = []
    flushed = loop.time()
    while True:
        while len(running) < workers and not job.cancel_requested:
            group = next(todo, None)
            if group is None:
                break
            running.add(loop.run_in_executor(threads, hash_group, group, job))
        if not running:
            break
        finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for future in finished:
            for item, outcome, digest in future.result():
                counts[outcome] += 1
                if digest is not None:
                    batch.append((item, digest))
        if batch and (len(batch) >= RECORD_BATCH or loop.time() - flushed > RECORD_EVERY_S):
            await store.run(record, batch)
            batch, flushed = [], loop.time()
    if batch:
        await store.run(record, batch)
    job.check_cancelled()
    return counts
