"""The manager page at `/` and the browser modules it loads from web/manager and web/lib."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..errors import NotFound

routes = web.RouteTableDef()
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
MANAGER_DIR = WEB_DIR / "manager"
# Only these kinds of file are served, each with an explicit type: the platform's mimetypes
# table varies (and .js must be JavaScript for a module script to run).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webp": "image/webp",
}
# The files change with every update of the extension; the browser revalidates (ETag and
# Last-Modified make that a cheap 304) instead of running yesterday's modules.
NO_CACHE = {"Cache-Control": "no-cache"}


@routes.get("/")
async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(MANAGER_DIR / "index.html", headers=NO_CACHE)


@routes.get("/lib/{path:.+}")
async def lib_file(request: web.Request) -> web.FileResponse:
    return _serve(WEB_DIR / "lib", request.match_info["path"])


@routes.get("/manager/{path:.+}")
async def manager_file(request: web.Request) -> web.FileResponse:
    return _serve(MANAGER_DIR, request.match_info["path"])


def _serve(folder: Path, relative: str) -> web.FileResponse:
    """A regular file inside `folder` with a known extension, or 404 (never a listing)."""
    parts = relative.split("/")
    content_type = CONTENT_TYPES.get(Path(relative).suffix.lower())
    if content_type is None or any(p in ("", ".", "..") or p.startswith(".") or "\\" in p
                                   or "\0" in p for p in parts):
        raise NotFound(f"No file {relative!r} here", code="FILE_NOT_FOUND")
    path = folder.joinpath(*parts)
    try:
        inside = path.resolve().is_relative_to(folder.resolve()) and path.is_file()
    except OSError:
        inside = False
    if not inside:
        raise NotFound(f"No file {relative!r} here", code="FILE_NOT_FOUND")
    return web.FileResponse(path, headers={**NO_CACHE, "Content-Type": content_type})
