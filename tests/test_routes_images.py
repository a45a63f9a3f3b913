"""/api/images over HTTP: upload, serve, count, delete, order and cover, and every refusal."""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from aiohttp import FormData
from PIL import Image

from server import images
from server.app_keys import CONFIG, STORE

from tests.factories import png_bytes

MB = 1024 * 1024


# --- helpers ---------------------------------------------------------------------------------

def all_files(folder: Path) -> list[Path]:
    return sorted(Path(root) / name for root, _, names in os.walk(folder) for name in names)


def upload_form(sha: str | None, image: bytes | None = None, *, filename: str = "picture.png",
                content_type: str = "image/png", **fields: str) -> FormData:
    form = FormData(default_to_multipart=True)
    if image is not None:
        form.add_field("image", image, filename=filename, content_type=content_type)
    if sha is not None:
        form.add_field("sha256", sha)
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def assert_error(response, status: int | tuple[int, ...], code: str | None = None) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status in statuses, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error", "code", "details"}
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["code"], str) and isinstance(body["details"], dict)
    if code:
        assert body["code"] == code, body
    return body


async def state(client) -> tuple[list[Path], int]:
    """What an upload could change: the stored files and the image rows."""
    rows = await client.app[STORE].run(
        lambda db: db.execute("SELECT count(*) FROM images").fetchone()[0])
    return all_files(client.app[CONFIG].images_dir), rows


async def gallery(client, sha: str) -> list[dict]:
    return await client.app[STORE].run(images.list_images, sha)


async def raw_get(client, target: str) -> tuple[int, dict[str, str], bytes]:
    """Send a request line exactly as written (no client-side normalising of the path)."""
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
                 .encode("latin-1"))
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def open_webp(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.format == "WEBP"
        picture.load()
        return picture.copy()


@pytest.fixture
async def upload(client):
    async def send(sha: str, image: bytes | None = None, **fields) -> dict:
        response = await client.post("/api/images/upload",
                                     data=upload_form(sha, image or png_bytes(), **fields))
        assert response.status == 200, await response.text()
        return await response.json()

    return send


# --- upload ----------------------------------------------------------------------------------

async def test_upload_returns_the_base_name_and_the_record(client, sha):
    data = png_bytes(size=(80, 60))
    form = upload_form(sha, data, prompt="a red square", negative_prompt="blur",
                       generation_params=json.dumps({"steps": 30, "cfg": 7.5}), nsfw_level="2")

    response = await client.post("/api/images/upload", data=form)

    assert response.status == 200
    body = await response.json()
    content = hashlib.sha256(data).hexdigest()
    assert body["status"] == "success"
    assert body["base_name"] == f"{sha}_0"
    record = body["image"]
    assert record["seq"] == 0 and record["image_sha256"] == content
    assert (record["width"], record["height"]) == (80, 60)
    assert record["prompt"] == "a red square" and record["negative_prompt"] == "blur"
    assert record["generation_params"] == {"steps": 30, "cfg": 7.5}
    assert record["nsfw_level"] == 2 and record["source"] == "upload"
    assert record["url"] == f"/api/images/{sha}_0.webp?v={content[:16]}"
    assert await gallery(client, sha) == [record]
    files, rows = await state(client)
    assert rows == 1 and len(files) == 4  # three tiers and the original


async def test_uploads_number_in_sequence(client, sha, upload):
    first = await upload(sha, png_bytes(colour=(1, 1, 1)))
    second = await upload(sha, png_bytes(colour=(2, 2, 2)))
    assert (first["base_name"], second["base_name"]) == (f"{sha}_0", f"{sha}_1")


async def test_upload_accepts_an_upper_case_sha256(client, sha, upload):
    body = await upload(sha.upper())
    assert body["base_name"] == f"{sha}_0"


async def test_same_picture_uploaded_twice_is_stored_once(client, sha, upload):
    data = png_bytes()
    await upload(sha, data)
    files_after_first, _ = await state(client)
    await upload(sha, data)
    files, rows = await state(client)
    assert files == files_after_first and rows == 2


# --- serving ---------------------------------------------------------------------------------

@pytest.fixture
async def uploaded(client, sha, upload) -> dict:
    """An image at seq 0 of `sha`: 90×60, so each tier has its own size."""
    return (await upload(sha, png_bytes(size=(90, 60), colour=(10, 120, 200))))["image"]


async def test_serve_image(client, sha, uploaded):
    # The bare name is seq 0; `.webp` is optional; the sha256 may be upper case.
    for name in (f"{sha}_0.webp", f"{sha}_0", sha, f"{sha}.webp", f"{sha.upper()}_0.webp"):
        response = await client.get(f"/api/images/{name}")
        assert response.status == 200, name
        assert response.content_type == "image/webp"
        assert open_webp(await response.read()).size == (90, 60)


async def test_serve_quality(client, sha, uploaded):
    for quality, size in (("high", (90, 60)), ("medium", (59, 40)), ("low", (30, 20))):
        response = await client.get(f"/api/images/{sha}_0.webp", params={"quality": quality})
        assert response.status == 200
        assert response.content_type == "image/webp"
        assert open_webp(await response.read()).size == size, quality


async def test_serve_the_second_image(client, sha, upload, uploaded):
    second = (await upload(sha, png_bytes(size=(20, 10))))["image"]
    response = await client.get(second["url"])
    assert response.status == 200
    assert open_webp(await response.read()).size == (20, 10)


async def test_etag_and_not_modified(client, sha, uploaded):
    first = await client.get(f"/api/images/{sha}_0.webp")
    etag = first.headers["ETag"]
    assert etag == f'"{uploaded["image_sha256"][:32]}-high"'

    again = await client.get(f"/api/images/{sha}_0.webp", headers={"If-None-Match": etag})

    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    medium = await client.get(f"/api/images/{sha}_0.webp?quality=medium",
                              headers={"If-None-Match": etag})
    assert medium.status == 200 and medium.headers["ETag"] != etag


async def test_etag_follows_the_content_not_the_address(client, sha, upload, uploaded):
    await upload(sha, png_bytes(colour=(250, 250, 0)))
    old = (await client.get(f"/api/images/{sha}_0.webp")).headers["ETag"]

    await client.delete("/api/images/delete", params={"sha256": sha, "seq": "0"})

    response = await client.get(f"/api/images/{sha}_0.webp", headers={"If-None-Match": old})
    assert response.status == 200 and response.headers["ETag"] != old


async def test_cache_control_is_immutable_only_for_the_matching_version(client, sha, uploaded):
    assert uploaded["url"].endswith(f"?v={uploaded['image_sha256'][:16]}")
    response = await client.get(uploaded["url"])
    assert response.status == 200
    assert "immutable" in response.headers["Cache-Control"]
    assert "max-age=31536000" in response.headers["Cache-Control"]

    for query in ("", "?v=0000000000000000", f"?v={uploaded['image_sha256'][:15]}",
                  f"?v={uploaded['image_sha256'][:16]}x"):
        response = await client.get(f"/api/images/{sha}_0.webp{query}")
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-cache", query


async def test_not_modified_keeps_the_cache_policy(client, sha, uploaded):
    etag = (await client.get(uploaded["url"])).headers["ETag"]
    response = await client.get(uploaded["url"], headers={"If-None-Match": etag})
    assert response.status == 304
    assert "immutable" in response.headers["Cache-Control"]


async def test_serving_a_missing_file_is_a_json_404(client, sha, uploaded):
    for path in all_files(client.app[CONFIG].images_dir):
        path.unlink()
    await assert_error(await client.get(f"/api/images/{sha}_0.webp"), 404, "IMAGE_FILE_MISSING")


# --- count, delete, order, cover -------------------------------------------------------------

async def test_get_img_count(client, sha, upload):
    url = "/api/images/get_img_count"
    assert await (await client.get(url, params={"sha256": sha})).json() == {"count": 0}
    await upload(sha, png_bytes(colour=(1, 1, 1)))
    await upload(sha, png_bytes(colour=(2, 2, 2)))
    assert await (await client.get(url, params={"sha256": sha})).json() == {"count": 2}

    await assert_error(await client.get(url, params={"sha256": "a" * 64}), 404, "MODEL_NOT_FOUND")
    await assert_error(await client.get(url), 400, "MISSING")
    await assert_error(await client.get(url, params={"sha256": "../x"}), 400, "INVALID_SHA256")


async def test_delete_compacts_the_sequence(client, sha, upload):
    contents = [(await upload(sha, png_bytes(colour=(n, n, n))))["image"]["image_sha256"]
                for n in range(3)]

    response = await client.delete("/api/images/delete", params={"sha256": sha, "seq": "1"})

    assert response.status == 200
    assert await response.json() == {"status": "success"}
    assert [(r["seq"], r["image_sha256"]) for r in await gallery(client, sha)] == [
        (0, contents[0]), (1, contents[2])]
    files, _ = await state(client)
    assert not any(contents[1] in p.name for p in files)
    await assert_error(await client.get(f"/api/images/{sha}_2.webp"), 404, "IMAGE_NOT_FOUND")


async def test_delete_refusals_change_nothing(client, sha, uploaded):
    before = await state(client)
    for query, status in [
        ({"sha256": sha}, 400),  # no seq
        ({"sha256": sha, "seq": ""}, 400),
        ({"sha256": sha, "seq": "-1"}, 400),
        ({"sha256": sha, "seq": "one"}, 400),
        ({"sha256": sha, "seq": "1.5"}, 400),
        ({"sha256": sha, "seq": "99999999999"}, 400),
        ({"sha256": sha, "seq": "1"}, 404),
        ({"sha256": sha, "seq": "7"}, 404),
        ({"sha256": "b" * 64, "seq": "0"}, 404),
        ({"seq": "0"}, 400),
        ({"sha256": "../../x", "seq": "0"}, 400),
    ]:
        await assert_error(await client.delete("/api/images/delete", params=query), status)
        assert await state(client) == before, query


async def test_deleting_the_model_removes_its_image_files(client, sha, upload):
    await upload(sha, png_bytes(colour=(1, 1, 1)))
    await upload(sha, png_bytes(colour=(2, 2, 2)))

    response = await client.delete(f"/api/models/{sha}")

    assert response.status == 200
    assert await state(client) == ([], 0)
    await assert_error(await client.get(f"/api/images/{sha}_0.webp"), 404, "IMAGE_NOT_FOUND")


@pytest.fixture
async def three(client, sha, upload) -> list[str]:
    return [(await upload(sha, png_bytes(colour=(n, 9, 9))))["image"]["image_sha256"]
            for n in range(3)]


async def test_put_order(client, sha, three):
    response = await client.put(f"/api/models/{sha}/images/order", json={"order": [2, 0, 1]})
    assert response.status == 200
    body = await response.json()
    assert [r["image_sha256"] for r in body["images"]] == [three[2], three[0], three[1]]
    assert body["images"] == await gallery(client, sha)


async def test_put_order_refusals(client, sha, three):
    for body, code in [
        ({"order": [0, 1]}, "BAD_ORDER"),
        ({"order": [0, 0, 1]}, "BAD_ORDER"),
        ({"order": [0, 1, 5]}, "BAD_ORDER"),
        ({"order": []}, "BAD_ORDER"),
        ({"order": [-1, 0, 1]}, "VALIDATION"),
        ({"order": "0,1,2"}, "VALIDATION"),
        ({"ordre": [0, 1, 2]}, "VALIDATION"),
        ([0, 1, 2], "VALIDATION"),
    ]:
        response = await client.put(f"/api/models/{sha}/images/order", json=body)
        await assert_error(response, 400, code)
        assert [r["image_sha256"] for r in await gallery(client, sha)] == three, body


async def test_put_order_needs_json(client, sha, three):
    response = await client.put(f"/api/models/{sha}/images/order", data=b"order=0,1,2",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    await assert_error(response, 415, "NOT_JSON")
    response = await client.put(f"/api/models/{sha}/images/order", data=b"{not json",
                                headers={"Content-Type": "application/json"})
    await assert_error(response, 400, "BAD_JSON")


async def test_put_order_of_unknown_model(client, three):
    response = await client.put(f"/api/models/{'c' * 64}/images/order", json={"order": []})
    await assert_error(response, 404, "MODEL_NOT_FOUND")
    response = await client.put("/api/models/not-a-sha/images/order", json={"order": []})
    await assert_error(response, 400, "INVALID_SHA256")


async def test_put_cover(client, sha, three):
    response = await client.put(f"/api/models/{sha}/images/cover", json={"seq": 2})
    assert response.status == 200
    body = await response.json()
    assert [r["image_sha256"] for r in body["images"]] == [three[2], three[0], three[1]]
    assert body["images"][0]["url"].endswith(f"_0.webp?v={three[2][:16]}")


async def test_put_cover_refusals(client, sha, three):
    for body, status in [({"seq": 3}, 404), ({"seq": -1}, 400), ({"seq": "1"}, 400), ({}, 400),
                         ({"seq": 1, "x": 1}, 400), ({"seq": 1.5}, 400),
                         ({"seq": 2**64}, 400)]:  # past SQLite's integers: was a 500
        await assert_error(await client.put(f"/api/models/{sha}/images/cover", json=body), status)
        assert [r["image_sha256"] for r in await gallery(client, sha)] == three, body
    await assert_error(await client.put(f"/api/models/{'c' * 64}/images/cover", json={"seq": 0}),
                       404)


# --- refused uploads: the error envelope, and nothing written ---------------------------------

def truncated_png() -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (96, 64), os.urandom(96 * 64 * 3)).save(buffer, "PNG")
    return buffer.getvalue()[: len(buffer.getvalue()) * 6 // 10]


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'


def refused_uploads(sha: str) -> list[tuple[str, FormData, int, str | None]]:
    good = png_bytes(colour=(7, 7, 7))
    text_image = FormData(default_to_multipart=True)
    text_image.add_field("sha256", sha)
    text_image.add_field("image", "not a file")
    return [
        ("unknown model", upload_form("d" * 64, good), 404, "MODEL_NOT_FOUND"),
        ("malformed sha256", upload_form("xyz", good), 400, "INVALID_SHA256"),
        ("sha256 ../../x", upload_form("../../x", good), 400, "INVALID_SHA256"),
        ("sha256 ..%2F", upload_form("..%2F..%2F" + sha[:54], good), 400, "INVALID_SHA256"),
        ("sha256 absolute", upload_form("/etc/passwd", good), 400, "INVALID_SHA256"),
        ("sha256 + suffix", upload_form(sha + "/../../x", good), 400, "INVALID_SHA256"),
        ("sha256 + newline", upload_form(sha + "\n", good), 400, "INVALID_SHA256"),
        ("no sha256", upload_form(None, good), 400, "MISSING"),
        ("no image", upload_form(sha), 400, "MISSING"),
        ("image as text field", text_image, 400, "MISSING"),
        ("empty image", upload_form(sha, b""), 400, "EMPTY_IMAGE"),
        ("text file", upload_form(sha, b"hello world\n" * 20), 415, "NOT_AN_IMAGE"),
        ("svg", upload_form(sha, SVG, filename="a.svg", content_type="image/svg+xml"),
         415, "NOT_AN_IMAGE"),
        ("truncated png", upload_form(sha, truncated_png()), 422, "BAD_IMAGE"),
        ("bad generation_params", upload_form(sha, good, generation_params="{steps: 20"),
         400, None),
        ("generation_params array", upload_form(sha, good, generation_params="[1, 2]"),
         400, "VALIDATION"),
        ("nsfw_level abc", upload_form(sha, good, nsfw_level="abc"), 400, "INVALID_INTEGER"),
        ("nsfw_level 33", upload_form(sha, good, nsfw_level="33"), 400, "INVALID_INTEGER"),
        ("nsfw_level -1", upload_form(sha, good, nsfw_level="-1"), 400, "INVALID_INTEGER"),
    ]


async def test_refused_upload_writes_nothing(client, sha, uploaded):
    before = await state(client)
    for case, form, status, code in refused_uploads(sha):
        body = await assert_error(await client.post("/api/images/upload", data=form), status, code)
        assert await state(client) == before, case
        assert "Traceback" not in body["error"]


async def test_upload_that_is_not_multipart(client, sha, uploaded):
    before = await state(client)
    for headers, body in [
        ({"Content-Type": "application/json"}, b'{"sha256": "x"}'),
        ({"Content-Type": "image/png"}, png_bytes()),
        ({"Content-Type": "application/x-www-form-urlencoded"}, f"sha256={sha}&image=x".encode()),
        ({}, b""),
    ]:
        response = await client.post("/api/images/upload", data=body, headers=headers)
        await assert_error(response, 400, "NOT_MULTIPART")
        assert await state(client) == before, headers


async def test_malformed_multipart_is_a_client_error(client, sha, uploaded):
    before = await state(client)
    for content_type, body in [
        ("multipart/form-data", b"garbage"),
        ("multipart/form-data; boundary=xyz", b"garbage"),
        ("multipart/form-data; boundary=xyz",
         b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\nabc'),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Dispos"),
    ]:
        response = await client.post("/api/images/upload", data=body,
                                     headers={"Content-Type": content_type})
        await assert_error(response, 400, "BAD_MULTIPART")
        assert await state(client) == before, body


@pytest.fixture(scope="module")
def sixty_megabytes() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(60 * MB)


async def test_upload_over_the_limit_with_a_length(client, sha, uploaded, sixty_megabytes):
    before = await state(client)
    response = await client.post("/api/images/upload", data=upload_form(sha, sixty_megabytes))
    body = await assert_error(response, 413, "TOO_LARGE")
    assert body["details"] == {"limit": 50 * MB}
    assert await state(client) == before


async def test_upload_over_the_limit_without_a_length(client, sha, uploaded, sixty_megabytes):
    boundary = "hikazeboundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="sha256"\r\n\r\n{sha}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()

    async def chunks():  # a generator body is sent chunked: the server cannot know the size
        yield head
        view = memoryview(sixty_megabytes)
        for start in range(0, len(view), 4 * MB):
            yield bytes(view[start:start + 4 * MB])
        yield f"\r\n--{boundary}--\r\n".encode()

    before = await state(client)
    response = await client.post(
        "/api/images/upload", data=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    await assert_error(response, 413, "TOO_LARGE")
    assert await state(client) == before


async def test_upload_limit_follows_the_config(make_client, make_tree):
    client = await make_client(make_tree(), max_upload_bytes=64 * 1024)
    model = await client.app[STORE].run(
        lambda db: db.execute("SELECT sha256 FROM models").fetchone()[0])
    big = b"\x89PNG\r\n\x1a\n" + bytes(100 * 1024)
    before = await state(client)
    await assert_error(await client.post("/api/images/upload", data=upload_form(model, big)),
                       413, "TOO_LARGE")
    assert await state(client) == before
    small = await client.post("/api/images/upload", data=upload_form(model, png_bytes()))
    assert small.status == 200


# --- serving refusals: never a file outside the data folder -----------------------------------

BAD_NAMES = [
    "/api/images/..%2F..%2Fetc%2Fpasswd",
    "/api/images/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/api/images/%2e%2e",
    "/api/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/api/images/../../etc/passwd",
    "/api/images/..%5C..%5Cwindows%5Cwin.ini",
    "/api/images/%2Fetc%2Fpasswd",
    "/api/images//etc/passwd",
    "/api/images/{sha}_abc",
    "/api/images/{sha}_1.png",
    "/api/images/{sha}_0.png",
    "/api/images/{sha}_-1.webp",
    "/api/images/{sha}_0.webp%00.png",
    "/api/images/{sha}_0%2F..%2F..%2Flibrary.db",
    "/api/images/{sha}_0.webp/../../library.db",
    "/api/images/{short}_0.webp",
    "/api/images/{sha}0_0.webp",
    "/api/images/{sha}_1",
    "/api/images/{sha}_9999999",
    "/api/images/{sha}_0.webp?quality=../../../../etc/passwd",
]


async def test_bad_image_names_never_serve_a_file(client, sha, uploaded):
    for target in BAD_NAMES:
        status, headers, body = await raw_get(client, target.format(sha=sha, short=sha[:63]))
        assert status in (400, 404), (target, status, body[:200])
        assert headers["content-type"].startswith("application/json"), target
        assert set(json.loads(body)) == {"error", "code", "details"}
        assert b"root:" not in body and b"SQLite" not in body


async def test_unknown_quality_is_invalid(client, sha, uploaded):
    for quality in ("ultra", "HIGH", "original", "../high"):
        response = await client.get(f"/api/images/{sha}_0.webp", params={"quality": quality})
        body = await assert_error(response, 400, "INVALID_CHOICE")
        assert body["details"]["options"] == ["high", "medium", "low"]


async def test_unknown_model_image_is_not_found(client, uploaded):
    await assert_error(await client.get(f"/api/images/{'e' * 64}_0.webp"), 404, "IMAGE_NOT_FOUND")
