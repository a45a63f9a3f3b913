"""The safetensors container we write is well formed and its header reads back."""
import json
import struct

import pytest

from server import safetensors


def test_round_trip(tmp_path):
    path = tmp_path / "tiny.safetensors"
    data = struct.pack("<6f", *range(6))
    safetensors.write(path, {"w": ("F32", [2, 3], data)}, {"ss_output_name": "tiny"})
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert length % 8 == 0
    header = json.loads(raw[8:8 + length])
    assert header["w"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    assert raw[8 + length:] == data
    assert safetensors.read_header(path) == header


def test_wrong_data_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="expected 24"):
        safetensors.write(tmp_path / "x.safetensors", {"w": ("F32", [2, 3], b"\0" * 8)})


@pytest.mark.parametrize("raw", [b"", b"\x01\x02", struct.pack("<Q", 10) + b"{not json}",
                                 struct.pack("<Q", 2**40) + b"{}", struct.pack("<Q", 50) + b"{}"])
def test_malformed_files_are_named(tmp_path, raw):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    with pytest.raises(safetensors.NotSafetensors):
        safetensors.read_header(path)
