"""/api/v1/models/{sha256}/images over HTTP: list, upload with generation parameters, edit and
delete, and every refusal leaving nothing behind."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from aiohttp import FormData

from server import image_files
from server.app_keys import CONFIG, STORE
from tests.factories import V1Api, expect_error, png_bytes

IMAGE_KEYS = {"id", "sha256", "sortOrder", "url", "width", "height", "nsfwLevel", "prompt",
              "negativePrompt", "generationParams", "source", "createdAt"}
WORKFLOW = {"3": {"class_type": "KSampler", "inputs": {"seed": 42}}}


@pytest.fixture
async def api(client) -> V1Api:
    return V1Api(client, tree=None)  # these tests name models by the `sha` fixture


def form(image: bytes | None = None, *, filename: str = "p.png", **fields) -> FormData:
    data = FormData(default_to_multipart=True)
    if image is not None:
        data.add_field("file", image, filename=filename, content_type="image/png")
    for name, value in fields.items():
        data.add_field(name, value)
    return data


async def upload(api: V1Api, sha: str, image: bytes | None = None, **fields) -> dict:
    return await api.json("POST", f"/api/v1/models/{sha}/images", 201,
                          data=form(image or png_bytes(), **fields))


async def state(api: V1Api) -> tuple[list[Path], list[tuple]]:
    """What an upload, edit or delete could change: the stored files and the image rows."""
    rows = await api.db(lambda db: db.execute("SELECT * FROM images ORDER BY id").fetchall())
    folder = api.client.app[CONFIG].images_dir
    return sorted(Path(r) / n for r, _, names in os.walk(folder) for n in names), rows


# --- upload and list -------------------------------------------------------------------------

async def test_upload_with_every_field(api, sha):
    loras = [{"name": "ink", "strength": 0.8}, {"name": "glow", "strength": -1, "sha256": "ab"}]
    image = await upload(
        api, sha, png_bytes((90, 60)), prompt="a cat, 猫", negativePrompt="blurry", seed="-1",
        steps="25", cfgScale="6.5", sampler="euler_ancestral", scheduler="karras",
        nsfwLevel="2", loras=json.dumps(loras), comfyWorkflow=json.dumps(WORKFLOW))
    assert set(image) == IMAGE_KEYS
    assert {k: image[k] for k in ("sha256", "sortOrder", "width", "height", "nsfwLevel", "prompt",
                                  "negativePrompt", "source")} == {
        "sha256": sha, "sortOrder": 0, "width": 90, "height": 60, "nsfwLevel": 2,
        "prompt": "a cat, 猫", "negativePrompt": "blurry", "source": "upload"}
    assert image["generationParams"] == {
        "seed": -1, "steps": 25, "cfgScale": 6.5, "sampler": "euler_ancestral",
        "scheduler": "karras", "loras": loras, "comfyWorkflow": WORKFLOW}
    row = await api.db(lambda db: db.execute(
        "SELECT prompt, negative_prompt, nsfw_level, generation_params, image_sha256 FROM images "
        "WHERE id = ?", [image["id"]]).fetchone())
    assert row[:3] == ("a cat, 猫", "blurry", 2)
    assert json.loads(row[3]) == image["generationParams"]
    assert image_files.is_complete(api.client.app[CONFIG].images_dir, row[4])  # 3 WebP tiers
    assert await api.json("GET", f"/api/v1/models/{sha}/images") == [image]
    picture = await api.client.get(image["url"] + "&quality=low")
    assert picture.status == 200 and picture.content_type == "image/webp"


async def test_upload_with_only_a_file_and_empty_optional_fields(api, sha):
    image = await upload(api, sha, seed="", steps="", loras="", comfyWorkflow="", prompt="")
    assert (image["generationParams"], image["prompt"], image["nsfwLevel"]) == ({}, "", 0)


async def test_uploads_append_to_the_gallery(api, sha):
    first = await upload(api, sha, png_bytes(colour=(1, 2, 3)))
    second = await upload(api, sha.upper(), png_bytes(colour=(4, 5, 6)), seed="18446744073709551615")
    assert (first["sortOrder"], second["sortOrder"]) == (0, 1)
    assert second["generationParams"]["seed"] == 2**64 - 1
    listed = await api.json("GET", f"/api/v1/models/{sha}/images")
    assert [i["id"] for i in listed] == [first["id"], second["id"]]


async def test_list_of_a_model_without_images(api, sha):
    assert await api.json("GET", f"/api/v1/models/{sha}/images") == []


@pytest.mark.parametrize("fields, field, code", [
    ({"seed": "abc"}, "seed", "INVALID_INTEGER"),
    ({"seed": "1.5"}, "seed", "INVALID_INTEGER"),
    ({"seed": "-2"}, "seed", "VALIDATION"),
    ({"seed": str(2**64)}, "seed", "VALIDATION"),
    ({"steps": "0"}, "steps", "VALIDATION"),
    ({"steps": "10001"}, "steps", "VALIDATION"),
    ({"cfgScale": "nan"}, "cfgScale", "INVALID_NUMBER"),
    ({"cfgScale": "1e999"}, "cfgScale", "INVALID_NUMBER"),
    ({"cfgScale": "seven"}, "cfgScale", "INVALID_NUMBER"),
    ({"cfgScale": "101"}, "cfgScale", "VALIDATION"),
    ({"nsfwLevel": "33"}, "nsfwLevel", "VALIDATION"),
    ({"nsfwLevel": "x"}, "nsfwLevel", "INVALID_INTEGER"),
    ({"sampler": "s" * 201}, "sampler", "VALIDATION"),
    ({"loras": "not json"}, "loras", "BAD_JSON"),
    ({"loras": "[NaN]"}, "loras", "BAD_JSON"),
    ({"loras": '{"name": "x"}'}, "loras", "VALIDATION"),
    ({"loras": '[{"strength": 1}]'}, "loras.0", "VALIDATION"),
    ({"loras": '[{"name": "x", "strength": "high"}]'}, "loras.0.strength", "VALIDATION"),
    ({"comfyWorkflow": "[1, 2]"}, "comfyWorkflow", "VALIDATION"),
    ({"comfyWorkflow": "{"}, "comfyWorkflow", "BAD_JSON"),
    ({"generation_params": "{}"}, "generation_params", "UNKNOWN_FIELD"),
    ({"sha256": "0" * 64}, "sha256", "UNKNOWN_FIELD"),
])
async def test_bad_fields_are_400_and_store_nothing(api, sha, fields, field, code):
    before = await state(api)
    response = await api.request("POST", f"/api/v1/models/{sha}/images",
                                 data=form(png_bytes(), **fields))
    body = await expect_error(response, 400, code)
    assert body["details"]["field"] == field
    assert await state(api) == before


async def test_form_refusals_store_nothing(api, sha):
    before = await state(api)
    url = f"/api/v1/models/{sha}/images"
    await expect_error(await api.request("POST", url, data=form(prompt="no file")), 400, "MISSING")
    await expect_error(await api.request("POST", url, data=form(b"")), 400, "EMPTY_IMAGE")
    twice = form(png_bytes(), seed="1")
    twice.add_field("seed", "2")
    await expect_error(await api.request("POST", url, data=twice), 400, "DUPLICATE_FIELD")
    as_file = form(png_bytes())
    as_file.add_field("prompt", b"text", filename="prompt.txt")
    await expect_error(await api.request("POST", url, data=as_file), 400)
    await expect_error(await api.request("POST", url, json={"file": "x"}), 400, "NOT_MULTIPART")
    fake = form(b"just some text, honestly", filename="picture.png")
    await expect_error(await api.request("POST", url, data=fake), 415, "NOT_AN_IMAGE")
    broken = form(png_bytes()[:40], filename="broken.png")
    await expect_error(await api.request("POST", url, data=broken), 422, "BAD_IMAGE")
    assert await state(api) == before


async def test_oversized_upload_is_413_and_stores_nothing(make_client, make_tree):
    tree = make_tree()
    api = V1Api(await make_client(tree, max_upload_bytes=64 * 1024), tree)
    sha = api.sha("base.safetensors")
    before = await state(api)
    big = b"\x89PNG\r\n\x1a\n" + bytes(100 * 1024)
    response = await api.request("POST", f"/api/v1/models/{sha}/images", data=form(big))
    await expect_error(response, 413, "TOO_LARGE")
    huge = b"\x89PNG\r\n\x1a\n" + bytes(2 * 1024 * 1024)  # beyond the form limit too
    response = await api.request("POST", f"/api/v1/models/{sha}/images", data=form(huge))
    await expect_error(response, 413)
    assert await state(api) == before


async def test_upload_to_unknown_or_malformed_model(api):
    before = await state(api)
    await expect_error(await api.request("POST", f"/api/v1/models/{'e' * 64}/images",
                                         data=form(png_bytes())), 404, "MODEL_NOT_FOUND")
    await expect_error(await api.request("POST", "/api/v1/models/xyz/images",
                                         data=form(png_bytes())), 400, "INVALID_SHA256")
    await expect_error(await api.get(f"/api/v1/models/{'e' * 64}/images"), 404, "MODEL_NOT_FOUND")
    assert await state(api) == before


# --- edit ------------------------------------------------------------------------------------

async def test_patch_changes_only_the_fields_sent(api, sha):
    image = await upload(api, sha, prompt="old", seed="5", steps="20", sampler="euler")
    url = f"/api/v1/models/{sha}/images/{image['id']}"
    changed = await api.json("PATCH", url, json={"prompt": "new", "nsfwLevel": 4, "steps": 30,
                                                 "sampler": None, "cfgScale": 7.5,
                                                 "loras": [{"name": "ink"}]})
    assert changed["prompt"] == "new" and changed["nsfwLevel"] == 4
    assert changed["negativePrompt"] == ""
    assert changed["generationParams"] == {"seed": 5, "steps": 30, "cfgScale": 7.5,
                                           "loras": [{"name": "ink"}]}
    assert {k: changed[k] for k in ("id", "url", "sortOrder", "width", "createdAt")} == {
        k: image[k] for k in ("id", "url", "sortOrder", "width", "createdAt")}
    assert await api.json("GET", f"/api/v1/models/{sha}/images") == [changed]
    again = await api.json("PATCH", url, json={"negativePrompt": "ugly"})
    assert again == {**changed, "negativePrompt": "ugly"}


@pytest.mark.parametrize("body", [
    {}, {"prompt": 5}, {"prompt": None}, {"nsfwLevel": 33}, {"nsfwLevel": None},
    {"steps": "20"}, {"seed": 1.5}, {"cfgScale": "7"}, {"loras": {"name": "x"}},
    {"comfyWorkflow": [1]}, {"url": "/elsewhere"}, {"sortOrder": 3}, {"prompt": "ok", "x": 1},
    [], "text",
])
async def test_bad_patch_is_400_and_changes_nothing(api, sha, body):
    image = await upload(api, sha, prompt="kept", seed="5")
    before = await state(api)
    response = await api.request("PATCH", f"/api/v1/models/{sha}/images/{image['id']}", json=body)
    await expect_error(response, 400)
    assert await state(api) == before


async def test_patch_refusals(api, sha):
    image = await upload(api, sha)
    url = f"/api/v1/models/{sha}/images/{image['id']}"
    await expect_error(await api.request("PATCH", url, data="{}",
                                         headers={"Content-Type": "text/plain"}), 415, "NOT_JSON")
    await expect_error(await api.request("PATCH", url, data="{bad",
                                         headers={"Content-Type": "application/json"}), 400,
                       "BAD_JSON")


# --- ids: unknown, malformed, another model's ------------------------------------------------

async def test_ids_of_another_model_or_none_are_404_and_change_nothing(api, sha):
    other = await api.db(lambda db: db.execute(
        "SELECT sha256 FROM models WHERE sha256 != ? ORDER BY sha256", [sha]).fetchone()[0])
    theirs = await upload(api, other)
    before = await state(api)
    for method, kwargs in (("PATCH", {"json": {"prompt": "x"}}), ("DELETE", {})):
        for owner, image_id in ((sha, theirs["id"]), (sha, 999_999), (other, 999_999)):
            response = await api.request(method, f"/api/v1/models/{owner}/images/{image_id}",
                                         **kwargs)
            await expect_error(response, 404, "IMAGE_NOT_FOUND")
        response = await api.request(method, f"/api/v1/models/{'e' * 64}/images/{theirs['id']}",
                                     **kwargs)
        await expect_error(response, 404, "MODEL_NOT_FOUND")
        for bad in ("abc", "0", "-1", "1.5", "99999999999"):
            response = await api.request(method, f"/api/v1/models/{other}/images/{bad}", **kwargs)
            await expect_error(response, 400, "INVALID_INTEGER")
    assert await state(api) == before


# --- delete ----------------------------------------------------------------------------------

async def test_delete_keeps_the_gallery_dense_and_leaves_no_orphan_files(api, sha):
    first = await upload(api, sha, png_bytes(colour=(10, 0, 0)))
    middle = await upload(api, sha, png_bytes(colour=(0, 10, 0)))
    last = await upload(api, sha, png_bytes(colour=(0, 0, 10)))
    content = await api.db(lambda db: db.execute(
        "SELECT image_sha256 FROM images WHERE id = ?", [middle["id"]]).fetchone()[0])
    images_dir = api.client.app[CONFIG].images_dir
    assert list(images_dir.rglob(f"{content}*"))
    body = await api.json("DELETE", f"/api/v1/models/{sha}/images/{middle['id']}")
    assert body == {"success": True, "deleted": middle["id"]}
    listed = await api.json("GET", f"/api/v1/models/{sha}/images")
    assert [(i["id"], i["sortOrder"]) for i in listed] == [(first["id"], 0), (last["id"], 1)]
    assert not list(images_dir.rglob(f"{content}*"))
    await expect_error(await api.request("DELETE", f"/api/v1/models/{sha}/images/{middle['id']}"),
                       404, "IMAGE_NOT_FOUND")


async def test_delete_keeps_a_picture_another_model_still_shows(api, sha):
    other = await api.db(lambda db: db.execute(
        "SELECT sha256 FROM models WHERE sha256 != ? ORDER BY sha256", [sha]).fetchone()[0])
    picture = png_bytes(colour=(7, 7, 7))
    mine = await upload(api, sha, picture)
    await upload(api, other, picture)
    await api.json("DELETE", f"/api/v1/models/{sha}/images/{mine['id']}")
    shown = await api.client.get((await api.json("GET", f"/api/v1/models/{other}/images"))[0]["url"])
    assert shown.status == 200


async def test_image_routes_refuse_a_missing_key(api, sha):
    image = await upload(api, sha)
    url = f"/api/v1/models/{sha}/images"
    before = await state(api)
    for method, path, kwargs in (("GET", url, {}), ("POST", url, {"data": form(png_bytes())}),
                                 ("PATCH", f"{url}/{image['id']}", {"json": {"prompt": "x"}}),
                                 ("DELETE", f"{url}/{image['id']}", {})):
        response = await api.client.request(method, path, **kwargs)
        await expect_error(response, 401, "UNAUTHORIZED")
    assert await state(api) == before
    assert await api.client.app[STORE].run(lambda db: db.execute(
        "SELECT count(*) FROM images").fetchone()[0]) == 1
