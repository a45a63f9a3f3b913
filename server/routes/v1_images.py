"""/api/v1/models/{sha256}/images: a model's user images with their generation parameters
(list, upload, edit, delete) through the gallery service."""
from __future__ import annotations

from aiohttp import web

from .. import images, library, public_api, schemas
from ..app_keys import CONFIG, GALLERY, STORE
from . import parse

routes = web.RouteTableDef()


@routes.get("/api/v1/models/{sha256}/images")
async def list_images(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    return web.json_response(await request.app[STORE].run(public_api.list_images, sha))


@routes.post("/api/v1/models/{sha256}/images")
async def upload(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    limit = request.app[CONFIG].max_upload_bytes
    form = await parse.multipart_form(request, limit)
    fields = public_api.upload_fields(parse.form_texts(form, skip="file"))
    record = await request.app[GALLERY].upload(sha, parse.file_part(form, "file", limit), fields,
                                               library.now_ms())
    return web.json_response(public_api.image_record(sha, record), status=201)


@routes.patch("/api/v1/models/{sha256}/images/{id}")
async def patch_image(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    image_id = parse.integer(request.match_info["id"], "id", minimum=1)
    body = await parse.json_body(request, schemas.V1_IMAGE_PATCH)
    return web.json_response(await request.app[STORE].run(public_api.patch_image, sha, image_id,
                                                          body))


@routes.delete("/api/v1/models/{sha256}/images/{id}")
async def delete_image(request: web.Request) -> web.Response:
    sha = parse.sha256(request.match_info["sha256"])
    image_id = parse.integer(request.match_info["id"], "id", minimum=1)
    await request.app[STORE].run(images.delete_image_by_id, request.app[CONFIG].images_dir, sha,
                                 image_id)
    return web.json_response({"success": True, "deleted": image_id})
