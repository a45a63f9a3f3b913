"""security: the Host check (DNS rebinding), the Origin check and CORS, over real HTTP."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiohttp import FormData

from server import images, security
from server.app_keys import CONFIG, STORE

from tests.factories import png_bytes

COMFYUI = "http://127.0.0.1:8188"
EVIL = "http://evil.example"


def all_files(folder: Path) -> list[Path]:
    return sorted(Path(root) / name for root, _, names in os.walk(folder) for name in names)


async def assert_error(response, status: int, code: str) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error", "code", "details"} and body["code"] == code
    assert isinstance(body["error"], str) and isinstance(body["details"], dict)
    return body


def host(client) -> str:
    return f"{client.server.host}:{client.server.port}"


async def library_state(client) -> tuple:
    """Everything a refused request could have changed."""
    def read(db):
        return (db.execute("SELECT sha256, name, updated_at, meta FROM models ORDER BY sha256")
                .fetchall(),
                db.execute("SELECT * FROM images ORDER BY id").fetchall(),
                db.execute("SELECT * FROM tags ORDER BY id").fetchall(),
                db.execute("SELECT * FROM model_tags ORDER BY sha256, tag_id").fetchall())
    return await client.app[STORE].run(read), all_files(client.app[CONFIG].images_dir)


def image_form(sha: str) -> FormData:
    form = FormData()
    form.add_field("sha256", sha)
    form.add_field("image", png_bytes(), filename="a.png", content_type="image/png")
    return form


# --- Host ------------------------------------------------------------------------------------

async def test_foreign_host_is_refused(client):
    port = client.server.port
    for name in ("evil.example", f"evil.example:{port}", "EVIL.example:80",
                 f"127.0.0.1.nip.io:{port}", f"localhost.evil.example:{port}",
                 f"nas.local:{port}", f"2130706433:{port}", "evil.example:1:2"):
        for method, path in (("GET", "/api/health"), ("GET", "/api/nothing"),
                             ("POST", "/api/tags_add")):
            response = await client.request(method, path, headers={"Host": name})
            body = await assert_error(response, 403, "HOST_NOT_ALLOWED")
            assert "allowed_hosts" in body["error"]


async def test_foreign_host_cannot_change_anything(client, sha):
    before = await library_state(client)
    headers = {"Host": "evil.example"}
    await assert_error(await client.delete(f"/api/models/{sha}", headers=headers),
                       403, "HOST_NOT_ALLOWED")
    response = await client.post("/api/images/upload", data=image_form(sha), headers=headers)
    await assert_error(response, 403, "HOST_NOT_ALLOWED")
    assert await library_state(client) == before


async def test_loopback_hosts_pass(client):
    port = client.server.port
    for name in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}",
                 "127.0.0.1", "localhost", f"localhost.:{port}", f"192.168.1.20:{port}",
                 f"[fe80::1]:{port}"):
        response = await client.get("/api/health", headers={"Host": name})
        assert response.status == 200, name


async def test_the_default_test_client_host_passes(client):
    assert (await client.get("/api/health")).status == 200


async def test_a_host_listed_in_allowed_hosts_passes(make_client, make_tree):
    client = await make_client(make_tree(), allowed_hosts=("nas.local",))
    for name in ("nas.local", f"nas.local:{client.server.port}", "NAS.local:80"):
        assert (await client.get("/api/health", headers={"Host": name})).status == 200, name
    await assert_error(await client.get("/api/health", headers={"Host": "other.local"}),
                       403, "HOST_NOT_ALLOWED")


@pytest.mark.parametrize("header, expected", [
    ("127.0.0.1:8189", "127.0.0.1"), ("[::1]:8189", "::1"), ("[::1]", "::1"),
    ("example.com:80", "example.com"), ("example.com", "example.com"), ("::1", "::1"),
])
def test_host_name(header, expected):
    assert security.host_name(header) == expected


@pytest.mark.parametrize("header", [None, ""])
def test_missing_host_is_not_allowed(header):
    assert not security.host_allowed(header, ["localhost"])


# --- Origin ----------------------------------------------------------------------------------

FOREIGN_ORIGINS = [EVIL, "null", "http://127.0.0.1:8188.evil.example", "https://127.0.0.1:8188",
                   "http://127.0.0.1:8187", "http://localhost:9999", "file://"]


async def assert_mutations_refused(client, sha: str, origin: str) -> None:
    headers = {"Origin": origin}
    for response in [
        await client.post("/api/images/upload", data=image_form(sha), headers=headers),
        await client.patch(f"/api/models/{sha}", json={"name": "pwned"}, headers=headers),
        await client.delete(f"/api/models/{sha}", headers=headers),
        await client.delete("/api/images/delete", params={"sha256": sha, "seq": "0"},
                            headers=headers),
        await client.put(f"/api/models/{sha}/images/cover", json={"seq": 0}, headers=headers),
        await client.post("/api/tags_add", json={"sha256": sha, "tags": ["pwned"]},
                          headers=headers),
    ]:
        body = await assert_error(response, 403, "ORIGIN_NOT_ALLOWED")
        assert origin in body["error"]
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_mutations_from_a_foreign_origin_are_refused(client, sha):
    await client.post("/api/images/upload", data=image_form(sha))  # something to delete
    before = await library_state(client)
    for origin in FOREIGN_ORIGINS:
        await assert_mutations_refused(client, sha, origin)
    assert await library_state(client) == before


async def test_get_from_a_foreign_origin_has_no_cors_headers(client, sha):
    response = await client.get(f"/api/models/{sha}", headers={"Origin": EVIL})
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    response = await client.get("/api/nothing-here", headers={"Origin": EVIL})
    assert response.status == 404
    assert "Access-Control-Allow-Origin" not in response.headers


async def assert_cors_headers(client, sha: str, origin: str) -> None:
    for path, status in [("/api/health", 200), (f"/api/models/{sha}", 200),
                         ("/api/nothing-here", 404), ("/api/models/not-a-sha", 400),
                         (f"/api/models/{'a' * 64}", 404)]:
        response = await client.get(path, headers={"Origin": origin})
        assert response.status == status, path
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "Origin" in response.headers["Vary"]
        if status >= 400:
            assert set(await response.json()) == {"error", "code", "details"}


async def test_comfyui_origin_gets_cors_headers(client, sha):
    for origin in (COMFYUI, "http://localhost:8188", "http://LOCALHOST:8188/"):
        await assert_cors_headers(client, sha, origin)


async def test_comfyui_origin_may_change_the_library(client, sha):
    response = await client.post("/api/images/upload", data=image_form(sha),
                                 headers={"Origin": COMFYUI})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == COMFYUI
    assert len(await client.app[STORE].run(images.list_images, sha)) == 1


async def test_configured_cors_origin(make_client, make_tree):
    client = await make_client(make_tree(), cors_origins=("https://comfy.example",))
    response = await client.get("/api/health", headers={"Origin": "https://comfy.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://comfy.example"
    response = await client.get("/api/health", headers={"Origin": COMFYUI})
    assert "Access-Control-Allow-Origin" not in response.headers  # no longer listed


async def test_preflight_from_an_allowed_origin(client, sha):
    response = await client.options(
        f"/api/models/{sha}",
        headers={"Origin": COMFYUI, "Access-Control-Request-Method": "PATCH",
                 "Access-Control-Request-Headers": "Content-Type"})
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == COMFYUI
    assert "Origin" in response.headers["Vary"]
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    assert int(response.headers["Access-Control-Max-Age"]) > 0


async def test_preflight_from_a_foreign_origin(client, sha):
    response = await client.options(
        f"/api/models/{sha}", headers={"Origin": EVIL, "Access-Control-Request-Method": "DELETE"})
    await assert_error(response, 403, "ORIGIN_NOT_ALLOWED")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


async def test_same_origin_requests_pass(client, sha):
    own = f"http://{host(client)}"
    response = await client.post("/api/images/upload", data=image_form(sha),
                                 headers={"Origin": own})
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers  # not needed, not sent
    response = await client.put(f"/api/models/{sha}/images/cover", json={"seq": 0},
                                headers={"Origin": own})
    assert response.status == 200

    local = f"http://localhost:{client.server.port}"
    response = await client.delete("/api/images/delete", params={"sha256": sha, "seq": "0"},
                                   headers={"Origin": local,
                                            "Host": f"localhost:{client.server.port}"})
    assert response.status == 200
    assert await client.app[STORE].run(images.list_images, sha) == []


async def test_same_origin_means_same_host_and_port(client, sha):
    before = await library_state(client)
    other_port = f"http://127.0.0.1:{client.server.port + 1}"
    response = await client.delete(f"/api/models/{sha}", headers={"Origin": other_port})
    await assert_error(response, 403, "ORIGIN_NOT_ALLOWED")
    assert await library_state(client) == before


async def test_requests_without_origin_pass(client, sha):
    response = await client.delete(f"/api/models/{sha}")  # curl, scripts, ComfyUI's backend
    assert response.status == 200


async def test_request_without_host_is_judged_by_the_local_address(client):
    # HTTP/1.0 tools may send no Host; the address the request arrived on (loopback) stands in.
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"GET /api/health HTTP/1.0\r\n\r\n")
    await writer.drain()
    status_line = (await reader.read()).split(b"\r\n", 1)[0]
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"200"
