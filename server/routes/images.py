"""/api/images: upload, serve, count, delete; gallery order and cover under /api/models."""
from __future__ import annotations

import asyncio
import json
import re

from aiohttp import web

from .. import image_files, images, library, schemas
from ..app_keys import CONFIG, GALLERY, STORE
from ..errors import Invalid, NotFound
from . import parse

routes = web.RouteTableDef()
_IMAGE_NAME = re.compile(r"(?P<sha>[0-9a-fA-F]{64})(?:_(?P<seq>\d{1,6}))?(?:\.webp)?")
YEAR = 365 * 24 * 3600


@routes.get("/api/images/get_img_count")
async def image_count(request: web.Request) -> web.Response:
    sha = parse.sha256(request.query.get("sha256"))
    return web.json_response({"count": await request.app[STORE].run(images.count_images, sha)})


@routes.post("/api/images/upload")
async def upload(request: web.Request) -> web.Response:
    limit = request.app[CONFIG].max_upload_bytes
    form = await parse.multipart_form(request, limit)
    sha = parse.sha256(_text(form, "sha256"))
    record = await request.app[GALLERY].upload(sha, parse.file_part(form, "image", limit),
                                               _fields(form), library.now_ms())
    return web.json_response({"status": "success", "base_name": f"{sha}_{record['seq']}",
                              "image": record})


@routes.delete("/api/images/delete")
async def delete(request: web.Request) -> web.Response:
    sha = parse.sha256(request.query.get("sha256"))
    seq = parse.integer(request.query.get("seq"), "seq")
    await request.app[STORE].run(images.delete_image, request.app[CONFIG].images_dir, sha, seq)
    return web.json_response({"status": "success"})


@routes.get("/api/images/{name}")
async def serve(request: web.Request) -> web.StreamResponse:
    match = _IMAGE_NAME.fullmatch(request.match_info["name"])
    if not match:
        raise Invalid("Image names are <sha256> or <sha256>_<seq>, optionally with .webp",
                      code="INVALID_IMAGE_NAME", field="name")
    quality = parse.choice(request.query.get("quality"), "quality", list(image_files.TIERS), "high")
    sha, seq = match["sha"].lower(), int(match["seq"] or 0)
    content = await request.app[STORE].run(images.find_content, sha, seq)
    etag = f"{content[:32]}-{quality}"
    cache = (f"public, max-age={YEAR}, immutable" if request.query.get("v") == content[:16]
             else "no-cache")
    if request.headers.get("If-None-Match", "").strip('"') == etag:
        return web.Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": cache})
    path = image_files.tier_path(request.app[CONFIG].images_dir, content, quality)
    # Not FileResponse: it would replace our content ETag with its own mtime-size one. A tier
    # is at most 2 MP of WebP, so reading it whole (off the event loop) is cheap.
    try:
        data = await asyncio.get_running_loop().run_in_executor(None, path.read_bytes)
    except FileNotFoundError:
        raise NotFound("The image file is missing from the data folder",
                       code="IMAGE_FILE_MISSING") from None
    return web.Response(body=data, content_type="image/webp",
                        headers={"ETag": f'"{etag}"', "Cache-Control": cache})


@routes.put("/api/models/{sha256}/images/order")
async def reorder(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    body = await parse.json_body(request, schemas.IMAGE_ORDER)
    return web.json_response({"images": await request.app[STORE].run(images.reorder, sha, body["order"])})


@routes.put("/api/models/{sha256}/images/cover")
async def set_cover(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    body = await parse.json_body(request, schemas.IMAGE_COVER)
    return web.json_response({"images": await request.app[STORE].run(images.set_cover, sha, body["seq"])})


def _text(form, field: str) -> str | None:
    value = form.get(field)
    if value is not None and not isinstance(value, str):
        raise Invalid(f"{field} must be a text field", code="INVALID", field=field)
    return value


def _fields(form) -> images.ImageFields:
    params = _text(form, "generation_params")
    try:
        params = json.loads(params) if params else {}
    except ValueError as exc:
        raise Invalid("generation_params must be a JSON object", field="generation_params") from exc
    schemas.check(schemas.GENERATION_PARAMS, params, "generation_params")
    return images.ImageFields(
        prompt=(_text(form, "prompt") or "")[:100_000],
        negative_prompt=(_text(form, "negative_prompt") or "")[:100_000],
        generation_params=params,
        nsfw_level=parse.integer(_text(form, "nsfw_level"), "nsfw_level", maximum=32, default=0),
    )
