"""pending.py without HTTP: queueing, listing and reading items, and finding their previews."""
from __future__ import annotations

from pathlib import Path

import pytest

from server import pending
from server.errors import Conflict, Invalid, NotFound
from server.pending import ListQuery, NewPending
from tests.factories import add_tree_to_library, png_bytes, write_safetensors

KNOWN = ["checkpoints", "loras", "vae"]


def queue(db, path: Path, created_at: int, **fields) -> int:
    return pending.add_pending(db, NewPending(str(path), created_at, **fields))


def listed(db, **query) -> list[dict]:
    return pending.list_pending(db, ListQuery(**query), KNOWN)["models"]


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "models"
    paths = {name: folder / kind / f"{name}.safetensors"
             for name, kind in [("a", "loras"), ("b", "checkpoints"), ("c", "loras")]}
    for seed, path in enumerate(paths.values()):
        write_safetensors(path, 100 + seed)
    return paths


# --- queue and list --------------------------------------------------------------------------

def test_listed_oldest_first_with_tags_and_the_file_name_for_a_blank_name(db, files):
    queue(db, files["a"], 30, type="loras", size_bytes=10, tags=("style", "Style", "ink"))
    queue(db, files["b"], 10, type="checkpoints", name="Base", image="b.png", source="legacy",
          legacy_id=7)

    first, second = listed(db)

    assert [first["name"], second["name"]] == ["Base", "a.safetensors"]
    assert first == {
        "id": 2, "name": "Base", "image": "b.png", "image_url": "/api/images/pending/2",
        "type": "checkpoints", "tags": [], "sha256": None, "duplicate_of": None,
        "size_bytes": 0, "path": str(files["b"]), "created_at": 10, "source": "legacy"}
    assert [t["name"] for t in second["tags"]] == ["ink", "style"]  # case-insensitive tags
    assert second["image"] == "" and second["image_url"] is None


def test_list_filters_by_type_and_pages(db, files):
    for index, (name, path) in enumerate(files.items()):
        queue(db, path, index, type=path.parent.name)
    queue(db, Path("/elsewhere/x.ckpt"), 9, type="lora")  # a v1 type string: no known kind

    assert [m["name"] for m in listed(db, type="loras")] == ["a.safetensors", "c.safetensors"]
    assert [m["path"] for m in listed(db, type="Others")] == ["/elsewhere/x.ckpt"]
    page = pending.list_pending(db, ListQuery(offset=1, limit=2), KNOWN)
    assert page["total"] == 4 and [m["created_at"] for m in page["models"]] == [1, 2]


def test_sha256_comes_from_the_item_or_its_file_and_duplicate_of_names_the_model(db, make_tree):
    tree = make_tree()
    add_tree_to_library(db, tree)
    copy = tree.by_name("ink_copy.safetensors")  # the library's files include it
    stray = tree.root / "stray.safetensors"
    stray_sha = write_safetensors(stray, 77)
    in_library = tree.by_name("base.safetensors")
    db.execute("DELETE FROM files WHERE path = ?", [str(in_library.path)])

    queue(db, copy.path, 1)  # hashed through its files row
    queue(db, stray, 2, sha256=stray_sha)  # hashed, not in the library
    queue(db, in_library.path, 3, sha256=in_library.sha256)  # hashed, in the library
    queue(db, tree.root / "loose.ckpt", 4)  # not hashed

    assert [(m["sha256"], m["duplicate_of"]) for m in listed(db)] == [
        (copy.sha256, copy.sha256), (stray_sha, None),
        (in_library.sha256, in_library.sha256), (None, None)]


def test_get_pending_is_the_full_record(db, files):
    item_id = queue(db, files["a"], 5, type="loras", size_bytes=3, tags=("ink",), source="legacy",
                    meta={"description": "d", "prompts": {"positive": "p", "negative": ""}},
                    legacy_id=12, image="a.png")

    record = pending.get_pending(db, item_id)

    assert record == {
        "id": item_id, "path": str(files["a"]), "sha256": None, "name": "a.safetensors",
        "type": "loras", "size_bytes": 3, "created_at": 5,
        "meta_json": {"description": "d", "prompts": {"positive": "p", "negative": ""}},
        "tags": record["tags"], "image": "a.png", "image_url": f"/api/images/pending/{item_id}",
        "source": "legacy", "legacy_id": 12, "duplicate_of": None}
    assert [t["name"] for t in record["tags"]] == ["ink"]


def test_unknown_item_is_not_found(db):
    with pytest.raises(NotFound) as raised:
        pending.get_pending(db, 404)
    assert raised.value.code == "PENDING_NOT_FOUND"
    with pytest.raises(NotFound):
        pending.preview_source(db, 404)


def test_ids_are_never_reused(db, files):
    first = queue(db, files["a"], 1)
    last = queue(db, files["b"], 2)
    db.execute("DELETE FROM pending_import WHERE id = ?", [last])

    again = queue(db, files["c"], 3)

    assert (first, last, again) == (1, 2, 3)


def test_a_path_is_queued_once(db, files):
    queue(db, files["a"], 1)
    with pytest.raises(Conflict):
        queue(db, files["a"], 2)
    with pytest.raises(Invalid):
        queue(db, files["b"], 2, source="upload")
    assert len(listed(db)) == 1


# --- preview files ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["preview.png", "model_12_1712345678901_preview.png", "a b.jpg",
                                  "画像 1.webp", "v1.2.png", "12"])
def test_plain_names(name):
    assert pending.plain_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "../x.png", "..\\x.png", "a/b.png", "/etc/passwd",
                                  "C:\\x.png", "C:x.png", "x%2Fy.png", "%2e%2e", "a\x00.png",
                                  ".hidden.png", "x..png", " padded.png", "x" * 256, "a\nb.png"])
def test_names_that_are_not_plain_file_names_are_refused(name):
    with pytest.raises(Invalid) as raised:
        pending.plain_name(name)
    assert raised.value.code == "INVALID_IMAGE_NAME"


def test_stored_previews_stay_inside_the_pending_folder(tmp_path):
    folder = tmp_path / "pending"
    folder.mkdir()
    (folder / "p.png").write_bytes(png_bytes())
    (folder / "sub").mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes())
    (folder / "inside.png").symlink_to(folder / "p.png")
    (folder / "out.png").symlink_to(secret)
    (folder / "outdir").symlink_to(tmp_path)

    assert pending.stored_path(folder, "p.png") == (folder / "p.png").resolve()
    assert pending.stored_path(folder, "inside.png") == (folder / "p.png").resolve()
    for name in ("out.png", "sub", "outdir", "missing.png"):
        with pytest.raises(NotFound):
            pending.stored_path(folder, name)
    with pytest.raises(NotFound):
        pending.stored_path(tmp_path / "no-folder", "p.png")


def test_find_stored_tries_the_stem_with_picture_extensions(tmp_path):
    folder = tmp_path / "pending"
    folder.mkdir()
    (folder / "cover.png").write_bytes(png_bytes())
    (folder / "exact.webp").write_bytes(png_bytes(fmt="WEBP"))

    assert pending.find_stored(folder, "cover.webp").name == "cover.png"
    assert pending.find_stored(folder, "cover").name == "cover.png"
    assert pending.find_stored(folder, "exact.webp").name == "exact.webp"
    with pytest.raises(NotFound):
        pending.find_stored(folder, "nothing.webp")


def test_sibling_preview_order(tmp_path):
    model = tmp_path / "m.safetensors"
    write_safetensors(model, 1)
    assert pending.sibling_preview(str(model)) is None
    (tmp_path / "m.webp").write_bytes(png_bytes(fmt="WEBP"))
    assert pending.sibling_preview(str(model)).name == "m.webp"
    (tmp_path / "m.preview.png").write_bytes(png_bytes())
    assert pending.sibling_preview(str(model)).name == "m.preview.png"


def test_preview_path_stored_then_sibling_for_scans_only(tmp_path):
    folder = tmp_path / "pending"
    folder.mkdir()
    (folder / "p.png").write_bytes(png_bytes())
    model = tmp_path / "m.safetensors"
    write_safetensors(model, 1)
    (tmp_path / "m.png").write_bytes(png_bytes())
    source = pending.PreviewSource

    assert pending.preview_path(folder, source(1, "p.png", str(model), "legacy")).name == "p.png"
    assert pending.preview_path(folder, source(2, "", str(model), "scan")).name == "m.png"
    for item in (source(3, "", str(model), "legacy"), source(4, "../p.png", str(model), "legacy"),
                 source(5, "gone.png", str(model), "scan")):
        with pytest.raises(NotFound):
            pending.preview_path(folder, item)


def test_read_preview_content_types(tmp_path):
    cases = {"a.png": (png_bytes(fmt="JPEG"), "image/jpeg"),  # content wins over the extension
             "b.mp4": (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
             "c.html": (b"<script>alert(1)</script>", "application/octet-stream")}
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        preview = pending.read_preview(tmp_path / name)
        assert (preview.data, preview.content_type) == (data, expected)
    with pytest.raises(NotFound):
        pending.read_preview(tmp_path / "gone.png")


def test_release_image_keeps_a_preview_another_item_still_names(db, files, tmp_path):
    folder = tmp_path / "pending"
    folder.mkdir()
    (folder / "shared.png").write_bytes(png_bytes())
    first = queue(db, files["a"], 1, image="shared.png")
    queue(db, files["b"], 2, image="shared.png")

    db.execute("DELETE FROM pending_import WHERE id = ?", [first])
    pending.release_image(db, folder, "shared.png")
    assert (folder / "shared.png").exists()

    db.execute("DELETE FROM pending_import")
    pending.release_image(db, folder, "shared.png")
    assert not (folder / "shared.png").exists()


def test_release_image_never_touches_anything_outside(db, tmp_path):
    folder = tmp_path / "pending"
    folder.mkdir()
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes())
    (folder / "link.png").symlink_to(outside)
    (folder / "dir.png").mkdir()

    for name in ("../outside.png", str(outside), "link.png", "dir.png"):
        pending.release_image(db, folder, name)

    assert outside.exists() and not (folder / "link.png").is_symlink()
    assert (folder / "dir.png").is_dir()
