"""The manager page at `/` (the full interface lives in web/manager)."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

routes = web.RouteTableDef()
MANAGER_DIR = Path(__file__).resolve().parents[2] / "web" / "manager"


@routes.get("/")
async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(MANAGER_DIR / "index.html", headers={"Cache-Control": "no-cache"})
