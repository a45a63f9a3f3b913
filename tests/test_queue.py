"""The generation queue against a fake ComfyUI on loopback: every status path, restart
recovery, an unreachable server, outputs, attach_to, bad input and unknown ids."""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import pytest

from server import config as config_module
from server.app import create_app
from server.app_keys import API_KEY, GEN_QUEUE, STORE
from server.queue import Timings
from tests.factories import LibraryApi, add_tree_to_library, expect_error
from tests.fake_comfyui import SAMPLERS, FakeComfyUI

FAST = Timings(attempts=3, backoff_s=0.01, backoff_max_s=0.02, poll_s=0.02, idle_check_s=0.3)
WAIT_S = 20.0  # a safety net for a broken test, not a timing assertion


async def eventually(predicate) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


@pytest.fixture
async def comfy(aiohttp_server):
    fake = FakeComfyUI()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("/")).rstrip("/")
    return fake


@dataclass
class QueueApi(LibraryApi):
    comfy: FakeComfyUI = None

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.client.app[API_KEY].current()}"}

    def call(self, method: str, path: str, headers: dict | None = None, **kwargs):
        return self.client.request(method, path, headers={**self.headers, **(headers or {})},
                                   **kwargs)

    async def submit(self, body: dict, status: int = 202) -> dict:
        response = await self.call("POST", "/api/v1/queue/jobs", json=body)
        assert response.status == status, await response.text()
        return await response.json()

    async def job(self, job_id: str) -> dict:
        response = await self.call("GET", f"/api/v1/queue/jobs/{job_id}")
        assert response.status == 200, await response.text()
        return await response.json()

    async def wait(self, job_id: str, predicate) -> dict:
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            job = await self.job(job_id)
            if predicate(job):
                return job
            assert asyncio.get_running_loop().time() < deadline, job
            await asyncio.sleep(0.01)

    async def until(self, job_id: str, *statuses: str) -> dict:
        return await self.wait(job_id, lambda job: job["status"] in statuses)

    def txt2img(self, **params) -> dict:
        return {"template": "txt2img",
                "params": {"checkpoint": self.sha("base.safetensors"), **params}}


@pytest.fixture
async def make_api(comfy, aiohttp_client, make_config, make_tree):
    """make_api() → a QueueApi over an app whose `local` server is the fake ComfyUI; called
    again, a new app over the same data dir (a sidecar restart). `comfy` comes first, so the
    fake ComfyUI outlives every sidecar made here."""
    tree = make_tree()
    kinds = {k: config_module.Kind(k, (tree.root / k,)) for k in ("checkpoints", "loras", "vae")}
    started = []

    async def make() -> QueueApi:
        app = create_app(make_config(comfyui_url=comfy.url, kinds=kinds))
        app[GEN_QUEUE].timings = FAST
        client = await aiohttp_client(app)
        if not started:
            await app[STORE].run(add_tree_to_library, tree)
        started.append(client)
        return QueueApi(client, tree, comfy)

    return make


@pytest.fixture
async def api(make_api) -> QueueApi:
    return await make_api()


# --- success ---------------------------------------------------------------------------------

async def test_txt2img_runs_through_our_loader_nodes_and_stores_its_images(api):
    lora = api.sha("ink.safetensors")
    accepted = await api.submit(api.txt2img(loras=[{"sha256": lora, "strength_model": 0.5}],
                                            positive_prompt="a fox", seed=-1, steps=4))
    assert accepted["status"] == "pending" and len(accepted["job_id"]) == 32
    job = await api.until(accepted["job_id"], "completed")

    graph = api.comfy.submitted[0]["prompt"]
    assert graph["1"]["class_type"] == "HikazeCheckpointLoader"
    assert api.sha("base.safetensors") in graph["1"]["inputs"]["hikaze_payload"]
    assert f'"sha256": "{lora}"' in graph["2"]["inputs"]["hikaze_payload"]
    assert '"strength_model": 0.5' in graph["2"]["inputs"]["hikaze_payload"]
    assert graph["6"]["inputs"]["seed"] == job["params"]["seed"] >= 0  # the drawn seed is kept
    assert graph["6"]["inputs"]["steps"] == 4 and graph["3"]["inputs"]["text"] == "a fox"
    assert job["workflow"] == graph and job["prompt_id"]
    assert job["progress"] == {"value": 3, "max": 3, "node": "6"}
    assert job["created_at"] <= job["started_at"] <= job["completed_at"] and job["error"] is None

    [output] = job["outputs"]
    assert output["kind"] == "images" and output["filename"] == "hikaze_00001_.png"
    response = await api.call("GET", output["url"])
    assert response.status == 200 and response.content_type == "image/png"
    assert await response.read() == api.comfy.files[("hikaze_00001_.png", "txt2img", "output")]


async def test_a_raw_workflow_keeps_every_output_file(api):
    workflow = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64,
                                                                  "batch_size": 1}},
                "2": {"class_type": "SaveLatent", "inputs": {"samples": ["1", 0]}}}
    accepted = await api.submit({"workflow": workflow, "params": {"note": "kept"}})
    job = await api.until(accepted["job_id"], "completed")
    assert job["template"] is None and job["params"] == {"note": "kept"}
    [output] = job["outputs"]
    assert output["kind"] == "latents" and output["content_type"] == "application/octet-stream"
    assert await (await api.call("GET", output["url"])).read() == b"latent bytes 1"


async def test_the_queue_channel_reports_updates_and_completion(api):
    socket_ = await api.client.ws_connect("/api/ws")
    await socket_.send_json({"type": "subscribe", "channel": "queue"})
    assert (await socket_.receive_json())["type"] == "subscribed"
    accepted = await api.submit(api.txt2img())
    seen = []
    while not seen or seen[-1]["type"] != "job_completed":
        seen.append(await socket_.receive_json(timeout=WAIT_S))
    assert {e["channel"] for e in seen} == {"queue"}
    assert {e["data"]["job_id"] for e in seen} == {accepted["job_id"]}
    statuses = [e["data"]["status"] for e in seen if e["type"] == "job_updated"]
    assert statuses[0] == "pending" and "processing" in statuses
    assert "workflow" not in seen[-1]["data"] and seen[-1]["data"]["outputs"]
    await socket_.close()


async def test_attach_to_makes_the_images_user_images_of_the_model(api):
    sha = api.sha("base.safetensors")
    accepted = await api.submit({**api.txt2img(positive_prompt="glow", negative_prompt="blur",
                                               seed=42), "attach_to": sha.upper()})
    job = await api.until(accepted["job_id"], "completed")
    [attached] = job["attached_images"]
    model = await (await api.call("GET", f"/api/models/{sha}")).json()
    [image] = model["images"]
    assert attached["seq"] == image["seq"] and attached["url"] == image["url"]
    assert image["source"] == "generated" and image["prompt"] == "glow"
    assert image["negative_prompt"] == "blur" and (image["width"], image["height"]) == (32, 24)
    params = image["generation_params"]
    assert params["seed"] == 42 and params["sampler_name"] == "euler"
    assert params["workflow"] == job["workflow"] and params["job_id"] == job["job_id"]


# --- failure, cancel, lost connections -----------------------------------------------------

async def test_an_execution_error_fails_the_job_with_comfyuis_message(api):
    api.comfy.fail_with = "mat1 and mat2 shapes cannot be multiplied"
    socket_ = await api.client.ws_connect("/api/ws")
    await socket_.send_json({"type": "subscribe", "channel": "queue"})
    await socket_.receive_json()
    accepted = await api.submit(api.txt2img())
    job = await api.until(accepted["job_id"], "failed")
    assert "mat1 and mat2" in job["error"] and "KSampler" in job["error"]
    assert job["outputs"] == [] and job["completed_at"]
    types = []
    while "job_failed" not in types:
        types.append((await socket_.receive_json(timeout=WAIT_S))["type"])
    await socket_.close()


async def test_cancel_while_pending_takes_it_off_the_servers_queue(api):
    api.comfy.start_gate.clear()
    accepted = await api.submit(api.txt2img())
    job = await api.wait(accepted["job_id"], lambda j: j["prompt_id"])
    response = await api.call("POST", f"/api/v1/queue/jobs/{job['job_id']}/cancel")
    assert response.status == 200
    cancelled = (await response.json())["job"]
    assert cancelled["status"] == "cancelled" and cancelled["completed_at"]
    assert api.comfy.deleted == [job["prompt_id"]] and not api.comfy.pending
    await expect_error(await api.call("POST", f"/api/v1/queue/jobs/{job['job_id']}/cancel"),
                       409, "JOB_FINISHED")


async def test_cancel_while_running_interrupts_it(api):
    api.comfy.finish_gate.clear()
    accepted = await api.submit(api.txt2img())
    job = await api.until(accepted["job_id"], "processing")
    response = await api.call("POST", f"/api/v1/queue/jobs/{job['job_id']}/cancel")
    assert (await response.json())["job"]["status"] == "cancelled"
    assert api.comfy.interrupts == [{"prompt_id": job["prompt_id"]}]
    await api.wait(job["job_id"], lambda j: job["prompt_id"] in api.comfy.history)
    assert (await api.job(job["job_id"]))["status"] == "cancelled"


async def test_cancel_while_the_prompt_is_on_its_way_withdraws_it_once_it_lands(api):
    api.comfy.prompt_gate.clear()
    api.comfy.start_gate.clear()
    accepted = await api.submit(api.txt2img())
    await asyncio.wait_for(api.comfy.prompt_arrived.wait(), WAIT_S)
    response = await api.call("POST", f"/api/v1/queue/jobs/{accepted['job_id']}/cancel")
    assert (await response.json())["job"]["status"] == "cancelled"
    api.comfy.prompt_gate.set()
    await eventually(lambda: api.comfy.deleted)
    assert not api.comfy.pending and len(api.comfy.submitted) == 1
    assert (await api.job(accepted["job_id"]))["status"] == "cancelled"


async def test_an_interrupt_from_elsewhere_cancels_the_job(api):
    api.comfy.finish_gate.clear()
    accepted = await api.submit(api.txt2img())
    await api.until(accepted["job_id"], "processing")
    api.comfy.running.interrupted.set()  # someone pressed Cancel in ComfyUI's own page
    job = await api.until(accepted["job_id"], "cancelled", "failed")
    assert job["status"] == "cancelled" and job["error"] == "Interrupted on the ComfyUI server"
    assert job["outputs"] == []


async def test_a_prompt_the_server_forgot_fails_the_job(api):
    api.comfy.start_gate.clear()
    accepted = await api.submit(api.txt2img())
    await api.wait(accepted["job_id"], lambda j: j["prompt_id"])
    await api.comfy.restart()
    job = await api.until(accepted["job_id"], "failed")
    assert "no longer knows prompt" in job["error"] and job["prompt_id"] in job["error"]


async def test_a_dropped_websocket_falls_back_to_history(api):
    api.comfy.drop_sockets = True
    accepted = await api.submit(api.txt2img())
    job = await api.until(accepted["job_id"], "completed", "failed")
    assert job["status"] == "completed" and len(job["outputs"]) == 1


async def test_an_unreachable_server_fails_the_job_after_bounded_retries(api):
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    response = await api.call("POST", "/api/v1/servers",
                              json={"alias": "gone", "url": f"http://127.0.0.1:{port}"})
    assert response.status == 201
    accepted = await api.submit({**api.txt2img(), "target_server_alias": "gone"})
    job = await api.until(accepted["job_id"], "failed")
    assert "'gone'" in job["error"] and "after 3 attempts" in job["error"]
    assert job["retry_count"] == 2 and job["prompt_id"] is None


async def test_a_stored_address_aiohttp_will_not_use_fails_the_job_not_the_request(api):
    # Servers added now are checked (tests/test_servers.py); one stored before that check, with
    # a host aiohttp refuses (`http://8`), must still give a failed job, never a 500.
    now = 1_700_000_000_000
    await api.client.app[STORE].run(lambda db: db.execute(
        "INSERT INTO servers(alias, url, created_at, updated_at) VALUES ('odd', 'http://8', ?, ?)",
        [now, now]))
    accepted = await api.submit({**api.txt2img(), "target_server_alias": "odd"})
    job = await api.until(accepted["job_id"], "failed")
    assert "'odd'" in job["error"] and "http://8" in job["error"]


@pytest.mark.parametrize("hold", ["start_gate", "finish_gate"])
async def test_a_restarted_sidecar_picks_unfinished_jobs_up_again(make_api, comfy, hold):
    first = await make_api()
    getattr(comfy, hold).clear()
    accepted = await first.submit(first.txt2img())
    expected = "pending" if hold == "start_gate" else "processing"
    job = await first.wait(accepted["job_id"], lambda j: j["prompt_id"] and j["status"] == expected)
    await first.client.close()  # the sidecar stops; ComfyUI carries on
    getattr(comfy, hold).set()
    await eventually(lambda: job["prompt_id"] in comfy.history)
    second = await make_api()
    done = await second.until(job["job_id"], "completed")
    assert done["prompt_id"] == job["prompt_id"] and len(comfy.submitted) == 1
    assert len(done["outputs"]) == 1


# --- input and ids ---------------------------------------------------------------------------

async def test_bad_input_is_400_and_queues_nothing(api):
    sha = api.sha("base.safetensors")
    bad = [
        ({"template": "txt2img"}, "params"),
        ({"template": "img2img", "params": {"checkpoint": sha}}, "template"),
        ({"params": {"checkpoint": sha}}, "workflow"),
        ({**api.txt2img(), "workflow": {"1": {"class_type": "SaveImage", "inputs": {}}}}, "workflow"),
        ({"workflow": {"1": {"inputs": {}}}}, "workflow.1"),
        ({"workflow": []}, "workflow"),
        ({"workflow": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}, "workflow"),
        (api.txt2img(steps="20"), "params.steps"),
        (api.txt2img(width=513), "params.width"),
        (api.txt2img(seed=-2), "params.seed"),
        (api.txt2img(loras=[{"sha256": "x"}]), "params.loras.0.sha256"),
        (api.txt2img(loras=[{"sha256": "ab" * 32}]), "params.loras.0.sha256"),
        ({"template": "txt2img", "params": {"checkpoint": "cd" * 32}}, "params.checkpoint"),
        (api.txt2img(extra=1), "params"),
        (api.txt2img(scheduler="sideways"), "params.scheduler"),
        ({**api.txt2img(), "attach_to": "ef" * 32}, "attach_to"),
        ({**api.txt2img(), "attach_to": "../etc"}, "attach_to"),
        ({**api.txt2img(), "target_server_alias": "nowhere"}, "target_server_alias"),
        ({**api.txt2img(), "target_server_alias": "../x"}, "target_server_alias"),
        ({**api.txt2img(), "unknown": True}, ""),
        ([], ""),
    ]
    for body, field in bad:
        error = await expect_error(await api.call("POST", "/api/v1/queue/jobs", json=body), 400)
        assert error["details"].get("field", "") == field, (body, error)
    sampler = await expect_error(await api.call("POST", "/api/v1/queue/jobs",
                                                json=api.txt2img(sampler_name="Euler a")), 400,
                                 "INVALID_CHOICE")
    assert sampler["details"]["options"] == SAMPLERS and "euler_ancestral" in sampler["error"]
    await expect_error(await api.call("POST", "/api/v1/queue/jobs", data=b"{"), 415)
    await expect_error(await api.call("POST", "/api/v1/queue/jobs", data=b"{",
                                      headers={"Content-Type": "application/json"}),
                       400, "BAD_JSON")
    stats = await (await api.call("GET", "/api/v1/queue/stats")).json()
    assert stats["total"] == 0 and api.comfy.submitted == []


async def test_unknown_and_malformed_job_ids(api):
    unknown, malformed = "0" * 32, "../../etc"
    for method, tail in [("GET", ""), ("POST", "/cancel"), ("DELETE", ""), ("GET", "/outputs/0")]:
        await expect_error(await api.call(method, f"/api/v1/queue/jobs/{unknown}{tail}"), 404,
                           "JOB_NOT_FOUND")
        await expect_error(await api.call(method, f"/api/v1/queue/jobs/ABC{tail}"), 400,
                           "INVALID_JOB_ID")
    await expect_error(await api.call("GET", f"/api/v1/queue/jobs/{malformed}"), 404)
    done = await api.until((await api.submit(api.txt2img()))["job_id"], "completed")
    await expect_error(await api.call("GET", f"/api/v1/queue/jobs/{done['job_id']}/outputs/1"),
                       404, "OUTPUT_NOT_FOUND")
    await expect_error(await api.call("GET", f"/api/v1/queue/jobs/{done['job_id']}/outputs/-1"),
                       400)


async def test_list_filters_orders_pages_and_counts(api):
    api.comfy.start_gate.clear()
    first = (await api.submit(api.txt2img()))["job_id"]
    second = (await api.submit(api.txt2img()))["job_id"]
    await api.wait(second, lambda j: j["prompt_id"])
    await api.call("POST", f"/api/v1/queue/jobs/{first}/cancel")
    listed = await (await api.call("GET", "/api/v1/queue/jobs")).json()
    assert listed["total"] == 2 and [j["job_id"] for j in listed["jobs"]] == [second, first]
    assert "workflow" not in listed["jobs"][0]
    oldest = await (await api.call("GET", "/api/v1/queue/jobs?order=asc&limit=1")).json()
    assert oldest["total"] == 2 and [j["job_id"] for j in oldest["jobs"]] == [first]
    page = await (await api.call("GET", "/api/v1/queue/jobs?order=asc&limit=1&offset=1")).json()
    assert [j["job_id"] for j in page["jobs"]] == [second]
    cancelled = await (await api.call("GET", "/api/v1/queue/jobs?status=cancelled")).json()
    assert [j["job_id"] for j in cancelled["jobs"]] == [first]
    stats = await (await api.call("GET", "/api/v1/queue/stats")).json()
    assert stats == {"pending": 1, "processing": 0, "completed": 0, "failed": 0, "cancelled": 1,
                     "total": 2}
    for query in ("status=done", "limit=0", "limit=x", "offset=-1", "order=up"):
        await expect_error(await api.call("GET", f"/api/v1/queue/jobs?{query}"), 400)


async def test_delete_removes_a_finished_job_and_its_files_but_not_an_active_one(api):
    done = await api.until((await api.submit(api.txt2img()))["job_id"], "completed")
    folder = api.client.app[GEN_QUEUE].outputs_dir / done["job_id"]
    assert len(list(folder.iterdir())) == 1
    response = await api.call("DELETE", f"/api/v1/queue/jobs/{done['job_id']}")
    assert response.status == 200 and not folder.exists()
    await expect_error(await api.call("GET", f"/api/v1/queue/jobs/{done['job_id']}"), 404)
    api.comfy.start_gate.clear()
    active = (await api.submit(api.txt2img()))["job_id"]
    await expect_error(await api.call("DELETE", f"/api/v1/queue/jobs/{active}"), 409, "JOB_ACTIVE")
    await expect_error(await api.call("DELETE", "/api/v1/servers/local"), 403)


async def test_without_a_server_a_job_is_refused(make_client):
    client = await make_client()
    response = await client.post("/api/v1/queue/jobs", json={"workflow": {
        "1": {"class_type": "SaveImage", "inputs": {}}}},
        headers={"Authorization": f"Bearer {client.app[API_KEY].current()}"})
    await expect_error(response, 400, "NO_SERVER")


async def test_a_server_with_unfinished_jobs_cannot_be_deleted(api):
    await api.call("POST", "/api/v1/servers", json={"alias": "same", "url": api.comfy.url})
    api.comfy.start_gate.clear()
    job = (await api.submit({**api.txt2img(), "target_server_alias": "same"}))["job"]
    assert job["target_server_alias"] == "same" and job["server_url"] == api.comfy.url
    await expect_error(await api.call("DELETE", "/api/v1/servers/same"), 409, "SERVER_BUSY")
    await api.call("POST", f"/api/v1/queue/jobs/{job['job_id']}/cancel")
    assert (await api.call("DELETE", "/api/v1/servers/same")).status == 200
