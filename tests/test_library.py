"""library.py without HTTP: listing and filtering, reading, patching (all or nothing), deleting."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from server import image_files, images, library, tags
from server.errors import Invalid, NotFound
from server.library import ListQuery
from tests.factories import ModelTree, add_tree_to_library, png_bytes, write_safetensors

KNOWN = ["checkpoints", "loras", "vae"]


@dataclass
class Library:
    db: object
    tree: ModelTree
    images_dir: Path

    def sha(self, file_name: str) -> str:
        return self.tree.by_name(file_name).sha256

    def names(self, **query) -> list[str]:
        return [m["name"] for m in self.list(**query)["models"]]

    def list(self, **query) -> dict:
        return library.list_models(self.db, ListQuery(**query), KNOWN)

    def row(self, file_name: str) -> dict:
        return self.db["models"].get(self.sha(file_name))

    def tag_ids(self, file_name: str) -> list[int]:
        return sorted(r[0] for r in self.db.execute(
            "SELECT tag_id FROM model_tags WHERE sha256 = ?", [self.sha(file_name)]))


@pytest.fixture
def lib(db, make_tree, tmp_path) -> Library:
    """The make_tree library: base, old.ckpt (checkpoints), ink (+ a copy), glow (loras), clear (vae).

    created_at and size_bytes are set to distinct values so sorts are deterministic.
    """
    tree = make_tree()
    add_tree_to_library(db, tree)
    result = Library(db, tree, tmp_path / "images")
    for index, name in enumerate(["base.safetensors", "ink.safetensors", "glow.safetensors",
                                  "clear.safetensors", "old.ckpt"]):
        db["models"].update(result.sha(name), {"created_at": 1000 + index,
                                               "size_bytes": [300, 100, 500, 200, 400][index]})
    return result


def add_model_file(db, folder: Path, file_name: str, seed: int, type_: str, **fields) -> str:
    path = folder / file_name
    sha = write_safetensors(path, seed)
    library.add_model(db, library.NewModel(
        sha256=sha, name=fields.pop("name", ""), type=type_, size_bytes=path.stat().st_size,
        created_at=library.now_ms(), paths=(str(path),), **fields))
    return sha


def add_picture(db, images_dir: Path, sha256: str, colour=(200, 40, 40)) -> dict:
    stored = image_files.ingest(io.BytesIO(png_bytes(colour=colour)), images_dir)
    return images.add_image(db, sha256, stored, images.ImageFields(), library.now_ms())


# --- list_models -------------------------------------------------------------------------------


def test_list_returns_every_model_with_total(lib):
    result = lib.list()
    assert result["total"] == 5
    assert len(result["models"]) == 5
    assert result["offset"] == 0 and result["limit"] == 200
    assert {m["sha256"] for m in result["models"]} == {f.sha256 for f in lib.tree.files}


def test_list_filters_by_type(lib):
    assert sorted(lib.names(type="loras")) == ["glow.safetensors", "ink_copy.safetensors"]
    assert lib.names(type="vae") == ["clear.safetensors"]
    assert lib.list(type="embeddings")["total"] == 0


def test_list_others_means_blank_or_unknown_type(lib, tmp_path):
    blank = add_model_file(lib.db, tmp_path / "elsewhere", "blank.safetensors", 10, "")
    odd = add_model_file(lib.db, tmp_path / "elsewhere", "odd.safetensors", 11, "upscale_models")
    result = lib.list(type="others")
    assert {m["sha256"] for m in result["models"]} == {blank, odd}
    assert result["total"] == 2
    assert lib.list(type="OTHERS")["total"] == 2


def test_list_search_matches_name_path_and_sha(lib):
    lib.db["models"].update(lib.sha("base.safetensors"), {"name": "Juggernaut XL"})
    assert lib.names(search="juggernaut") == ["Juggernaut XL"]
    assert lib.names(search="nested/deep") == ["glow.safetensors"]
    assert lib.names(search=lib.sha("clear.safetensors")[:12]) == ["clear.safetensors"]
    assert lib.names(search="no such thing") == []


def test_list_search_matches_any_copy_path(lib):
    # ink is shown by its copy's path, but its original path finds it too
    assert lib.names(search="style/ink") == ["ink_copy.safetensors"]


def test_list_search_treats_like_wildcards_literally(lib):
    assert lib.list(search="%")["total"] == 0
    assert lib.names(search="ink_copy") == ["ink_copy.safetensors"]
    assert lib.list(search="ink_cop_")["total"] == 0


def test_list_includes_tags_by_id_and_by_name(lib):
    style, anime = tags.ensure_tags(lib.db, ["style", "anime"])
    library.patch_model(lib.db, lib.sha("ink.safetensors"), {"tags": [style["id"], anime["id"]]})
    library.patch_model(lib.db, lib.sha("glow.safetensors"), {"tags": [style["id"]]})
    assert sorted(lib.names(tags=("style",))) == ["glow.safetensors", "ink_copy.safetensors"]
    assert sorted(lib.names(tags=(str(style["id"]),))) == ["glow.safetensors", "ink_copy.safetensors"]
    assert lib.names(tags=("STYLE", str(anime["id"]))) == ["ink_copy.safetensors"]


def test_list_with_unknown_include_tag_is_empty(lib):
    tags.ensure_tags(lib.db, ["style"])
    assert lib.list(tags=("style", "nope")) == {"models": [], "total": 0, "offset": 0, "limit": 200}
    assert lib.list(tags=("999",))["total"] == 0


@pytest.mark.parametrize("ref", ["²", "٣", "99999999999999999999999"])
def test_list_with_odd_numeric_tag_ref_matches_nothing_without_error(lib, ref):
    assert lib.list(tags=(ref,))["total"] == 0
    assert lib.list(exclude_tags=(ref,))["total"] == 5


def test_list_excludes_tags(lib):
    nsfw, = tags.ensure_tags(lib.db, ["nsfw"])
    library.patch_model(lib.db, lib.sha("ink.safetensors"), {"tags": ["nsfw"]})
    library.patch_model(lib.db, lib.sha("old.ckpt"), {"tags": ["nsfw", "legacy"]})
    assert sorted(lib.names(exclude_tags=("nsfw",))) == [
        "base.safetensors", "clear.safetensors", "glow.safetensors"]
    assert lib.list(exclude_tags=(str(nsfw["id"]),))["total"] == 3
    assert lib.list(exclude_tags=("unknown",))["total"] == 5  # an unknown exclusion excludes nothing


def test_list_sorts_by_displayed_name_case_insensitively(lib):
    lib.db["models"].update(lib.sha("clear.safetensors"), {"name": "Zeta"})
    lib.db["models"].update(lib.sha("glow.safetensors"), {"name": "alpha"})
    assert lib.names(sort="name") == [
        "alpha", "base.safetensors", "ink_copy.safetensors", "old.ckpt", "Zeta"]


def test_list_sorts_by_newest_oldest_and_size(lib):
    assert lib.names(sort="newest") == [
        "old.ckpt", "clear.safetensors", "glow.safetensors", "ink_copy.safetensors",
        "base.safetensors"]
    assert lib.names(sort="oldest") == [
        "base.safetensors", "ink_copy.safetensors", "glow.safetensors", "clear.safetensors",
        "old.ckpt"]
    assert [m["size_bytes"] for m in lib.list(sort="size")["models"]] == [500, 400, 300, 200, 100]


def test_list_pages_with_offset_and_limit_and_keeps_the_total(lib):
    page = lib.list(sort="oldest", offset=1, limit=2)
    assert [m["name"] for m in page["models"]] == ["ink_copy.safetensors", "glow.safetensors"]
    assert (page["total"], page["offset"], page["limit"]) == (5, 1, 2)
    past_end = lib.list(offset=10)
    assert past_end["models"] == [] and past_end["total"] == 5


def test_list_total_counts_the_filter_not_the_page(lib):
    assert lib.list(type="checkpoints", limit=1)["total"] == 2


def test_list_name_falls_back_to_file_name_when_blank(lib):
    lib.db["models"].update(lib.sha("base.safetensors"), {"name": "My Base"})
    by_sha = {m["sha256"]: m for m in lib.list()["models"]}
    assert by_sha[lib.sha("base.safetensors")]["name"] == "My Base"
    assert by_sha[lib.sha("clear.safetensors")]["name"] == "clear.safetensors"


def test_list_path_is_the_first_present_file(lib):
    copy = lib.tree.by_name("ink_copy.safetensors").path
    original = lib.tree.by_name("ink.safetensors").path
    entry = lambda: next(m for m in lib.list()["models"] if m["sha256"] == lib.sha("ink.safetensors"))
    assert entry()["path"] == str(copy)  # both present: the first by path
    lib.db["files"].update(str(copy), {"state": "missing"})
    assert entry()["path"] == str(original)
    assert entry()["name"] == "ink.safetensors"


def test_list_reports_tags_images_count_and_cover(lib):
    sha = lib.sha("glow.safetensors")
    library.patch_model(lib.db, sha, {"tags": ["b-tag", "A-tag"], "meta_json": {"nsfw_level": 4}})
    first = add_picture(lib.db, lib.images_dir, sha, (10, 20, 30))
    add_picture(lib.db, lib.images_dir, sha, (40, 50, 60))
    by_sha = {m["sha256"]: m for m in lib.list()["models"]}
    glow = by_sha[sha]
    assert glow["images_count"] == 2
    assert glow["cover"] == first["url"]
    assert [t["name"] for t in glow["tags"]] == ["A-tag", "b-tag"]
    assert glow["nsfw_level"] == 4
    base = by_sha[lib.sha("base.safetensors")]
    assert (base["images_count"], base["cover"], base["tags"], base["nsfw_level"]) == (0, None, [], 0)


# --- get_model ---------------------------------------------------------------------------------


def test_get_model_lists_both_copies_of_a_duplicate(lib):
    model = library.get_model(lib.db, lib.sha("ink.safetensors"))
    copy = str(lib.tree.by_name("ink_copy.safetensors").path)
    original = str(lib.tree.by_name("ink.safetensors").path)
    assert [f["path"] for f in model["files"]] == [copy, original]
    assert [f["kind"] for f in model["files"]] == ["checkpoints", "loras"]
    assert all(f["state"] == "present" for f in model["files"])
    assert model["path"] == copy
    assert model["type"] == "loras"


def test_get_model_returns_the_full_record(lib):
    sha = lib.sha("base.safetensors")
    add_picture(lib.db, lib.images_dir, sha)
    model = library.get_model(lib.db, sha)
    assert model["sha256"] == sha
    assert model["autov2"] == sha[:10]
    assert model["name"] == "base.safetensors"
    assert model["meta_json"] == {}
    assert model["tags"] == []
    assert model["images_count"] == 1 and len(model["images"]) == 1
    assert model["size_bytes"] == 300


def test_get_model_unknown_sha_is_not_found(lib):
    with pytest.raises(NotFound) as caught:
        library.get_model(lib.db, "0" * 64)
    assert caught.value.code == "MODEL_NOT_FOUND"
    assert caught.value.details == {"sha256": "0" * 64}


# --- patch_model -------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(lib):
    sha = lib.sha("base.safetensors")
    library.patch_model(lib.db, sha, {"tags": ["keep"], "meta_json": {"notes": "n"},
                                      "base_model": "SDXL"})
    before = lib.row("base.safetensors")
    model = library.patch_model(lib.db, sha, {"name": "  Renamed  "})
    after = lib.row("base.safetensors")
    assert model["name"] == "Renamed"
    assert after["name"] == "Renamed"
    for column in ("type", "base_model", "size_bytes", "created_at"):
        assert after[column] == before[column], column
    # the meta is unchanged but for the record that the user set the name
    before_meta, after_meta = json.loads(before["meta"]), json.loads(after["meta"])
    assert after_meta.pop("sources") == {**before_meta.pop("sources"), "name": "user"}
    assert after_meta == before_meta
    assert after["updated_at"] >= before["updated_at"]
    assert [t["name"] for t in model["tags"]] == ["keep"]


def test_patch_type_and_base_model(lib):
    model = library.patch_model(lib.db, lib.sha("clear.safetensors"),
                                {"type": "loras", "base_model": "SD1.5"})
    assert (model["type"], model["base_model"]) == ("loras", "SD1.5")
    assert "clear.safetensors" in lib.names(type="loras")


def test_patch_meta_is_a_merge_patch(lib):
    sha = lib.sha("glow.safetensors")
    library.patch_model(lib.db, sha, {"meta_json": {
        "description": "glowy", "prompts": {"positive": "glow", "negative": "dark"},
        "trigger_words": ["a", "b"], "custom": {"x": 1, "y": 2}}})
    model = library.patch_model(lib.db, sha, {"meta_json": {
        "description": None, "prompts": {"positive": "GLOW"}, "trigger_words": ["c"],
        "custom": {"y": None, "z": 3}}})
    assert model["meta_json"] == {
        "prompts": {"positive": "GLOW", "negative": "dark"}, "trigger_words": ["c"],
        "custom": {"x": 1, "z": 3},
        "sources": dict.fromkeys(["description", "prompts", "trigger_words", "custom"], "user")}
    assert json.loads(lib.row("glow.safetensors")["meta"]) == model["meta_json"]


def test_patch_meta_null_inside_a_known_object_removes_that_key(lib):
    sha = lib.sha("glow.safetensors")
    library.patch_model(lib.db, sha, {"meta_json": {"prompts": {"positive": "p", "negative": "n"}}})
    model = library.patch_model(lib.db, sha, {"meta_json": {"prompts": {"negative": None}}})
    assert model["meta_json"] == {"prompts": {"positive": "p"}, "sources": {"prompts": "user"}}


def test_patch_tags_by_id_name_and_objects(lib):
    sha = lib.sha("ink.safetensors")
    existing, other = tags.ensure_tags(lib.db, ["existing", "other"])
    model = library.patch_model(lib.db, sha, {"tags": [
        existing["id"], "brand new", {"id": other["id"]}, {"name": "Object Name"}, "EXISTING"]})
    assert [t["name"] for t in model["tags"]] == ["brand new", "existing", "Object Name", "other"]
    assert {t["name"] for t in tags.list_tags(lib.db)} == {
        "existing", "other", "brand new", "Object Name"}


def test_patch_tags_replaces_the_set(lib):
    sha = lib.sha("ink.safetensors")
    library.patch_model(lib.db, sha, {"tags": ["a", "b"]})
    model = library.patch_model(lib.db, sha, {"tags": ["c"]})
    assert [t["name"] for t in model["tags"]] == ["c"]
    assert library.patch_model(lib.db, sha, {"tags": []})["tags"] == []


def test_patch_unknown_tag_id_changes_nothing(lib):
    sha = lib.sha("ink.safetensors")
    library.patch_model(lib.db, sha, {"tags": ["old"], "meta_json": {"notes": "keep"}})
    before = lib.row("ink.safetensors")
    tags_before = lib.tag_ids("ink.safetensors")
    tag_count = len(tags.list_tags(lib.db))
    with pytest.raises(Invalid) as caught:
        library.patch_model(lib.db, sha, {"name": "changed", "type": "vae",
                                          "meta_json": {"notes": "lost"},
                                          "tags": ["would-be-created", 9999]})
    assert caught.value.code == "UNKNOWN_TAG"
    assert caught.value.details["ids"] == [9999]
    assert lib.row("ink.safetensors") == before
    assert lib.tag_ids("ink.safetensors") == tags_before
    assert len(tags.list_tags(lib.db)) == tag_count  # the name was not created either


def test_patch_invalid_merged_meta_changes_nothing(lib):
    sha = lib.sha("ink.safetensors")
    library.patch_model(lib.db, sha, {"tags": ["old"], "meta_json": {"notes": "keep"}})
    before = lib.row("ink.safetensors")
    tags_before = lib.tag_ids("ink.safetensors")
    with pytest.raises(Invalid):
        library.patch_model(lib.db, sha, {"name": "changed", "tags": ["new"],
                                          "meta_json": {"prompts": "a string"}})
    assert lib.row("ink.safetensors") == before
    assert lib.tag_ids("ink.safetensors") == tags_before


@pytest.mark.parametrize("patch", [
    {},
    {"path": "/etc/passwd"},
    {"name": 5},
    {"tags": "a,b"},
    {"meta_json": []},
    {"tags": [0]},
    {"tags": [{"name": ""}]},
    {"meta_json": {"nsfw_level": 99}},
    {"meta_json": {"prompts": {"positive": 1}}},
])
def test_patch_refuses_bad_bodies(lib, patch):
    before = lib.row("base.safetensors")
    with pytest.raises(Invalid) as caught:
        library.patch_model(lib.db, lib.sha("base.safetensors"), patch)
    assert caught.value.code == "VALIDATION"
    assert lib.row("base.safetensors") == before


def test_patch_unknown_model_is_not_found(lib):
    with pytest.raises(NotFound):
        library.patch_model(lib.db, "f" * 64, {"name": "x"})
    assert lib.db["models"].count == 5


# --- delete_model ------------------------------------------------------------------------------


def test_delete_removes_entry_tag_links_and_images_but_not_the_file(lib):
    sha = lib.sha("glow.safetensors")
    library.patch_model(lib.db, sha, {"tags": ["shared"]})
    library.patch_model(lib.db, lib.sha("base.safetensors"), {"tags": ["shared"]})
    picture = add_picture(lib.db, lib.images_dir, sha)
    assert image_files.is_complete(lib.images_dir, picture["image_sha256"])

    library.delete_model(lib.db, lib.images_dir, sha)

    assert lib.db.execute("SELECT count(*) FROM models WHERE sha256 = ?", [sha]).fetchone()[0] == 0
    assert lib.db.execute("SELECT count(*) FROM model_tags WHERE sha256 = ?", [sha]).fetchone()[0] == 0
    assert lib.db.execute("SELECT count(*) FROM images WHERE sha256 = ?", [sha]).fetchone()[0] == 0
    assert not image_files.is_complete(lib.images_dir, picture["image_sha256"])
    assert lib.tree.by_name("glow.safetensors").path.exists()
    assert [t["count"] for t in tags.list_tags(lib.db)] == [1]  # the tag stays for base
    with pytest.raises(NotFound):
        library.get_model(lib.db, sha)


def test_delete_keeps_an_image_another_model_still_shows(lib):
    glow, base = lib.sha("glow.safetensors"), lib.sha("base.safetensors")
    picture = add_picture(lib.db, lib.images_dir, glow)
    add_picture(lib.db, lib.images_dir, base)  # the same picture
    library.delete_model(lib.db, lib.images_dir, glow)
    assert image_files.is_complete(lib.images_dir, picture["image_sha256"])
    assert library.get_model(lib.db, base)["images_count"] == 1


def test_delete_unknown_model_is_not_found(lib):
    with pytest.raises(NotFound):
        library.delete_model(lib.db, lib.images_dir, "a" * 64)
    assert lib.db["models"].count == 5


# --- merge_patch -------------------------------------------------------------------------------


@pytest.mark.parametrize("target, patch, expected", [
    ({"a": 1}, {"a": 2}, {"a": 2}),
    ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ({"a": 1, "b": 2}, {"a": None}, {"b": 2}),
    ({"a": {"x": 1, "y": 2}}, {"a": {"y": None, "z": 3}}, {"a": {"x": 1, "z": 3}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": "text"}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ({"a": {"b": 1}}, {"a": "text"}, {"a": "text"}),
    ({}, {"a": {"b": None}}, {"a": {}}),
    ({"a": 1}, {"missing": None}, {"a": 1}),
    ({"a": 1}, ["whole"], ["whole"]),
    ([1], {"a": 1}, {"a": 1}),
    ({"a": 1}, {}, {"a": 1}),
])
def test_merge_patch_follows_rfc_7386(target, patch, expected):
    assert library.merge_patch(target, patch) == expected


def test_merge_patch_does_not_change_its_inputs():
    target = {"a": {"b": 1}}
    patch = {"a": {"c": 2}}
    library.merge_patch(target, patch)
    assert target == {"a": {"b": 1}} and patch == {"a": {"c": 2}}
