"""Hashing: the streamed digest equals hashlib's; a file that changes meanwhile is refused."""
import hashlib
import os

import pytest
from blake3 import blake3

from server import hashing


def test_digest_matches_hashlib_across_chunk_boundaries(tmp_path):
    path = tmp_path / "model.bin"
    data = os.urandom(hashing.CHUNK * 2 + 12345)
    path.write_bytes(data)
    assert hashing.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    assert hashing.sha256_file(path) == hashlib.sha256(b"").hexdigest()


def test_a_file_that_changes_while_hashed_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "growing.safetensors"
    path.write_bytes(b"x" * 1000)
    real_stat = os.stat
    calls = []

    def stat_then_grow(target, *args, **kwargs):
        calls.append(target)
        if len(calls) == 2:  # after reading: another program appends to the file
            with open(path, "ab") as out:
                out.write(b"more")
        return real_stat(target, *args, **kwargs)

    monkeypatch.setattr(hashing.os, "stat", stat_then_grow)
    with pytest.raises(hashing.FileChanged):
        hashing.sha256_file(path)


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        hashing.sha256_file(tmp_path / "gone.safetensors")


# ---------------------------------------------------------------- digest + quick fingerprint

SPAN = hashing.QUICK_SPAN


@pytest.mark.parametrize("size", [0, 1, SPAN - 1, SPAN, 2 * SPAN, 2 * SPAN + 1,
                                  hashing.CHUNK * 2 + 3 * SPAN + 17])
def test_one_pass_gives_the_sha256_and_the_same_fingerprint_as_reading_the_ends(tmp_path, size):
    path = tmp_path / "model.safetensors"
    data = os.urandom(size)
    path.write_bytes(data)
    digest = hashing.digest_file(path)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert (digest.size, digest.mtime_ns) == (size, path.stat().st_mtime_ns)
    assert digest.quick_fp == hashing.quick_fingerprint(path, size)
    ends = data if size <= 2 * SPAN else data[:SPAN] + data[-SPAN:]
    assert digest.quick_fp == blake3(size.to_bytes(8, "little") + ends).hexdigest()


def test_the_fingerprint_sees_the_ends_and_the_size_but_not_the_middle(tmp_path):
    size = 3 * SPAN
    base = bytearray(os.urandom(size))
    prints = {}
    for name, change in [("same", None), ("middle", SPAN + 5), ("head", 3), ("tail", size - 3)]:
        data = bytearray(base)
        if change is not None:
            data[change] ^= 0xFF
        (tmp_path / name).write_bytes(data)
        prints[name] = hashing.quick_fingerprint(tmp_path / name, size)
    (tmp_path / "longer").write_bytes(base + b"x")
    assert prints["middle"] == prints["same"]
    assert len({prints["same"], prints["head"], prints["tail"],
                hashing.quick_fingerprint(tmp_path / "longer", size + 1)}) == 4


def test_progress_is_reported_per_chunk_and_may_stop_the_read(tmp_path):
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as out:
        out.truncate(hashing.CHUNK * 3)  # sparse: reads as zeros, costs no disk
    reads = []
    hashing.digest_file(path, reads.append)
    assert sum(reads) == hashing.CHUNK * 3 and len(reads) == 3

    class Stop(Exception):
        pass

    def stop(count):
        raise Stop

    with pytest.raises(Stop):
        hashing.digest_file(path, stop)


def test_a_file_that_differs_from_what_the_scan_saw_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"abc")
    stat = path.stat()
    assert hashing.digest_file(path, expect=(3, stat.st_mtime_ns)).size == 3
    with pytest.raises(hashing.FileChanged):
        hashing.digest_file(path, expect=(4, stat.st_mtime_ns))
