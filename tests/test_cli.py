"""The manager process as a user runs it: `python -m server ...` on loopback."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port, get_json, start, stop


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_zero_config_start_and_graceful_stop(tmp_path, sig):
    port = free_port()
    process = start("--data-dir", str(tmp_path), "--port", str(port))
    try:
        health = get_json(port, "/api/health")
    finally:
        code, output = stop(process, sig)
    assert health["status"] == "ok" and health["counts"]["models"] == 0
    assert health["data_dir"] == str(tmp_path.resolve())
    assert code == 0, output
    assert f"library data in {tmp_path.resolve()}" in output
    assert "No model folders configured" in output and "--models-dir" in output
    assert (tmp_path / "library.db").is_file()


def test_demo_library_is_seeded_once(tmp_path):
    port = free_port()
    for _ in range(2):
        process = start("serve", "--data-dir", str(tmp_path), "--port", str(port), "--demo")
        try:
            health = get_json(port, "/api/health")
            types = get_json(port, "/api/models/get_types")["types"]
            tags = {t["name"] for t in get_json(port, "/api/tags")["tags"]}
            models = get_json(port, "/api/models")["models"]
        finally:
            stop(process)
        assert health["counts"]["models"] == 8
        assert {"checkpoints", "loras", "vae"} <= set(types)
        assert "nsfw" in tags
        assert all(m["images_count"] == 2 and m["cover"] for m in models)
    from server import safetensors
    for model in models:
        header = safetensors.read_header(Path(model["path"]))
        assert header["__metadata__"]["hikaze.demo"] == "true"


def test_bad_config_stops_the_start_with_one_clear_message(tmp_path):
    (tmp_path / "config.yaml").write_text("port: high\n")
    result = subprocess.run([sys.executable, "-m", "server", "--data-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "key 'port'" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "server", "--data-dir", str(tmp_path),
                                 "--port", str(port)], cwd=ROOT, capture_output=True, text=True,
                                timeout=30)
    assert result.returncode == 3
    assert "is in use" in result.stderr and "Traceback" not in result.stderr


def test_models_dir_flag_gives_the_types(tmp_path, make_tree):
    tree = make_tree()
    port = free_port()
    process = start("--data-dir", str(tmp_path / "data"), "--port", str(port),
                    "--models-dir", str(tree.root))
    try:
        types = get_json(port, "/api/models/get_types")["types"]
    finally:
        stop(process)
    assert types == ["checkpoints", "loras", "vae"]
