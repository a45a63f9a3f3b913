"""/api/migration/pending_*, import_models and /api/images/pending/*: the pending-import queue."""
from __future__ import annotations

import asyncio

from aiohttp import web

from .. import pending, schemas
from ..app_keys import CONFIG, EVENTS, IMAGE_THREADS, STORE
from ..import_job import Importer
from . import parse

routes = web.RouteTableDef()
MAX_ID = 2**63 - 1
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


@routes.get("/api/migration/pending_models")
async def list_pending(request: web.Request) -> web.Response:
    q = request.query
    limit = q.get("limit")
    query = pending.ListQuery(
        type=q.get("type") or None,
        offset=parse.integer(q.get("offset"), "offset", default=0),
        limit=parse.integer(limit, "limit", minimum=1, maximum=100_000) if limit else None,
    )
    known = sorted(request.app[CONFIG].kinds)
    return web.json_response(await request.app[STORE].run(pending.list_pending, query, known))


@routes.get("/api/migration/pending_model")
async def get_pending(request: web.Request) -> web.Response:
    item_id = parse.integer(request.query.get("id"), "id", maximum=MAX_ID)
    return web.json_response(await request.app[STORE].run(pending.get_pending, item_id))


@routes.post("/api/migration/import_models")
async def import_models(request: web.Request) -> web.Response:
    body = await parse.json_body(request, schemas.IMPORT_MODELS)
    app = request.app
    importer = Importer(app[STORE], app[EVENTS], app[CONFIG], app[IMAGE_THREADS])
    report = await importer.run(body["id"], body.get("conflict_strategy"))
    return web.json_response(report, status=207)


# Registered before /api/images/{name} (see routes.setup), and the id route before the name one.
@routes.get(r"/api/images/pending/{id:\d+}")
async def pending_preview(request: web.Request) -> web.Response:
    item_id = parse.integer(request.match_info["id"], "id", maximum=MAX_ID)
    source = await request.app[STORE].run(pending.preview_source, item_id)
    pending_dir = request.app[CONFIG].pending_dir
    return await _send(lambda: pending.read_preview(pending.preview_path(pending_dir, source)))


@routes.get("/api/images/pending/{name}")
async def pending_image(request: web.Request) -> web.Response:
    name = pending.plain_name(request.match_info["name"])
    pending_dir = request.app[CONFIG].pending_dir
    return await _send(lambda: pending.read_preview(pending.find_stored(pending_dir, name)))


async def _send(load) -> web.Response:
    """Find and read a preview in a worker thread (the file system may be slow)."""
    preview = await asyncio.get_running_loop().run_in_executor(None, load)
    return web.Response(body=preview.data, content_type=preview.content_type, headers=_HEADERS)
