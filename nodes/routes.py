"""The routes we add to ComfyUI's server: where the manager listens (`/hikaze/sniffer_port`)
and a streaming proxy to it (`/hikaze/proxy/{tail}`) for browsers that reach only ComfyUI's port.

Both are added to `PromptServer.instance.routes` while ComfyUI imports the extension: ComfyUI
then serves them under `/api` too, and its router is frozen once the server starts.
"""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, WSMsgType, web

from .sidecar import Sidecar

CHUNK_BYTES = 64 * 1024
# Per-connection headers (RFC 9110 §7.6.1) and the ones the proxy sets itself.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "transfer-encoding", "upgrade", "host"})


def register(routes: Any, sidecar: Sidecar) -> None:
    """Add our routes to a RouteTableDef (ComfyUI's PromptServer.instance.routes)."""

    @routes.get("/hikaze/sniffer_port")
    async def sniffer_port(request: web.Request) -> web.Response:
        return web.json_response(sidecar.status.as_json(), headers={"Cache-Control": "no-store"})

    @routes.route("*", "/hikaze/proxy/{tail:.*}")
    async def proxy(request: web.Request) -> web.StreamResponse:
        return await forward(request, sidecar)


async def forward(request: web.Request, sidecar: Sidecar) -> web.StreamResponse:
    """Pass one request to the manager and stream its answer back unchanged."""
    status = sidecar.status
    if status.state != "running" or not status.port:
        return web.json_response({"error": f"The Hikaze manager is not available ({status.state})",
                                  "code": "SIDECAR_UNAVAILABLE", "details": status.as_json()},
                                 status=503)
    host = f"[{sidecar.connect_host}]" if ":" in sidecar.connect_host else sidecar.connect_host
    url = f"http://{host}:{status.port}/{request.match_info['tail']}"
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _forward_socket(request, url)
    body = request.content.iter_chunked(CHUNK_BYTES) if request.body_exists else None
    timeout = ClientTimeout(total=None, sock_connect=10)
    try:
        async with ClientSession(auto_decompress=False, timeout=timeout) as session:
            async with session.request(request.method, url, params=request.query, data=body,
                                       headers=_request_headers(request),
                                       allow_redirects=False) as upstream:
                return await _stream_back(request, upstream)
    except ClientError as exc:
        return web.json_response({"error": f"The Hikaze manager did not answer: {exc}",
                                  "code": "SIDECAR_UNAVAILABLE", "details": status.as_json()},
                                 status=502)


async def _forward_socket(request: web.Request, url: str) -> web.StreamResponse:
    """Join the browser's WebSocket to one on the manager (the events socket, /api/ws) and pass
    messages both ways until either side closes."""
    session = ClientSession()
    try:
        upstream = await session.ws_connect(url, params=request.query, heartbeat=30,
                                            headers=_socket_headers(request))
    except ClientError as exc:
        await session.close()
        return web.json_response({"error": f"The Hikaze manager did not answer: {exc}",
                                  "code": "SIDECAR_UNAVAILABLE", "details": {}}, status=502)
    client = web.WebSocketResponse(heartbeat=30)
    await client.prepare(request)
    try:
        await asyncio.gather(_pump(client, upstream), _pump(upstream, client))
    finally:
        await upstream.close()
        await client.close()
        await session.close()
    return client


async def _pump(source: Any, target: Any) -> None:
    async for message in source:
        if message.type == WSMsgType.TEXT:
            await target.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await target.send_bytes(message.data)
        else:
            break
    await target.close()


def _socket_headers(request: web.Request) -> dict[str, str]:
    # aiohttp's client makes its own handshake headers; pass on only who is asking.
    return {k: v for k, v in _request_headers(request).items()
            if not k.lower().startswith("sec-websocket")}


def _request_headers(request: web.Request) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    origin = headers.get("Origin")
    # ComfyUI's own page calling through ComfyUI's port is not a foreign origin to the
    # manager; any other Origin is passed on, so the manager refuses its writes as usual.
    if origin and origin.split("://", 1)[-1].lower() == request.host.lower():
        del headers["Origin"]
    return headers


async def _stream_back(request: web.Request, upstream: Any) -> web.StreamResponse:
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for name, value in upstream.headers.items():
        if name.lower() not in _HOP_BY_HOP:
            response.headers.add(name, value)
    await response.prepare(request)
    async for chunk in upstream.content.iter_chunked(CHUNK_BYTES):
        await response.write(chunk)
    await response.write_eof()
    return response
