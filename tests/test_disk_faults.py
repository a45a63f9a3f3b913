"""Disk faults against a real manager process: its data folder's disk full (a small tmpfs; and,
in process, ENOSPC at the picture write boundary), and a model folder that vanishes during a
scan (an unplugged drive) and comes back."""
from __future__ import annotations

import errno
import os
import subprocess
import threading
from pathlib import Path

import pytest
from aiohttp import FormData

from server import image_files
from server.app_keys import CONFIG, STORE
from tests.factories import expect_error, png_bytes, write_safetensors
from tests.fault_data import SETTLED, big_png, gallery
from tests.processes import Manager, library_problems, open_library, record_figures, upload_form


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MiB tmpfs mounted at tmp_path/data, or a skip where mounting is not allowed."""
    mount_point = tmp_path / "data"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of the disk under `folder` with one file; returns it."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as out:
        for size in (1 << 20, 64 << 10, 4 << 10, 512, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


def rows(data_dir: Path) -> dict:
    with open_library(data_dir) as db:
        return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("models", "images", "tags", "model_tags", "files")}


def test_a_full_data_disk_is_a_clear_507_and_nothing_is_corrupt(small_disk):
    data = small_disk
    manager = Manager.launch(data, None, "--demo")
    try:
        sha = gallery(data)[0][0]
        body, headers = upload_form({"sha256": sha}, big_png(1600))
        before = rows(data)
        filler = fill(data)
        answers = []
        for _ in range(3):  # a picture, a note, a tag: each written or refused with a 507
            answers.append(manager.call("POST", "/api/images/upload", data=body, headers=headers))
            answers.append(manager.call("PATCH", f"/api/models/{sha}",
                                        {"meta_json": {"notes": "written on a full disk " * 200}}))
            answers.append(manager.call("POST", "/api/tags_add", {"newtags": ["full-" + "x" * 900]}))
        for status, answer in answers:
            assert status in (200, 507), answer
            if status == 507:
                assert answer["code"] in ("DISK_FULL", "STORAGE_FULL") and "full" in answer["error"]
        assert answers[0][0] == 507  # a picture needs new blocks: refused, not half stored
        assert library_problems(data) == []
        after = rows(data)
        assert set(before["images"]) == set(after["images"]) and before["tags"] <= after["tags"]
        assert {m[0] for m in before["models"]} == {m[0] for m in after["models"]}
        assert "Traceback" not in manager.log() and "database is locked" not in manager.log()

        filler.unlink()  # space is back: the same requests work at once
        record = manager.json("POST", "/api/images/upload", data=body, headers=headers)
        patched = manager.json("PATCH", f"/api/models/{sha}", {"meta_json": {"notes": "room"}})
    finally:
        manager.stop()
    assert record["image"]["seq"] == 2 and patched["meta_json"]["notes"] == "room"
    assert library_problems(data) == []
    record_figures("disk_full", writes_tried=len(answers),
                   refused_507=sum(status == 507 for status, _ in answers),
                   written=sum(status == 200 for status, _ in answers))


def library_rows(data_dir: Path) -> dict:
    """What a vanished folder must never take away: models, their tags and images."""
    with open_library(data_dir) as db:
        return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("models", "model_tags", "tags", "images")}


def file_states(data_dir: Path) -> dict[str, tuple]:
    with open_library(data_dir) as db:
        return {row[0]: row[1:] for row in db.execute("SELECT path, sha256, state FROM files")}


@pytest.mark.parametrize("how", ["folder renamed away", "drive unmounted (folder left empty)"])
def test_a_model_folder_that_vanishes_during_a_scan_is_missing_then_back_unhashed(tmp_path, how):
    models = tmp_path / "models"
    drive = models / "loras"
    files = {}
    for i in range(300):
        path = drive / f"set{i // 50}" / f"l{i:03d}.safetensors"
        files[str(path)] = write_safetensors(path, 5000 + i, {"modelspec.tags": "on-the-drive"})
        os.utime(path, (SETTLED, SETTLED))
    keep = models / "checkpoints" / "base.safetensors"
    write_safetensors(keep, 1)
    os.utime(keep, (SETTLED, SETTLED))
    data, away = tmp_path / "data", tmp_path / "unplugged"
    away.mkdir()
    manager = Manager.launch(data, models)
    try:
        manager.scan_and_import()
        sha = files[str(drive / "set0" / "l000.safetensors")]
        body, headers = upload_form({"sha256": sha}, big_png(200))
        manager.json("POST", "/api/images/upload", data=body, headers=headers)
        before, hash_jobs = library_rows(data), len(manager.json("GET", "/api/jobs?kind=hash")["jobs"])
        assert len(before["models"]) == 301 and len(before["images"]) == 1

        during: list = []
        scanning = threading.Thread(target=lambda: during.append(manager.call("POST", "/api/scan")))
        scanning.start()  # the drive goes while this scan walks it
        if how.startswith("folder"):
            drive.rename(away / "loras")
        else:
            for child in list(drive.iterdir()):
                child.rename(away / child.name)
        scanning.join(60)
        assert during[0][0] == 200 and library_rows(data) == before
        gone = manager.json("POST", "/api/scan")
        states = file_states(data)
        assert all(states[path] == (sha256, "missing") for path, sha256 in files.items())
        assert states[str(keep)][1] == "present" and gone["hash_job"] is None
        assert library_rows(data) == before  # nothing deleted: models, tags, images all kept

        if how.startswith("folder"):
            (away / "loras").rename(drive)
        else:
            for child in list(away.iterdir()):
                child.rename(drive / child.name)
        back = manager.json("POST", "/api/scan")
        jobs_after = len(manager.json("GET", "/api/jobs?kind=hash")["jobs"])
    finally:
        manager.stop()
    assert back["returned"] == len(files) and back["hash_job"] is None and jobs_after == hash_jobs
    assert file_states(data) == {**{p: (s, "present") for p, s in files.items()},
                                 str(keep): file_states(data)[str(keep)]}
    assert library_rows(data) == before and library_problems(data) == []
    record_figures(f"vanished_folder[{how}]", files=len(files), missing=during[0][1]["missing"] + gone["missing"],
                   returned=back["returned"], rehashed=jobs_after - hash_jobs)


async def test_enospc_at_the_image_write_boundary_is_a_507_and_leaves_nothing(
        client, sha, monkeypatch):
    """Where no small disk can be mounted, the same fault at the one place picture bytes reach
    the disk (image_files.write_atomic's fsync), in process; runs everywhere."""
    def form() -> FormData:
        data = FormData(default_to_multipart=True)
        data.add_field("image", png_bytes(colour=(3, 4, 5)), filename="p.png",
                       content_type="image/png")
        data.add_field("sha256", sha)
        return data

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    images_dir = client.app[CONFIG].images_dir
    files_before = sorted(images_dir.rglob("*"))
    monkeypatch.setattr(image_files.os, "fsync", full)
    await expect_error(await client.post("/api/images/upload", data=form()), 507, "DISK_FULL")
    assert sorted(images_dir.rglob("*")) == files_before or all(
        p.is_dir() for p in set(images_dir.rglob("*")) - set(files_before))
    assert await client.app[STORE].run(
        lambda db: db.execute("SELECT count(*) FROM images").fetchone()[0]) == 0
    monkeypatch.undo()
    assert (await client.post("/api/images/upload", data=form())).status == 200
