"""The generation queue against the real ComfyUI, through the real manager (called by driver.py):
a workflow through our loader nodes, by sha256, completes with its output stored; the txt2img
template is checked against the real /object_info and, lacking CLIP weights, fails with
ComfyUI's own error."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from graphs import sampling_graph  # beside this script

TIMEOUT_S = 120.0


def call(api: str, key: str, method: str, path: str, body=None) -> tuple[int, object, bytes]:
    request = urllib.request.Request(
        api + path, data=json.dumps(body).encode() if body is not None else None, method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
            status = answer.status
            kind = answer.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        raw, status, kind = exc.read(), exc.code, exc.headers.get_content_type()
    return status, json.loads(raw) if kind == "application/json" else None, raw


def wait_finished(api: str, key: str, job_id: str) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        status, job, _ = call(api, key, "GET", f"/api/v1/queue/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {TIMEOUT_S:.0f} s"
        time.sleep(0.2)


def run(api: str, user_dir: Path, output_dir: Path, ckpt_sha: str, lora_sha: str,
        step=print) -> None:
    key = json.loads((user_dir / "hikaze" / "api-key.json").read_text())["key"]
    status, listed, _ = call(api, key, "GET", "/api/v1/servers")
    assert status == 200 and listed["servers"][0]["alias"] == "local", listed
    step(f"queue: the host ComfyUI is the server 'local' at {listed['servers'][0]['url']}")

    status, accepted, _ = call(api, key, "POST", "/api/v1/queue/jobs",
                               {"workflow": sampling_graph(ckpt_sha, lora_sha, seed=7, strength=0.5,
                                                              prefix="queue/latent"),
                                "attach_to": ckpt_sha})
    assert status == 202, accepted
    job = wait_finished(api, key, accepted["job_id"])
    assert job["status"] == "completed", job
    [output] = job["outputs"]
    assert output["kind"] == "latents" and output["size_bytes"] > 0, output
    status, _, content = call(api, key, "GET", output["url"])
    saved = output_dir / output["subfolder"] / output["filename"]
    assert status == 200 and content == saved.read_bytes(), (status, saved)
    assert job["started_at"] and job["progress"].get("max") == 2, job
    assert job["attached_images"] == [], job  # a latent is no picture for the gallery
    step(f"queue: workflow job completed on the real ComfyUI, {output['filename']} stored "
         f"({output['size_bytes']} bytes, same as ComfyUI's file); progress {job['progress']}")

    status, refused, _ = call(api, key, "POST", "/api/v1/queue/jobs", {
        "template": "txt2img", "params": {"checkpoint": ckpt_sha, "sampler_name": "no-such"}})
    assert status == 400 and refused["code"] == "INVALID_CHOICE", refused
    assert "euler" in refused["details"]["options"], refused
    status, accepted, _ = call(api, key, "POST", "/api/v1/queue/jobs", {
        "template": "txt2img", "params": {"checkpoint": ckpt_sha, "loras": [{"sha256": lora_sha}],
                                          "width": 64, "height": 64, "steps": 1}})
    assert status == 202, accepted
    job = wait_finished(api, key, accepted["job_id"])
    assert job["status"] == "failed" and "CLIPTextEncode" in job["error"], job
    assert job["params"]["seed"] >= 0, job["params"]
    step(f"queue: txt2img checked against the real /object_info ({len(refused['details']['options'])}"
         f" samplers); without CLIP weights it fails with ComfyUI's error: {job['error'][:90]}")
