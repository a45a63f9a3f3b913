"""/api/migration/pending_*, import_models and /api/images/pending/*: the pending-import queue."""
from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
