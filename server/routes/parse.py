"""Turn request input into checked values, or raise Invalid naming the field."""
from __future__ import annotations

import io
import json
import re
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from .. import schemas
from ..errors import Invalid, TooLarge, UnsupportedMedia

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")

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


def boolean(value: str | None, field: str) -> bool | None:
    """true/1/yes or false/0/no (any case); absent or empty → None."""
    if value is None or value == "":
        return None
    if value.lower() not in _TRUE + _FALSE:
        raise Invalid(f"{field} must be true or false", code="INVALID_BOOLEAN", field=field)
    return value.lower() in _TRUE


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
    _require_text(body)
    return schemas.check(schema, body) if schema else body


def _require_text(body: Any) -> None:
    """JSON may escape half of a UTF-16 pair (`"\\ud800"`); such a string is not text, and
    SQLite, files and other servers cannot take it. Refused here, for every route at once."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Invalid("The body holds a lone UTF-16 surrogate (a \\ud800–\\udfff escape "
                      "without its pair), which is not text", code="BAD_JSON") from exc


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; stored, they would make our own responses invalid JSON.
    raise ValueError(f"{name} is not a JSON value")


async def multipart_form(request: web.Request, limit: int) -> MultiDictProxy:
    """The multipart form of an upload of at most `limit` bytes (413 beyond it)."""
    if request.content_type != "multipart/form-data":
        raise Invalid("Send the image as multipart/form-data", code="NOT_MULTIPART")
    if request.content_length and request.content_length > limit + 1024 * 1024:
        raise TooLarge(f"Uploads are limited to {limit // (1024 * 1024)} MB", limit=limit)
    try:
        return await request.post()
    except (ValueError, HttpProcessingError) as exc:  # aiohttp's multipart parser refused it
        raise Invalid("The multipart form is malformed; send the image as multipart/form-data",
                      code="BAD_MULTIPART") from exc


def file_part(form: MultiDictProxy, field: str, limit: int) -> io.IOBase:
    """The uploaded file in `field`, rewound: required, not empty, at most `limit` bytes."""
    part = form.get(field)
    if isinstance(part, web.FileField):
        source = part.file
    elif isinstance(part, (bytes, bytearray)):
        source = io.BytesIO(part)
    else:
        raise Invalid(f"The form needs an '{field}' file part", code="MISSING", field=field)
    size = source.seek(0, io.SEEK_END)
    if size > limit:
        raise TooLarge(f"Uploads are limited to {limit // (1024 * 1024)} MB", limit=limit)
    if size == 0:
        raise Invalid("The image is empty", code="EMPTY_IMAGE", field=field)
    return source


def form_texts(form: MultiDictProxy, skip: str) -> dict[str, str]:
    """Every field but `skip` as text; a file, or a field sent twice, is refused naming it."""
    texts: dict[str, str] = {}
    for name, value in form.items():
        if name == skip:
            continue
        if not isinstance(value, str):
            raise Invalid(f"{name} must be a text field", code="INVALID", field=name)
        if name in texts:
            raise Invalid(f"{name} is sent twice", code="DUPLICATE_FIELD", field=name)
        texts[name] = value
    return texts
