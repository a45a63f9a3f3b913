"""/api/scan: start a scan of the model folders, see and cancel the running scan and hash job."""
from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
