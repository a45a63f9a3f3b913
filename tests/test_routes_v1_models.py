"""/api/v1/models over HTTP: list filters, sorts and paging, details, and the file download with
its Range support and path containment."""
from __future__ import annotations

import asyncio
import os
from urllib.parse import quote

import pytest
from aiohttp import FormData

from server import library
from server.app_keys import API_KEY
from tests.factories import V1Api, expect_error, png_bytes

ITEM_KEYS = {"sha256", "name", "type", "baseModel", "nsfwLevel", "sizeBytes", "createdAt", "tags",
             "hasMetadata", "heroImage"}


def describe(db, api: V1Api) -> None:
    """Give the tree's models names, dates, base models, metadata and tags to filter on."""
    for file_name, created, base, patch in [
        ("ink.safetensors", 1000, "SDXL 1.0", {
            "name": "Ink Style", "tags": ["style", "anime"],
            "meta_json": {"description": "inky lines",
                          "source": {"provider": "civitai", "model_id": 5, "version_id": 7,
                                     "url": "https://civitai.com/models/5"},
                          "trigger_words": ["inkstyle"], "notes": "my note",
                          "prompts": {"positive": "ink", "negative": "blur"}}}),
        ("glow.safetensors", 2000, "Pony", {
            "tags": ["style"], "meta_json": {"nsfw_level": 8, "trigger_words": ["glowing"]}}),
        ("base.safetensors", 3000, "sdxl 1.0", {"name": "Base"}),
        ("clear.safetensors", 4000, "", {"meta_json": {"source": {"provider": "civitai"}}}),
        ("old.ckpt", 5000, "", {"meta_json": {"description": ""}}),
    ]:
        sha = api.sha(file_name)
        library.patch_model(db, sha, patch)
        db.execute("UPDATE models SET created_at = ?, base_model = ? WHERE sha256 = ?",
                   [created, base, sha])


@pytest.fixture
async def api(make_client, make_tree) -> V1Api:
    tree = make_tree()
    api = V1Api(await make_client(tree), tree)
    await api.db(describe, api)
    return api


async def names(api: V1Api, query: str) -> list[str]:
    body = await api.json("GET", f"/api/v1/models?{query}")
    return [item["name"] for item in body["items"]]


# --- list ------------------------------------------------------------------------------------

async def test_list_shape_and_defaults(api):
    body = await api.json("GET", "/api/v1/models")
    assert {k: body[k] for k in ("total", "page", "limit", "hasMore")} == {
        "total": 5, "page": 1, "limit": 40, "hasMore": False}
    assert [i["name"] for i in body["items"]] == [  # newest first by default
        "old.ckpt", "clear.safetensors", "Base", "glow.safetensors", "Ink Style"]
    ink = body["items"][-1]
    assert set(ink) == ITEM_KEYS
    assert ink == {"sha256": api.sha("ink.safetensors"), "name": "Ink Style", "type": "loras",
                   "baseModel": "SDXL 1.0", "nsfwLevel": 0,
                   "sizeBytes": api.tree.by_name("ink.safetensors").path.stat().st_size,
                   "createdAt": 1000, "tags": ["anime", "style"], "hasMetadata": True,
                   "heroImage": None}


@pytest.mark.parametrize("sort, key", [
    ("newest", lambda i: (-i["createdAt"], i["sha256"])),
    ("oldest", lambda i: (i["createdAt"], i["sha256"])),
    ("name", lambda i: (i["name"].lower(), i["sha256"])),
    ("size", lambda i: (-i["sizeBytes"], i["sha256"])),
])
async def test_sorts(api, sort, key):
    items = (await api.json("GET", f"/api/v1/models?sort={sort}"))["items"]
    assert items == sorted(items, key=key) and len(items) == 5


async def test_paging(api):
    seen = []
    for page, has_more in ((1, True), (2, True), (3, False)):
        body = await api.json("GET", f"/api/v1/models?sort=oldest&limit=2&page={page}")
        assert (body["page"], body["limit"], body["total"], body["hasMore"]) == (page, 2, 5, has_more)
        seen += [i["name"] for i in body["items"]]
    assert seen == await names(api, "sort=oldest&limit=100")
    beyond = await api.json("GET", "/api/v1/models?limit=2&page=4")
    assert beyond["items"] == [] and beyond["total"] == 5 and beyond["hasMore"] is False


# Plain ids: `search` also looks in file paths, and the test's tmp path holds its id.
@pytest.mark.parametrize("query, expected", [
    ("type=loras", ["Ink Style", "glow.safetensors"]),
    ("type=vae", ["clear.safetensors"]),
    ("type=others", []),
    ("baseModel=SDXL%201.0", ["Ink Style", "Base"]),   # case-insensitive
    ("baseModel=Pony&type=checkpoints", []),
    ("search=glow", ["glow.safetensors"]),
    ("search=INK", ["Ink Style"]),
    ("tags=style", ["Ink Style", "glow.safetensors"]),
    ("tags=style,anime", ["Ink Style"]),               # all must match
    ("tags=STYLE,%20anime%20", ["Ink Style"]),
    ("tags=style,nosuchtag", []),
    ("maxNsfwLevel=0", ["Ink Style", "Base", "clear.safetensors", "old.ckpt"]),
    ("maxNsfwLevel=8", ["Ink Style", "glow.safetensors", "Base", "clear.safetensors", "old.ckpt"]),
    ("hasMetadata=true", ["Ink Style", "glow.safetensors"]),
    ("hasMetadata=1", ["Ink Style", "glow.safetensors"]),
    ("hasMetadata=false", ["Base", "clear.safetensors", "old.ckpt"]),
    ("hasMetadata=true&tags=style&maxNsfwLevel=0&type=loras&baseModel=sdxl%201.0", ["Ink Style"]),
], ids=lambda value: "" if isinstance(value, list) else "q")
async def test_filters(api, query, expected):
    body = await api.json("GET", f"/api/v1/models?sort=oldest&{query}")
    assert [i["name"] for i in body["items"]] == expected
    assert body["total"] == len(expected)


@pytest.mark.parametrize("query, field", [
    ("page=0", "page"), ("page=-1", "page"), ("page=abc", "page"), ("page=1.5", "page"),
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"),
    ("sort=popular", "sort"), ("sort=NAME", "sort"),
    ("maxNsfwLevel=64", "maxNsfwLevel"), ("maxNsfwLevel=-1", "maxNsfwLevel"),
    ("maxNsfwLevel=x", "maxNsfwLevel"), ("hasMetadata=maybe", "hasMetadata"),
])
async def test_bad_list_parameters_are_400_naming_the_field(api, query, field):
    body = await expect_error(await api.get(f"/api/v1/models?{query}"), 400)
    assert body["details"]["field"] == field and field in body["error"]


async def test_limit_100_is_allowed(api):
    assert (await api.json("GET", "/api/v1/models?limit=100"))["limit"] == 100


async def upload(api: V1Api, sha: str, image: bytes, **fields: str) -> dict:
    form = FormData(default_to_multipart=True)
    form.add_field("file", image, filename="p.png", content_type="image/png")
    for name, value in fields.items():
        form.add_field(name, value)
    return await api.json("POST", f"/api/v1/models/{sha}/images", 201, data=form)


async def test_hero_image_is_the_cover_and_can_be_fetched(api):
    sha = api.sha("glow.safetensors")
    first = await upload(api, sha, png_bytes((80, 60)), nsfwLevel="4")
    await upload(api, sha, png_bytes((20, 30), colour=(0, 0, 255)))
    items = (await api.json("GET", "/api/v1/models?search=glow"))["items"]
    assert items[0]["heroImage"] == {"url": first["url"], "width": 80, "height": 60,
                                     "nsfwLevel": 4}
    picture = await api.client.get(first["url"])
    assert picture.status == 200 and picture.content_type == "image/webp"


# --- details ---------------------------------------------------------------------------------

async def test_details(api):
    sha = api.sha("ink.safetensors")
    copy = api.tree.by_name("ink_copy.safetensors").path
    os.remove(copy)
    await api.db(lambda db: db.execute("UPDATE files SET state = 'missing' WHERE path = ?",
                                       [str(copy)]))
    image = await upload(api, sha, png_bytes(), prompt="a cat", seed="42")
    body = await api.json("GET", f"/api/v1/models/{sha.upper()}")
    original = api.tree.by_name("ink.safetensors").path
    assert body["files"] == [
        {"path": str(original), "fileName": "ink.safetensors", "sizeBytes": original.stat().st_size,
         "state": "present", "kind": "loras"},
        {"path": str(copy), "fileName": "ink_copy.safetensors",
         "sizeBytes": original.stat().st_size, "state": "missing", "kind": "checkpoints"}]
    assert {k: body[k] for k in ("sha256", "autov2", "name", "type", "baseModel", "nsfwLevel",
                                 "sizeBytes", "description", "trainedWords", "notes", "prompts",
                                 "communityLinks", "source", "tags", "hasMetadata",
                                 "downloadUrl")} == {
        "sha256": sha, "autov2": sha[:10], "name": "Ink Style", "type": "loras",
        "baseModel": "SDXL 1.0", "nsfwLevel": 0, "sizeBytes": original.stat().st_size,
        "description": "inky lines", "trainedWords": ["inkstyle"], "notes": "my note",
        "prompts": {"positive": "ink", "negative": "blur"}, "communityLinks": "",
        "source": {"provider": "civitai", "modelId": 5, "versionId": 7,
                   "url": "https://civitai.com/models/5"},
        "tags": ["anime", "style"], "hasMetadata": True,
        "downloadUrl": f"/api/v1/models/{sha}/download"}
    assert body["images"] == [image]
    assert image["prompt"] == "a cat" and image["generationParams"] == {"seed": 42}
    assert body["heroImage"]["url"] == image["url"]
    assert body["createdAt"] == 1000 and body["updatedAt"] > 1000


async def test_details_of_a_model_without_metadata(api):
    body = await api.json("GET", f"/api/v1/models/{api.sha('base.safetensors')}")
    assert (body["description"], body["trainedWords"], body["notes"], body["source"],
            body["hasMetadata"], body["heroImage"], body["images"], body["tags"]) == (
        "", [], "", None, False, None, [], [])
    assert body["prompts"] == {"positive": "", "negative": ""}


@pytest.mark.parametrize("suffix", ["", "/download", "/images"])
async def test_malformed_and_unknown_hashes(api, suffix):
    for bad in ("abc", "g" * 64, "0" * 63, "0" * 65):
        await expect_error(await api.get(f"/api/v1/models/{bad}{suffix}"), 400, "INVALID_SHA256")
    await expect_error(await api.get(f"/api/v1/models/{'0' * 64}{suffix}"), 404, "MODEL_NOT_FOUND")


async def test_routes_refuse_a_missing_key(api):
    sha = api.sha("ink.safetensors")
    for path in ("/api/v1/models", f"/api/v1/models/{sha}", f"/api/v1/models/{sha}/download",
                 f"/api/v1/models/{sha}/images"):
        await expect_error(await api.client.get(path), 401, "UNAUTHORIZED")


# --- download --------------------------------------------------------------------------------

async def test_download_whole_file(api):
    model = api.tree.by_name("base.safetensors")
    response = await api.get(f"/api/v1/models/{model.sha256}/download")
    assert response.status == 200
    data = model.path.read_bytes()
    assert await response.read() == data
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == 'attachment; filename="base.safetensors"'
    assert response.headers["Accept-Ranges"] == "bytes"


async def test_download_ranges(api):
    model = api.tree.by_name("old.ckpt")
    data = model.path.read_bytes()
    url = f"/api/v1/models/{model.sha256}/download"
    first = await api.get(url, headers={"Range": "bytes=0-9"})
    assert first.status == 206 and await first.read() == data[:10]
    assert first.headers["Content-Range"] == f"bytes 0-9/{len(data)}"
    assert first.headers["Content-Length"] == "10"
    suffix = await api.get(url, headers={"Range": "bytes=-100"})
    assert suffix.status == 206 and await suffix.read() == data[-100:]
    middle = await api.get(url, headers={"Range": "bytes=100-"})
    assert middle.status == 206 and await middle.read() == data[100:]
    refused = await api.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert refused.status == 416 and refused.headers["Content-Range"] == f"bytes */{len(data)}"


async def test_download_head(api):
    model = api.tree.by_name("old.ckpt")
    response = await api.request("HEAD", f"/api/v1/models/{model.sha256}/download")
    assert response.status == 200
    assert response.headers["Content-Length"] == str(model.path.stat().st_size)


async def test_download_falls_back_to_a_present_copy_and_404s_without_one(api):
    sha = api.sha("ink.safetensors")
    ink, copy = api.tree.by_name("ink.safetensors").path, api.tree.by_name("ink_copy.safetensors").path
    os.remove(copy)  # recorded present, gone from disk
    response = await api.get(f"/api/v1/models/{sha}/download")
    assert response.status == 200 and await response.read() == ink.read_bytes()
    assert 'filename="ink.safetensors"' in response.headers["Content-Disposition"]
    os.remove(ink)
    await expect_error(await api.get(f"/api/v1/models/{sha}/download"), 404, "FILE_NOT_FOUND")
    await api.db(lambda db: db.execute("UPDATE files SET state = 'missing' WHERE sha256 = ?", [sha]))
    await expect_error(await api.get(f"/api/v1/models/{sha}/download"), 404, "FILE_NOT_FOUND")


async def test_download_non_ascii_name(api, tmp_path):
    model = api.tree.by_name("glow.safetensors")
    renamed = model.path.with_name('光 "glow"\\.safetensors')
    os.rename(model.path, renamed)
    await api.db(lambda db: db.execute("UPDATE files SET path = ? WHERE path = ?",
                                       [str(renamed), str(model.path)]))
    response = await api.get(f"/api/v1/models/{model.sha256}/download")
    assert response.status == 200 and await response.read() == renamed.read_bytes()
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="_ glow.safetensors"; '
        f"filename*=UTF-8''{quote('光 glow.safetensors', safe='')}")


async def test_download_refuses_a_symlink_leading_outside_the_roots(api, tmp_path):
    secret = tmp_path / "outside" / "secret.safetensors"
    secret.parent.mkdir()
    secret.write_bytes(b"not for download")
    model = api.tree.by_name("clear.safetensors")
    os.remove(model.path)
    os.symlink(secret, model.path)
    body = await expect_error(await api.get(f"/api/v1/models/{model.sha256}/download"), 403,
                              "OUTSIDE_ROOTS")
    assert "secret" not in str(body)


async def test_download_refuses_a_recorded_path_outside_the_roots(api, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"x" * 10)
    sha = api.sha("clear.safetensors")
    await api.db(lambda db: db.execute("UPDATE files SET path = ? WHERE sha256 = ?",
                                       [str(tmp_path / "models" / "vae" / ".." / ".." /
                                            "elsewhere.safetensors"), sha]))
    await expect_error(await api.get(f"/api/v1/models/{sha}/download"), 403, "OUTSIDE_ROOTS")


async def test_download_follows_a_symlink_inside_the_roots(api):
    target = api.tree.by_name("base.safetensors")
    link = api.tree.root / "loras" / "link.safetensors"
    os.symlink(target.path, link)
    sha = api.sha("glow.safetensors")
    await api.db(lambda db: db.execute("UPDATE files SET path = ? WHERE sha256 = ?",
                                       [str(link), sha]))
    response = await api.get(f"/api/v1/models/{sha}/download")
    assert response.status == 200 and await response.read() == target.path.read_bytes()
    assert 'filename="link.safetensors"' in response.headers["Content-Disposition"]


async def test_download_never_swaps_in_a_compressed_sibling(api):
    model = api.tree.by_name("base.safetensors")
    model.path.with_name("base.safetensors.gz").write_bytes(b"\x1f\x8b not the model")
    response = await api.get(f"/api/v1/models/{model.sha256}/download",
                             headers={"Accept-Encoding": "gzip, br"})
    assert response.status == 200 and "Content-Encoding" not in response.headers
    assert await response.read() == model.path.read_bytes()


async def raw_get(api: V1Api, target: str) -> tuple[int, bytes]:
    """Send the request line as written (no client-side normalising), with the key."""
    host, port = api.client.server.host, api.client.server.port
    key = api.client.app[API_KEY].current()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}"
                 "\r\nConnection: close\r\n\r\n".encode("latin-1"))
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.mark.parametrize("sha_part", [
    "..", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e", "%2e%2e%2f%2e%2e", "..%5c..%5cwin.ini",
    "%2fetc%2fpasswd", "/etc/passwd", "//etc/passwd", "{root}", "{file}", "{file_encoded}",
])
async def test_download_paths_never_read_a_file(api, tmp_path, sha_part):
    model = api.tree.by_name("base.safetensors")
    sha_part = sha_part.format(root=api.tree.root, file=model.path,
                               file_encoded=quote(str(model.path), safe=""))
    status, body = await raw_get(api, f"/api/v1/models/{sha_part}/download")
    assert status in (400, 404), (status, body[:200])
    assert body.startswith(b"{") and model.path.read_bytes() not in body and b"root:" not in body
