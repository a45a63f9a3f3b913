"""/api/tags: list with counts, get-or-create, rename or merge, delete."""
from __future__ import annotations

from aiohttp import web

from .. import schemas, tags
from ..app_keys import STORE
from . import parse

routes = web.RouteTableDef()


@routes.get("/api/tags")
async def list_tags(request: web.Request) -> web.Response:
    return web.json_response({"tags": await request.app[STORE].run(tags.list_tags)})


@routes.post("/api/tags_add")
async def add_tags(request: web.Request) -> web.Response:
    body = await parse.json_body(request, schemas.TAGS_ADD)
    return web.json_response({"tags": await request.app[STORE].run(tags.ensure_tags, body["newtags"])})


@routes.patch("/api/tags/{id}")
async def rename_tag(request: web.Request) -> web.Response:
    tag_id = parse.integer(request.match_info["id"], "id", minimum=1)
    body = await parse.json_body(request, schemas.TAG_PATCH)
    tag = await request.app[STORE].run(tags.rename_tag, tag_id, body["name"], body.get("merge", False))
    return web.json_response(tag)


@routes.delete("/api/tags/{id}")
async def delete_tag(request: web.Request) -> web.Response:
    tag_id = parse.integer(request.match_info["id"], "id", minimum=1)
    await request.app[STORE].run(tags.delete_tag, tag_id)
    return web.json_response({"status": "success", "deleted": tag_id})
