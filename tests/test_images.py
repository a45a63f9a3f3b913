"""images: gallery records in a dense sequence per model, and their files' lifetime."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from server import image_files, images, library
from server.errors import Invalid, NotFound

from tests.factories import add_tree_to_library, png_bytes


def all_files(folder: Path) -> list[Path]:
    return sorted(Path(root) / name for root, _, names in os.walk(folder) for name in names)


@pytest.fixture
def images_dir(tmp_path):
    return tmp_path / "images"


@pytest.fixture
def models(db, make_tree):
    """The sha256s of the library's models (five distinct contents)."""
    return add_tree_to_library(db, make_tree())


@pytest.fixture
def picture(images_dir):
    """picture(n) → the stored content of a distinct small picture, files on disk."""

    def make(n: int) -> image_files.StoredImage:
        data = png_bytes(size=(32 + n, 24), colour=(n * 20 % 256, 40, 90))
        return image_files.ingest(io.BytesIO(data), images_dir)

    return make


def add(db, sha: str, stored: image_files.StoredImage, **fields) -> dict:
    return images.add_image(db, sha, stored, images.ImageFields(**fields), library.now_ms())


def contents(db, sha: str) -> list[str]:
    return [record["image_sha256"] for record in images.list_images(db, sha)]


def image_rows(db) -> int:
    return db.execute("SELECT count(*) FROM images").fetchone()[0]


# --- adding and listing ----------------------------------------------------------------------

def test_add_image_appends_in_sequence(db, models, picture):
    sha = models[0]
    stored = [picture(n) for n in range(3)]

    records = [add(db, sha, s) for s in stored]

    assert [r["seq"] for r in records] == [0, 1, 2]
    assert [r["image_sha256"] for r in records] == [s.image_sha256 for s in stored]
    assert images.list_images(db, sha) == records


def test_add_image_record_carries_the_fields(db, models, picture):
    stored = picture(1)
    record = add(db, models[0], stored, prompt="a cat", negative_prompt="blurry",
                 generation_params={"steps": 20, "sampler": "euler"}, nsfw_level=3)

    assert record == {
        "id": record["id"], "seq": 0,
        "url": f"/api/images/{models[0]}_0.webp?v={stored.image_sha256[:16]}",
        "image_sha256": stored.image_sha256, "width": stored.width, "height": stored.height,
        "nsfw_level": 3, "prompt": "a cat", "negative_prompt": "blurry",
        "generation_params": {"steps": 20, "sampler": "euler"}, "source": "upload",
        "created_at": record["created_at"],
    }
    assert isinstance(record["id"], int) and record["created_at"] > 0


def test_add_image_defaults(db, models, picture):
    record = add(db, models[0], picture(1))
    assert (record["prompt"], record["negative_prompt"], record["generation_params"],
            record["nsfw_level"]) == ("", "", {}, 0)


def test_sequences_are_per_model(db, models, picture):
    add(db, models[0], picture(1))
    add(db, models[0], picture(2))
    assert add(db, models[1], picture(3))["seq"] == 0


def test_add_image_to_unknown_model_is_refused(db, models, picture):
    stored = picture(1)
    with pytest.raises(NotFound) as caught:
        add(db, "f" * 64, stored)
    assert caught.value.code == "MODEL_NOT_FOUND"
    assert image_rows(db) == 0


def test_list_images_of_a_model_without_images_is_empty(db, models):
    assert images.list_images(db, models[0]) == []
    assert images.list_images(db, "0" * 64) == []


def test_url_names_the_content():
    assert images.url("a" * 64, 3, "0123456789abcdef" * 4) == (
        f"/api/images/{'a' * 64}_3.webp?v=0123456789abcdef")


def test_find_content(db, models, picture):
    stored = picture(1)
    add(db, models[0], stored)
    assert images.find_content(db, models[0], 0) == stored.image_sha256
    with pytest.raises(NotFound) as caught:
        images.find_content(db, models[0], 1)
    assert caught.value.code == "IMAGE_NOT_FOUND"
    assert caught.value.details == {"sha256": models[0], "seq": 1}


# --- counting and covers ---------------------------------------------------------------------

def test_count_images(db, models, picture):
    assert images.count_images(db, models[0]) == 0
    add(db, models[0], picture(1))
    add(db, models[0], picture(2))
    assert images.count_images(db, models[0]) == 2
    assert images.count_images(db, models[1]) == 0
    with pytest.raises(NotFound):
        images.count_images(db, "e" * 64)


def test_covers_of(db, models, picture):
    first, second, third = picture(1), picture(2), picture(3)
    add(db, models[0], first)
    add(db, models[0], second)
    add(db, models[1], third)

    covers = images.covers_of(db, [models[0], models[1], models[2], "d" * 64])

    assert covers == {
        models[0]: (2, images.url(models[0], 0, first.image_sha256)),
        models[1]: (1, images.url(models[1], 0, third.image_sha256)),
    }
    assert images.covers_of(db, []) == {}


def test_covers_of_follows_the_cover(db, models, picture):
    first, second = picture(1), picture(2)
    add(db, models[0], first)
    add(db, models[0], second)
    images.set_cover(db, models[0], 1)
    assert images.covers_of(db, [models[0]]) == {
        models[0]: (2, images.url(models[0], 0, second.image_sha256))}


# --- deleting --------------------------------------------------------------------------------

def test_delete_image_compacts_and_removes_unused_files(db, models, picture, images_dir):
    sha = models[0]
    a, b, c = picture(1), picture(2), picture(3)
    for stored in (a, b, c):
        add(db, sha, stored)

    images.delete_image(db, images_dir, sha, 1)

    assert [(r["seq"], r["image_sha256"]) for r in images.list_images(db, sha)] == [
        (0, a.image_sha256), (1, c.image_sha256)]
    assert not any(b.image_sha256 in p.name for p in all_files(images_dir))
    assert image_files.is_complete(images_dir, a.image_sha256)
    assert image_files.is_complete(images_dir, c.image_sha256)


def test_delete_the_cover_promotes_the_next(db, models, picture, images_dir):
    sha = models[0]
    a, b = picture(1), picture(2)
    add(db, sha, a)
    add(db, sha, b)

    images.delete_image(db, images_dir, sha, 0)

    assert contents(db, sha) == [b.image_sha256]
    assert images.covers_of(db, [sha])[sha] == (1, images.url(sha, 0, b.image_sha256))


def test_delete_keeps_files_another_model_shows(db, models, picture, images_dir):
    shared = picture(1)
    add(db, models[0], shared)
    add(db, models[1], shared)
    files = all_files(images_dir)

    images.delete_image(db, images_dir, models[0], 0)

    assert all_files(images_dir) == files
    assert contents(db, models[1]) == [shared.image_sha256]

    images.delete_image(db, images_dir, models[1], 0)

    assert all_files(images_dir) == []
    assert image_rows(db) == 0


def test_delete_keeps_files_the_same_model_shows_twice(db, models, picture, images_dir):
    shared = picture(1)
    add(db, models[0], shared)
    add(db, models[0], shared)

    images.delete_image(db, images_dir, models[0], 1)

    assert image_files.is_complete(images_dir, shared.image_sha256)
    images.delete_image(db, images_dir, models[0], 0)
    assert all_files(images_dir) == []


@pytest.mark.parametrize("seq", [1, 5])
def test_delete_unknown_image_changes_nothing(db, models, picture, images_dir, seq):
    add(db, models[0], picture(1))
    files = all_files(images_dir)

    with pytest.raises(NotFound) as caught:
        images.delete_image(db, images_dir, models[0], seq)

    assert caught.value.code == "IMAGE_NOT_FOUND"
    assert all_files(images_dir) == files
    assert image_rows(db) == 1


def test_delete_on_unknown_model_is_not_found(db, models, images_dir):
    with pytest.raises(NotFound):
        images.delete_image(db, images_dir, "c" * 64, 0)


# --- reordering and the cover ----------------------------------------------------------------

@pytest.fixture
def gallery(db, models, picture):
    """A model with three images; returns (sha256, [content of seq 0, 1, 2])."""
    stored = [picture(n) for n in range(3)]
    for s in stored:
        add(db, models[0], s)
    return models[0], [s.image_sha256 for s in stored]


def test_reorder(db, gallery):
    sha, (a, b, c) = gallery

    records = images.reorder(db, sha, [2, 0, 1])

    assert [(r["seq"], r["image_sha256"]) for r in records] == [(0, c), (1, a), (2, b)]
    assert records == images.list_images(db, sha)
    assert records[0]["url"].endswith(f"_0.webp?v={c[:16]}")


def test_reorder_identity_changes_nothing(db, gallery):
    sha, order = gallery
    images.reorder(db, sha, [0, 1, 2])
    assert contents(db, sha) == order


@pytest.mark.parametrize("order", [[0, 1], [0, 0, 1], [0, 1, 3], [], [0, 1, 2, 3], [2, 1, 1]])
def test_reorder_needs_a_full_permutation(db, gallery, order):
    sha, before = gallery
    with pytest.raises(Invalid) as caught:
        images.reorder(db, sha, order)
    assert caught.value.code == "BAD_ORDER"
    assert caught.value.details == {"current": [0, 1, 2]}
    assert contents(db, sha) == before


@pytest.mark.parametrize("order", [[-1, 0, 1], ["0", "1", "2"], [0.5, 1, 2]])
def test_reorder_refuses_values_that_are_not_sequences(db, gallery, order):
    sha, before = gallery
    with pytest.raises(Invalid):
        images.reorder(db, sha, order)
    assert contents(db, sha) == before


def test_reorder_of_unknown_model_is_not_found(db, models):
    with pytest.raises(NotFound):
        images.reorder(db, "b" * 64, [])


def test_reorder_of_empty_gallery(db, models):
    assert images.reorder(db, models[0], []) == []


@pytest.mark.parametrize("seq, expected", [(0, [0, 1, 2]), (1, [1, 0, 2]), (2, [2, 0, 1])])
def test_set_cover_keeps_the_others_in_order(db, gallery, seq, expected):
    sha, before = gallery
    records = images.set_cover(db, sha, seq)
    assert [r["image_sha256"] for r in records] == [before[i] for i in expected]
    assert [r["seq"] for r in records] == [0, 1, 2]


def test_set_cover_of_unknown_image_changes_nothing(db, gallery):
    sha, before = gallery
    with pytest.raises(NotFound) as caught:
        images.set_cover(db, sha, 3)
    assert caught.value.code == "IMAGE_NOT_FOUND"
    assert contents(db, sha) == before


# --- deleting a model ------------------------------------------------------------------------

def test_deleting_a_model_leaves_no_orphan_files(db, models, picture, images_dir):
    only_first, shared, only_second = picture(1), picture(2), picture(3)
    add(db, models[0], only_first)
    add(db, models[0], shared)
    add(db, models[1], shared)
    add(db, models[1], only_second)

    library.delete_model(db, images_dir, models[0])

    assert not any(only_first.image_sha256 in p.name for p in all_files(images_dir))
    assert image_files.is_complete(images_dir, shared.image_sha256)
    assert image_files.is_complete(images_dir, only_second.image_sha256)
    assert db.execute("SELECT count(*) FROM images WHERE sha256 = ?",
                      [models[0]]).fetchone()[0] == 0

    library.delete_model(db, images_dir, models[1])

    assert all_files(images_dir) == []
    assert image_rows(db) == 0


def test_deleting_a_model_without_images(db, models, picture, images_dir):
    kept = picture(1)
    add(db, models[1], kept)
    library.delete_model(db, images_dir, models[0])
    assert image_files.is_complete(images_dir, kept.image_sha256)
