"""Scanner scenarios on a real model tree and a real library: what a scan finds, queues, marks
missing and re-links, and what the hash job does after it."""
from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from server import library
from server import scanner as scanner_module
from server.app_keys import CONFIG, JOBS, SCANNER, STORE
from server.config import Kind
from tests.factories import add_tree_to_library, build_tree, png_bytes, write_safetensors

KINDS = ("checkpoints", "loras", "vae")
TREE_MODELS = 6  # build_tree's model files: five .safetensors (one a copy) and a .ckpt


def age(*paths: Path, seconds: float = 60) -> None:
    """Make files look long finished (a scan leaves files younger than a few seconds alone)."""
    stamp = time.time() - seconds
    for top in paths:
        for path in [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]:
            os.utime(path, (stamp, stamp), follow_symlinks=False)


class Lab:
    """A real app over a model tree, driven the way the routes drive it."""

    def __init__(self, client) -> None:
        self.client = client
        self.app = client.app
        self.scanner = client.app[SCANNER]
        self.store = client.app[STORE]

    async def scan(self) -> dict:
        report = await self.scanner.scan()
        await self.scanner.settled()  # and the hash job it started
        return report

    async def query(self, sql: str, *params) -> list[tuple]:
        return await self.store.run(lambda db: db.execute(sql, params).fetchall())

    async def files(self) -> dict[str, tuple]:
        return {row[0]: row[1:] for row in await self.query(
            "SELECT path, sha256, state, verify, quick_fp IS NOT NULL FROM files")}

    async def pending(self) -> dict[str, tuple]:
        return {row[0]: row[1:] for row in await self.query(
            "SELECT path, id, sha256, name, type, size_bytes, created_at, source "
            "FROM pending_import")}

    def job(self, job_id: str) -> dict:
        return self.app[JOBS].get(job_id).snapshot()


@pytest.fixture
def make_lab(make_client):
    async def make(root: Path, **overrides) -> Lab:
        overrides.setdefault("kinds", {k: Kind(k, (root / k,)) for k in KINDS})
        return Lab(await make_client(**overrides))

    return make


@pytest.fixture
def tree(tmp_path):
    built = build_tree(tmp_path / "models")
    (built.root / "loras" / "style" / "settings.yaml").write_text("a: 1\n")
    age(built.root)
    return built


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_new_files_are_queued_then_hashed_and_other_files_ignored(make_lab, tree):
    lab = await make_lab(tree.root)
    report = await lab.scan()
    assert (report["status"], report["scanned"], report["added"], report["skipped"]) == \
        ("success", TREE_MODELS, TREE_MODELS, 0)
    pending = await lab.pending()
    assert sorted(pending) == sorted(str(f.path) for f in tree.files)
    assert sorted(row[0] for row in pending.values()) == sorted(report["pending_ids"])
    ink = tree.by_name("ink.safetensors")
    _, _, ink_sha, name, type_, size, created, source = (str(ink.path), *pending[str(ink.path)])
    stat = ink.path.stat()
    assert (name, type_, size, created, source) == \
        ("ink.safetensors", "loras", stat.st_size, stat.st_mtime_ns // 1_000_000, "scan")
    # the hash job ran after the scan: files and pending items know their sha256
    assert ink_sha == ink.sha256
    files = await lab.files()
    assert {path: row[0] for path, row in files.items()} == \
        {str(f.path): f.sha256 for f in tree.files}
    assert all(row[1:] == ("present", 0, 1) for row in files.values())
    hash_job = lab.job(report["hash_job"])
    assert hash_job["state"] == "done" and hash_job["result"]["hashed"] == TREE_MODELS
    assert hash_job["files_done"] == hash_job["files_total"] == TREE_MODELS


async def test_a_rescan_adds_and_rehashes_nothing(make_lab, tree):
    lab = await make_lab(tree.root)
    await lab.scan()
    before = await lab.files()
    again = await lab.scan()
    assert (again["added"], again["skipped"], again["pending_ids"], again["hash_job"]) == \
        (0, TREE_MODELS, [], None)
    assert await lab.files() == before


async def test_files_of_library_models_are_skipped(make_lab, tree):
    lab = await make_lab(tree.root)
    await lab.store.run(add_tree_to_library, tree)
    report = await lab.scan()
    assert (report["added"], report["skipped"]) == (0, TREE_MODELS)
    assert await lab.pending() == {}


async def test_a_changed_file_is_rehashed_and_its_new_content_queued(make_lab, tree):
    lab = await make_lab(tree.root)
    await lab.store.run(add_tree_to_library, tree)
    glow = tree.by_name("glow.safetensors")
    new_sha = write_safetensors(glow.path, seed=99)
    age(glow.path)
    report = await lab.scan()
    assert (report["changed"], report["added"]) == (1, 1)
    assert (await lab.files())[str(glow.path)][:2] == (new_sha, "present")
    assert (await lab.pending())[str(glow.path)][1] == new_sha
    old = await lab.store.run(library.get_model, glow.sha256)
    assert old["path"] == "" and old["files"] == []  # the old content is on disk nowhere


async def test_a_renamed_library_file_keeps_its_model_tags_and_notes(make_lab, tree):
    lab = await make_lab(tree.root)
    await lab.store.run(add_tree_to_library, tree)
    glow = tree.by_name("glow.safetensors")
    await lab.store.run(library.patch_model, glow.sha256,
                        {"tags": ["shiny"], "meta_json": {"notes": "my notes"}})
    renamed = glow.path.parent.parent / "glow-v2.safetensors"
    glow.path.rename(renamed)
    report = await lab.scan()
    assert (report["moved"], report["added"], report["missing"], report["hash_job"]) == \
        (1, 0, 0, None)  # same inode, size and mtime: nothing to read, nothing to verify
    model = await lab.store.run(library.get_model, glow.sha256)
    assert model["path"] == str(renamed) and [f["path"] for f in model["files"]] == [str(renamed)]
    assert [t["name"] for t in model["tags"]] == ["shiny"]
    assert model["meta_json"]["notes"] == "my notes"
    assert str(glow.path) not in await lab.files()


async def test_a_file_moved_to_another_disk_is_relinked_by_fingerprint_and_verified(make_lab, tree):
    lab = await make_lab(tree.root)
    await lab.scan()  # queued and hashed: the files rows know sha256 and quick fingerprint
    clear = tree.by_name("clear.safetensors")
    await lab.store.run(library.add_model, library.NewModel(
        sha256=clear.sha256, name="Clear VAE", type="vae", size_bytes=clear.path.stat().st_size,
        created_at=1))
    await lab.query("DELETE FROM pending_import WHERE path = ?", str(clear.path))
    moved = clear.path.parent / "archive" / "clear.safetensors"
    moved.parent.mkdir()
    shutil.copy2(clear.path, moved)  # a copy and a delete: a new inode, as across disks
    clear.path.unlink()
    report = await lab.scan()
    assert (report["moved"], report["added"], report["missing"]) == (1, 0, 0)
    # taken over without reading, then confirmed by the hash job
    assert lab.job(report["hash_job"])["result"] == {"hashed": 0, "verified": 1, "changed": 0,
                                                     "failed": 0, "described": 0}
    assert (await lab.files())[str(moved)][:3] == (clear.sha256, "present", 0)
    assert (await lab.store.run(library.get_model, clear.sha256))["path"] == str(moved)


async def test_a_moved_pending_file_takes_its_pending_item_along(make_lab, tree):
    lab = await make_lab(tree.root)
    await lab.scan()
    ckpt = tree.by_name("old.ckpt")
    item_id = (await lab.pending())[str(ckpt.path)][0]
    renamed = ckpt.path.with_name("older.ckpt")
    ckpt.path.rename(renamed)
    report = await lab.scan()
    assert (report["moved"], report["added"]) == (1, 0)
    assert (await lab.pending())[str(renamed)][:4] == (item_id, ckpt.sha256, "older.ckpt",
                                                       "checkpoints")


async def test_a_copy_is_queued_and_its_hash_names_the_library_model(make_lab, tree):
    lab = await make_lab(tree.root)
    await lab.store.run(add_tree_to_library, tree)
    base = tree.by_name("base.safetensors")
    copy = tree.root / "loras" / "base-copy.safetensors"
    shutil.copy2(base.path, copy)
    report = await lab.scan()
    assert (report["added"], report["moved"]) == (1, 0)
    assert (await lab.pending())[str(copy)][1] == base.sha256
    assert (await lab.store.run(library.get_model, base.sha256))["path"] == str(base.path)


async def test_a_deleted_file_becomes_missing_and_nothing_is_deleted(make_lab, tree):
    lab = await make_lab(tree.root)
    await lab.store.run(add_tree_to_library, tree)
    vae = tree.by_name("clear.safetensors")
    vae.path.unlink()
    report = await lab.scan()
    assert (report["missing"], report["added"], report["scanned"]) == (1, 0, TREE_MODELS - 1)
    assert (await lab.files())[str(vae.path)][:2] == (vae.sha256, "missing")
    model = await lab.store.run(library.get_model, vae.sha256)
    assert model["files"] == [{"path": str(vae.path), "size_bytes": model["size_bytes"],
                               "state": "missing", "kind": "vae"}]
    assert (await lab.scan())["missing"] == 0  # already known as missing


async def test_a_root_that_disappears_and_comes_back(make_lab, tree):
    lab = await make_lab(tree.root)
    await lab.store.run(add_tree_to_library, tree)
    loras = tree.root / "loras"
    loras.rename(tree.root / "unmounted")
    gone = await lab.scan()
    assert gone["missing_roots"] == [str(loras)] and gone["missing"] == 2
    states = await lab.files()
    assert {states[str(tree.by_name(n).path)][1] for n in ("ink.safetensors", "glow.safetensors")} \
        == {"missing"}
    (tree.root / "unmounted").rename(loras)
    back = await lab.scan()
    assert (back["missing_roots"], back["returned"], back["added"]) == ([], 2, 0)
    assert {row[1] for row in (await lab.files()).values()} == {"present"}


async def test_a_folder_link_to_its_parent_ends_and_finds_each_file_once(make_lab, tree):
    loras = tree.root / "loras"
    (loras / "style" / "loop").symlink_to(loras, target_is_directory=True)
    (tree.root / "vae" / "elsewhere").symlink_to(loras, target_is_directory=True)
    lab = await make_lab(tree.root)
    report = await asyncio.wait_for(lab.scan(), 10)
    assert report["scanned"] == TREE_MODELS
    # the files keep their direct paths, not the ones through the links
    assert sorted(await lab.pending()) == sorted(str(f.path) for f in tree.files)


async def test_a_linked_file_is_one_file(make_lab, tree, tmp_path):
    ink = tree.by_name("ink.safetensors")
    (tree.root / "loras" / "ink-link.safetensors").symlink_to(ink.path)
    outside = tmp_path / "downloads" / "outside.safetensors"
    write_safetensors(outside, seed=42)
    age(outside)
    (tree.root / "loras" / "outside.safetensors").symlink_to(outside)
    lab = await make_lab(tree.root)
    report = await lab.scan()
    assert report["scanned"] == TREE_MODELS + 1  # the link to ink is ink; the outside file counts
    pending = await lab.pending()
    assert str(tree.root / "loras" / "ink-link.safetensors") not in pending
    assert str(tree.root / "loras" / "outside.safetensors") in pending
    # the alias is seen, so the real file is never marked missing because of it
    assert (await lab.scan())["missing"] == 0


async def test_half_written_files_wait_for_a_later_scan(make_lab, tree):
    loras = tree.root / "loras"
    write_safetensors(loras / "firefox.safetensors.part", seed=10)
    (loras / "aria.safetensors").write_bytes(b"partial")
    (loras / "aria.safetensors.aria2").write_bytes(b"control")
    age(tree.root)
    write_safetensors(loras / "fresh.safetensors", seed=11)  # modified just now
    lab = await make_lab(tree.root)
    report = await lab.scan()
    assert (report["added"], report["deferred"]) == (TREE_MODELS, 2)
    names = {Path(p).name for p in await lab.pending()}
    assert not names & {"firefox.safetensors.part", "aria.safetensors", "fresh.safetensors"}
    (loras / "aria.safetensors.aria2").unlink()
    age(loras / "fresh.safetensors", loras / "aria.safetensors")
    later = await lab.scan()
    assert (later["added"], later["deferred"]) == (2, 0)
    assert {"aria.safetensors", "fresh.safetensors"} <= {Path(p).name for p in await lab.pending()}


async def test_a_folder_under_two_kinds_gives_each_file_once_under_the_first_kind(make_lab, tree):
    shared = tree.root / "loras"
    lab = await make_lab(tree.root, kinds={
        "loras": Kind("loras", (shared,)), "checkpoints": Kind("checkpoints", (shared,))})
    report = await lab.scan()
    assert report["scanned"] == 2
    assert {row[3] for row in (await lab.pending()).values()} == {"checkpoints"}


async def test_extensions_are_per_kind(make_lab, tree):
    (tree.root / "vae" / "notes.txt").write_text("not a model")
    (tree.root / "vae" / "model.pt").write_bytes(b"x" * 10)
    age(tree.root)
    lab = await make_lab(tree.root, kinds={
        "vae": Kind("vae", (tree.root / "vae",), frozenset({".pt", ".txt"}))})
    await lab.scan()
    # this kind asks for .txt (a user's choice); .safetensors is not on its list
    assert sorted(Path(p).name for p in await lab.pending()) == ["model.pt", "notes.txt"]


async def test_unhashed_files_are_hashed_when_the_app_starts(make_lab, tree, make_config):
    first = await make_lab(tree.root)
    await first.store.run(_unhashed_rows, tree)
    ink = tree.by_name("ink.safetensors")
    await first.query("UPDATE files SET state = 'missing' WHERE path = ?", str(ink.path))
    await first.client.close()  # a previous run stopped before it hashed anything
    second = await make_lab(tree.root)
    await second.scanner.settled()
    files = await second.files()
    assert files.pop(str(ink.path))[:2] == (None, "missing")
    assert {path: row[0] for path, row in files.items()} == \
        {str(f.path): f.sha256 for f in tree.files if f is not ink}
    assert (await second.pending())[str(tree.by_name("old.ckpt").path)][1] == \
        tree.by_name("old.ckpt").sha256


def _unhashed_rows(db, tree) -> None:
    for item in tree.files:
        library.record_file(db, str(item.path), item.kind, None)
    db.execute("INSERT INTO pending_import(path, name, type, created_at) VALUES (?, 'old.ckpt', "
               "'checkpoints', 1)", [str(tree.by_name("old.ckpt").path)])


async def test_a_cancelled_hash_job_is_resumed_when_the_app_starts_again(make_lab, tree):
    lab = await make_lab(tree.root, hash_workers=1)
    gate = threading.Event()
    busy = lab.scanner.threads.submit(gate.wait)  # the only hash thread is taken for now
    report = await lab.scanner.scan()
    job = lab.app[JOBS].cancel(report["hash_job"])
    assert job["state"] in ("queued", "running") and job["cancel_requested"]
    gate.set()
    await asyncio.wrap_future(busy)
    await lab.scanner.settled()
    assert lab.job(report["hash_job"])["state"] == "cancelled"
    assert {row[0] for row in (await lab.files()).values()} == {None}
    await lab.client.close()
    restarted = await make_lab(tree.root)  # the work list is simply what has no hash yet
    await restarted.scanner.settled()
    [resumed] = restarted.app[JOBS].list("hash")
    assert (resumed["state"], resumed["result"]["hashed"]) == ("done", TREE_MODELS)
    assert {path: row[0] for path, row in (await restarted.files()).items()} == \
        {str(f.path): f.sha256 for f in tree.files}


async def test_scans_run_on_a_schedule(make_lab, tree):
    lab = await make_lab(tree.root, scan_interval_minutes=0.001)
    for _ in range(200):
        if await lab.pending():
            break
        await asyncio.sleep(0.02)
    assert len(await lab.pending()) == TREE_MODELS


async def test_auto_import_takes_new_content_and_leaves_duplicates_pending(make_lab, tree):
    glow = tree.by_name("glow.safetensors")
    glow.path.with_name("glow.preview.png").write_bytes(png_bytes())
    age(tree.root)
    lab = await make_lab(tree.root, auto_import=True)
    report = await lab.scan()
    result = lab.job(report["hash_job"])["result"]["auto_import"]
    assert result["total"] == TREE_MODELS - 1  # one item per content
    models = {row[0] for row in await lab.query("SELECT sha256 FROM models")}
    assert models == {f.sha256 for f in tree.files}
    left = await lab.pending()
    assert len(left) == 1 and next(iter(left.values()))[1] == tree.by_name("ink.safetensors").sha256
    imported = await lab.store.run(library.get_model, glow.sha256)
    assert imported["images_count"] == 1  # its sibling preview, converted off the store thread


async def test_a_file_that_settles_without_changing_is_queued_by_the_next_scan(make_lab, tree):
    lab = await make_lab(tree.root)
    lab.scanner.settle_s = 0.3
    write_safetensors(tree.root / "loras" / "new.safetensors", seed=50)
    assert (await lab.scan())["deferred"] == 1
    await asyncio.sleep(0.35)
    again = await lab.scan()
    assert (again["deferred"], again["added"]) == (0, 1)


async def test_a_rescan_sees_what_changed_in_the_library_since_the_last_scan(make_lab, tree):
    lab = await make_lab(tree.root)
    await lab.store.run(add_tree_to_library, tree)
    assert (await lab.scan())["added"] == 0
    assert (await lab.scan())["added"] == 0  # a quiet rescan: nothing compared, nothing to do
    vae = tree.by_name("clear.safetensors")
    await lab.store.run(library.delete_model, lab.app[CONFIG].images_dir, vae.sha256)
    report = await lab.scan()  # the file is no model any more: it is new content again
    assert report["pending_ids"] and str(vae.path) in await lab.pending()


async def test_editing_the_library_does_not_cost_a_quiet_rescan_its_shortcut(make_lab, tree,
                                                                              monkeypatch):
    lab = await make_lab(tree.root)
    await lab.store.run(add_tree_to_library, tree)
    await lab.scan()
    await lab.scan()  # the hash job's writes after the first scan moved the generation
    compared = []
    real = scanner_module.known_files
    monkeypatch.setattr(scanner_module, "known_files", lambda db: compared.append(1) or real(db))
    ink = tree.by_name("ink.safetensors")
    await lab.store.run(library.patch_model, ink.sha256, {"name": "Ink", "tags": ["style"]})
    assert (await lab.scan())["added"] == 0
    assert compared == []  # names and tags are nothing a scan compares
    await lab.store.run(library.delete_model, lab.app[CONFIG].images_dir, ink.sha256)
    assert (await lab.scan())["added"] == 2 and compared == [1]  # ink and its copy


async def test_hidden_entries_and_things_that_are_not_files_are_left_alone(make_lab, tree):
    loras = tree.root / "loras"
    write_safetensors(loras / ".cache" / "blob.safetensors", seed=60)
    (loras / "._ink.safetensors").write_bytes(b"macOS resource fork")
    os.mkfifo(loras / "pipe.safetensors")  # opening it to hash would block for ever
    (loras / "broken.safetensors").symlink_to(tree.root / "nowhere.safetensors")
    age(tree.root)
    lab = await make_lab(tree.root)
    report = await asyncio.wait_for(lab.scan(), 10)
    assert (report["scanned"], report["added"]) == (TREE_MODELS, TREE_MODELS)


async def test_a_cancelled_queued_hash_job_is_replaced_by_the_next_request(make_lab, tree):
    lab = await make_lab(tree.root, hash_workers=1)
    gate = threading.Event()
    busy = lab.scanner.threads.submit(gate.wait)
    first = await lab.scanner.scan()  # its hash job runs (waiting for the thread)
    write_safetensors(tree.root / "vae" / "later.safetensors", seed=70)
    age(tree.root / "vae" / "later.safetensors")
    second = await lab.scanner.scan()  # a second hash job is queued behind it
    assert second["hash_job"] != first["hash_job"]
    lab.app[JOBS].cancel(second["hash_job"])
    assert lab.job(second["hash_job"])["state"] == "cancelled"
    third = lab.scanner.request_hash()
    assert third is not None and third.id not in (first["hash_job"], second["hash_job"])
    gate.set()
    await asyncio.wrap_future(busy)
    await lab.scanner.settled()
    assert third.snapshot()["state"] == "done"
    assert None not in {row[0] for row in (await lab.files()).values()}
