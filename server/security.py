"""Who may talk to the sidecar: Host check (DNS rebinding), Origin check and CORS.

- Host: IP literals and `localhost` always pass (a rebinding attack needs a DNS name); any
  other name only when listed in `allowed_hosts`.
- Origin: our own page (same host and port), and the configured UI origins (ComfyUI's) get
  CORS headers; a request from any other origin may not change anything or open the events
  WebSocket, and gets no CORS headers, so the browser will not let that page read the answer.
- API key: `/api/v1` needs `Authorization: Bearer <key>`, except from our own pages: a browser
  request whose Origin is ours or ComfyUI's, or that the browser marks `Sec-Fetch-Site:
  same-origin` (a same-origin GET carries no Origin; ComfyUI's proxy drops its own Origin).
  Browsers set both headers and no page can forge them; they keep other websites out, not a
  program on the network that can reach the port (docs/api.md, "API keys").
"""
from __future__ import annotations

import ipaddress
from typing import Iterable

from aiohttp import web

from .api_key import bearer_token
from .app_keys import API_KEY
from .errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Content-Type, Authorization"


def host_name(host_header: str) -> str:
    """`[::1]:8189` → `::1`, `example.com:80` → `example.com`."""
    if host_header.startswith("["):
        return host_header[1:host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def host_allowed(host_header: str | None, allowed: Iterable[str]) -> bool:
    if not host_header:
        return False
    name = host_name(host_header).lower().rstrip(".")
    if name == "localhost" or name in {a.lower() for a in allowed}:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def make_middleware(cors_origins: Iterable[str], allowed_hosts: Iterable[str]):
    cors = frozenset(o.rstrip("/").lower() for o in cors_origins)
    hosts = tuple(allowed_hosts)

    @web.middleware
    async def security_middleware(request: web.Request, handler) -> web.StreamResponse:
        if not host_allowed(request.host, hosts):
            return error_response(403, f"Host '{request.host}' is not allowed; add it to "
                                  "allowed_hosts in config.yaml to reach the manager by that name",
                                  "HOST_NOT_ALLOWED")
        origin = request.headers.get("Origin")
        own = origin is None or _same_origin(origin, request)
        allowed = own or origin.rstrip("/").lower() in cors
        if request.method == "OPTIONS" and origin and "Access-Control-Request-Method" in request.headers:
            if not allowed:
                return error_response(403, f"Origin {origin} may not call this API",
                                      "ORIGIN_NOT_ALLOWED")
            return web.Response(status=204, headers=_cors_headers(origin, preflight=True))
        if not allowed and request.method not in SAFE_METHODS:
            return error_response(403, f"Origin {origin} may not change the library",
                                  "ORIGIN_NOT_ALLOWED")
        if not allowed and request.headers.get("Upgrade", "").lower() == "websocket":
            # CORS does not cover WebSockets: a browser opens one for any page, which could
            # then read every event (model names, prompts, workflows).
            return error_response(403, f"Origin {origin} may not open the events socket",
                                  "ORIGIN_NOT_ALLOWED")
        if needs_key(request.path):
            from_our_page = (origin is not None and allowed) or \
                request.headers.get("Sec-Fetch-Site") == "same-origin"
            if not from_our_page and not _key_matches(request):
                return error_response(401, "This API needs 'Authorization: Bearer <key>'; the key "
                                      "is shown by `python -m server api-key show`",
                                      "UNAUTHORIZED",
                                      headers={"WWW-Authenticate": 'Bearer realm="hikaze"'})
        response = await handler(request)
        if origin and allowed and not own:
            response.headers.update(_cors_headers(origin))
        return response

    return security_middleware


def needs_key(path: str) -> bool:
    return path == "/api/v1" or path.startswith("/api/v1/")


def _key_matches(request: web.Request) -> bool:
    token = bearer_token(request.headers.get("Authorization"))
    return token is not None and request.app[API_KEY].matches(token)


def _same_origin(origin: str, request: web.Request) -> bool:
    return origin.lower() in {f"{scheme}://{request.host}".lower() for scheme in ("http", "https")}


def _cors_headers(origin: str, preflight: bool = False) -> dict[str, str]:
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    if preflight:
        headers.update({"Access-Control-Allow-Methods": ALLOW_METHODS,
                        "Access-Control-Allow-Headers": ALLOW_HEADERS,
                        "Access-Control-Max-Age": "600"})
    return headers
