"""Hostile uploads on both upload routes (/api/images/upload and /api/v1/models/{sha256}/images):
bombs, broken and disguised pictures, oversized bodies. Each is a 4xx JSON envelope and leaves
no image row, no file in the images folder and no temp file anywhere."""
from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path

import pytest
from aiohttp import FormData

from server.app_keys import CONFIG, STORE
from tests.factories import bearer, expect_error, png_bytes
from tests.test_image_files import crafted_png, noise_png, png_chunk

MB = 1024 * 1024
SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
       b"<script>fetch('/api/models')</script></svg>")


def truncated_png() -> bytes:
    data = noise_png()
    return data[: len(data) * 6 // 10]


def plain_text_png(size: int) -> bytes:
    """A 4×4 PNG carrying `size` bytes of uncompressed tEXt: no amplification, just bulk."""
    return crafted_png(4, 4, before_idat=png_chunk(b"tEXt", b"Comment\0" + b"A" * size))


# (case, file bytes, part's content type, status, code)
HOSTILE = [
    ("decompression bomb 20000x20000", crafted_png(20_000, 20_000), "image/png", 413,
     "TOO_MANY_PIXELS"),
    ("decompression bomb 1x200000000", crafted_png(1, 200_000_000), "image/png", 413,
     "TOO_MANY_PIXELS"),
    ("truncated png", truncated_png(), "image/png", 422, "BAD_IMAGE"),
    ("zTXt bomb", crafted_png(4, 4, before_idat=png_chunk(
        b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * 8 * MB, 9))), "image/png", 422,
     "BAD_IMAGE"),
    ("iTXt bomb", crafted_png(4, 4, before_idat=png_chunk(
        b"iTXt", b"parameters\0\x01\x00\0\0" + zlib.compress(b"A" * 8 * MB, 9))), "image/png",
     422, "BAD_IMAGE"),
    ("20 MB tEXt chunk", plain_text_png(20 * MB), "image/png", 422, "TOO_MUCH_TEXT"),
    ("svg with a script", SVG, "image/svg+xml", 415, "NOT_AN_IMAGE"),
    ("svg labelled png", SVG, "image/png", 415, "NOT_AN_IMAGE"),
    ("html labelled png", b"<!doctype html><script>alert(1)</script>", "image/png", 415,
     "NOT_AN_IMAGE"),
    ("text labelled png", b"hello world\n" * 20, "image/png", 415, "NOT_AN_IMAGE"),
    ("zero bytes", b"", "image/png", 400, "EMPTY_IMAGE"),
    ("GIF/JavaScript polyglot", b"GIF89a/*\x00\x00*/=1;alert(document.domain)//", "image/gif",
     422, "BAD_IMAGE"),
    ("PNG signature then HTML", b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>",
     "image/png", 422, "BAD_IMAGE"),
    ("JPEG start then HTML", b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>",
     "image/jpeg", 422, "BAD_IMAGE"),
    ("PNG signature with JPEG data", b"\x89PNG\r\n\x1a\n" + png_bytes(fmt="JPEG")[8:],
     "image/png", 422, "BAD_IMAGE"),
]


class Route:
    """One of the two upload routes: how to address it and name its file part."""

    def __init__(self, name: str, file_field: str):
        self.name, self.file_field = name, file_field

    def path(self, sha: str) -> str:
        return "/api/images/upload" if self.name == "internal" else f"/api/v1/models/{sha}/images"

    def form(self, sha: str, data: bytes, content_type: str = "image/png",
             filename: str = "picture.png") -> FormData:
        form = FormData(default_to_multipart=True)
        if self.name == "internal":
            form.add_field("sha256", sha)
        form.add_field(self.file_field, data, filename=filename, content_type=content_type)
        return form

    async def post(self, client, sha: str, headers: dict | None = None, **kwargs):
        return await client.post(self.path(sha), headers={**bearer(client), **(headers or {})},
                                 **kwargs)


ROUTES = [Route("internal", "image"), Route("v1", "file")]


@pytest.fixture(params=ROUTES, ids=lambda r: r.name)
def route(request) -> Route:
    return request.param


@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """Python's temp folder for this test, to see that nothing is left in it (aiohttp spools
    large form parts there)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def all_files(folder: Path) -> list[Path]:
    return sorted(Path(root) / name for root, _, names in os.walk(folder) for name in names)


async def stored(client) -> tuple:
    rows = await client.app[STORE].run(
        lambda db: db.execute("SELECT count(*) FROM images").fetchone()[0])
    data_dir = client.app[CONFIG].data_dir
    temps = [p for p in all_files(data_dir) if p.suffix == ".tmp"]
    return rows, all_files(client.app[CONFIG].images_dir), temps


@pytest.mark.parametrize("case, data, content_type, status, code", HOSTILE,
                         ids=[case[0] for case in HOSTILE])
async def test_hostile_pictures_are_refused_and_nothing_is_stored(
        client, sha, route, temp_dir, case, data, content_type, status, code):
    response = await route.post(client, sha, data=route.form(sha, data, content_type))
    body = await expect_error(response, status, code)
    assert "Traceback" not in body["error"]
    assert await stored(client) == (0, [], [])
    assert all_files(temp_dir) == []


@pytest.fixture(scope="module")
def sixty_megabytes() -> bytes:
    return png_bytes() + bytes(60 * MB)


async def test_a_60_mb_body_is_refused_before_it_is_read(client, sha, route, temp_dir,
                                                         sixty_megabytes):
    response = await route.post(client, sha, data=route.form(sha, sixty_megabytes))
    body = await expect_error(response, 413, "TOO_LARGE")
    assert body["details"] == {"limit": 50 * MB}
    assert await stored(client) == (0, [], [])
    assert all_files(temp_dir) == []


async def test_a_60_mb_chunked_body_is_refused(client, sha, route, temp_dir, sixty_megabytes):
    """Without a Content-Length the server only learns the size while reading."""
    boundary = "hostileboundary"
    head = b""
    if route.name == "internal":
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="sha256"\r\n\r\n'
                 f"{sha}\r\n").encode()
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="{route.file_field}"; '
             'filename="a.png"\r\nContent-Type: image/png\r\n\r\n').encode()

    async def chunks():
        yield head
        view = memoryview(sixty_megabytes)
        for start in range(0, len(view), 8 * MB):
            yield bytes(view[start:start + 8 * MB])
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await route.post(client, sha, data=chunks(), headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    await expect_error(response, 413, "TOO_LARGE")
    assert await stored(client) == (0, [], [])
    assert all_files(temp_dir) == []


@pytest.mark.parametrize("content_type, body", [
    ("image/png", png_bytes()), ("text/plain", png_bytes()), ("application/json", b"{}"),
    ("application/x-www-form-urlencoded", b"image=x"),
])
async def test_a_body_that_is_not_a_multipart_form_is_refused(client, sha, route, content_type,
                                                              body):
    response = await client.post(route.path(sha), data=body,
                                 headers={**bearer(client), "Content-Type": content_type})
    await expect_error(response, 400, "NOT_MULTIPART")
    assert await stored(client) == (0, [], [])


# --- what the part's label says does not matter: the content decides ------------------------

@pytest.mark.parametrize("data, content_type, filename, fmt", [
    (png_bytes(), "text/plain", "notes.txt", "PNG"),
    (png_bytes(fmt="JPEG"), "image/png", "picture.png", "JPEG"),
    (png_bytes(fmt="WEBP"), "application/octet-stream", "x", "WEBP"),
])
async def test_a_picture_under_a_wrong_label_is_stored_as_what_it_is(
        client, sha, route, data, content_type, filename, fmt):
    response = await route.post(client, sha, data=route.form(sha, data, content_type, filename))
    assert response.status in (200, 201), await response.text()
    rows, files, temps = await stored(client)
    extension = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}[fmt]
    assert rows == 1 and temps == []
    originals = [p for p in files if not p.name.endswith(("_high.webp", "_medium.webp",
                                                           "_low.webp"))]
    assert [p.suffix for p in originals] == [extension]


async def test_a_picture_with_modest_text_is_still_welcome(client, sha, route):
    """A ComfyUI picture carries its workflow as text; a large one must not be refused."""
    response = await route.post(client, sha, data=route.form(sha, plain_text_png(2 * MB)))
    assert response.status in (200, 201), await response.text()
    assert (await stored(client))[0] == 1
