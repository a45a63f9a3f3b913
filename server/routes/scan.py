"""/api/scan and /api/jobs: start a scan of the model folders, see and cancel background jobs."""
from __future__ import annotations

from aiohttp import web

from ..app_keys import JOBS, SCANNER
from . import parse

routes = web.RouteTableDef()


@routes.get("/api/scan")
@routes.post("/api/scan")
async def scan(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SCANNER].scan())


@routes.get("/api/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    kind = parse.choice(request.query.get("kind"), "kind", ["scan", "hash"], "")
    return web.json_response({"jobs": request.app[JOBS].list(kind or None)})


@routes.get("/api/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    return web.json_response(request.app[JOBS].get(request.match_info["id"]).snapshot())


@routes.post("/api/jobs/{id}/cancel")
async def cancel_job(request: web.Request) -> web.Response:
    return web.json_response(request.app[JOBS].cancel(request.match_info["id"]))
