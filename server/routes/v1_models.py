"""/api/v1/models: the public list, details and file download (the security middleware has
already checked the API key)."""
from __future__ import annotations

from aiohttp import web

from .. import library, public_api
from ..app_keys import CONFIG, STORE
from . import parse

routes = web.RouteTableDef()


@routes.get("/api/v1/models")
async def list_models(request: web.Request) -> web.Response:
    q = request.query
    limit = parse.integer(q.get("limit"), "limit", minimum=1, maximum=public_api.MAX_LIMIT,
                          default=public_api.DEFAULT_LIMIT)
    page = parse.integer(q.get("page"), "page", minimum=1, maximum=10_000_000, default=1)
    query = library.ListQuery(
        type=q.get("type") or None,
        base_model=q.get("baseModel") or None,
        search=q.get("search", "").strip()[:200],
        tags=parse.csv(q.get("tags")),
        max_nsfw_level=(parse.integer(q["maxNsfwLevel"], "maxNsfwLevel",
                                      maximum=public_api.MAX_NSFW_LEVEL)
                        if q.get("maxNsfwLevel") else None),
        has_metadata=parse.boolean(q.get("hasMetadata"), "hasMetadata"),
        sort=parse.choice(q.get("sort"), "sort", list(library.SORTS), "newest"),
        offset=(page - 1) * limit,
        limit=limit,
    )
    known = sorted(request.app[CONFIG].kinds)
    return web.json_response(await request.app[STORE].run(public_api.list_models, query, known))


@routes.get("/api/v1/models/{sha256}")
async def get_model(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    return web.json_response(await request.app[STORE].run(public_api.get_model, sha))


@routes.get("/api/v1/models/{sha256}/download")
async def download(request: web.Request) -> web.StreamResponse:
    sha = parse.sha256(request.match_info["sha256"])
    target = await public_api.find_download(request.app[STORE], request.app[CONFIG].model_roots,
                                            sha)
    return PlainFileResponse(target.path, headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": public_api.content_disposition(target.file_name)})


class PlainFileResponse(web.FileResponse):
    """FileResponse (Range, 206/416, sendfile off the loop) that always sends the file itself,
    never a `.gz`/`.br` file beside it that the client's Accept-Encoding would pick."""

    def _get_file_path_stat_encoding(self, accept_encoding: str):
        return super()._get_file_path_stat_encoding("")
