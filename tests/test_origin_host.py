"""Origin and Host over every route the router has (walked, so a new route is covered): a page
of another origin can neither change the library nor read an answer or an event, and a
DNS-rebinding Host is refused everywhere."""
from __future__ import annotations

import os
import re
from pathlib import Path

import aiohttp
import pytest

from server.app_keys import API_KEY, CONFIG, STORE
from tests.factories import bearer, expect_error, png_bytes
from tests.test_security import FOREIGN_ORIGINS

COMFYUI = "http://127.0.0.1:8188"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
REBINDING_HOSTS = ["evil.example", "attacker.example:{port}", "127.0.0.1.nip.io:{port}",
                   "localhost.attacker.example:{port}"]


def router_requests(app, sha: str) -> list[tuple[str, str]]:
    """(method, path) for every route of the router, its variables filled with plausible values."""
    samples = {"sha256": sha, "name": f"{sha}_0.webp", "path": "index.js", "alias": "local"}
    found = []
    for resource in app.router.resources():
        path = re.sub(r"\{([^}:]+)(?::[^}]*)?\}", lambda m: samples.get(m[1], "1"),
                      resource.canonical)
        found += [(route.method, path) for route in resource if route.method != "HEAD"]
    return sorted(set(found))


async def everything(client) -> tuple:
    """All a refused request could have changed: every table, every file, the API key."""
    dump = await client.app[STORE].run(lambda db: list(db.conn.iterdump()))
    config = client.app[CONFIG]
    roots = [config.data_dir, *config.model_roots]
    files = sorted((str(Path(r) / n), os.lstat(Path(r) / n).st_size)
                   for root in roots for r, _, names in os.walk(root) for n in names
                   if not n.startswith("library.db-"))  # WAL bookkeeping moves on reads too
    return dump, files, client.app[API_KEY].current()


@pytest.fixture
async def routes(client, sha) -> list[tuple[str, str]]:
    form = aiohttp.FormData()
    form.add_field("sha256", sha)
    form.add_field("image", png_bytes(), filename="a.png", content_type="image/png")
    assert (await client.post("/api/images/upload", data=form)).status == 200  # to delete
    found = router_requests(client.app, sha)
    assert len([m for m, _ in found if m in MUTATING]) >= 25  # the walk found the routes
    return found


async def test_a_foreign_origin_can_change_nothing_on_any_route(client, routes):
    before = await everything(client)
    mutating = [(method, path) for method, path in routes if method in MUTATING]
    for origin in FOREIGN_ORIGINS:
        for method, path in mutating:
            response = await client.request(method, path, json={"name": "pwned"},
                                            headers={**bearer(client), "Origin": origin})
            await expect_error(response, 403, "ORIGIN_NOT_ALLOWED")
            assert "Access-Control-Allow-Origin" not in response.headers, (method, path)
    assert await everything(client) == before


async def test_a_foreign_origin_gets_no_cors_headers_on_any_read(client, routes):
    for method, path in routes:
        if method in MUTATING or path == "/api/ws":
            continue
        response = await client.request(method, path, headers={"Origin": "http://evil.example"})
        assert response.status < 500, (method, path)
        assert "Access-Control-Allow-Origin" not in response.headers, (method, path)
        assert "Access-Control-Allow-Credentials" not in response.headers, (method, path)


async def test_a_foreign_preflight_is_refused_on_every_route(client, routes):
    for method, path in routes:
        response = await client.options(path, headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": method})
        await expect_error(response, 403, "ORIGIN_NOT_ALLOWED")
        assert "Access-Control-Allow-Methods" not in response.headers


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
async def test_a_foreign_page_cannot_open_the_events_socket(client, origin):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with client.ws_connect("/api/ws", headers={"Origin": origin}):
            pass
    assert refused.value.status == 403


async def test_our_page_comfyui_and_scripts_open_the_events_socket(client):
    own = f"http://{client.server.host}:{client.server.port}"
    for headers in ({"Origin": own}, {"Origin": COMFYUI}, {}):
        async with client.ws_connect("/api/ws", headers=headers) as socket:
            await socket.send_json({"type": "subscribe", "channel": "library"})
            assert (await socket.receive_json())["type"] == "subscribed"


async def test_a_rebinding_host_is_refused_on_every_route(client, routes):
    before = await everything(client)
    port = client.server.port
    for name in REBINDING_HOSTS:
        host = name.format(port=port)
        for method, path in routes:
            response = await client.request(method, path, headers={**bearer(client), "Host": host})
            await expect_error(response, 403, "HOST_NOT_ALLOWED")
        response = await client.options("/api/health", headers={
            "Host": host, "Origin": f"http://{host}", "Access-Control-Request-Method": "GET"})
        await expect_error(response, 403, "HOST_NOT_ALLOWED")
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with client.ws_connect("/api/ws", headers={"Host": host}):
                pass
    assert await everything(client) == before
