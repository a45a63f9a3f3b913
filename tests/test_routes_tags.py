"""/api/tags over HTTP: list with counts, get-or-create, rename or merge, delete."""
from __future__ import annotations


import pytest

from tests.factories import LibraryApi, expect_error


class Api(LibraryApi):

    async def add(self, *names) -> list[dict]:
        response = await self.client.post("/api/tags_add", json={"newtags": list(names)})
        assert response.status == 200
        return (await response.json())["tags"]

    async def tag_model(self, file_name: str, *refs) -> None:
        response = await self.client.patch(f"/api/models/{self.sha(file_name)}",
                                           json={"tags": list(refs)})
        assert response.status == 200

    async def listed(self) -> list[tuple[str, int]]:
        response = await self.client.get("/api/tags")
        assert response.status == 200
        return [(t["name"], t["count"]) for t in (await response.json())["tags"]]

    async def model_tags(self, file_name: str) -> list[str]:
        response = await self.client.get(f"/api/models/{self.sha(file_name)}")
        return [t["name"] for t in (await response.json())["tags"]]


@pytest.fixture
async def api(make_client, make_tree) -> Api:
    tree = make_tree()
    return Api(await make_client(tree), tree)


def tag_names(db) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM tags ORDER BY id")]


# --- GET /api/tags -----------------------------------------------------------------------------


async def test_list_tags_is_empty_at_first(api):
    response = await api.client.get("/api/tags")
    assert response.status == 200
    assert await response.json() == {"tags": []}


async def test_list_tags_has_ids_names_and_counts(api):
    await api.tag_model("base.safetensors", "sdxl", "favourite")
    await api.tag_model("glow.safetensors", "favourite")
    await api.add("unused")
    response = await api.client.get("/api/tags")
    tags = (await response.json())["tags"]
    assert [(t["name"], t["count"]) for t in tags] == [
        ("favourite", 2), ("sdxl", 1), ("unused", 0)]
    assert all(isinstance(t["id"], int) for t in tags)


# --- POST /api/tags_add ------------------------------------------------------------------------


async def test_tags_add_gets_or_creates_in_order(api):
    existing, = await api.add("nsfw")
    result = await api.add("  new   one ", "NSFW", "", None, 3, "new one", "last")
    assert [t["name"] for t in result] == ["new one", "nsfw", "last"]
    assert result[1] == existing
    assert await api.db(tag_names) == ["nsfw", "new one", "last"]


async def test_tags_add_with_an_empty_list_creates_nothing(api):
    assert await api.add() == []
    assert await api.db(tag_names) == []


@pytest.mark.parametrize("body", [
    {},
    {"tags": ["a"]},
    {"newtags": "a,b"},
    {"newtags": {"name": "a"}},
    {"newtags": None},
    ["a"],
    "a",
])
async def test_tags_add_with_a_bad_body_is_400(api, body):
    response = await api.client.post("/api/tags_add", json=body)
    await expect_error(response, 400, "VALIDATION")
    assert await api.db(tag_names) == []


async def test_tags_add_names_the_missing_field(api):
    body = await expect_error(await api.client.post("/api/tags_add", json={}), 400)
    assert "newtags" in body["error"]


@pytest.mark.parametrize("payload", [b"{", b"", b'{"newtags": [NaN]}'])
async def test_tags_add_with_invalid_json_is_400(api, payload):
    response = await api.client.post("/api/tags_add", data=payload,
                                     headers={"Content-Type": "application/json"})
    await expect_error(response, 400, "BAD_JSON")
    assert await api.db(tag_names) == []


async def test_tags_add_without_json_content_type_is_415(api):
    response = await api.client.post("/api/tags_add", data=b'{"newtags": ["a"]}',
                                     headers={"Content-Type": "text/plain"})
    await expect_error(response, 415, "NOT_JSON")
    assert await api.db(tag_names) == []


# --- PATCH /api/tags/{id} ----------------------------------------------------------------------


async def test_rename_tag(api):
    tag, = await api.add("old")
    await api.tag_model("base.safetensors", tag["id"])
    response = await api.client.patch(f"/api/tags/{tag['id']}", json={"name": "  new  name "})
    assert response.status == 200
    assert await response.json() == {"id": tag["id"], "name": "new name"}
    assert await api.model_tags("base.safetensors") == ["new name"]


async def test_rename_tag_case_only(api):
    tag, = await api.add("nsfw")
    response = await api.client.patch(f"/api/tags/{tag['id']}", json={"name": "NSFW"})
    assert response.status == 200
    assert await response.json() == {"id": tag["id"], "name": "NSFW"}
    assert await api.listed() == [("NSFW", 0)]


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "1.5", "99999999999"])
async def test_rename_with_a_malformed_id_is_400(api, bad_id):
    await api.add("keep")
    response = await api.client.patch(f"/api/tags/{bad_id}", json={"name": "x"})
    body = await expect_error(response, 400, "INVALID_INTEGER")
    assert body["details"]["field"] == "id"
    assert await api.db(tag_names) == ["keep"]


async def test_rename_unknown_tag_is_404(api):
    response = await api.client.patch("/api/tags/4242", json={"name": "x"})
    body = await expect_error(response, 404, "TAG_NOT_FOUND")
    assert body["details"] == {"id": 4242}


@pytest.mark.parametrize("body", [
    {"name": ""},
    {"name": "   "},
    {"name": "\t\n"},
    {"name": 5},
    {"name": None},
    {"name": "x" * 101},
    {},
    {"merge": True},
    {"name": "ok", "merge": "yes"},
    {"name": "ok", "colour": "red"},
    ["ok"],
])
async def test_rename_with_a_bad_body_is_400_and_changes_nothing(api, body):
    tag, = await api.add("keep")
    response = await api.client.patch(f"/api/tags/{tag['id']}", json=body)
    await expect_error(response, 400, "VALIDATION")
    assert await api.db(tag_names) == ["keep"]


async def test_rename_with_bad_json_is_400(api):
    tag, = await api.add("keep")
    response = await api.client.patch(f"/api/tags/{tag['id']}", data=b'{"name": ',
                                      headers={"Content-Type": "application/json"})
    await expect_error(response, 400, "BAD_JSON")
    assert await api.db(tag_names) == ["keep"]


async def test_rename_without_json_content_type_is_415(api):
    tag, = await api.add("keep")
    response = await api.client.patch(f"/api/tags/{tag['id']}", data=b'{"name": "x"}')
    await expect_error(response, 415)
    assert await api.db(tag_names) == ["keep"]


async def test_rename_onto_an_existing_name_is_409(api):
    source, target = await api.add("source", "target")
    await api.tag_model("base.safetensors", source["id"])
    response = await api.client.patch(f"/api/tags/{source['id']}", json={"name": "Target"})
    body = await expect_error(response, 409, "TAG_EXISTS")
    assert body["details"] == {"existing_id": target["id"]}
    assert await api.listed() == [("source", 1), ("target", 0)]


async def test_rename_onto_an_existing_name_with_merge_moves_the_links(api):
    source, target = await api.add("source", "target")
    await api.tag_model("base.safetensors", source["id"])
    await api.tag_model("glow.safetensors", source["id"], target["id"])
    await api.tag_model("clear.safetensors", target["id"])
    response = await api.client.patch(f"/api/tags/{source['id']}",
                                      json={"name": "target", "merge": True})
    assert response.status == 200
    assert await response.json() == target
    assert await api.listed() == [("target", 3)]
    assert await api.model_tags("glow.safetensors") == ["target"]
    assert await api.model_tags("base.safetensors") == ["target"]
    await expect_error(await api.client.patch(f"/api/tags/{source['id']}", json={"name": "x"}),
                       404, "TAG_NOT_FOUND")


async def test_rename_with_merge_false_still_conflicts(api):
    source, _ = await api.add("source", "target")
    response = await api.client.patch(f"/api/tags/{source['id']}",
                                      json={"name": "target", "merge": False})
    await expect_error(response, 409, "TAG_EXISTS")


# --- DELETE /api/tags/{id} ---------------------------------------------------------------------


async def test_delete_tag_removes_it_from_every_model(api):
    gone, kept = await api.add("gone", "kept")
    await api.tag_model("base.safetensors", gone["id"], kept["id"])
    await api.tag_model("glow.safetensors", gone["id"])
    response = await api.client.delete(f"/api/tags/{gone['id']}")
    assert response.status == 200
    assert await response.json() == {"status": "success", "deleted": gone["id"]}
    assert await api.listed() == [("kept", 1)]
    assert await api.model_tags("base.safetensors") == ["kept"]
    assert await api.model_tags("glow.safetensors") == []
    assert (await (await api.client.get("/api/models")).json())["total"] == 5


async def test_delete_unknown_tag_is_404(api):
    await expect_error(await api.client.delete("/api/tags/77"), 404, "TAG_NOT_FOUND")


async def test_delete_twice_is_404_the_second_time(api):
    tag, = await api.add("once")
    assert (await api.client.delete(f"/api/tags/{tag['id']}")).status == 200
    await expect_error(await api.client.delete(f"/api/tags/{tag['id']}"), 404, "TAG_NOT_FOUND")


@pytest.mark.parametrize("bad_id", ["abc", "0", "-3"])
async def test_delete_with_a_malformed_id_is_400(api, bad_id):
    await api.add("keep")
    await expect_error(await api.client.delete(f"/api/tags/{bad_id}"), 400, "INVALID_INTEGER")
    assert await api.db(tag_names) == ["keep"]


async def test_get_on_a_single_tag_is_405(api):
    tag, = await api.add("t")
    body = await expect_error(await api.client.get(f"/api/tags/{tag['id']}"), 405,
                              "METHOD_NOT_ALLOWED")
    assert body["details"]["allowed"] == ["DELETE", "PATCH"]
