"""Read and write the safetensors container: an 8-byte header length, a JSON header, the data.

Only the header is ever read (metadata and tensor names); weights are never loaded here.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

MAX_HEADER = 100 * 1024 * 1024
DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U8": 1, "BOOL": 1}


class NotSafetensors(ValueError):
    """The file is not a well-formed safetensors file."""


def write(path: Path, tensors: dict[str, tuple[str, list[int], bytes]],
          metadata: dict[str, str] | None = None) -> None:
    """Write tensors given as name → (dtype, shape, raw little-endian bytes)."""
    header: dict = {"__metadata__": dict(metadata or {})} if metadata else {}
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        expected = DTYPE_SIZES[dtype]
        for dim in shape:
            expected *= dim
        if len(data) != expected:
            raise ValueError(f"{name}: {len(data)} bytes for {dtype}{shape}, expected {expected}")
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for _, _, data in tensors.values():
            out.write(data)


def read_header(path: Path) -> dict:
    """The parsed JSON header (with `__metadata__` if present); NotSafetensors if malformed."""
    with open(path, "rb") as source:
        prefix = source.read(8)
        if len(prefix) != 8:
            raise NotSafetensors(f"{path}: too short for a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER:
            raise NotSafetensors(f"{path}: header length {length} is implausible")
        raw = source.read(length)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotSafetensors(f"{path}: header is not JSON") from exc
    if len(raw) != length or not isinstance(header, dict):
        raise NotSafetensors(f"{path}: truncated or malformed header")
    return header
