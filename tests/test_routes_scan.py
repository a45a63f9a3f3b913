"""/api/scan and /api/jobs over HTTP: the seed-004 shape, joining, job resources, cancelling,
errors as the JSON envelope, and progress on the events socket."""
from __future__ import annotations

import asyncio
import threading

import pytest

from server.app_keys import JOBS, SCANNER, STORE
from server.config import Kind
from tests.test_errors import assert_envelope
from tests.test_scanner import KINDS, TREE_MODELS, age

SEED_KEYS = {"status", "scanned", "added", "pending_ids", "skipped"}


@pytest.fixture
async def scan_client(make_client, make_tree):
    """A client over an app whose model folders hold a fresh tree that is not in the library."""

    async def make(**overrides):
        tree = make_tree()
        age(tree.root)
        kinds = {k: Kind(k, (tree.root / k,)) for k in KINDS}
        return await make_client(kinds=kinds, **overrides)

    return make


class StoreGate:
    """Holds the store thread until released, so a scan stays in progress as long as we like."""

    def __init__(self, client) -> None:
        self.event = threading.Event()
        self.held = asyncio.ensure_future(client.app[STORE].run(lambda db: self.event.wait(10)))

    async def release(self) -> None:
        self.event.set()
        await self.held


async def scan_job_appears(client) -> dict:
    for _ in range(500):
        jobs = client.app[JOBS].list("scan")
        if jobs:
            return jobs[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no scan job started")


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_scan_answers_the_seed_shape_with_the_extras(scan_client, method):
    client = await scan_client()
    response = await client.request(method, "/api/scan")
    assert response.status == 200
    body = await response.json()
    assert SEED_KEYS <= set(body)
    assert (body["status"], body["scanned"], body["added"], body["skipped"]) == \
        ("success", TREE_MODELS, TREE_MODELS, 0)
    assert len(body["pending_ids"]) == TREE_MODELS
    assert all(isinstance(i, int) for i in body["pending_ids"])
    assert {k: body[k] for k in ("changed", "moved", "missing", "returned", "deferred")} == \
        dict.fromkeys(("changed", "moved", "missing", "returned", "deferred"), 0)
    assert body["missing_roots"] == []
    job = await (await client.get(f"/api/jobs/{body['job']}")).json()
    assert (job["kind"], job["state"], job["result"]["added"]) == ("scan", "done", TREE_MODELS)


async def test_a_second_request_joins_the_running_scan(scan_client):
    client = await scan_client()
    gate = StoreGate(client)
    first = asyncio.ensure_future(client.post("/api/scan"))
    await scan_job_appears(client)
    second = asyncio.ensure_future(client.get("/api/scan"))
    await asyncio.sleep(0.3)  # time for the second request to reach the sidecar
    await gate.release()
    bodies = [await (await request).json() for request in (first, second)]
    assert bodies[0]["job"] == bodies[1]["job"] and bodies[0] == bodies[1]
    assert len(client.app[JOBS].list("scan")) == 1


async def test_jobs_are_listed_newest_first_and_filtered_by_kind(scan_client):
    client = await scan_client()
    body = await (await client.post("/api/scan")).json()
    await client.app[SCANNER].settled()
    listed = (await (await client.get("/api/jobs")).json())["jobs"]
    assert [job["id"] for job in listed] == [body["hash_job"], body["job"]]
    hashes = (await (await client.get("/api/jobs?kind=hash")).json())["jobs"]
    assert [job["id"] for job in hashes] == [body["hash_job"]]
    job = await (await client.get(f"/api/jobs/{body['hash_job']}")).json()
    assert set(job) >= {"id", "kind", "state", "files_done", "files_total", "bytes_done",
                        "bytes_total", "rate_bytes_s", "eta_s", "current", "started_at",
                        "finished_at", "error", "result"}


async def test_job_errors_are_json(scan_client):
    client = await scan_client()
    body = await (await client.post("/api/scan")).json()
    cases = [("GET", "/api/jobs/not-a-job", 400, "INVALID_JOB_ID"),
             ("GET", "/api/jobs/" + "0" * 16, 404, "JOB_NOT_FOUND"),
             ("POST", "/api/jobs/" + "0" * 16 + "/cancel", 404, "JOB_NOT_FOUND"),
             ("POST", f"/api/jobs/{body['job']}/cancel", 409, "JOB_FINISHED"),
             ("GET", "/api/jobs?kind=nope", 400, "INVALID_CHOICE"),
             ("DELETE", "/api/scan", 405, "METHOD_NOT_ALLOWED"),
             ("GET", f"/api/jobs/{body['job']}/cancel", 405, "METHOD_NOT_ALLOWED"),
             ("DELETE", "/api/jobs", 405, "METHOD_NOT_ALLOWED")]
    for method, path, status, code in cases:
        response = await client.request(method, path)
        assert response.status == status, (method, path)
        error = await response.json()
        assert_envelope(error)
        assert error["code"] == code, (method, path)


async def test_without_model_folders_a_scan_says_how_to_add_them(make_client):
    client = await make_client()
    response = await client.post("/api/scan")
    assert response.status == 503
    body = await response.json()
    assert_envelope(body)
    assert body["code"] == "NO_MODEL_FOLDERS" and "--models-dir" in body["error"]


async def test_a_cancelled_scan_changes_nothing_and_says_so(scan_client):
    client = await scan_client()
    gate = StoreGate(client)
    request = asyncio.ensure_future(client.post("/api/scan"))
    job = await scan_job_appears(client)
    cancel = await client.post(f"/api/jobs/{job['id']}/cancel")
    assert cancel.status == 200 and (await cancel.json())["cancel_requested"]
    await gate.release()
    response = await request
    assert response.status == 409
    body = await response.json()
    assert_envelope(body)
    assert body["code"] == "SCAN_CANCELLED" and body["details"]["job"] == job["id"]
    assert (await (await client.get(f"/api/jobs/{job['id']}")).json())["state"] == "cancelled"
    count = await client.app[STORE].run(
        lambda db: db.execute("SELECT count(*) FROM pending_import").fetchone()[0])
    assert count == 0


async def test_progress_arrives_on_the_scan_channel(scan_client):
    client = await scan_client()
    async with client.ws_connect("/api/ws") as socket:
        await socket.send_json({"type": "subscribe", "channel": "scan"})
        assert (await socket.receive_json())["type"] == "subscribed"
        body = await (await client.post("/api/scan")).json()
        events = []
        while not any(e["type"] == "done" and e["data"]["id"] == body["hash_job"] for e in events):
            events.append(await asyncio.wait_for(socket.receive_json(), 5))
    assert all(e["channel"] == "scan" for e in events)
    scan = [e["type"] for e in events if e["data"]["id"] == body["job"]]
    assert scan[0] == "queued" and "started" in scan and scan[-1] == "done"
    done = events[-1]["data"]
    assert (done["kind"], done["files_done"], done["files_total"]) == \
        ("hash", TREE_MODELS, TREE_MODELS)
    assert done["bytes_done"] == done["bytes_total"] > 0 and done["rate_bytes_s"] > 0
