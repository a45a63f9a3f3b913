"""Background jobs as resources: an id, a state, progress and a cancel switch, kept in memory,
shown over HTTP and pushed as events while they run."""
from __future__ import annotations

import asyncio
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from .errors import Conflict, Invalid, NotFound
from .events import Events

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = frozenset({DONE, FAILED, CANCELLED})
PROGRESS_INTERVAL_S = 0.5  # how often a running job pushes a progress event
KEEP_FINISHED = 50  # finished jobs remembered for GET /api/jobs
_ID = re.compile(r"[0-9a-f]{16}")


class Cancelled(Exception):
    """Raised inside a job's work when someone asked to cancel it."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(eq=False)
class Job:
    """One run of a background task. Worker threads report progress through `advance`."""

    kind: str
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    state: str = QUEUED
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    current: str = ""
    created_at: int = field(default_factory=now_ms)
    started_at: int | None = None
    finished_at: int | None = None
    error: str = ""
    result: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _clock: tuple[float, float] = (0.0, 0.0)  # monotonic start and end, for the rate

    def set_totals(self, files: int, bytes_: int) -> None:
        with self._lock:
            self.files_total, self.bytes_total = files, bytes_

    def advance(self, files: int = 0, bytes_: int = 0, current: str | None = None) -> None:
        """Count work done; called from any thread."""
        with self._lock:
            self.files_done += files
            self.bytes_done += bytes_
            if current is not None:
                self.current = current

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        self._cancel.set()

    def begin(self) -> None:
        with self._lock:
            self.state, self.started_at, self._clock = RUNNING, now_ms(), (time.monotonic(), 0.0)

    def end(self, state: str, error: str = "") -> None:
        with self._lock:
            self.state, self.finished_at, self.error, self.current = state, now_ms(), error, ""
            self._clock = (self._clock[0], time.monotonic())

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(f"{self.kind} job {self.id} was cancelled")

    def snapshot(self) -> dict[str, Any]:
        """The job as the API and the events show it."""
        with self._lock:
            start, end = self._clock
            elapsed = (time.monotonic() if self.state == RUNNING else end) - start
            done, total = min(self.bytes_done, self.bytes_total), self.bytes_total
            rate = done / elapsed if start and elapsed > 0 and done else 0.0
            eta = round((total - done) / rate, 1) if rate and self.state == RUNNING else None
            return {
                "id": self.id, "kind": self.kind, "state": self.state,
                "files_done": self.files_done, "files_total": self.files_total,
                "bytes_done": done, "bytes_total": total,
                "rate_bytes_s": round(rate), "eta_s": eta,
                "current": self.current, "cancel_requested": self.cancel_requested,
                "created_at": self.created_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "error": self.error, "result": self.result,
            }


class Jobs:
    """The jobs of this sidecar run; each change is published on one events channel."""

    def __init__(self, events: Events, channel: str = "scan") -> None:
        self._events = events
        self._channel = channel
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def create(self, kind: str) -> Job:
        job = Job(kind)
        self._jobs[job.id] = job
        self._forget_old()
        self._publish("queued", job)
        return job

    def get(self, job_id: str) -> Job:
        if not _ID.fullmatch(job_id):
            raise Invalid("A job id is 16 lowercase hexadecimal characters", code="INVALID_JOB_ID",
                          field="id")
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"No job {job_id}; finished jobs are forgotten when the sidecar "
                           "restarts", code="JOB_NOT_FOUND", id=job_id)
        return job

    def list(self, kind: str | None = None) -> list[dict]:
        """Newest first."""
        return [job.snapshot() for job in reversed(self._jobs.values())
                if kind is None or job.kind == kind]

    def cancel(self, job_id: str) -> dict:
        job = self.get(job_id)
        if job.state in FINISHED:
            raise Conflict(f"Job {job_id} has already finished ({job.state})",
                           code="JOB_FINISHED", id=job_id, state=job.state)
        job.request_cancel()
        if job.state == QUEUED:
            self._finish(job, CANCELLED)
        else:
            self._publish("progress", job)
        return job.snapshot()

    async def run(self, job: Job, work: Callable[[Job], Awaitable[dict]]) -> Job:
        """The job supervisor: run `work(job)`, keep the state and push events; a failure
        is logged and recorded on the job, never raised to the caller."""
        if job.state != QUEUED:
            return job  # cancelled before it started
        job.begin()
        self._publish("started", job)
        ticker = asyncio.create_task(self._tick(job))
        try:
            job.result = await work(job)
            self._finish(job, DONE)
        except Cancelled:
            self._finish(job, CANCELLED)
        except asyncio.CancelledError:
            self._finish(job, CANCELLED)
            raise
        except Exception as exc:  # the job supervisor: any failure ends this job, not the sidecar
            log.exception("The %s job %s failed", job.kind, job.id)
            self._finish(job, FAILED, f"{type(exc).__name__}: {exc}")
        finally:
            ticker.cancel()
        return job

    def cancel_all(self) -> None:
        """Ask every unfinished job to stop (the sidecar is shutting down)."""
        for job in list(self._jobs.values()):
            if job.state not in FINISHED:
                self.cancel(job.id)

    async def _tick(self, job: Job) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            self._publish("progress", job)

    def _finish(self, job: Job, state: str, error: str = "") -> None:
        job.end(state, error)
        self._publish(state, job)

    def _forget_old(self) -> None:
        finished = [key for key, job in self._jobs.items() if job.state in FINISHED]
        for key in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[key]

    def _publish(self, type_: str, job: Job) -> None:
        self._events.publish(self._channel, type_, job.snapshot())
