"""/api/health: is the sidecar up, which version, how big is the library, where is its data."""
from __future__ import annotations

import time

from aiohttp import web

from .. import __version__, library
from ..app_keys import CONFIG, STARTED_AT, STORE

routes = web.RouteTableDef()


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return web.json_response({
        "status": "ok",
        "version": __version__,
        "counts": await request.app[STORE].run(library.counts),
        "data_dir": str(config.data_dir),
        "kinds": {name: [str(root) for root in kind.roots] for name, kind in config.kinds.items()},
        "uptime_s": round(time.monotonic() - request.app[STARTED_AT], 3),
    })
