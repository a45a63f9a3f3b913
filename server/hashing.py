"""File identity: the streamed sha256 of a whole file, accepted only if the file held still."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 4 * 1024 * 1024  # large reads let hashlib release the GIL and keep syscalls few


class FileChanged(OSError):
    """The file's size or mtime changed while it was being hashed; try again later."""


def sha256_file(path: str | Path) -> str:
    """Lowercase hex sha256 of the file's content, streamed (never read whole into memory)."""
    before = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as source:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while read := source.readinto(buffer):
            digest.update(view[:read])
    after = os.stat(path)
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise FileChanged(f"{path} changed while it was being hashed")
    return digest.hexdigest()
