"""Turn request input into checked values, or raise Invalid naming the field."""
from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from .. import schemas
from ..errors import Invalid, UnsupportedMedia

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def sha256(value: str | None, field: str = "sha256") -> str:
    if value is None or value == "":
        raise Invalid(f"{field} is required", code="MISSING", field=field)
    if not _SHA256.fullmatch(value):
        raise Invalid(f"{field} must be 64 hexadecimal characters", code="INVALID_SHA256",
                      field=field)
    return value.lower()


def integer(value: str | None, field: str, *, minimum: int = 0, maximum: int = 2**31,
            default: int | None = None) -> int:
    if value is None or value == "":
        if default is not None:
            return default
        raise Invalid(f"{field} is required", code="MISSING", field=field)
    # 19 digits hold every id up to 2**63 - 1; the bounds below do the rest.
    if not re.fullmatch(r"-?\d{1,19}", value) or not minimum <= int(value) <= maximum:
        raise Invalid(f"{field} must be an integer from {minimum} to {maximum}",
                      code="INVALID_INTEGER", field=field)
    return int(value)


def choice(value: str | None, field: str, options: list[str], default: str) -> str:
    if value is None or value == "":
        return default
    if value not in options:
        raise Invalid(f"{field} must be one of: {', '.join(options)}", code="INVALID_CHOICE",
                      field=field, options=options)
    return value


def csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


async def json_body(request: web.Request, schema: dict | None = None) -> Any:
    if request.content_type != "application/json":
        raise UnsupportedMedia("Send the body as JSON (Content-Type: application/json)",
                               code="NOT_JSON")
    try:
        body = json.loads(await request.read(), parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"The body is not valid JSON: {exc}", code="BAD_JSON") from exc
    except RecursionError as exc:  # the parser's own depth guard
        raise Invalid("The body is nested too deeply", code="BAD_JSON") from exc
    return schemas.check(schema, body) if schema else body


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; stored, they would make our own responses invalid JSON.
    raise ValueError(f"{name} is not a JSON value")
