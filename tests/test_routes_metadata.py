"""POST /api/models/{sha256}/refresh-metadata and the bulk form over HTTP, against a local fake
Civitai; every failure as the one JSON envelope."""
from __future__ import annotations

import json
import time

import pytest

from server import civitai
from server.app import create_app
from server.app_keys import STORE
from tests.factories import add_tree_to_library, expect_error
from tests.fake_civitai import fake_civitai  # noqa: F401  (the fixture)

UNKNOWN = "0" * 64
TINY = civitai.Backoff(retries=2, base_delay=0.01, max_delay=0.05, max_total=1.0, timeout=5.0)


@pytest.fixture
async def make_api(aiohttp_client, make_config, make_tree, fake_civitai):  # noqa: F811
    """make_api(**config overrides) → (client, tree) over a real app whose Civitai is the fake."""

    async def make(**overrides):
        overrides = {"civitai_lookup": True, "civitai_url": fake_civitai.url, **overrides}
        app = create_app(make_config(**overrides))
        app[civitai.BACKOFF] = TINY
        client = await aiohttp_client(app)
        tree = make_tree()
        await app[STORE].run(add_tree_to_library, tree)
        return client, tree

    return make


async def test_refresh_answers_the_updated_model(make_api, fake_civitai):  # noqa: F811
    client, tree = await make_api(civitai_api_key="k")
    sha = tree.by_name("ink.safetensors").sha256
    fake_civitai.found(sha)
    response = await client.post(f"/api/models/{sha.upper()}/refresh-metadata")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["lookup"] == "found"
    assert (body["sha256"], body["name"], body["base_model"]) == (sha, "Ink Style", "SDXL 1.0")
    assert body["meta_json"]["trigger_words"] == ["inkstyle", "sumi-e"]
    assert fake_civitai.requests[0][1]["Authorization"] == "Bearer k"
    assert (await (await client.get(f"/api/models/{sha}")).json())["name"] == "Ink Style"


async def test_refresh_of_an_unknown_hash_then_cached(make_api, fake_civitai):  # noqa: F811
    client, tree = await make_api()
    sha = tree.by_name("glow.safetensors").sha256
    first = await client.post(f"/api/models/{sha}/refresh-metadata")
    second = await client.post(f"/api/models/{sha}/refresh-metadata")
    assert [(await r.json())["lookup"] for r in (first, second)] == ["not_found", "cached"]
    assert fake_civitai.asked(sha) == 1


async def test_429_then_200_waits_the_capped_retry_after(make_api, fake_civitai):  # noqa: F811
    client, tree = await make_api()
    sha = tree.by_name("ink.safetensors").sha256
    body = fake_civitai.found(sha)
    fake_civitai.script(sha, (429, None, {"Retry-After": "30"}), (200, body, {}))
    started = time.monotonic()
    response = await client.post(f"/api/models/{sha}/refresh-metadata")
    assert (await response.json())["lookup"] == "found"
    assert TINY.max_delay <= time.monotonic() - started < 5
    assert fake_civitai.asked(sha) == 2


async def test_a_failed_refresh_keeps_the_model_as_it_was(make_api, fake_civitai):  # noqa: F811
    client, tree = await make_api()
    sha = tree.by_name("ink.safetensors").sha256
    await client.patch(f"/api/models/{sha}", json={"meta_json": {"description": "kept"}})
    before = await (await client.get(f"/api/models/{sha}")).json()
    fake_civitai.script(sha, (500, None, {}))
    response = await client.post(f"/api/models/{sha}/refresh-metadata")
    assert response.status == 200
    body = await response.json()
    assert body.pop("lookup") == "failed"
    assert body == before
    assert fake_civitai.asked(sha) == TINY.retries + 1


async def test_bulk_refresh(make_api, fake_civitai):  # noqa: F811
    client, tree = await make_api()
    ink, glow = tree.by_name("ink.safetensors").sha256, tree.by_name("glow.safetensors").sha256
    fake_civitai.found(ink)
    response = await client.post("/api/models/refresh-metadata",
                                 json={"sha256": [ink, glow.upper(), UNKNOWN]})
    assert response.status == 200, await response.text()
    report = await response.json()
    assert report["results"] == [{"sha256": ink, "lookup": "found"},
                                 {"sha256": glow, "lookup": "not_found"},
                                 {"sha256": UNKNOWN, "lookup": "unknown_model"}]
    assert (report["total"], report["found"], report["not_found"]) == (3, 1, 1)


async def test_disabled_lookup_is_403_and_asks_nothing(make_api, fake_civitai):  # noqa: F811
    client, tree = await make_api(civitai_lookup=False)
    sha = tree.by_name("ink.safetensors").sha256
    for response in (await client.post(f"/api/models/{sha}/refresh-metadata"),
                     await client.post("/api/models/refresh-metadata", json={"sha256": [sha]})):
        body = await expect_error(response, 403, "CIVITAI_DISABLED")
        assert "civitai_lookup: true" in body["error"]
    assert fake_civitai.requests == []


async def test_unknown_model_is_404(make_api, fake_civitai):  # noqa: F811
    client, _ = await make_api()
    await expect_error(await client.post(f"/api/models/{UNKNOWN}/refresh-metadata"), 404,
                       "MODEL_NOT_FOUND")
    assert fake_civitai.requests == []


@pytest.mark.parametrize("sha", ["abc", "g" * 64, "a" * 65])
async def test_bad_sha_is_400(make_api, sha):
    client, _ = await make_api()
    await expect_error(await client.post(f"/api/models/{sha}/refresh-metadata"), 400,
                       "INVALID_SHA256")


@pytest.mark.parametrize("body", [
    {}, {"sha256": []}, {"sha256": ["abc"]}, {"sha256": "a" * 64}, {"sha256": ["a" * 64] * 101},
    {"sha256": ["a" * 64], "extra": 1}, [], "null"])
async def test_bad_bulk_bodies_are_400(make_api, body):
    client, _ = await make_api()
    data = body if isinstance(body, str) else json.dumps(body)
    response = await client.post("/api/models/refresh-metadata", data=data,
                                 headers={"Content-Type": "application/json"})
    await expect_error(response, 400, "VALIDATION")


async def test_bulk_body_must_be_json(make_api):
    client, _ = await make_api()
    response = await client.post("/api/models/refresh-metadata", data="sha256=x")
    await expect_error(response, 415, "NOT_JSON")


async def test_other_methods_are_405(make_api):
    client, tree = await make_api()
    sha = tree.by_name("ink.safetensors").sha256
    await expect_error(await client.get(f"/api/models/{sha}/refresh-metadata"), 405,
                       "METHOD_NOT_ALLOWED")
