"""Hashing: the streamed digest equals hashlib's; a file that changes meanwhile is refused."""
import hashlib
import os

import pytest

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
