"""Typed API errors and the one middleware that renders every failure as JSON."""
from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client caused or can act on; rendered as {"error", "code", "details"}."""

    status = 500
    code = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None,
                 headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.headers = headers or {}
        self.details = details


class Invalid(ApiError):
    status, code = 400, "INVALID"


class NotFound(ApiError):
    status, code = 404, "NOT_FOUND"


class Forbidden(ApiError):
    status, code = 403, "FORBIDDEN"


class Conflict(ApiError):
    status, code = 409, "CONFLICT"


class TooLarge(ApiError):
    status, code = 413, "TOO_LARGE"


class UnsupportedMedia(ApiError):
    status, code = 415, "UNSUPPORTED_MEDIA"


class RangeNotSatisfiable(ApiError):
    status, code = 416, "RANGE_NOT_SATISFIABLE"


class Unprocessable(ApiError):
    status, code = 422, "UNPROCESSABLE"


class StorageFull(ApiError):
    status, code = 507, "STORAGE_FULL"


# aiohttp's own HTTP exceptions (unknown route, wrong method, body too large) get a code too.
_HTTP_CODES = {
    400: "INVALID",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "TOO_LARGE",
    415: "UNSUPPORTED_MEDIA",
}


def error_response(status: int, message: str, code: str, details: dict | None = None,
                   headers: dict | None = None) -> web.Response:
    body = {"error": message, "code": code, "details": details or {}}
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.code, exc.details, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        details = {}
        headers = {}
        if isinstance(exc, web.HTTPMethodNotAllowed):
            details = {"allowed": sorted(exc.allowed_methods)}
            headers = {"Allow": ",".join(sorted(exc.allowed_methods))}
        message = exc.reason if exc.status != 404 else f"No route for {request.method} {request.path}"
        return error_response(exc.status, message, _HTTP_CODES.get(exc.status, "HTTP_ERROR"),
                              details, headers)
    except Exception:  # the one place that turns an unexpected failure into a 500
        log.exception("Unhandled error in %s %s", request.method, request.path)
        return error_response(500, "Internal server error; the sidecar log has the details.",
                              "INTERNAL")
