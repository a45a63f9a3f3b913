"""/api/v1/models: the public list, details and file download (the security middleware has
already checked the API key)."""
from __future__ import annotations

from aiohttp import web

from .. import library, public_api
from ..app_keys import CONFIG, STORE
from ..errors import RangeNotSatisfiable
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
    if range_unsatisfiable(request, target.size, target.mtime):
        raise RangeNotSatisfiable(f"The range {request.headers['Range']!r} is outside the file's "
                                  f"{target.size} bytes", size=target.size,
                                  headers={"Content-Range": f"bytes */{target.size}"})
    return PlainFileResponse(target.path, headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": public_api.content_disposition(target.file_name)})


def range_unsatisfiable(request: web.Request, size: int, mtime: float) -> bool:
    """Whether FileResponse would answer 416 (the same reading of Range and If-Range), so the
    answer can be our JSON error instead of its empty body."""
    if_range = request.if_range
    if "Range" not in request.headers or (if_range is not None and mtime > if_range.timestamp()):
        return False
    try:
        wanted = request.http_range
    except ValueError:
        return True
    start = wanted.start
    if start is None:
        return False
    if start < 0 and wanted.stop is None:  # a suffix: the last -start bytes
        start = max(0, start + size)
    return start >= size


class PlainFileResponse(web.FileResponse):
    """FileResponse (Range, 206/416, sendfile off the loop) that always sends the file itself,
    never a `.gz`/`.br` file beside it that the client's Accept-Encoding would pick."""

    def _get_file_path_stat_encoding(self, accept_encoding: str):
        return super()._get_file_path_stat_encoding("")
