"""/api/models/.../refresh-metadata: the opt-in Civitai lookup by hash."""
from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from aiohttp import web

from .. import civitai, library, schemas
from ..app_keys import CONFIG, EVENTS, STORE
from . import parse

routes = web.RouteTableDef()


@routes.post("/api/models/refresh-metadata")
async def refresh_many(request: web.Request) -> web.Response:
    civitai.require_enabled(request.app[CONFIG])
    body = await parse.json_body(request, schemas.REFRESH_METADATA)
    async with _client(request) as client:
        report = await civitai.refresh_many(request.app[STORE], client,
                                            [sha.lower() for sha in body["sha256"]],
                                            request.app[EVENTS])
    return web.json_response(report)


@routes.post("/api/models/{sha256}/refresh-metadata")
async def refresh_one(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    civitai.require_enabled(request.app[CONFIG])
    async with _client(request) as client:
        outcome = await civitai.refresh(request.app[STORE], client, sha, request.app[EVENTS])
    model = await request.app[STORE].run(library.get_model, sha)
    return web.json_response({**model, "lookup": outcome})


def _client(request: web.Request) -> AbstractAsyncContextManager[civitai.Client]:
    backoff = request.app.get(civitai.BACKOFF) or civitai.Backoff()
    return civitai.open_client(request.app[CONFIG], backoff)
