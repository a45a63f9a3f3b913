"""/api/models/.../refresh-metadata: the opt-in Civitai lookup by hash."""
from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
