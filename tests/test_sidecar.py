"""The extension inside a (fake) ComfyUI: the host contract (routes at import with /api twins,
frozen router, V1 before V3), the snapshot the manager reads, and a real manager process
started, health-checked, killed, restarted and stopped by nodes/sidecar.py."""
import asyncio
import hashlib
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from nodes import routes
from nodes.host import Host
from nodes.payload import ModelRef
from nodes.resolve import Library, resolve
from nodes.sidecar import Sidecar, healthy, write_snapshot
from server import config as config_module, library, store
from server.__main__ import bind
from tests.comfy_fake import FakeComfy

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake(tmp_path):
    return FakeComfy(tmp_path / "comfy", port=free_port())


@pytest.fixture
def load_extension(fake, monkeypatch):
    """Import a custom-node package the way ComfyUI does; forget its modules afterwards."""
    registry = fake.loader.Registry()
    fake.install(monkeypatch)

    async def load(path: Path = ROOT):
        t0 = time.perf_counter()
        assert await fake.loader.load_custom_node(str(path), registry), registry.failed
        registry.import_s = time.perf_counter() - t0
        return registry

    yield load
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in registry.module_names):
            sidecar = getattr(sys.modules[name], "SIDECAR", None)
            if sidecar:
                sidecar.stop()
            del sys.modules[name]


async def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# --- host contract (the same facts the real-ComfyUI tier checks) ------------------------

async def test_routes_added_at_import_are_served_with_an_api_twin_and_the_router_then_freezes(fake):
    server = fake.prompt_server

    @server.routes.get("/probe/ping")
    async def ping(request):
        from aiohttp import web
        return web.json_response({"ok": True})

    server.add_routes()
    async with TestClient(TestServer(server.app)) as client:
        for path in ("/probe/ping", "/api/probe/ping"):
            assert (await client.get(path)).status == 200
        with pytest.raises(RuntimeError, match="frozen"):
            server.app.router.add_get("/late", ping)


async def test_v1_mappings_win_over_a_v3_entrypoint(fake, tmp_path, load_extension):
    package = tmp_path / "both_apis"
    package.mkdir()
    (package / "__init__.py").write_text(
        "NODE_CLASS_MAPPINGS = {}\n"
        "def comfy_entrypoint():\n    raise AssertionError('V3 must not be called')\n")
    registry = await load_extension(package)
    assert registry.nodes == {}


# --- the snapshot and the manager's config -------------------------------------------

def test_snapshot_carries_folders_address_and_user_dir_into_the_config(fake, tmp_path):
    nas = tmp_path / "nas" / "loras"
    nas.mkdir(parents=True)
    fake.folder_paths.add_model_folder_path("loras", str(nas))  # as extra_model_paths.yaml does
    fake.folder_paths.folder_names_and_paths["loras"][1].add(".lora")
    snapshot = tmp_path / "snap.json"
    write_snapshot(Host(fake.import_module), snapshot)
    port = fake.cli_args.args.port
    assert json.loads(snapshot.read_text())["comfyui"] == {
        "listen": "127.0.0.1", "port": port, "scheme": "http",
        "origins": [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]}
    config = config_module.load(snapshot=snapshot)
    assert config.data_dir == (tmp_path / "comfy" / "user" / "hikaze").resolve()
    assert (config.host, config.port) == ("127.0.0.1", port + 1)
    assert nas.resolve() in config.kinds["loras"].roots and ".lora" in config.kinds["loras"].extensions
    assert "custom_nodes" not in config.kinds and "configs" not in config.kinds
    assert f"http://localhost:{port}" in config.cors_origins


def test_a_config_file_port_and_flags_override_the_snapshot(fake, tmp_path):
    snapshot = tmp_path / "snap.json"
    write_snapshot(Host(fake.import_module), snapshot)
    data = tmp_path / "comfy" / "user" / "hikaze"
    data.mkdir(parents=True)
    (data / "config.yaml").write_text("port: 9999\n")
    assert config_module.load(snapshot=snapshot).port == 9999
    assert config_module.load(snapshot=snapshot, port=7777, data_dir=tmp_path / "d").port == 7777
    with pytest.raises(config_module.ConfigError, match="--snapshot"):
        config_module.load(snapshot=tmp_path / "missing.json")


def test_bind_takes_the_next_free_port():
    taken = bind("127.0.0.1", free_port(), 1)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            bind("127.0.0.1", port, 1)
        nxt = bind("127.0.0.1", port, 5)
        assert nxt.getsockname()[1] > port
        nxt.close()
    finally:
        taken.close()


# --- the extension in the fake ComfyUI, with a real manager process ----------------------

async def test_extension_registers_nodes_routes_and_runs_the_manager(fake, load_extension):
    registry = await load_extension()
    # A guard against heavy imports or work at import time, loose enough for a busy machine;
    # the figure itself is what ComfyUI logs in the real-ComfyUI tier.
    assert registry.import_s < 0.5, f"import took {registry.import_s * 1000:.0f} ms"
    assert {"HikazeCheckpointLoader", "HikazeLoraPowerLoader"} <= set(registry.nodes)
    assert registry.web_dirs == {ROOT.name: str(ROOT / "web")}
    fake.prompt_server.add_routes(registry.web_dirs)
    sidecar = next(getattr(sys.modules[m], "SIDECAR") for m in registry.module_names)
    async with TestClient(TestServer(fake.prompt_server.app)) as client:
        first = await (await client.get("/api/hikaze/sniffer_port")).json()
        assert first["state"] in ("starting", "running")
        await wait_for(lambda: sidecar.status.state == "running")
        found = await (await client.get("/hikaze/sniffer_port")).json()
        assert found["port"] > fake.cli_args.args.port and found["state"] == "running"
        assert healthy("127.0.0.1", found["port"])
        proxied = await client.get("/api/hikaze/proxy/api/health")
        assert proxied.status == 200 and (await proxied.json())["data_dir"].endswith("user/hikaze")
        assert (await client.post("/api/hikaze/proxy/api/scan")).status == 200
        async with client.ws_connect("/api/hikaze/proxy/api/ws") as socket:  # the events socket
            await socket.send_json({"type": "subscribe", "channel": "scan"})
            assert await socket.receive_json(timeout=10) == {"type": "subscribed", "channel": "scan"}

        pid = sidecar.status.pid
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: sidecar.status.state == "restarting")
        assert (await (await client.get("/api/hikaze/sniffer_port")).json())["port"] == 0
        assert (await client.get("/api/hikaze/proxy/api/health")).status == 503
        await wait_for(lambda: sidecar.status.state == "running" and sidecar.status.pid != pid, 10)
        assert healthy("127.0.0.1", sidecar.status.port)
    process = sidecar._process
    sidecar.stop()
    assert process.poll() is not None and sidecar.status.as_json() == {"port": 0, "state": "stopped"}


async def test_a_manager_that_cannot_start_reports_failed_with_the_reason(fake, tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import sys; print('boom: no such module'); sys.exit(2)\n")
    sidecar = Sidecar(Host(fake.import_module), tmp_path, python=sys.executable)
    sidecar._command = lambda *a: [sys.executable, str(script)]
    sidecar.start()
    try:
        await wait_for(lambda: sidecar.status.error, 10)
        status = sidecar.status.as_json()
        assert status["state"] == "failed" and status["port"] == 0
        assert "code 2" in status["error"] and "boom" in status["error"]
    finally:
        sidecar.stop()


def test_the_manager_exits_when_its_parent_is_gone(tmp_path):
    import subprocess
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    port_file = tmp_path / "port.json"
    child = subprocess.Popen([sys.executable, "-m", "server", "--data-dir", str(tmp_path / "d"),
                              "--port", str(free_port()), "--port-tries", "5",
                              "--parent-pid", str(parent.pid), "--port-file", str(port_file)],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
        assert json.loads(port_file.read_text())["pid"] == child.pid
        parent.kill()
        parent.wait()
        assert child.wait(10) == 0
    finally:
        parent.kill()
        child.kill()


# --- faults: the manager killed or hung -----------------------------------------------------

@dataclass
class NoFolders:
    def find(self, kind: str, relative: str) -> None:
        return None


@pytest.mark.parametrize("sig, state", [(signal.SIGKILL, "restarting"),
                                        (signal.SIGSTOP, "unresponsive")])
async def test_a_killed_or_hung_manager_is_reported_and_replaced_while_comfyui_keeps_working(
        fake, sig, state, caplog):
    caplog.set_level(logging.WARNING, "nodes.sidecar")
    host = Host(fake.import_module)
    lora = fake.model("loras", "ink.safetensors", b"ink weights")
    sha = hashlib.sha256(b"ink weights").hexdigest()
    db = store.connect(host.data_dir() / "library.db")
    library.add_model(db, library.NewModel(sha256=sha, name="Ink", type="loras", size_bytes=11,
                                           created_at=library.now_ms(), paths=(str(lora),)))
    db.conn.close()
    # Checked quickly here; the defaults give a busy manager far more time.
    sidecar = Sidecar(host, ROOT, health_every_s=0.2, health_timeout_s=0.5, health_failures=3)
    routes.register(fake.prompt_server.routes, sidecar)
    fake.prompt_server.add_routes()
    sidecar.start()
    try:
        async with TestClient(TestServer(fake.prompt_server.app)) as client:
            await wait_for(lambda: sidecar.status.state == "running", 30)
            pid = sidecar.status.pid
            os.kill(pid, sig)
            # A request already on its way to a hung manager ends when the manager is replaced.
            on_its_way = asyncio.create_task(client.get("/api/hikaze/proxy/api/health"))
            await wait_for(lambda: sidecar.status.state == state, 15)
            found = await asyncio.wait_for(client.get("/hikaze/sniffer_port"), 5)
            assert (await found.json())["port"] == 0
            assert (await found.json())["state"] in (state, "restarting", "running")
            proxied = await asyncio.wait_for(client.get("/api/hikaze/proxy/api/models"), 5)
            assert proxied.status in (503, 200)  # 200: the replacement was already up
            resolved = resolve(ModelRef(sha256=sha), "loras", Library(host.data_dir()),
                               NoFolders())
            assert (resolved.path, resolved.via) == (str(lora), "library")
            await wait_for(lambda: sidecar.status.state == "running"
                           and sidecar.status.pid != pid, 30)
            answer = await asyncio.wait_for(on_its_way, 10)
            assert answer.status in (502, 503, 200), await answer.text()
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # the old manager is gone, not left stopped
            assert healthy("127.0.0.1", sidecar.status.port)
            assert ("is hung" in caplog.text) == (sig == signal.SIGSTOP)
    finally:
        sidecar.stop()
