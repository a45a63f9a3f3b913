"""The generation queue: accept jobs, dispatch each to its ComfyUI server, follow it (websocket,
then /history), store its outputs, attach images to a model, and pick unfinished jobs up again
after a restart. One owned asyncio task per unfinished job, cancelled on shutdown."""
from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import aiohttp

from . import queue_outputs, queue_store as jobs, schemas, servers, templates
from .comfy import CHECK_TIMEOUT_S, ComfyClient, ComfyError, Messages, Unreachable, outputs_of
from .errors import ApiError, Conflict, Invalid, NotFound
from .events import Events
from .images import Gallery
from .store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")
CHANNEL = "queue"
STARTED = ("execution_start", "execution_cached", "executing", "progress")
FINAL = ("execution_success", "execution_error", "execution_interrupted")


@dataclass(frozen=True)
class Timings:
    """How patient the dispatcher is; tests make these small."""

    attempts: int = 5  # tries to reach a server before the job fails
    backoff_s: float = 1.0  # wait before the first retry, doubled for each next one
    backoff_max_s: float = 30.0
    poll_s: float = 1.0  # /history polling once the websocket is gone
    idle_check_s: float = 15.0  # a websocket quiet this long: look at /history anyway
    object_info_ttl_s: float = 300.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Queue:
    """Jobs live in the database; the tasks that drive them live here."""

    def __init__(self, store: Store, events: Events, gallery: Gallery, data_dir: Path,
                 local_url: str, timings: Timings = Timings()) -> None:
        self.store, self.events, self.gallery = store, events, gallery
        self.outputs_dir = data_dir / "queue"
        self.local_url = local_url
        self.timings = timings
        self._session: aiohttp.ClientSession | None = None
        self._tasks: dict[str, asyncio.Task] = {}
        self._in_flight: set[str] = set()  # jobs whose /prompt request is under way
        self._object_info: dict[str, tuple[float, dict]] = {}

    # --- lifetime ------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the HTTP session and pick up every unfinished job (re-attached through
        /history when ComfyUI already has it)."""
        self._session = aiohttp.ClientSession()
        for job_id in await self.store.run(jobs.active_ids):
            self._spawn(job_id)

    async def stop(self) -> None:
        """Stop following jobs; they stay unfinished in the database for the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # --- the service the routes call -----------------------------------------------------
    async def submit(self, body: Any) -> dict:
        schemas.check(schemas.QUEUE_JOB, body)
        if ("workflow" in body) == ("template" in body):
            raise Invalid("Send either a workflow (API format) or a template, not both",
                          code="WORKFLOW_OR_TEMPLATE", field="workflow")
        server = await self.store.run(_target, self.local_url, body.get("target_server_alias"))
        if body.get("attach_to"):
            await self.store.run(_require_model, body["attach_to"])
        if body.get("template"):
            params = await self.store.run(templates.resolve_txt2img, body.get("params", {}))
            workflow, field = templates.txt2img_workflow(params), "params"
        else:
            params, workflow, field = body.get("params", {}), body["workflow"], "workflow"
        await self._check_on_server(server["url"], workflow, field)
        stamp = now_ms()
        row = {"id": uuid.uuid4().hex, "status": jobs.PENDING, "server_alias": server["alias"],
               "server_url": server["url"], "client_id": f"hikaze-{uuid.uuid4().hex}",
               "template": body.get("template"), "params": params, "workflow": workflow,
               "attach_to": (body.get("attach_to") or "").lower() or None,
               "created_at": stamp, "updated_at": stamp}
        record = await self.store.run(jobs.insert_job, row)
        self._publish("job_updated", record)
        self._spawn(record["job_id"])
        return record

    async def cancel(self, job_id: str) -> dict:
        """Cancel an unfinished job: removed from the server's queue, or interrupted there."""
        stamp = now_ms()
        row = await self.store.run(jobs.row_of, job_id)
        changed = await self.store.run(lambda db: jobs.update(
            db, job_id, stamp, status=jobs.CANCELLED, completed_at=stamp,
            error="Cancelled on request"))
        if changed is None:
            raise Conflict(f"Job {job_id} has already finished ({row['status']})",
                           code="JOB_FINISHED", id=job_id, status=row["status"])
        task = self._tasks.get(job_id)
        if task is not None and job_id not in self._in_flight:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # else its /prompt request is on the way: the task withdraws the prompt once it lands
        if changed["prompt_id"]:
            await self._withdraw(changed)
        record = jobs.record(changed)
        self._publish("job_updated", record)
        return record

    async def delete(self, job_id: str) -> None:
        await self.store.run(jobs.delete_job, job_id)
        await asyncio.to_thread(shutil.rmtree, self.outputs_dir / job_id, True)

    async def output_file(self, job_id: str, index: int) -> tuple[Path, dict]:
        row = await self.store.run(jobs.row_of, job_id)
        for output in row["outputs"]:
            if output["index"] == index:
                return self.outputs_dir / job_id / output["stored_as"], output
        raise NotFound(f"Job {job_id} has no output {index}", code="OUTPUT_NOT_FOUND",
                       id=job_id, index=index)

    # --- dispatch ------------------------------------------------------------------------
    def _spawn(self, job_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._supervise(job_id),
                                                      name=f"queue-job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda done: self._tasks.pop(job_id, None)
                               if self._tasks.get(job_id) is done else None)

    async def _supervise(self, job_id: str) -> None:
        """The job supervisor: whatever goes wrong fails this job, never the sidecar."""
        try:
            await self._dispatch(job_id)
        except ComfyError as exc:
            await self._fail(job_id, str(exc))
        except ApiError as exc:
            await self._fail(job_id, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the job supervisor
            log.exception("Queue job %s failed unexpectedly", job_id)
            await self._fail(job_id, f"{type(exc).__name__}: {exc}")

    async def _dispatch(self, job_id: str) -> None:
        row = await self.store.run(jobs.row_of, job_id)
        client = ComfyClient(self._session, row["server_url"])
        messages = await self._open_messages(client, row)
        resumed = bool(row["prompt_id"])
        try:
            if not resumed:
                prompt_id = await self._retrying(row, lambda: self._submit(client, row))
                if await self._set(job_id, prompt_id=prompt_id) is None:
                    await self._withdraw({**row, "prompt_id": prompt_id})  # cancelled meanwhile
                    return
                row["prompt_id"] = prompt_id
            entry = await self._follow(row, client, messages, resumed)
        finally:
            if messages is not None:
                await messages.close()
        await self._finish(row, client, entry)

    async def _submit(self, client: ComfyClient, row: dict) -> str:
        """POST the workflow, marked in flight: a cancel then lets the request land (so the
        prompt id is known) instead of leaving an unknown prompt running on the server."""
        self._in_flight.add(row["id"])
        try:
            return await client.submit(row["workflow"], row["client_id"])
        finally:
            self._in_flight.discard(row["id"])

    async def _open_messages(self, client: ComfyClient, row: dict) -> Messages | None:
        try:
            return await client.open_messages(row["client_id"])
        except Unreachable as exc:
            log.info("Job %s: no websocket (%s); following it through /history", row["id"], exc)
            return None

    async def _follow(self, row: dict, client: ComfyClient, messages: Messages | None,
                      resumed: bool) -> dict:
        """Wait for the prompt's history entry: state and progress from the websocket while it
        lasts, then /history polling."""
        while messages is not None:
            if resumed:  # it may have finished while nobody listened (a restart, a quiet socket)
                entry = await self._retrying(row, lambda: client.history(row["prompt_id"]))
                if entry is not None:
                    return entry
            resumed = True
            try:
                if await self._listen(row, messages):
                    break
            except EOFError:
                log.info("Job %s: ComfyUI's websocket closed; polling /history", row["id"])
                break
        return await self._poll(row, client)

    async def _listen(self, row: dict, messages: Messages) -> bool:
        """Apply the prompt's messages until its last one (True) or a quiet spell (False)."""
        while (message := await messages.next(self.timings.idle_check_s)) is not None:
            kind, data = message.get("type"), message["data"]
            if data.get("prompt_id") != row["prompt_id"]:
                continue
            await self._on_message(row["id"], message)
            if kind in FINAL or (kind == "executing" and data.get("node") is None):
                return True
        return False

    async def _poll(self, row: dict, client: ComfyClient) -> dict:
        prompt_id = row["prompt_id"]
        while True:
            entry = await self._retrying(row, lambda: client.history(prompt_id))
            if entry is not None:
                return entry
            state = await self._retrying(row, lambda: client.queue_state(prompt_id))
            if state == "running":
                await self._started(row["id"])
            elif state is None and await self._retrying(row, lambda: client.history(prompt_id)) is None:
                raise ComfyError(f"ComfyUI at {row['server_url']} no longer knows prompt "
                                 f"{prompt_id} (was it restarted, or the prompt removed there?)")
            await asyncio.sleep(self.timings.poll_s)

    async def _on_message(self, job_id: str, message: dict) -> None:
        kind, data = message.get("type"), message["data"]
        if kind == "progress" and isinstance(data.get("value"), (int, float)):
            progress = {"value": data["value"], "max": data.get("max"), "node": data.get("node")}
            await self._started(job_id)
            if (row := await self._set(job_id, progress=progress)) is not None:
                self._publish("job_updated", jobs.record(row, with_workflow=False))
        elif kind in STARTED and not (kind == "executing" and data.get("node") is None):
            await self._started(job_id)

    async def _started(self, job_id: str) -> None:
        stamp = now_ms()
        row = await self.store.run(lambda db: jobs.update(
            db, job_id, stamp, only_if=(jobs.PENDING,), status=jobs.PROCESSING, started_at=stamp))
        if row is not None:
            self._publish("job_updated", jobs.record(row, with_workflow=False))

    async def _finish(self, row: dict, client: ComfyClient, entry: dict) -> None:
        status = entry.get("status") or {}
        events = {m[0]: m[1] for m in status.get("messages", [])
                  if isinstance(m, list) and len(m) == 2 and isinstance(m[1], dict)}
        if "execution_interrupted" in events:
            await self._end(row["id"], jobs.CANCELLED, "job_updated",
                            error="Interrupted on the ComfyUI server")
        elif status.get("status_str") == "error" or "execution_error" in events:
            raise ComfyError(_execution_error(events.get("execution_error", {})))
        else:
            folder = self.outputs_dir / row["id"]
            outputs = await queue_outputs.store(folder, outputs_of(entry), lambda output:
                                                self._retrying(row, lambda: client.view(output)))
            attached = (await queue_outputs.attach(self.gallery, folder, row, outputs, now_ms())
                        if row["attach_to"] else [])
            await self._end(row["id"], jobs.COMPLETED, "job_completed", outputs=outputs,
                            attached=attached)

    async def _withdraw(self, row: dict) -> None:
        """Take a cancelled job's prompt off its server: out of the queue, or interrupted."""
        client = ComfyClient(self._session, row["server_url"])
        try:
            state = await client.queue_state(row["prompt_id"])
            if state == "pending":
                await client.remove_pending(row["prompt_id"])
            elif state == "running":
                await client.interrupt(row["prompt_id"])
        except ComfyError as exc:
            log.warning("Job %s cancelled here, but ComfyUI could not be told: %s", row["id"], exc)

    async def _retrying(self, row: dict, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, retried with backoff while the server cannot be reached."""
        t = self.timings
        for attempt in range(t.attempts):
            try:
                return await call()
            except Unreachable as exc:
                if attempt + 1 >= t.attempts:
                    raise Unreachable(f"ComfyUI server '{row['server_alias']}' at "
                                      f"{row['server_url']} did not answer after {t.attempts} "
                                      f"attempts: {exc}") from exc
                await self._set(row["id"], retry_count=attempt + 1)
                await asyncio.sleep(min(t.backoff_s * 2 ** attempt, t.backoff_max_s))
        raise AssertionError("unreachable")  # attempts >= 1

    async def _check_on_server(self, url: str, workflow: dict, field: str) -> None:
        """Check the workflow against the server's /object_info (cached); a server that cannot
        be reached now is not checked: the job then fails after its retries."""
        cached = self._object_info.get(url)
        fresh = cached is not None and time.monotonic() - cached[0] < self.timings.object_info_ttl_s
        if fresh:
            try:
                return templates.check_workflow(cached[1], workflow, field)
            except Invalid:
                pass  # perhaps nodes were installed since: ask again
        try:
            info = await ComfyClient(self._session, url).object_info(CHECK_TIMEOUT_S)
        except ComfyError as exc:
            log.info("Not checking the job against %s: %s", url, exc)
            return
        self._object_info[url] = (time.monotonic(), info)
        templates.check_workflow(info, workflow, field)

    async def _set(self, job_id: str, **fields: Any) -> dict | None:
        stamp = now_ms()
        return await self.store.run(lambda db: jobs.update(db, job_id, stamp, **fields))

    async def _end(self, job_id: str, status: str, event: str, **fields: Any) -> None:
        row = await self._set(job_id, status=status, completed_at=now_ms(), **fields)
        if row is not None:
            self._publish(event, jobs.record(row, with_workflow=False))

    async def _fail(self, job_id: str, error: str) -> None:
        log.warning("Queue job %s failed: %s", job_id, error)
        await self._end(job_id, jobs.FAILED, "job_failed", error=error)

    def _publish(self, event: str, record: dict) -> None:
        self.events.publish(CHANNEL, event, {k: v for k, v in record.items() if k != "workflow"})


def _target(db, local_url: str, alias: str | None) -> dict:
    if alias is None:
        return servers.default_server(db, local_url)
    try:
        return servers.get_server(db, local_url, alias)
    except NotFound as exc:
        raise Invalid(f"target_server_alias: {exc.message}", code="UNKNOWN_SERVER",
                      field="target_server_alias", alias=alias) from exc


def _require_model(db, sha256: str) -> None:
    if db.execute("SELECT 1 FROM models WHERE sha256 = ?", [sha256.lower()]).fetchone() is None:
        raise Invalid(f"attach_to: model {sha256} is not in the library", code="UNKNOWN_MODEL",
                      field="attach_to", sha256=sha256)


def _execution_error(data: dict) -> str:
    where = f"{data.get('node_type') or 'a node'} (node {data.get('node_id', '?')})"
    what = ": ".join(str(p) for p in (data.get("exception_type"), data.get("exception_message")) if p)
    return f"ComfyUI failed the prompt in {where}: {what or 'no details given'}"
