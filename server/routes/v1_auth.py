"""/api/v1/auth: read and replace the public API's key (the security middleware has already
checked the caller: the key itself, or our own page)."""
from __future__ import annotations

import asyncio

from aiohttp import web

from ..app_keys import API_KEY

routes = web.RouteTableDef()


@routes.get("/api/v1/auth/key")
async def show_key(request: web.Request) -> web.Response:
    return web.json_response({"key": request.app[API_KEY].current()},
                             headers={"Cache-Control": "no-store"})


@routes.post("/api/v1/auth/regenerate")
async def regenerate_key(request: web.Request) -> web.Response:
    key = await asyncio.to_thread(request.app[API_KEY].regenerate)
    return web.json_response({"key": key, "message": "A new API key is in use; the old one no "
                              "longer works. Update the clients that use it."},
                             headers={"Cache-Control": "no-store"})
