"""tags.py without HTTP: get-or-create, counts, rename and merge, delete, references."""
from __future__ import annotations

import pytest

from server import library, tags
from server.errors import Conflict, Invalid, NotFound
from tests.factories import add_tree_to_library


@pytest.fixture
def shas(db, make_tree) -> list[str]:
    """The make_tree library's five models, in insertion order."""
    return add_tree_to_library(db, make_tree())


def link(db, sha256: str, *tag_ids: int) -> None:
    db.conn.executemany("INSERT INTO model_tags(sha256, tag_id) VALUES (?, ?)",
                        [(sha256, t) for t in tag_ids])


def links_of(db, tag_id: int) -> set[str]:
    return {r[0] for r in db.execute("SELECT sha256 FROM model_tags WHERE tag_id = ?", [tag_id])}


def names_in(db) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM tags ORDER BY id")]


# --- ensure_tags -------------------------------------------------------------------------------


def test_ensure_tags_creates_trimmed_names_with_whitespace_collapsed(db):
    created = tags.ensure_tags(db, ["  soft   light \t", "line\nart"])
    assert [t["name"] for t in created] == ["soft light", "line art"]
    assert names_in(db) == ["soft light", "line art"]


def test_ensure_tags_returns_the_existing_tag_case_insensitively(db):
    nsfw, = tags.ensure_tags(db, ["nsfw"])
    again = tags.ensure_tags(db, ["NSFW", " Nsfw "])
    assert again == [nsfw]
    assert names_in(db) == ["nsfw"]


def test_ensure_tags_deduplicates_and_keeps_first_seen_order(db):
    existing, = tags.ensure_tags(db, ["middle"])
    result = tags.ensure_tags(db, ["zeta", "Middle", "alpha", "ZETA", "middle", "alpha"])
    assert [t["name"] for t in result] == ["zeta", "middle", "alpha"]
    assert result[1] == existing
    assert len(names_in(db)) == 3


def test_ensure_tags_skips_blanks_and_non_strings(db):
    result = tags.ensure_tags(db, ["", "   ", None, 5, 1.5, True, ["x"], {"name": "y"}, "ok"])
    assert [t["name"] for t in result] == ["ok"]
    assert names_in(db) == ["ok"]


def test_ensure_tags_with_nothing_usable_creates_nothing(db):
    assert tags.ensure_tags(db, []) == []
    assert tags.ensure_tags(db, ["  ", None]) == []
    assert names_in(db) == []


def test_ensure_tags_cuts_long_names(db):
    tag, = tags.ensure_tags(db, ["x" * 500])
    assert tag["name"] == "x" * tags.MAX_NAME


def test_ensure_tags_cut_does_not_leave_a_trailing_space(db):
    tag, = tags.ensure_tags(db, ["x" * 99 + " tail"])
    assert tag["name"] == "x" * 99
    assert tags.ensure_tags(db, ["x" * 99]) == [tag]


def test_ensure_tags_returns_ids_of_the_stored_rows(db):
    result = tags.ensure_tags(db, ["a", "b"])
    for tag in result:
        assert tags.get_tag(db, tag["id"]) == tag


# --- list_tags ---------------------------------------------------------------------------------


def test_list_tags_counts_models_per_tag(db, shas):
    popular, rare, unused = tags.ensure_tags(db, ["popular", "rare", "unused"])
    for sha in shas[:3]:
        link(db, sha, popular["id"])
    link(db, shas[0], rare["id"])
    assert tags.list_tags(db) == [
        {"id": popular["id"], "name": "popular", "count": 3},
        {"id": rare["id"], "name": "rare", "count": 1},
        {"id": unused["id"], "name": "unused", "count": 0},
    ]


def test_list_tags_sorts_by_name_case_insensitively(db):
    tags.ensure_tags(db, ["beta", "Alpha", "gamma"])
    assert [t["name"] for t in tags.list_tags(db)] == ["Alpha", "beta", "gamma"]


def test_list_tags_count_drops_when_a_model_is_deleted(db, shas, tmp_path):
    tag, = tags.ensure_tags(db, ["t"])
    link(db, shas[0], tag["id"])
    link(db, shas[1], tag["id"])
    library.delete_model(db, tmp_path / "images", shas[0])
    assert tags.list_tags(db)[0]["count"] == 1


# --- rename_tag --------------------------------------------------------------------------------


def test_rename_tag_plain(db, shas):
    tag, = tags.ensure_tags(db, ["old"])
    link(db, shas[0], tag["id"])
    renamed = tags.rename_tag(db, tag["id"], "  new   name ")
    assert renamed == {"id": tag["id"], "name": "new name"}
    assert names_in(db) == ["new name"]
    assert links_of(db, tag["id"]) == {shas[0]}


def test_rename_tag_case_only_keeps_the_same_tag(db, shas):
    tag, = tags.ensure_tags(db, ["nsfw"])
    link(db, shas[0], tag["id"])
    renamed = tags.rename_tag(db, tag["id"], "NSFW")
    assert renamed == {"id": tag["id"], "name": "NSFW"}
    assert names_in(db) == ["NSFW"]
    assert links_of(db, tag["id"]) == {shas[0]}


def test_rename_tag_onto_an_existing_name_without_merge_conflicts(db, shas):
    source, target = tags.ensure_tags(db, ["source", "target"])
    link(db, shas[0], source["id"])
    with pytest.raises(Conflict) as caught:
        tags.rename_tag(db, source["id"], "TARGET")
    assert caught.value.code == "TAG_EXISTS"
    assert caught.value.details == {"existing_id": target["id"]}
    assert names_in(db) == ["source", "target"]
    assert links_of(db, source["id"]) == {shas[0]}


def test_rename_tag_with_merge_moves_links_and_removes_the_old_tag(db, shas):
    source, target = tags.ensure_tags(db, ["source", "target"])
    link(db, shas[0], source["id"])
    link(db, shas[1], source["id"], target["id"])  # tagged with both: must not be linked twice
    link(db, shas[2], target["id"])
    merged = tags.rename_tag(db, source["id"], "Target", merge=True)
    assert merged == target
    assert names_in(db) == ["target"]
    assert links_of(db, target["id"]) == {shas[0], shas[1], shas[2]}
    assert links_of(db, source["id"]) == set()
    assert db.execute("SELECT count(*) FROM model_tags").fetchone()[0] == 3
    with pytest.raises(NotFound):
        tags.get_tag(db, source["id"])


def test_rename_tag_with_merge_but_no_clash_is_a_plain_rename(db):
    tag, = tags.ensure_tags(db, ["alone"])
    assert tags.rename_tag(db, tag["id"], "still alone", merge=True) == {
        "id": tag["id"], "name": "still alone"}


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_rename_tag_to_blank_is_invalid(db, name):
    tag, = tags.ensure_tags(db, ["keep"])
    with pytest.raises(Invalid):
        tags.rename_tag(db, tag["id"], name)
    assert names_in(db) == ["keep"]


def test_rename_unknown_tag_is_not_found(db):
    with pytest.raises(NotFound) as caught:
        tags.rename_tag(db, 42, "anything")
    assert caught.value.code == "TAG_NOT_FOUND"
    assert names_in(db) == []


# --- delete_tag --------------------------------------------------------------------------------


def test_delete_tag_removes_it_and_its_links_only(db, shas):
    gone, kept = tags.ensure_tags(db, ["gone", "kept"])
    link(db, shas[0], gone["id"], kept["id"])
    link(db, shas[1], gone["id"])
    tags.delete_tag(db, gone["id"])
    assert names_in(db) == ["kept"]
    assert links_of(db, gone["id"]) == set()
    assert links_of(db, kept["id"]) == {shas[0]}
    assert db["models"].count == 5


def test_delete_unknown_tag_is_not_found(db):
    with pytest.raises(NotFound) as caught:
        tags.delete_tag(db, 7)
    assert caught.value.code == "TAG_NOT_FOUND"
    assert caught.value.details == {"id": 7}


# --- references and lookups --------------------------------------------------------------------


def test_resolve_refs_accepts_ids_names_and_objects_without_duplicates(db):
    a, b = tags.ensure_tags(db, ["a", "b"])
    ids = tags.resolve_refs(db, [a["id"], {"id": b["id"]}, "c", {"name": "d"}, "A", a["id"]])
    assert ids[:2] == [a["id"], b["id"]]
    assert len(ids) == len(set(ids)) == 4
    assert names_in(db) == ["a", "b", "c", "d"]


def test_resolve_refs_refuses_unknown_ids_before_creating_names(db):
    with db.atomic():
        with pytest.raises(Invalid) as caught:
            tags.resolve_refs(db, ["fresh", 5, {"id": 6}])
    assert caught.value.code == "UNKNOWN_TAG"
    assert caught.value.details == {"ids": [5, 6]}
    assert names_in(db) == []


def test_tags_of_many_models_in_name_order(db, shas):
    b, a = tags.ensure_tags(db, ["b", "A"])
    link(db, shas[0], b["id"], a["id"])
    result = tags.tags_of(db, shas[:2])
    assert result == {shas[0]: [a, b], shas[1]: []}
    assert tags.tags_of(db, []) == {}


def test_find_ids_reads_digits_as_ids_and_anything_else_as_names(db):
    tag, = tags.ensure_tags(db, ["Style"])
    assert tags.find_ids(db, [str(tag["id"]), "style", "missing", "999", "²", "9" * 30]) == [
        tag["id"], tag["id"], None, None, None, None]
