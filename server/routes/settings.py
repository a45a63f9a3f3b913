"""/api/settings: read and change the user's settings (the manager page's Settings panel)."""
from __future__ import annotations

from aiohttp import web

from .. import schemas, settings
from ..app_keys import CONFIG, STORE
from . import parse

routes = web.RouteTableDef()


@routes.get("/api/settings")
async def get_settings(request: web.Request) -> web.Response:
    return web.json_response(await settings.snapshot(request.app[STORE], request.app[CONFIG]))


@routes.patch("/api/settings")
async def patch_settings(request: web.Request) -> web.Response:
    body = await parse.json_body(request, schemas.SETTINGS)
    return web.json_response(await settings.snapshot(request.app[STORE], request.app[CONFIG],
                                                     body))
