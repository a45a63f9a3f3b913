"""/api/ws: the events WebSocket. Send {"type": "subscribe"|"unsubscribe", "channel": ...}."""
from __future__ import annotations

import asyncio
import json

from aiohttp import WSMsgType, web

from ..app_keys import EVENTS
from ..events import CHANNELS

routes = web.RouteTableDef()


@routes.get("/api/ws")
async def events_socket(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(heartbeat=30)
    await socket.prepare(request)
    hub = request.app[EVENTS]
    subscriber = hub.subscribe()
    sender = asyncio.create_task(_send(socket, subscriber.queue))
    try:
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await _handle(socket, subscriber, message.data)
    finally:
        sender.cancel()
        hub.unsubscribe(subscriber)
    return socket


async def _handle(socket: web.WebSocketResponse, subscriber, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    kind = message.get("type") if isinstance(message, dict) else None
    channel = message.get("channel") if isinstance(message, dict) else None
    if kind not in ("subscribe", "unsubscribe") or channel not in CHANNELS:
        await socket.send_json({"type": "error", "error": "Send {\"type\": \"subscribe\", "
                                f"\"channel\": one of {sorted(CHANNELS)}}}", "code": "BAD_MESSAGE"})
        return
    (subscriber.channels.add if kind == "subscribe" else subscriber.channels.discard)(channel)
    await socket.send_json({"type": f"{kind}d", "channel": channel})


async def _send(socket: web.WebSocketResponse, queue: asyncio.Queue) -> None:
    while not socket.closed:
        await socket.send_json(await queue.get())
