"""/api/v1/queue: submit, list, inspect, cancel and delete generation jobs; their outputs."""
from __future__ import annotations

from aiohttp import web

from .. import queue_store
from ..app_keys import GEN_QUEUE, STORE
from . import parse

routes = web.RouteTableDef()
MAX_LIMIT = 500


@routes.post("/api/v1/queue/jobs")
async def submit(request: web.Request) -> web.Response:
    job = await request.app[GEN_QUEUE].submit(await parse.json_body(request))
    return web.json_response({"job_id": job["job_id"], "status": job["status"], "job": job},
                             status=202, headers={"Location": f"/api/v1/queue/jobs/{job['job_id']}"})


@routes.get("/api/v1/queue/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    query = request.query
    status = parse.choice(query.get("status"), "status", list(queue_store.STATUSES), "")
    limit = parse.integer(query.get("limit"), "limit", minimum=1, maximum=MAX_LIMIT, default=50)
    offset = parse.integer(query.get("offset"), "offset", default=0)
    order = parse.choice(query.get("order"), "order", ["asc", "desc"], "desc")
    found = await request.app[STORE].run(queue_store.list_jobs, status or None, limit, offset, order)
    return web.json_response(found)


@routes.get("/api/v1/queue/stats")
async def stats(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STORE].run(queue_store.stats))


@routes.get("/api/v1/queue/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STORE].run(queue_store.get_job,
                                                          request.match_info["id"]))


@routes.post("/api/v1/queue/jobs/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    job = await request.app[GEN_QUEUE].cancel(request.match_info["id"])
    return web.json_response({"message": "Job cancelled", "job": job})


@routes.delete("/api/v1/queue/jobs/{id}")
async def delete(request: web.Request) -> web.Response:
    await request.app[GEN_QUEUE].delete(request.match_info["id"])
    return web.json_response({"deleted": request.match_info["id"]})


@routes.get("/api/v1/queue/jobs/{id}/outputs/{index}")
async def output(request: web.Request) -> web.FileResponse:
    index = parse.integer(request.match_info["index"], "index", maximum=100_000)
    path, info = await request.app[GEN_QUEUE].output_file(request.match_info["id"], index)
    return web.FileResponse(path, headers={
        "Content-Type": info["content_type"], "Cache-Control": "private, max-age=31536000, immutable",
        "Content-Disposition": f'inline; filename="{info["stored_as"]}"'})
