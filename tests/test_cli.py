"""The manager process as a user runs it: `python -m server ...` on loopback."""
from __future__ import annotations

import json
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


# --- export / import / restore-backup (server/user_data.py, server/backups.py) -----------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_export_to_stdout_then_import_with_a_dry_run_and_for_real(tmp_path):
    from server import library, store
    source = store.connect(tmp_path / "a" / "library.db")
    library.add_model(source, library.NewModel(sha256="e" * 64, name="Exported", type="loras",
                                               size_bytes=1, created_at=1, tags=("kept",)))
    source.conn.close()

    exported = run_cli("export", "--data-dir", str(tmp_path / "a"))
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    assert document["format"] == "hikaze-user-data" and document["models"][0]["tags"] == ["kept"]
    file = tmp_path / "export.json"
    file.write_text(exported.stdout)

    dry = run_cli("import", str(file), "--dry-run", "--data-dir", str(tmp_path / "b"))
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["models_added"] == 1 and not (tmp_path / "b" / "library.db").exists()
    done = run_cli("import", str(file), "--data-dir", str(tmp_path / "b"))
    assert json.loads(done.stdout)["models_added"] == 1
    again = run_cli("export", "--out", str(tmp_path / "b.json"), "--images", str(tmp_path / "b.tar"),
                    "--data-dir", str(tmp_path / "b"))
    assert again.returncode == 0 and again.stdout == ""
    assert json.loads((tmp_path / "b.json").read_text())["models"] == document["models"]
    assert (tmp_path / "b.tar").is_file()


def test_import_refuses_a_newer_export_and_export_a_missing_library(tmp_path):
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"format": "hikaze-user-data", "schema_version": 99,
                                 "exported_at": "", "models": []}))
    refused = run_cli("import", str(newer), "--data-dir", str(tmp_path / "d"))
    assert refused.returncode == 2 and "newer Hikaze" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "d" / "library.db").exists()
    missing = run_cli("export", "--data-dir", str(tmp_path / "none"))
    assert missing.returncode == 2 and "no library" in missing.stderr
    assert not (tmp_path / "none" / "library.db").exists()
