"""One import request as a job: hash what is not hashed yet and convert previews in worker
threads, then run `importer.import_pending` on the store thread; progress goes to the events
channel `import` as {job, phase, done, total, bytes_done, bytes_total, eta_s}.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable, Sequence

from sqlite_utils import Database

from . import hashing, image_files, images, library
from .config import Config
from .errors import ApiError
from .events import Events
from .importer import (BUCKETS, ItemFailed, Prepared, cached_sha256, convert_preview, describe,
                       existing_path, import_pending, load_item, pending_id, record_file,
                       stat_file, strategy_of)
from .store import Store

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.1
SLICE = 100  # items per store call, so other requests get the store thread in between


@dataclass(frozen=True)
class Plan:
    """What to do before the store call: files to hash, previews to convert (id, name)."""

    to_hash: list[HashResult]
    previews: list[tuple[int, str]]


@dataclass(frozen=True)
class HashResult:
    """A file to hash (sha256 None) or the outcome: its digest and the stat it was hashed at."""

    id: int
    path: str
    kind: str
    size: int
    sha256: str | None = None
    stat: os.stat_result | None = None
    failure: ItemFailed | None = None


class Importer:
    """Imports pending items for one request; hashing and Pillow stay off the store thread."""

    def __init__(self, store: Store, events: Events, config: Config,
                 image_threads: Executor) -> None:
        self.store = store
        self.events = events
        self.images_dir = config.images_dir
        self.pending_dir = config.pending_dir
        self.hash_workers = config.hash_workers
        self.image_threads = image_threads
        self.job = uuid.uuid4().hex[:12]

    async def run(self, ids: Sequence, strategy: object) -> dict:
        """The 207 report of import_pending, plus the job id its progress events carry."""
        strategy = strategy_of(strategy)
        unique = list(dict.fromkeys(ids))
        self._publish("started", total=len(unique), strategy=strategy)
        plan = await self._plan(unique, strategy)
        failures = await self._hash(plan.to_hash)
        converted, image_errors = await self._convert(plan.previews)
        try:
            report = await self._import(unique, strategy, Prepared(converted, image_errors,
                                                                   failures))
        finally:  # pictures converted for items that were not imported after all
            await self.store.run(images.remove_unused, self.images_dir,
                                 [stored.image_sha256 for stored in converted.values()])
        self._publish("completed", total=report["total"], **{b: len(report[b]) for b in BUCKETS})
        return {**report, "job": self.job}

    async def _plan(self, ids: list, strategy: str | None) -> Plan:
        plan = Plan([], [])
        for start in range(0, len(ids), SLICE):
            part = await self.store.run(plan_import, ids[start:start + SLICE], strategy)
            plan.to_hash.extend(part.to_hash)
            plan.previews.extend(part.previews)
        return plan

    async def _import(self, ids: list, strategy: str | None, prepared: Prepared) -> dict:
        meter = _Meter(self._publish, "importing", len(ids))
        report: dict = {"total": len(ids), **{b: [] for b in BUCKETS}, "image_errors": []}
        for start in range(0, len(ids), SLICE):
            part = await self.store.run(functools.partial(
                import_pending, prepared=prepared, pending_dir=self.pending_dir,
                progress=lambda done, _total, offset=start: meter.update(offset + done)),
                self.images_dir, ids[start:start + SLICE], strategy, library.now_ms())
            for key, value in part.items():
                if isinstance(value, list):
                    report[key].extend(value)
        return report

    async def _hash(self, wanted: list[HashResult]) -> dict[int, ItemFailed]:
        if not wanted:
            return {}
        meter = _Meter(self._publish, "hashing", len(wanted), sum(item.size for item in wanted))
        limit = asyncio.Semaphore(self.hash_workers)
        loop = asyncio.get_running_loop()

        async def one(item: HashResult) -> HashResult:
            async with limit:
                result = await loop.run_in_executor(None, hash_file, item)
            meter.add(1, item.size)
            return result

        results = await asyncio.gather(*(one(item) for item in wanted))
        await self.store.run(remember_hashes, results, library.now_ms())
        return {r.id: r.failure for r in results if r.failure is not None}

    async def _convert(self, wanted: list[tuple[int, str]]
                       ) -> tuple[dict[int, image_files.StoredImage], dict[int, str]]:
        converted: dict[int, image_files.StoredImage] = {}
        errors: dict[int, str] = {}
        meter = _Meter(self._publish, "images", len(wanted))
        loop = asyncio.get_running_loop()

        async def one(item_id: int, name: str) -> None:
            try:
                converted[item_id] = await loop.run_in_executor(
                    self.image_threads, convert_preview, self.pending_dir, name, self.images_dir)
            except (ApiError, OSError) as exc:
                errors[item_id] = describe(exc)
            meter.add()

        await asyncio.gather(*(one(item_id, name) for item_id, name in wanted))
        return converted, errors

    def _publish(self, type_: str, **data: object) -> None:
        self.events.publish("import", type_, {"job": self.job, **data})


class _Meter:
    """Progress events of one phase, at most one per PROGRESS_EVERY_S (and always the last)."""

    def __init__(self, publish: Callable[..., None], phase: str, total: int,
                 total_bytes: int = 0) -> None:
        self.publish, self.phase, self.total, self.total_bytes = publish, phase, total, total_bytes
        self.done = self.bytes_done = 0
        self.started = self.last = time.monotonic()

    def add(self, count: int = 1, nbytes: int = 0) -> None:
        self.update(self.done + count, self.bytes_done + nbytes)

    def update(self, done: int, bytes_done: int = 0) -> None:
        self.done, self.bytes_done = done, bytes_done
        now = time.monotonic()
        if done < self.total and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        data: dict[str, object] = {"phase": self.phase, "done": done, "total": self.total}
        if self.total_bytes:
            rate = bytes_done / max(now - self.started, 1e-6)
            data.update(bytes_done=bytes_done, bytes_total=self.total_bytes,
                        eta_s=round((self.total_bytes - bytes_done) / rate, 1) if rate else None)
        self.publish("progress", **data)


# --- plain steps (store thread, except hash_file) -------------------------------------------

def plan_import(db: Database, ids: Sequence, strategy: str | None) -> Plan:
    """The files among `ids` with no known hash, and the previews of the items that will (or,
    not hashed yet, may) be imported. Unknown ids and missing files are left to the import."""
    to_hash, previews = [], []
    for raw_id in ids:
        try:
            item = load_item(db, pending_id(raw_id))
            sha, file_stat = cached_sha256(db, item.path, item.sha256, item.size_bytes)
        except ApiError:
            continue
        if sha is None:
            to_hash.append(HashResult(item.id, item.path, item.type, file_stat.st_size))
        if item.image and (sha is None or strategy in ("override", "merge")
                           or existing_path(db, sha, item.path) is None):
            previews.append((item.id, item.image))
    return Plan(to_hash, previews)


def hash_file(item: HashResult) -> HashResult:
    """Hash one file (in a worker thread), accepted only if its stat held still throughout."""
    try:
        before = stat_file(item.path)
        digest = hashing.sha256_file(item.path)
        after = stat_file(item.path)
    except hashing.FileChanged:
        return _failed(item, "The file changed while it was hashed; import it once it is "
                             "complete", "FILE_CHANGED")
    except ItemFailed as exc:
        return _failed(item, exc.message, exc.code)
    except OSError as exc:
        return _failed(item, f"The file cannot be read: {describe(exc)}", "FILE_UNREADABLE")
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        return _failed(item, "The file changed while it was hashed; import it once it is "
                             "complete", "FILE_CHANGED")
    return HashResult(item.id, item.path, item.kind, item.size, digest, before)


def _failed(item: HashResult, message: str, code: str) -> HashResult:
    log.warning("Pending item %s: %s", item.id, message)
    return HashResult(item.id, item.path, item.kind, item.size,
                      failure=ItemFailed(message, code=code, path=item.path))


def remember_hashes(db: Database, results: Sequence[HashResult], now_ms: int) -> None:
    """Cache fresh digests: the file's row (keyed by the stat it was hashed at) and the item's."""
    with db.atomic():
        for result in results:
            if result.sha256 is None or result.stat is None:
                continue
            record_file(db, result.path, result.kind, result.sha256, result.stat, now_ms)
            db.execute("UPDATE pending_import SET sha256 = ? WHERE id = ?",
                       [result.sha256, result.id])
