"""Disk faults against a real manager process: its data folder's disk full (a small tmpfs), and
a model folder that vanishes during a scan (an unplugged drive) and comes back."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.factories import write_safetensors
from tests.processes import Manager, library_problems, open_library, record_figures, upload_form
from tests.test_faults import big_png, gallery

SETTLED = time.time() - 3600


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
