"""/api/v1/servers: the ComfyUI servers the generation queue sends work to."""
from __future__ import annotations

from aiohttp import web

from .. import servers
from ..app_keys import CONFIG, STORE
from ..library import now_ms
from . import parse

routes = web.RouteTableDef()


@routes.get("/api/v1/servers")
async def list_servers(request: web.Request) -> web.Response:
    found = await request.app[STORE].run(servers.list_servers, request.app[CONFIG].comfyui_url)
    return web.json_response({"servers": found})


@routes.post("/api/v1/servers")
async def add_server(request: web.Request) -> web.Response:
    body = await parse.json_body(request)
    server = await request.app[STORE].run(servers.add_server, body, now_ms())
    return web.json_response(server, status=201)


@routes.put("/api/v1/servers/{alias}")
async def update_server(request: web.Request) -> web.Response:
    body = await parse.json_body(request)
    server = await request.app[STORE].run(servers.update_server, request.match_info["alias"],
                                          body, now_ms())
    return web.json_response(server)


@routes.delete("/api/v1/servers/{alias}")
async def delete_server(request: web.Request) -> web.Response:
    await request.app[STORE].run(servers.delete_server, request.match_info["alias"])
    return web.json_response({"deleted": request.match_info["alias"]})
