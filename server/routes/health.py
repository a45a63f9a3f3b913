"""/api/health: is the sidecar up (or read-only), which version, how big is the library, where
is its data, and its newest backup."""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from .. import __version__, integrity
from ..app_keys import CONFIG, LIBRARY_STATE, STARTED_AT, STORE

routes = web.RouteTableDef()


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    config, state = request.app[CONFIG], request.app[LIBRARY_STATE]
    safety = await asyncio.get_running_loop().run_in_executor(
        None, integrity.report, state, config.db_path)
    return web.json_response({
        "status": safety["status"],
        "version": __version__,
        "counts": await request.app[STORE].run(integrity.counts, state.read_only),
        "data_dir": str(config.data_dir),
        "kinds": {name: [str(root) for root in kind.roots] for name, kind in config.kinds.items()},
        "uptime_s": round(time.monotonic() - request.app[STARTED_AT], 3),
        "read_only_reason": safety["read_only_reason"],
        "backup": safety["backup"],
    })
