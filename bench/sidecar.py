"""A real sidecar process for the benchmarks: a free loopback port, start, wait until healthy,
stop (SIGTERM, then SIGKILL if it hangs)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HEALTH_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sidecar(data_dir: Path, port: int, log_file, *flags: str) -> subprocess.Popen:
    """`python -m server` on 127.0.0.1:`port` with its library in `data_dir`, plus `flags`
    (`--models-dir DIR`, `--demo`, ...); its output goes to `log_file`."""
    command = [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port),
               "--data-dir", str(data_dir), *flags]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT)


def stop_sidecar(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_healthy(base: str, process: subprocess.Popen) -> None:
    """Poll /api/health until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet (URLError), or still seeding the demo (timeout)
            time.sleep(0.05)
    raise RuntimeError(f"the sidecar was not healthy within {HEALTH_TIMEOUT_S:.0f} s "
                       f"(exit code {process.poll()})")
