"""importer.py without HTTP: every conflict strategy, failures, cached hashes, promoted previews."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from server import hashing, image_files, images, import_job, importer, library, pending, tags
from server.importer import import_pending
from tests.factories import ModelTree, add_tree_to_library, png_bytes, write_safetensors

NOW = 1_700_000_000_000


@dataclass
class Library:
    db: object
    tree: ModelTree
    root: Path
    images_dir: Path
    pending_dir: Path

    def new_file(self, name: str, seed: int, kind: str = "loras") -> Path:
        path = self.root / "new" / kind / name
        write_safetensors(path, seed)
        return path

    def copy_of(self, file_name: str, target: str) -> Path:
        path = self.root / "new" / target
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.tree.by_name(file_name).path, path)
        return path

    def queue(self, path: Path, *, hashed: bool = True, picture: bytes | None = None,
              **fields) -> int:
        """Queue a file as the scanner or the legacy migration would (hashed unless told)."""
        if picture is not None:
            fields["image"] = fields.get("image") or f"{path.stem}.png"
            self.pending_dir.mkdir(exist_ok=True)
            (self.pending_dir / fields["image"]).write_bytes(picture)
        fields.setdefault("type", path.parent.name)
        sha = hashlib.sha256(path.read_bytes()).hexdigest() if hashed else None
        return pending.add_pending(self.db, pending.NewPending(
            str(path), NOW, size_bytes=path.stat().st_size, sha256=sha, **fields))

    def run(self, ids: list, strategy: str | None = None) -> dict:
        return import_pending(self.db, self.images_dir, ids, strategy, NOW + 1)

    def model(self, sha: str) -> dict:
        return library.get_model(self.db, sha)

    def pending_ids(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM pending_import ORDER BY id")]


@pytest.fixture
def lib(db, make_tree, tmp_path) -> Library:
    """The make_tree library; images and pending previews in the data dir beside the db."""
    tree = make_tree()
    add_tree_to_library(db, tree)
    return Library(db, tree, tmp_path, tmp_path / "images", tmp_path / "pending")


def tag_names(model: dict) -> list[str]:
    return sorted(t["name"] for t in model["tags"])


def user_meta(model: dict) -> dict:
    """The metadata fields themselves (without the bookkeeping of where each came from)."""
    return {k: v for k, v in model["meta_json"].items() if k != "sources"}


# --- conflict strategies ---------------------------------------------------------------------

@pytest.fixture
def existing(lib) -> str:
    """ink.safetensors as the user left it: a name, notes, a prompt, a tag and a picture."""
    sha = lib.tree.by_name("ink.safetensors").sha256
    library.patch_model(lib.db, sha, {"name": "Kept Name", "tags": ["existing"], "meta_json": {
        "description": "", "community_links": "https://kept", "notes": "my notes",
        "prompts": {"positive": "kept positive", "negative": ""}}})
    with open(_picture(lib.root / "old.png", (0, 0, 200)), "rb") as source:
        stored = image_files.ingest(source, lib.images_dir)
    images.add_image(lib.db, sha, stored, images.ImageFields(), NOW)
    return sha


def _picture(path: Path, colour) -> Path:
    path.write_bytes(png_bytes(colour=colour))
    return path


@pytest.fixture
def batch(lib, existing) -> dict:
    """A new file and a copy of `existing`, each with tags, metadata and a stored preview."""
    fresh = lib.new_file("fresh.safetensors", 50)
    copy = lib.copy_of("ink.safetensors", "checkpoints/ink_again.safetensors")
    return {
        "fresh": lib.queue(fresh, name="Fresh", tags=("new-tag",), picture=png_bytes(colour=(1, 2, 3)),
                           meta={"description": "fresh desc", "images": ["/media/x.png"]}),
        "fresh_sha": hashlib.sha256(fresh.read_bytes()).hexdigest(),
        "conflict": lib.queue(copy, name="Pending Name", tags=("pending-tag", "EXISTING"),
                              picture=png_bytes(colour=(9, 9, 9)), meta={
                                  "description": "pending desc", "community_links": "https://pending",
                                  "notes": "pending notes",
                                  "prompts": {"positive": "", "negative": "pending negative"}}),
        "copy": str(copy),
    }


def assert_fresh_imported(lib, batch) -> None:
    model = lib.model(batch["fresh_sha"])
    assert (model["name"], model["type"]) == ("Fresh", "loras")
    assert model["path"].endswith("fresh.safetensors")
    assert user_meta(model) == {"description": "fresh desc"}  # v1's image list dropped
    assert tag_names(model) == ["new-tag"]
    assert len(model["images"]) == 1 and model["images"][0]["source"] == "import"
    assert not (lib.pending_dir / "fresh.png").exists()


@pytest.mark.parametrize("strategy", [None, "null"])
def test_no_strategy_imports_new_items_and_reports_conflicts(lib, existing, batch, strategy):
    before = lib.model(existing)

    report = lib.run([batch["fresh"], batch["conflict"]], strategy)

    assert report["success"] == [batch["fresh"]]
    assert report["conflict"] == [{
        "pending": {"id": batch["conflict"], "path": batch["copy"]},
        "existing": {"sha256": existing, "path": before["path"]}}]
    assert_fresh_imported(lib, batch)
    assert lib.model(existing) == before
    assert lib.pending_ids() == [batch["conflict"]]
    assert (lib.pending_dir / "ink_again.png").exists()


def test_override_takes_the_items_non_empty_fields_and_keeps_notes_and_images(lib, existing, batch):
    report = lib.run([batch["fresh"], batch["conflict"]], "override")

    assert report["success"] == [batch["fresh"], batch["conflict"]]
    assert_fresh_imported(lib, batch)
    model = lib.model(existing)
    assert (model["name"], model["type"]) == ("Pending Name", "checkpoints")
    assert user_meta(model) == {
        "description": "pending desc", "community_links": "https://pending", "notes": "my notes",
        "prompts": {"positive": "kept positive", "negative": "pending negative"}}
    assert tag_names(model) == ["existing", "pending-tag"]
    assert [i["source"] for i in model["images"]] == ["upload", "import"]  # kept, then added
    assert batch["copy"] in [f["path"] for f in model["files"]]
    assert lib.pending_ids() == [] and list(lib.pending_dir.iterdir()) == []


def test_merge_fills_only_blank_fields(lib, existing, batch):
    report = lib.run([batch["conflict"], batch["fresh"]], "merge")

    assert report["success"] == [batch["conflict"], batch["fresh"]]
    assert_fresh_imported(lib, batch)
    model = lib.model(existing)
    assert (model["name"], model["type"]) == ("Kept Name", "loras")
    assert user_meta(model) == {
        "description": "pending desc", "community_links": "https://kept", "notes": "my notes",
        "prompts": {"positive": "kept positive", "negative": "pending negative"}}
    assert tag_names(model) == ["existing", "pending-tag"]
    assert len(model["images"]) == 2
    assert lib.pending_ids() == []


def test_ignore_leaves_the_conflicting_item_pending(lib, existing, batch):
    before = lib.model(existing)

    report = lib.run([batch["fresh"], batch["conflict"]], "ignore")

    assert (report["success"], report["ignored"]) == ([batch["fresh"]], [batch["conflict"]])
    assert_fresh_imported(lib, batch)
    assert lib.model(existing) == before
    assert lib.pending_ids() == [batch["conflict"]]
    assert (lib.pending_dir / "ink_again.png").exists()


def test_delete_removes_the_conflicting_item_and_its_preview_only(lib, existing, batch):
    before = lib.model(existing)

    report = lib.run([batch["fresh"], batch["conflict"]], "delete")

    assert (report["success"], report["deleted"]) == ([batch["fresh"]], [batch["conflict"]])
    assert_fresh_imported(lib, batch)
    assert lib.model(existing) == before
    assert lib.pending_ids() == [] and list(lib.pending_dir.iterdir()) == []
    assert Path(batch["copy"]).exists()  # the model file itself is never touched
    assert lib.db.execute("SELECT count(*) FROM pending_tags").fetchone()[0] == 0


def test_report_shape(lib, batch):
    report = lib.run([batch["fresh"], batch["conflict"], batch["fresh"]])
    assert set(report) == {"total", "success", "conflict", "ignored", "deleted", "failed",
                           "image_errors"}
    assert report["total"] == 2  # ids are de-duplicated


# --- failures --------------------------------------------------------------------------------

def test_failures_are_listed_with_reasons_while_the_rest_succeed(lib):
    first = lib.queue(lib.new_file("one.safetensors", 61))
    gone_path = lib.new_file("gone.safetensors", 62)
    gone = lib.queue(gone_path)
    last = lib.queue(lib.new_file("two.safetensors", 63))
    gone_path.unlink()

    report = lib.run([first, gone, 999_999, "abc", 2.5, last])

    assert report["success"] == [first, last]
    assert [(f["id"], f["code"]) for f in report["failed"]] == [
        (gone, "FILE_MISSING"), (999_999, "PENDING_NOT_FOUND"), ("abc", "INVALID_ID"),
        (2.5, "INVALID_ID")]
    assert all(f["error"] for f in report["failed"])
    assert str(gone_path) in report["failed"][0]["error"]
    assert lib.pending_ids() == [gone]


def test_a_failing_item_changes_nothing_and_the_others_still_import(lib):
    bad_path = lib.new_file("bad.safetensors", 64)
    bad = lib.queue(bad_path, tags=("t",), meta={"nsfw_level": "very"})  # not the meta schema
    good = lib.queue(lib.new_file("good.safetensors", 65))

    report = lib.run([bad, good])

    assert report["success"] == [good]
    assert report["failed"][0]["id"] == bad and report["failed"][0]["code"] == "VALIDATION"
    bad_sha = hashlib.sha256(bad_path.read_bytes()).hexdigest()
    assert lib.db.execute("SELECT count(*) FROM models WHERE sha256 = ?", [bad_sha]).fetchone()[0] == 0
    assert lib.db.execute("SELECT count(*) FROM files WHERE path = ?", [str(bad_path)]).fetchone()[0] == 0
    assert bad in lib.pending_ids()


def test_an_item_not_hashed_yet_fails_without_reading_the_file(lib, monkeypatch):
    calls = []
    monkeypatch.setattr(hashing, "sha256_file", lambda path: calls.append(path) or "0" * 64)
    item = lib.queue(lib.new_file("unhashed.safetensors", 66), hashed=False)

    report = lib.run([item])

    assert [f["code"] for f in report["failed"]] == ["NOT_HASHED"] and calls == []


def test_a_directory_or_an_unreadable_path_fails(lib):
    folder = lib.root / "new" / "folder.safetensors"
    folder.mkdir(parents=True)
    item = pending.add_pending(lib.db, pending.NewPending(str(folder), NOW, sha256="a" * 64))
    assert lib.run([item])["failed"][0]["code"] == "FILE_UNREADABLE"


# --- cached hashes ---------------------------------------------------------------------------

def test_the_files_row_is_the_hash_cache_while_size_and_mtime_hold(lib):
    path = lib.new_file("cached.safetensors", 67)
    real = hashlib.sha256(path.read_bytes()).hexdigest()
    item = lib.queue(path, hashed=False)
    library.record_file(lib.db, str(path), "loras", real)
    stat = path.stat()
    path.write_bytes(b"X" * stat.st_size)  # new bytes, same size and mtime: the cache still holds
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert importer.cached_sha256(lib.db, str(path), None, stat.st_size)[0] == real
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert importer.cached_sha256(lib.db, str(path), real, stat.st_size)[0] is None  # stale
    lib.db.execute("DELETE FROM files WHERE path = ?", [str(path)])
    assert importer.cached_sha256(lib.db, str(path), real, stat.st_size)[0] == real
    assert importer.cached_sha256(lib.db, str(path), real, stat.st_size + 1)[0] is None
    assert item in lib.pending_ids()


def test_hash_file_and_remember_hashes_fill_the_cache(lib):
    path = lib.new_file("later.safetensors", 68)
    item = lib.queue(path, hashed=False)
    plan = import_job.plan_import(lib.db, [item, 12345, "x"], None)
    wanted = plan.to_hash
    assert [(w.id, w.size) for w in wanted] == [(item, path.stat().st_size)]

    result = import_job.hash_file(wanted[0])
    import_job.remember_hashes(lib.db, [result], NOW)

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.sha256 == sha and result.failure is None
    assert pending.get_pending(lib.db, item)["sha256"] == sha
    assert import_job.plan_import(lib.db, [item], None).to_hash == []
    assert lib.run([item])["success"] == [item]


def test_hash_file_reports_a_vanished_file(lib):
    path = lib.new_file("vanishing.safetensors", 69)
    item = lib.queue(path, hashed=False)
    wanted = import_job.plan_import(lib.db, [item], None).to_hash
    path.unlink()
    assert import_job.hash_file(wanted[0]).failure.code == "FILE_MISSING"


# --- previews --------------------------------------------------------------------------------

def test_an_undecodable_preview_is_reported_and_kept_while_the_model_imports(lib):
    item = lib.queue(lib.new_file("odd.safetensors", 70), picture=b"\x89PNG\r\n\x1a\nbroken")
    report = lib.run([item])
    assert report["success"] == [item]
    assert report["image_errors"][0]["id"] == item
    assert (lib.pending_dir / "odd.png").exists()


def test_a_missing_preview_file_does_not_stop_the_import(lib):
    item = lib.queue(lib.new_file("nopic.safetensors", 71), image="never-copied.png")
    report = lib.run([item])
    assert report["success"] == [item] and len(report["image_errors"]) == 1


def test_the_same_picture_is_not_added_to_a_gallery_twice(lib):
    picture = png_bytes(colour=(5, 6, 7))
    first = lib.queue(lib.new_file("twin.safetensors", 72), picture=picture, image="a.png")
    twin = lib.root / "new" / "loras" / "twin.safetensors"
    second = lib.queue(Path(shutil.copy(twin, twin.with_name("twin2.safetensors"))),
                       picture=picture, image="b.png")
    lib.run([first])
    lib.run([second], "merge")
    sha = hashlib.sha256(twin.read_bytes()).hexdigest()
    assert len(lib.model(sha)["images"]) == 1
    assert list(lib.pending_dir.iterdir()) == []


def test_prepared_previews_are_used_instead_of_converting_again(lib, monkeypatch):
    item = lib.queue(lib.new_file("ready.safetensors", 73), picture=png_bytes())
    with open(lib.pending_dir / "ready.png", "rb") as source:
        stored = image_files.ingest(source, lib.images_dir)
    monkeypatch.setattr(image_files, "ingest", lambda *a: pytest.fail("converted again"))

    report = import_pending(lib.db, lib.images_dir, [item], None, NOW,
                            prepared=importer.Prepared(images={item: stored}))

    assert report["success"] == [item]
    sha = hashlib.sha256((lib.root / "new" / "loras" / "ready.safetensors").read_bytes()).hexdigest()
    assert lib.model(sha)["images"][0]["image_sha256"] == stored.image_sha256


def test_progress_is_reported_per_item(lib):
    ids = [lib.queue(lib.new_file(f"p{i}.safetensors", 80 + i)) for i in range(3)]
    seen = []
    import_pending(lib.db, lib.images_dir, ids, None, NOW,
                   progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


# --- helpers ---------------------------------------------------------------------------------

def test_strategy_of():
    assert importer.strategy_of(None) is None and importer.strategy_of("null") is None
    assert [importer.strategy_of(s) for s in importer.STRATEGIES] == list(importer.STRATEGIES)
    for bad in ("Override", "", 1, "none"):
        with pytest.raises(importer.Invalid):
            importer.strategy_of(bad)


def test_overlay_and_fill_blanks():
    current = {"a": "x", "b": "", "n": {"p": "kept", "q": ""}, "l": []}
    incoming = {"a": "new", "b": "filled", "n": {"p": "", "q": "q"}, "l": ["t"], "z": "  "}
    assert importer.overlay(current, incoming) == {"a": "new", "b": "filled",
                                                    "n": {"p": "kept", "q": "q"}, "l": ["t"]}
    assert importer.fill_blanks(current, incoming) == {"a": "x", "b": "filled",
                                                        "n": {"p": "kept", "q": "q"}, "l": ["t"]}
    assert json.dumps(current) == json.dumps({"a": "x", "b": "", "n": {"p": "kept", "q": ""},
                                              "l": []})  # inputs untouched


def test_pending_tags_are_shared_tags(lib):
    item = lib.queue(lib.new_file("tagged.safetensors", 90), tags=("Shared",))
    tags.ensure_tags(lib.db, ["shared"])
    lib.run([item])
    assert [t["name"] for t in tags.list_tags(lib.db) if t["count"]] == ["Shared"]
