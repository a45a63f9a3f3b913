"""Crashes: the manager killed (SIGKILL) in the middle of an import, a hash job, an image upload and
a legacy migration; after a restart the library is whole and the interrupted work can finish."""
from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from tests.factories import png_bytes, write_safetensors
from tests.fault_data import big_png, gallery, settle, sparse_models
from tests.processes import (Manager, library_problems, open_library, record_figures, upload_form,
                             wait_until)
from tests.test_legacy import V1_SCHEMA

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and signals are POSIX")
IMPORT_FILES = 1000
TAG = "crashproof"



def tiny_models(root: Path, count: int) -> dict[str, str]:
    """`count` distinct tiny safetensors files in root/loras with a tag in their header;
    path → sha256."""
    files = {}
    for i in range(count):
        path = root / "loras" / f"batch{i // 100}" / f"m{i:04d}.safetensors"
        files[str(path)] = write_safetensors(path, i, {"modelspec.tags": TAG})
        settle(path)
    return files


async def kill_on_event(manager: Manager, channel: str, begin, when,
                        timeout: float = 120.0) -> dict:
    """Subscribe to `channel` on the events socket, call `begin()`, and SIGKILL the manager at
    the first event whose data `when` accepts."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{manager.base}/api/ws") as socket:
            await socket.send_json({"type": "subscribe", "channel": channel})
            assert (await socket.receive_json(timeout=10))["type"] == "subscribed"
            begin()
            deadline = time.monotonic() + timeout
            async for message in socket:
                event = message.json()
                assert not event.get("type", "").endswith("completed"), \
                    f"the work finished before the kill: {event}"
                if event.get("channel") == channel and when(event.get("data") or {}):
                    manager.kill()
                    return event
                assert time.monotonic() < deadline, f"no {channel} event to kill on in {timeout} s"
    raise AssertionError(f"the events socket closed before the kill:\n{manager.log()}")


def in_background(fn, *args) -> threading.Thread:
    """Run a blocking request that the kill will cut short; its connection error is expected."""
    def run():
        try:
            fn(*args)
        except (OSError, http.client.HTTPException):
            pass
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def scan_and_hash(manager: Manager) -> dict:
    report = manager.json("POST", "/api/scan")
    if report["hash_job"]:
        manager.wait_job(report["hash_job"])
    return report


def pending_ids(manager: Manager) -> list[int]:
    return [item["id"] for item in
            manager.json("GET", "/api/migration/pending_models?limit=100000")["models"]]


def import_state(data_dir: Path, files: dict[str, str]) -> tuple[int, int, list[str]]:
    """(imported, pending, problems) of the test's model files: each must be either fully
    imported (model, tag, present file row with its sha256) or still pending, never both."""
    with open_library(data_dir) as db:
        models = {row[0] for row in db.execute("SELECT sha256 FROM models")}
        tagged = {row[0] for row in db.execute(
            "SELECT sha256 FROM model_tags JOIN tags ON tags.id = tag_id WHERE name = ?", [TAG])}
        rows = {row[0]: row[1:] for row in db.execute("SELECT path, sha256, state FROM files")}
        pending = {row[0] for row in db.execute("SELECT path FROM pending_import")}
    imported, problems = 0, []
    for path, sha in files.items():
        if sha in models:
            imported += 1
            if path in pending or sha not in tagged or rows.get(path) != (sha, "present"):
                problems.append(f"{path}: half imported (pending {path in pending}, "
                                f"tagged {sha in tagged}, file row {rows.get(path)})")
        elif path not in pending:
            problems.append(f"{path}: neither imported nor pending")
    return imported, len(pending), problems


async def test_kill_during_a_1000_file_import_leaves_each_item_imported_or_pending(tmp_path):
    files = tiny_models(tmp_path / "models", IMPORT_FILES)
    data = tmp_path / "data"
    manager = Manager.launch(data, tmp_path / "models")
    try:
        await asyncio.to_thread(scan_and_hash, manager)
        ids = await asyncio.to_thread(pending_ids, manager)
        assert len(ids) == IMPORT_FILES
        event = await kill_on_event(
            manager, "import",
            lambda: in_background(manager.call, "POST", "/api/migration/import_models",
                                  {"id": ids}),
            lambda data: data.get("phase") == "importing" and 0 < data["done"] < IMPORT_FILES)
    finally:
        manager.stop()
    assert library_problems(data) == []
    imported, waiting, problems = import_state(data, files)
    assert problems == []
    assert 0 < imported < IMPORT_FILES and imported + waiting == IMPORT_FILES, (imported, event)

    manager = Manager.launch(data, tmp_path / "models")
    try:
        rest = await asyncio.to_thread(pending_ids, manager)
        report = await asyncio.to_thread(manager.json, "POST", "/api/migration/import_models",
                                         {"id": rest}, 207)
    finally:
        manager.stop()
    assert len(report["success"]) == len(rest) == waiting and not report["failed"]
    assert import_state(data, files) == (IMPORT_FILES, 0, [])
    assert library_problems(data) == []
    record_figures("import_kill", items=IMPORT_FILES, imported_before_kill=imported,
                   pending_after_kill=waiting)



def file_hashes(data_dir: Path) -> dict[str, str | None]:
    with open_library(data_dir) as db:
        return dict(db.execute("SELECT path, sha256 FROM files"))


def test_kill_during_a_hash_job_keeps_finished_digests_and_the_job_resumes(tmp_path):
    files = sparse_models(tmp_path / "models", 6, 256)
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.yaml").write_text("hash_workers: 1\n")  # one file at a time: a long job
    manager = Manager.launch(data, tmp_path / "models")
    try:
        job_id = manager.json("POST", "/api/scan")["hash_job"]

        def midway():
            job = manager.json("GET", f"/api/jobs/{job_id}")
            assert job["state"] in ("queued", "running"), f"the job ended before the kill: {job}"
            return job if 3 <= job["files_done"] <= len(files) - 2 else None

        job = wait_until(midway, 60, "the hash job to be half done", every=0.01)
        manager.kill()
    finally:
        manager.stop()
    assert library_problems(data) == []
    before = file_hashes(data)
    assert set(before) == set(files) and None in before.values(), before
    kept = {path: sha for path, sha in before.items() if sha}
    assert all(files[path] == sha for path, sha in kept.items())

    manager = Manager.launch(data, tmp_path / "models")  # resumes hashing on its own
    try:
        wait_until(lambda: None not in file_hashes(data).values(), 120, "the resumed hash job")
    finally:
        manager.stop()
    assert file_hashes(data) == files
    assert library_problems(data) == []
    record_figures("hash_kill", files=len(files), bytes=sum(Path(p).stat().st_size for p in files),
                   done_at_kill=job["files_done"], digests_kept=len(kept))




def storing(images_dir: Path, before: set[Path]) -> bool:
    return any(p.is_file() and p not in before for p in images_dir.rglob("*"))


@pytest.mark.parametrize("moment", ["body in flight", "pictures being written"])
def test_kill_during_an_image_upload_leaves_no_half_picture(tmp_path, moment):
    data, picture = tmp_path / "data", big_png()
    manager = Manager.launch(data, None, "--demo")
    try:
        earlier = gallery(data)
        sha = earlier[0][0]
        body, headers = upload_form({"sha256": sha}, picture)
        if moment == "body in flight":
            with socket.create_connection(("127.0.0.1", manager.port)) as raw:
                raw.sendall(f"POST /api/images/upload HTTP/1.1\r\nHost: 127.0.0.1:{manager.port}"
                            f"\r\nContent-Type: {headers['Content-Type']}\r\n"
                            f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 2])
                manager.kill()
        else:
            before = set((data / "images").rglob("*"))
            in_background(lambda: manager.call("POST", "/api/images/upload", data=body,
                                               headers=headers))
            wait_until(lambda: storing(data / "images", before), 60,
                       "the upload to start writing its pictures", every=0.005)
            manager.kill()
    finally:
        manager.stop()
    added = set(gallery(data)) - set(earlier)
    assert set(earlier) <= set(gallery(data)) and added <= {
        (sha, len([row for row in earlier if row[0] == sha]), hashlib.sha256(picture).hexdigest())}

    manager = Manager.launch(data, None, "--demo")
    try:
        assert library_problems(data) == []
        record = manager.json("POST", "/api/images/upload", None, data=body, headers=headers)
        status, webp = manager.call("GET", record["image"]["url"])
    finally:
        manager.stop()
    assert status == 200 and webp[:4] == b"RIFF"
    assert library_problems(data) == []
    assert set(earlier) < set(gallery(data))
    record_figures(f"upload_kill[{moment}]", acknowledged_before_kill=bool(added))


LEGACY_MODELS = 240


def build_v1(root: Path, count: int) -> tuple[Path, Path]:
    """A Hikaze v1 database (as tests/test_legacy.py builds it) of `count` hashed models, each
    with a tag and its own picture; returns (database, images folder)."""
    db_path, images_dir = root / "v1" / "hikaze_mm.sqlite3", root / "v1" / "images"
    images_dir.mkdir(parents=True)
    rows = []
    for i in range(count):
        name = f"model_{i + 1}_1712000000000_p.png"
        (images_dir / name).write_bytes(png_bytes(colour=(i % 256, i // 256, 77)))
        rows.append((i + 1, f"/nowhere/loras/v1_{i}.safetensors", f"v1 model {i}", "lora", 1000,
                     legacy_sha(i), 1712000000000, None,
                     json.dumps({"description": f"model {i}", "images": [f"/media/{name}"]})))
    with sqlite3.connect(db_path) as conn:
        conn.executescript(V1_SCHEMA)
        conn.executemany("INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute(f"INSERT INTO tags(id, name, created_at) VALUES (1, '{TAG}', 0)")
        conn.executemany("INSERT INTO model_tags VALUES (?, 1)", [(i + 1,) for i in range(count)])
    conn.close()
    return db_path, images_dir


def legacy_sha(i: int) -> str:
    return hashlib.sha256(f"v1 model {i}".encode()).hexdigest()


def legacy_state(data_dir: Path, count: int) -> tuple[int, list[str]]:
    """(migrated, problems): each v1 model is absent or whole (tag, one picture, marker)."""
    with open_library(data_dir) as db:
        rows = {row[0]: row[1:] for row in db.execute(
            "SELECT m.sha256, json_extract(m.meta, '$.legacy.images'), "
            "(SELECT count(*) FROM images i WHERE i.sha256 = m.sha256), "
            "(SELECT count(*) FROM model_tags t WHERE t.sha256 = m.sha256) FROM models m")}
    problems = [f"model {i}: {rows[legacy_sha(i)]}" for i in range(count)
                if legacy_sha(i) in rows and rows[legacy_sha(i)][1:] != (1, 1)]
    return sum(legacy_sha(i) in rows for i in range(count)), problems


async def test_kill_during_a_legacy_migration_then_running_it_again_completes_it(tmp_path):
    db_path, images_dir = build_v1(tmp_path, LEGACY_MODELS)
    body = {"legacy_db_path": str(db_path), "legacy_images_dir": str(images_dir)}
    data = tmp_path / "data"
    manager = Manager.launch(data)
    try:
        event = await kill_on_event(
            manager, "import",
            lambda: in_background(manager.call, "POST", "/api/migration/migrate_legacy_db", body),
            lambda data: LEGACY_MODELS // 4 <= data.get("done", 0) < LEGACY_MODELS - 20)
    finally:
        manager.stop()
    migrated, problems = legacy_state(data, LEGACY_MODELS)
    assert problems == [] and 0 < migrated < LEGACY_MODELS, (migrated, event)

    manager = Manager.launch(data)
    try:
        assert library_problems(data) == []
        report = await asyncio.to_thread(manager.json, "POST", "/api/migration/migrate_legacy_db",
                                         body)
    finally:
        manager.stop()
    assert (report["migrated"], report["skipped"], report["errors"]) == (
        LEGACY_MODELS - migrated, migrated, 0)
    assert legacy_state(data, LEGACY_MODELS) == (LEGACY_MODELS, [])
    assert library_problems(data) == []
    record_figures("legacy_kill", models=LEGACY_MODELS, migrated_before_kill=migrated)
