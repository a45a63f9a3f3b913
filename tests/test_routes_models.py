"""/api/models over HTTP: list, read, patch, delete; every failure as the one JSON envelope."""
from __future__ import annotations

import json

import pytest
from yarl import URL

from tests.factories import LibraryApi, expect_error

UNKNOWN_SHA = "0" * 64
BAD_SHAS = [
    "abc",                                 # too short
    "g" * 64,                              # not hex
    "a" * 65,                              # one too many
    "a" * 63,                              # one too few
    "..%2F..%2Fetc%2Fpasswd",              # traversal, encoded
    "a" * 30 + "%2F" + "b" * 31,           # an encoded slash inside
    "%2E%2E",                              # an encoded ..
    "a" * 63 + "%00",                      # a NUL byte
]


class Api(LibraryApi):

    async def model(self, sha256: str) -> dict:
        response = await self.client.get(f"/api/models/{sha256}")
        assert response.status == 200
        return await response.json()

    async def patch(self, sha256: str, body) -> object:
        return await self.client.patch(f"/api/models/{sha256}", json=body)

    async def names(self, query: str = "") -> list[str]:
        response = await self.client.get(f"/api/models{query}")
        assert response.status == 200
        return [m["name"] for m in (await response.json())["models"]]


@pytest.fixture
async def api(make_client, make_tree) -> Api:
    tree = make_tree()
    return Api(await make_client(tree), tree)


def model_row(db, sha256: str) -> dict:
    return db["models"].get(sha256)


def tag_links(db, sha256: str) -> list[int]:
    return sorted(r[0] for r in db.execute("SELECT tag_id FROM model_tags WHERE sha256 = ?", [sha256]))


# --- GET /api/models/get_types -----------------------------------------------------------------


async def test_get_types_lists_the_configured_kinds(api):
    response = await api.client.get("/api/models/get_types")
    assert response.status == 200
    assert await response.json() == {"types": ["checkpoints", "loras", "vae"]}


# --- GET /api/models ---------------------------------------------------------------------------


async def test_list_returns_every_model_with_the_page_fields(api):
    response = await api.client.get("/api/models")
    assert response.status == 200
    body = await response.json()
    assert (body["total"], body["offset"], body["limit"]) == (5, 0, 200)
    assert {m["sha256"] for m in body["models"]} == {f.sha256 for f in api.tree.files}
    assert set(body["models"][0]) == {
        "sha256", "name", "type", "base_model", "path", "size_bytes", "created_at",
        "nsfw_level", "tags", "images_count", "cover"}


async def test_list_filters_by_type_and_others(api):
    assert sorted(await api.names("?type=loras")) == ["glow.safetensors", "ink_copy.safetensors"]
    await api.patch(api.sha("clear.safetensors"), {"type": "upscale_models"})
    assert await api.names("?type=others") == ["clear.safetensors"]
    assert await api.names("?type=vae") == []


async def test_list_searches_and_pages(api):
    assert await api.names("?search=nested") == ["glow.safetensors"]
    assert await api.names("?search=%20%20old%20") == ["old.ckpt"]  # the query is trimmed
    response = await api.client.get("/api/models", params={"limit": "2", "offset": "4"})
    body = await response.json()
    assert (len(body["models"]), body["total"], body["offset"], body["limit"]) == (1, 5, 4, 2)


async def test_list_sorts_by_name(api):
    assert await api.names("?sort=name") == [
        "base.safetensors", "clear.safetensors", "glow.safetensors", "ink_copy.safetensors",
        "old.ckpt"]


async def test_list_filters_by_tags_and_exclude_tags(api):
    await api.patch(api.sha("ink.safetensors"), {"tags": ["style", "anime"]})
    await api.patch(api.sha("glow.safetensors"), {"tags": ["style"]})
    assert sorted(await api.names("?tags=style")) == ["glow.safetensors", "ink_copy.safetensors"]
    assert await api.names("?tags=style,%20anime") == ["ink_copy.safetensors"]
    assert await api.names("?tags=style&exclude_tags=anime") == ["glow.safetensors"]
    assert await api.names("?tags=style,unknown") == []


@pytest.mark.parametrize("ref", ["%C2%B2", "99999999999999999999999"])
async def test_list_with_an_odd_numeric_tag_is_empty_not_a_server_error(api, ref):
    response = await api.client.get(URL(f"/api/models?tags={ref}", encoded=True))
    assert response.status == 200
    assert (await response.json())["total"] == 0


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"),
    ("limit=abc", "limit"),
    ("limit=100000", "limit"),
    ("limit=-5", "limit"),
    ("limit=1.5", "limit"),
    ("offset=-1", "offset"),
    ("offset=x", "offset"),
    ("offset=99999999999", "offset"),
    ("sort=bogus", "sort"),
    ("sort=NAME", "sort"),
])
async def test_list_refuses_bad_query_params(api, query, field):
    body = await expect_error(await api.client.get(f"/api/models?{query}"), 400)
    assert body["details"]["field"] == field


async def test_list_accepts_the_limit_bounds(api):
    for limit in ("1", "1000"):
        response = await api.client.get(f"/api/models?limit={limit}")
        assert response.status == 200
        assert (await response.json())["limit"] == int(limit)


# --- GET /api/models/{sha256} ------------------------------------------------------------------


async def test_get_model_returns_the_record_with_both_copies(api):
    sha = api.sha("ink.safetensors")
    model = await api.model(sha)
    assert model["sha256"] == sha and model["autov2"] == sha[:10]
    assert model["type"] == "loras"
    assert [f["path"] for f in model["files"]] == sorted(
        [str(api.tree.by_name("ink.safetensors").path),
         str(api.tree.by_name("ink_copy.safetensors").path)])
    assert model["meta_json"] == {} and model["tags"] == [] and model["images"] == []


async def test_get_model_accepts_upper_case_sha(api):
    sha = api.sha("base.safetensors")
    model = await api.model(sha.upper())
    assert model["sha256"] == sha


async def test_get_unknown_model_is_404(api):
    body = await expect_error(await api.client.get(f"/api/models/{UNKNOWN_SHA}"), 404,
                              "MODEL_NOT_FOUND")
    assert body["details"] == {"sha256": UNKNOWN_SHA}


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
@pytest.mark.parametrize("bad", BAD_SHAS)
async def test_malformed_sha_is_400_on_every_method(api, method, bad):
    url = URL(f"/api/models/{bad}", encoded=True)
    response = await getattr(api.client, method)(url, json={"name": "x"})
    body = await expect_error(response, 400)
    assert body["code"] in ("INVALID_SHA256", "INVALID")
    assert await api.db(lambda db: db["models"].count) == 5


# --- PATCH /api/models/{sha256} ----------------------------------------------------------------


async def test_patch_changes_the_fields_sent_and_returns_the_model(api):
    sha = api.sha("base.safetensors")
    response = await api.patch(sha, {"name": "Base XL", "base_model": "SDXL",
                                     "meta_json": {"notes": "good", "nsfw_level": 2},
                                     "tags": ["sdxl", "base"]})
    assert response.status == 200
    model = await response.json()
    assert (model["name"], model["base_model"], model["type"]) == ("Base XL", "SDXL", "checkpoints")
    assert model["meta_json"] == {"notes": "good", "nsfw_level": 2, "sources": dict.fromkeys(
        ["name", "base_model", "notes", "nsfw_level"], "user")}
    assert [t["name"] for t in model["tags"]] == ["base", "sdxl"]
    assert await api.model(sha) == model
    listed = next(m for m in (await (await api.client.get("/api/models")).json())["models"]
                  if m["sha256"] == sha)
    assert listed["nsfw_level"] == 2


async def test_patch_meta_merges_and_null_removes(api):
    sha = api.sha("glow.safetensors")
    await api.patch(sha, {"meta_json": {"description": "d", "prompts": {"positive": "p",
                                                                        "negative": "n"}}})
    response = await api.patch(sha, {"meta_json": {"description": None,
                                                   "prompts": {"negative": None}}})
    assert response.status == 200
    assert (await response.json())["meta_json"] == {
        "prompts": {"positive": "p"}, "sources": {"description": "user", "prompts": "user"}}


async def test_patch_tags_by_id(api):
    sha = api.sha("glow.safetensors")
    created = (await (await api.client.post("/api/tags_add", json={"newtags": ["by-id"]})).json())
    tag_id = created["tags"][0]["id"]
    response = await api.patch(sha, {"tags": [tag_id, {"id": tag_id}]})
    assert response.status == 200
    assert (await response.json())["tags"] == [{"id": tag_id, "name": "by-id"}]


@pytest.mark.parametrize("body", [
    {},
    {"name": 5},
    {"name": None},
    {"tags": "a,b"},
    {"tags": [None]},
    {"tags": [""]},
    {"meta_json": ["a"]},
    {"meta_json": "text"},
    {"meta_json": {"prompts": "a string"}},
    {"meta_json": {"nsfw_level": "high"}},
    {"path": "/etc/passwd"},
    {"name": "ok", "path": "/tmp/elsewhere.safetensors"},
    {"tags": [2**64]},  # past SQLite's integers: was a 500 (found by bench.fuzz)
    {"tags": [{"id": 2**64}]},
    {"sha256": UNKNOWN_SHA},
    {"files": []},
    [],
    None,
    "name",
    5,
])
async def test_patch_with_a_bad_body_is_400_and_changes_nothing(api, body):
    sha = api.sha("base.safetensors")
    await api.patch(sha, {"tags": ["keep"], "meta_json": {"notes": "keep"}})
    before = await api.model(sha)
    response = await api.client.patch(f"/api/models/{sha}", data=json.dumps(body),
                                      headers={"Content-Type": "application/json"})
    result = await expect_error(response, 400, "VALIDATION")
    assert "field" in result["details"]
    assert await api.model(sha) == before


async def test_patch_names_the_unknown_key(api):
    body = await expect_error(await api.patch(api.sha("base.safetensors"), {"path": "/x"}), 400)
    assert "path" in body["error"]


async def test_patch_cannot_repoint_the_model_path(api):
    sha = api.sha("base.safetensors")
    await api.patch(sha, {"path": "/etc/passwd"})
    files = await api.db(lambda db: [r[0] for r in db.execute(
        "SELECT path FROM files WHERE sha256 = ?", [sha])])
    assert files == [str(api.tree.by_name("base.safetensors").path)]


async def test_patch_with_an_unknown_tag_id_keeps_the_old_tags(api):
    sha = api.sha("ink.safetensors")
    await api.patch(sha, {"tags": ["old"]})
    before = await api.model(sha)
    response = await api.patch(sha, {"name": "changed", "tags": ["fresh", 424242]})
    body = await expect_error(response, 400, "UNKNOWN_TAG")
    assert body["details"] == {"ids": [424242]}
    assert await api.model(sha) == before
    tag_names = await api.db(lambda db: [r[0] for r in db.execute("SELECT name FROM tags")])
    assert tag_names == ["old"]


@pytest.mark.parametrize("payload", [
    b"{", b"{'name': 'x'}", b"", b"\xff\xfe", b'{"name": "x"} trailing',
    b'{"meta_json": {"recommended": {"strength_model": NaN}}}',
    b'{"meta_json": {"recommended": {"strength_clip": -Infinity}}}',
    pytest.param(b"[" * 100_000, id="nested-too-deep"),
])
async def test_patch_with_invalid_json_is_400_bad_json(api, payload):
    sha = api.sha("base.safetensors")
    before = await api.model(sha)
    response = await api.client.patch(f"/api/models/{sha}", data=payload,
                                      headers={"Content-Type": "application/json"})
    await expect_error(response, 400, "BAD_JSON")
    assert await api.model(sha) == before


@pytest.mark.parametrize("headers", [{"Content-Type": "text/plain"},
                                     {"Content-Type": "application/x-www-form-urlencoded"},
                                     {}])
async def test_patch_without_json_content_type_is_415(api, headers):
    sha = api.sha("base.safetensors")
    before = await api.model(sha)
    response = await api.client.patch(f"/api/models/{sha}", data=b'{"name": "x"}', headers=headers)
    await expect_error(response, 415, "NOT_JSON")
    assert await api.model(sha) == before


async def test_patch_accepts_json_with_a_charset(api):
    sha = api.sha("base.safetensors")
    response = await api.client.patch(f"/api/models/{sha}", data='{"name": "Été"}'.encode(),
                                      headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status == 200
    assert (await response.json())["name"] == "Été"


async def test_patch_unknown_model_is_404(api):
    await expect_error(await api.patch(UNKNOWN_SHA, {"name": "x"}), 404, "MODEL_NOT_FOUND")


# --- DELETE /api/models/{sha256} ---------------------------------------------------------------


async def test_delete_model_then_get_is_404_and_the_file_stays(api):
    sha = api.sha("glow.safetensors")
    await api.patch(sha, {"tags": ["t"]})
    response = await api.client.delete(f"/api/models/{sha}")
    assert response.status == 200
    assert await response.json() == {"status": "success", "deleted": sha}
    await expect_error(await api.client.get(f"/api/models/{sha}"), 404, "MODEL_NOT_FOUND")
    assert api.tree.by_name("glow.safetensors").path.exists()
    assert await api.db(lambda db: tag_links(db, sha)) == []
    assert (await (await api.client.get("/api/models")).json())["total"] == 4
    tags = (await (await api.client.get("/api/tags")).json())["tags"]
    assert [(t["name"], t["count"]) for t in tags] == [("t", 0)]


async def test_delete_unknown_model_is_404(api):
    await expect_error(await api.client.delete(f"/api/models/{UNKNOWN_SHA}"), 404,
                       "MODEL_NOT_FOUND")


async def test_delete_twice_is_404_the_second_time(api):
    sha = api.sha("clear.safetensors")
    assert (await api.client.delete(f"/api/models/{sha}")).status == 200
    await expect_error(await api.client.delete(f"/api/models/{sha}"), 404, "MODEL_NOT_FOUND")


# --- the route table ---------------------------------------------------------------------------


async def test_unsupported_method_is_405_with_the_allowed_ones(api):
    response = await api.client.put(f"/api/models/{api.sha('base.safetensors')}", json={})
    body = await expect_error(response, 405, "METHOD_NOT_ALLOWED")
    assert body["details"]["allowed"] == ["DELETE", "GET", "HEAD", "PATCH"]
    assert response.headers["Allow"] == "DELETE,GET,HEAD,PATCH"


async def test_unknown_path_under_models_is_404_envelope(api):
    await expect_error(await api.client.get(f"/api/models/{UNKNOWN_SHA}/extra"), 404, "NOT_FOUND")


async def test_max_nsfw_level_leaves_out_models_marked_by_their_level(api):
    sha = api.sha("glow.safetensors")
    response = await api.client.patch(f"/api/models/{sha}", json={"meta_json": {"nsfw_level": 4}})
    assert response.status == 200
    everything = await api.names()
    safe = await api.names("?max_nsfw_level=0")
    assert len(safe) == len(everything) - 1 and "glow.safetensors" not in safe
    assert "glow.safetensors" in await api.names("?max_nsfw_level=4")
    await expect_error(await api.client.get("/api/models?max_nsfw_level=x"), 400, "INVALID_INTEGER")
