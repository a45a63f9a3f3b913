"""Builders of fault-test data: model files old enough to be scanned at once, big model files
that cost no disk, a big PNG, and what a data dir's gallery holds."""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import time
from pathlib import Path

from PIL import Image

from tests.processes import open_library

SETTLED = time.time() - 3600  # older than the scanner's settle time: no file is deferred


def settle(path: Path) -> None:
    os.utime(path, (SETTLED, SETTLED))


def sparse_models(root: Path, count: int, megabytes: int, prefix: str = "") -> dict[str, str]:
    """Large valid safetensors files that cost no disk (their weights are a hole of zeros);
    path → sha256. Hashing them takes real time, which the kill needs."""
    files = {}
    for i in range(count):
        path = root / "checkpoints" / f"{prefix}big{i:02d}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = megabytes << 20
        header = json.dumps({"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]},
                             "__metadata__": {"copy": f"{prefix}{i}"}}).encode()
        header += b" " * (-len(header) % 8)
        with open(path, "wb") as out:
            out.write(struct.pack("<Q", len(header)) + header)
            out.truncate(8 + len(header) + size)
        digest = hashlib.sha256(struct.pack("<Q", len(header)) + header)
        zeros = bytes(4 << 20)
        for _ in range(size // len(zeros)):
            digest.update(zeros)
        files[str(path)] = digest.hexdigest()
        settle(path)
    return files


def big_png(side: int = 4800) -> bytes:
    """A valid PNG of `side`² pixels that compresses well: seconds of decoding and WebP
    encoding for the manager, a small body for the test."""
    gradient = Image.radial_gradient("L").resize((side, side))
    picture = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_90),
                                  gradient.transpose(Image.Transpose.FLIP_TOP_BOTTOM)))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def gallery(data_dir: Path) -> list[tuple]:
    with open_library(data_dir) as db:
        return db.execute("SELECT sha256, seq, image_sha256 FROM images ORDER BY 1, 2").fetchall()
