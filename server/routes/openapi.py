"""/api/openapi.json: the OpenAPI 3.1 document of every route (server/openapi/)."""
from __future__ import annotations

from aiohttp import web

from .. import openapi

routes = web.RouteTableDef()


@routes.get("/api/openapi.json")
async def document(request: web.Request) -> web.Response:
    return web.json_response(openapi.document(), headers={"Cache-Control": "no-cache"})
