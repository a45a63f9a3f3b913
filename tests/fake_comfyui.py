"""A fake ComfyUI server on loopback that behaves as COMFYUI.md §4 describes: /prompt queues a
prompt, one worker runs them in order, messages go to the prompt's client over /ws, the result
lands in /history after execution_success, outputs are served by /view.

Knobs for the tests: `start_gate` (cleared: prompts stay pending), `finish_gate` (cleared: a
running prompt waits), `fail_with` (the next prompt fails with this message), `drop_sockets`
(close every websocket once a prompt starts), `prompt_gate` (cleared: /prompt answers only once
it is set again), `steps` (progress messages per prompt).
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from tests.factories import png_bytes

SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m"]
SCHEDULERS = ["normal", "karras"]
OBJECT_INFO = {
    "HikazeCheckpointLoader": {"input": {"required": {"hikaze_payload": ["STRING", {}]}}},
    "HikazeLoraPowerLoader": {"input": {"required": {"model": ["MODEL"], "clip": ["CLIP"],
                                                     "hikaze_payload": ["STRING", {}]}}},
    "CLIPTextEncode": {"input": {"required": {"text": ["STRING", {}], "clip": ["CLIP"]}}},
    "EmptyLatentImage": {"input": {"required": {"width": ["INT", {}], "height": ["INT", {}],
                                                "batch_size": ["INT", {}]}}},
    # the old COMBO form for the sampler, the new one for the scheduler: both appear in the wild
    "KSampler": {"input": {"required": {"sampler_name": [SAMPLERS],
                                        "scheduler": ["COMBO", {"options": SCHEDULERS}]}}},
    "VAEDecode": {"input": {"required": {"samples": ["LATENT"], "vae": ["VAE"]}}},
    "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}, "output_node": True},
    "SaveLatent": {"input": {"required": {"samples": ["LATENT"]}}, "output_node": True},
}


@dataclass
class Prompt:
    id: str
    number: int
    graph: dict
    client_id: str
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)


class FakeComfyUI:
    def __init__(self) -> None:
        self.start_gate = asyncio.Event()
        self.start_gate.set()
        self.finish_gate = asyncio.Event()
        self.finish_gate.set()
        self.prompt_gate = asyncio.Event()  # cleared: /prompt holds its answer
        self.prompt_gate.set()
        self.prompt_arrived = asyncio.Event()
        self.fail_with: str | None = None
        self.drop_sockets = False
        self.steps = 3
        self.pending: list[Prompt] = []
        self.running: Prompt | None = None
        self.history: dict[str, dict] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.submitted: list[dict] = []
        self.deleted: list[str] = []
        self.interrupts: list[dict] = []
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self._wake = asyncio.Event()
        self._number = 0
        self.app = web.Application()
        self.app.add_routes([
            web.get("/object_info", self.object_info), web.post("/prompt", self.prompt),
            web.get("/history/{id}", self.history_of), web.get("/queue", self.queue),
            web.post("/queue", self.queue_edit), web.post("/interrupt", self.interrupt),
            web.get("/view", self.view), web.get("/ws", self.socket)])
        self.app.cleanup_ctx.append(self._worker)

    # --- routes --------------------------------------------------------------------------
    async def object_info(self, request: web.Request) -> web.Response:
        return web.json_response(OBJECT_INFO)

    async def prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.prompt_arrived.set()
        await self.prompt_gate.wait()
        graph = body.get("prompt") or {}
        unknown = [n.get("class_type") for n in graph.values() if n.get("class_type") not in OBJECT_INFO]
        if unknown:
            return web.json_response({"error": {"type": "invalid_prompt", "message":
                                                f"Cannot execute because node {unknown[0]} does not exist."},
                                      "node_errors": {}}, status=400)
        self.submitted.append(body)
        self._number += 1
        prompt = Prompt(str(uuid.uuid4()), self._number, graph, body.get("client_id", ""))
        self.pending.append(prompt)
        self._wake.set()
        return web.json_response({"prompt_id": prompt.id, "number": prompt.number, "node_errors": {}})

    async def history_of(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def queue(self, request: web.Request) -> web.Response:
        item = lambda p: [p.number, p.id, p.graph, {"client_id": p.client_id}, []]  # noqa: E731
        return web.json_response({"queue_running": [item(self.running)] if self.running else [],
                                  "queue_pending": [item(p) for p in self.pending]})

    async def queue_edit(self, request: web.Request) -> web.Response:
        body = await request.json()
        for prompt_id in body.get("delete", []):
            self.deleted.append(prompt_id)
            self.pending = [p for p in self.pending if p.id != prompt_id]
        return web.Response()

    async def interrupt(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self.interrupts.append(body)
        if self.running and body.get("prompt_id") in (None, self.running.id):
            self.running.interrupted.set()
        return web.Response()

    async def view(self, request: web.Request) -> web.Response:
        key = (request.query.get("filename", ""), request.query.get("subfolder", ""),
               request.query.get("type", "output"))
        if key not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[key], content_type="image/png")

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        client_id = request.query.get("clientId") or uuid.uuid4().hex
        self.sockets[client_id] = socket
        await socket.send_json({"type": "status", "data": {"status": {"exec_info": {
            "queue_remaining": len(self.pending)}}, "sid": client_id}})
        async for _ in socket:
            pass
        if self.sockets.get(client_id) is socket:
            del self.sockets[client_id]
        return socket

    async def restart(self) -> None:
        """Forget every queued prompt and close every websocket, as a restarted ComfyUI would."""
        self.pending.clear()
        for socket in list(self.sockets.values()):
            await socket.close()

    # --- the worker ----------------------------------------------------------------------
    async def _worker(self, app: web.Application):
        task = asyncio.create_task(self._run_all())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for socket in list(self.sockets.values()):
            await socket.close()

    async def _run_all(self) -> None:
        while True:
            await self.start_gate.wait()
            if not self.pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            self.running = self.pending.pop(0)
            try:
                await self._execute(self.running)
            finally:
                self.running = None

    async def _execute(self, prompt: Prompt) -> None:
        await self._send(prompt, "execution_start", {})
        await self._send(prompt, "executing", {"node": "1"})
        if self.drop_sockets:
            for socket in list(self.sockets.values()):
                await socket.close()
        for value in range(1, self.steps + 1):
            await self._send(prompt, "progress", {"value": value, "max": self.steps, "node": "6"})
        finish = asyncio.ensure_future(self.finish_gate.wait())
        stop = asyncio.ensure_future(prompt.interrupted.wait())
        await asyncio.wait([finish, stop], return_when=asyncio.FIRST_COMPLETED)
        finish.cancel(), stop.cancel()
        if prompt.interrupted.is_set():
            data = {"prompt_id": prompt.id, "node_id": "6", "node_type": "KSampler", "executed": []}
            await self._send(prompt, "execution_interrupted", data)
            self._record(prompt, "error", [["execution_interrupted", data]], {})
        elif self.fail_with:
            data = {"prompt_id": prompt.id, "node_id": "6", "node_type": "KSampler",
                    "exception_type": "RuntimeError", "exception_message": self.fail_with}
            self.fail_with = None
            await self._send(prompt, "execution_error", data)
            self._record(prompt, "error", [["execution_error", data]], {})
        else:
            outputs = self._outputs(prompt)
            await self._send(prompt, "execution_success", {})
            await asyncio.sleep(0.01)  # ComfyUI writes the history just after this message
            self._record(prompt, "success", [["execution_success", {"prompt_id": prompt.id}]], outputs)

    def _outputs(self, prompt: Prompt) -> dict:
        outputs = {}
        for node_id, node in prompt.graph.items():
            if node["class_type"] == "SaveImage":
                name = f"hikaze_{prompt.number:05}_.png"
                self.files[(name, "txt2img", "output")] = png_bytes((32, 24), (prompt.number, 90, 160))
                outputs[node_id] = {"images": [{"filename": name, "subfolder": "txt2img", "type": "output"}]}
            elif node["class_type"] == "SaveLatent":
                name = f"latent_{prompt.number:05}_.latent"
                self.files[(name, "", "output")] = b"latent bytes %d" % prompt.number
                outputs[node_id] = {"latents": [{"filename": name, "subfolder": "", "type": "output"}]}
        return outputs

    def _record(self, prompt: Prompt, status: str, messages: list, outputs: dict) -> None:
        self.history[prompt.id] = {
            "prompt": [prompt.number, prompt.id, prompt.graph, {}, list(outputs)],
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success", "messages": messages}}

    async def _send(self, prompt: Prompt, kind: str, data: dict) -> None:
        socket = self.sockets.get(prompt.client_id)
        if socket is not None and not socket.closed:
            await socket.send_json({"type": kind, "data": {**data, "prompt_id": prompt.id}})
