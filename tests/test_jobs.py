"""Jobs: the supervisor keeps the state, records failures and pushes every change as an event."""
import asyncio
import logging

import pytest

from server import jobs
from server.errors import Conflict, Invalid, NotFound
from server.events import Events


@pytest.fixture
async def hub():
    events = Events()
    events.bind(asyncio.get_running_loop())
    subscriber = events.subscribe()
    subscriber.channels.add("scan")
    return jobs.Jobs(events), subscriber.queue


def drain(queue: asyncio.Queue) -> list[tuple[str, str]]:
    seen = []
    while not queue.empty():
        event = queue.get_nowait()
        seen.append((event["type"], event["data"]["state"]))
    return seen


async def test_a_job_reports_progress_rate_and_its_result(hub):
    registry, queue = hub

    async def work(job: jobs.Job) -> dict:
        job.set_totals(2, 1000)
        job.advance(files=1, bytes_=500, current="/models/a.safetensors")
        assert job.snapshot()["eta_s"] is not None
        job.advance(files=1, bytes_=500)
        return {"hashed": 2}

    job = await registry.run(registry.create("hash"), work)
    view = job.snapshot()
    assert (view["state"], view["files_done"], view["bytes_done"], view["result"]) == \
        ("done", 2, 1000, {"hashed": 2})
    assert view["rate_bytes_s"] > 0 and view["eta_s"] is None and view["current"] == ""
    assert drain(queue) == [("queued", "queued"), ("started", "running"), ("done", "done")]


async def test_a_failing_job_is_recorded_and_logged_not_raised(hub, caplog):
    registry, queue = hub

    async def work(job: jobs.Job) -> dict:
        raise RuntimeError("disk on fire")

    with caplog.at_level(logging.ERROR, logger="server.jobs"):
        job = await registry.run(registry.create("scan"), work)
    assert job.state == "failed" and "disk on fire" in job.error
    assert any("disk on fire" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert drain(queue)[-1] == ("failed", "failed")


async def test_cancelling(hub):
    registry, _ = hub
    queued = registry.create("hash")
    assert registry.cancel(queued.id)["state"] == "cancelled"
    assert (await registry.run(queued, None)).state == "cancelled"  # never started
    with pytest.raises(Conflict):
        registry.cancel(queued.id)
    with pytest.raises(Invalid):
        registry.get("../etc")
    with pytest.raises(NotFound):
        registry.get("0" * 16)


async def test_only_the_newest_finished_jobs_are_kept(hub):
    registry, _ = hub
    for _ in range(jobs.KEEP_FINISHED + 5):
        registry.cancel(registry.create("scan").id)
    running = registry.create("hash")
    listed = registry.list()
    assert len(listed) == jobs.KEEP_FINISHED + 1 and listed[0]["id"] == running.id
