"""/api/models: list, read, edit and remove library entries."""
from __future__ import annotations

from aiohttp import web

from .. import library
from ..app_keys import CONFIG, STORE
from . import parse

routes = web.RouteTableDef()


@routes.get("/api/models/get_types")
async def get_types(request: web.Request) -> web.Response:
    return web.json_response({"types": sorted(request.app[CONFIG].kinds)})


@routes.get("/api/models")
async def list_models(request: web.Request) -> web.Response:
    q = request.query
    query = library.ListQuery(
        type=q.get("type") or None,
        search=q.get("search", "").strip()[:200],
        tags=parse.csv(q.get("tags")),
        exclude_tags=parse.csv(q.get("exclude_tags")),
        max_nsfw_level=(parse.integer(q["max_nsfw_level"], "max_nsfw_level", maximum=32)
                        if q.get("max_nsfw_level") else None),
        sort=parse.choice(q.get("sort"), "sort", list(library.SORTS), "name"),
        offset=parse.integer(q.get("offset"), "offset", default=0),
        limit=parse.integer(q.get("limit"), "limit", minimum=1, maximum=library.MAX_LIMIT,
                            default=200),
    )
    known = sorted(request.app[CONFIG].kinds)
    return web.json_response(await request.app[STORE].run(library.list_models, query, known))


@routes.get("/api/models/{sha256}")
async def get_model(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    return web.json_response(await request.app[STORE].run(library.get_model, sha))


@routes.patch("/api/models/{sha256}")
async def patch_model(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    body = await parse.json_body(request)
    return web.json_response(await request.app[STORE].run(library.patch_model, sha, body))


@routes.delete("/api/models/{sha256}")
async def delete_model(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    await request.app[STORE].run(library.delete_model, request.app[CONFIG].images_dir, sha)
    return web.json_response({"status": "success", "deleted": sha})
