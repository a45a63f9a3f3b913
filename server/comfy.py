"""A client for one ComfyUI server: /prompt, /history, /queue, /interrupt, /view, /object_info
and the /ws message stream (COMFYUI.md §4.2)."""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 30.0
CHECK_TIMEOUT_S = 5.0  # /object_info while a client waits for its POST to be answered
MAX_OUTPUT_BYTES = 512 * 1024 * 1024


class ComfyError(Exception):
    """ComfyUI answered, but refused or failed the request; the message says why."""


class Unreachable(ComfyError):
    """ComfyUI could not be reached (refused connection, timeout, 5xx)."""


@dataclass(frozen=True)
class Output:
    """One file an output node produced, as /history lists it and /view serves it."""

    node_id: str
    kind: str  # the list it came from: images, gifs, latents, ...
    filename: str
    subfolder: str
    type: str  # output | temp | input


class Messages:
    """The JSON messages of one ComfyUI websocket (binary preview frames are skipped)."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket

    async def next(self, timeout: float) -> dict | None:
        """The next message, or None after `timeout` seconds of quiet. Raises EOFError once
        the socket has closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                message = await self.socket.receive(timeout=max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return None
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise EOFError("ComfyUI closed the websocket")
            if message.type == aiohttp.WSMsgType.TEXT:
                try:
                    parsed = json.loads(message.data)
                except ValueError:
                    continue
                if isinstance(parsed, dict) and isinstance(parsed.get("data"), dict):
                    return parsed

    async def close(self) -> None:
        await self.socket.close()


class ComfyClient:
    """Talks to the ComfyUI at `url` over a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url.rstrip("/")

    async def object_info(self, timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        return await self._json("GET", "/object_info", timeout=timeout)

    async def submit(self, workflow: dict, client_id: str) -> str:
        """Queue `workflow` (API format); returns ComfyUI's prompt id. A workflow ComfyUI
        refuses raises ComfyError with its node errors."""
        answer = await self._json("POST", "/prompt", {"prompt": workflow, "client_id": client_id},
                                  refused_ok=True)
        if "prompt_id" not in answer:
            raise ComfyError(refusal_message(answer))
        return str(answer["prompt_id"])

    async def history(self, prompt_id: str) -> dict | None:
        """The finished prompt's history entry, or None while it has none."""
        answer = await self._json("GET", f"/history/{prompt_id}")
        entry = answer.get(prompt_id) if isinstance(answer, dict) else None
        return entry if isinstance(entry, dict) else None

    async def queue_state(self, prompt_id: str) -> str | None:
        """"running", "pending", or None when the prompt is in neither of ComfyUI's queues."""
        answer = await self._json("GET", "/queue")
        for state, key in (("running", "queue_running"), ("pending", "queue_pending")):
            if any(len(item) > 1 and item[1] == prompt_id for item in answer.get(key, [])):
                return state
        return None

    async def remove_pending(self, prompt_id: str) -> None:
        await self._json("POST", "/queue", {"delete": [prompt_id]})

    async def interrupt(self, prompt_id: str) -> None:
        # Newer servers interrupt only the named prompt; older ones ignore the body.
        await self._json("POST", "/interrupt", {"prompt_id": prompt_id})

    async def view(self, output: Output) -> bytes:
        params = {"filename": output.filename, "subfolder": output.subfolder, "type": output.type}
        try:
            async with self._request("GET", "/view", params=params) as response:
                await _raise_for_status(response, "/view")
                if (response.content_length or 0) > MAX_OUTPUT_BYTES:
                    raise ComfyError(f"Output {output.filename} is over {MAX_OUTPUT_BYTES} bytes")
                return await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            raise Unreachable(f"Cannot fetch {output.filename} from ComfyUI at {self.url}: "
                              f"{exc or type(exc).__name__}") from exc

    async def open_messages(self, client_id: str) -> Messages:
        """ComfyUI's websocket for `client_id` (open it before submitting, so no message of
        the prompt is missed). Raises Unreachable when it cannot connect."""
        try:
            socket = await self.session.ws_connect(
                f"{self.url}/ws", params={"clientId": client_id}, heartbeat=30,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise Unreachable(f"Cannot open ComfyUI's websocket at {self.url}/ws: {exc}") from exc
        return Messages(socket)

    def _request(self, method: str, path: str, timeout: float = REQUEST_TIMEOUT_S, **kwargs: Any):
        return self.session.request(method, self.url + path,
                                    timeout=aiohttp.ClientTimeout(total=timeout), **kwargs)

    async def _json(self, method: str, path: str, body: Any = None, refused_ok: bool = False,
                    timeout: float = REQUEST_TIMEOUT_S) -> Any:
        try:
            async with self._request(method, path, timeout, json=body) as response:
                if not (refused_ok and response.status == 400):
                    await _raise_for_status(response, path)
                text = await response.text()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            # ClientError also covers an address aiohttp will not use (InvalidURL) and a broken
            # answer; ValueError an undecodable one. The job then fails with this message.
            raise Unreachable(f"Cannot reach ComfyUI at {self.url} ({path}): "
                              f"{exc or type(exc).__name__}") from exc
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise ComfyError(f"ComfyUI at {self.url} answered {path} with something not JSON") from exc


async def _raise_for_status(response: aiohttp.ClientResponse, path: str) -> None:
    if response.status < 400:
        return
    text = (await response.text())[:500]
    error = Unreachable if response.status >= 500 else ComfyError
    raise error(f"ComfyUI answered {path} with HTTP {response.status}: {text}")


def refusal_message(answer: Any) -> str:
    """One line from /prompt's refusal: its error plus each node's first error."""
    if not isinstance(answer, dict):
        return "ComfyUI refused the workflow"
    error = answer.get("error")
    parts = [error.get("message", "") if isinstance(error, dict) else str(error or "")]
    for node_id, node in (answer.get("node_errors") or {}).items():
        errors = node.get("errors") if isinstance(node, dict) else None
        if errors and isinstance(errors[0], dict):
            detail = errors[0].get("details") or errors[0].get("message", "")
            parts.append(f"node {node_id} ({node.get('class_type', '?')}): {detail}")
    return "ComfyUI refused the workflow: " + "; ".join(p for p in parts if p)


def outputs_of(entry: dict) -> list[Output]:
    """Every file listed in a history entry's outputs, in node order."""
    found = []
    for node_id, ui in (entry.get("outputs") or {}).items():
        for kind, items in (ui.items() if isinstance(ui, dict) else ()):
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict) and isinstance(item.get("filename"), str):
                    found.append(Output(str(node_id), kind, item["filename"],
                                        str(item.get("subfolder", "")), str(item.get("type", "output"))))
    return found


def combo_options(object_info: dict, node: str, input_name: str) -> list[str] | None:
    """The choices of a COMBO input in /object_info (old `[[...]]` and new `["COMBO",
    {"options": [...]}]` forms), or None if the node or input is not there."""
    inputs = (object_info.get(node) or {}).get("input") or {}
    spec = {**inputs.get("optional", {}), **inputs.get("required", {})}.get(input_name)
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], list):
        return [str(v) for v in spec[0]]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return [str(v) for v in spec[1].get("options", [])]
    return None
