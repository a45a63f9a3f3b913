"""Run the manager (`python -m server`) beside ComfyUI: write the host snapshot, spawn it,
wait for its health check, restart it with backoff when it dies or stops answering its health
check (hung), stop it when ComfyUI exits.

All of it happens on one daemon thread, so ComfyUI's start never waits for the manager, and
ComfyUI keeps working (nodes read the library read-only) while the manager is down.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

from .host import Host

log = logging.getLogger(__name__)
PORT_TRIES = 20
STARTUP_TIMEOUT_S = 60.0
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0
POLL_S = 0.1
LOG_LIMIT_BYTES = 5 * 1024 * 1024  # the manager's log is started afresh beyond this
# A running manager is asked for its health this often; after this many unanswered checks in a
# row it counts as hung and is replaced. Generous: a busy manager on a slow disk still answers.
HEALTH_EVERY_S = 2.0
HEALTH_TIMEOUT_S = 5.0
HEALTH_FAILURES = 3


@dataclass(frozen=True)
class Status:
    """What the discovery route reports: the port only once the manager answers."""

    state: str = "starting"  # starting | running | unresponsive | restarting | failed | stopped
    port: int = 0
    error: str = ""
    pid: int = 0

    def as_json(self) -> dict:
        body: dict = {"port": self.port if self.state == "running" else 0, "state": self.state}
        if self.error:
            body["error"] = self.error
        return body


@dataclass
class Sidecar:
    """One supervised manager process for this ComfyUI."""

    host: Host
    extension_dir: Path
    python: str = sys.executable
    port_tries: int = PORT_TRIES
    health_every_s: float = HEALTH_EVERY_S
    health_timeout_s: float = HEALTH_TIMEOUT_S
    health_failures: int = HEALTH_FAILURES
    status: Status = field(default_factory=Status)
    _stop: threading.Event = field(default_factory=threading.Event)
    _process: subprocess.Popen | None = None
    _thread: threading.Thread | None = None

    @property
    def data_dir(self) -> Path:
        return self.host.data_dir()

    @property
    def connect_host(self) -> str:
        """Where to reach the manager from this machine (a wildcard bind answers on loopback)."""
        address = self.host.listen().address
        return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address, address)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="hikaze-sidecar", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop supervising and end the manager (SIGTERM, then kill after `timeout`)."""
        self._stop.set()
        process = self._process
        if process and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._set(state="stopped", port=0)

    def _set(self, **changes) -> None:
        self.status = replace(self.status, **changes)  # one assignment: readers see old or new

    def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                reached_running = self._run_once()
            # The supervisor must survive anything one attempt throws, or ComfyUI would lose
            # the manager for good; the error is logged and reported on the discovery route.
            except Exception as exc:  # noqa: BLE001
                log.exception("Hikaze manager supervisor: unexpected error")
                self._set(state="failed", port=0, error=f"{type(exc).__name__}: {exc}")
                reached_running = False
            if self._stop.is_set():
                break
            failures = 0 if reached_running else failures + 1
            delay = min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** failures)
            if reached_running:
                self._set(state="restarting", port=0)
            log.warning("Hikaze manager stopped (%s); restarting in %.1f s",
                        self.status.error or "it exited", delay)
            self._stop.wait(delay)

    def _run_once(self) -> bool:
        """Run the manager until it exits; True when it answered its health check on the way."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        snapshot, port_file, log_file = self._files()
        write_snapshot(self.host, snapshot)
        port_file.unlink(missing_ok=True)
        big = log_file.is_file() and log_file.stat().st_size > LOG_LIMIT_BYTES
        with open(log_file, "wb" if big else "ab") as output:
            self._process = process = subprocess.Popen(
                self._command(snapshot, port_file), cwd=self.extension_dir, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT)
        self._set(pid=process.pid)
        port = self._wait_until_healthy(process, port_file)
        if port:
            self._set(state="running", port=port, error="")
            log.info("Hikaze manager running on port %d (pid %d)", port, process.pid)
        hung = bool(port) and self._watch(process, port)
        while process.poll() is None and not self._stop.is_set():
            self._stop.wait(POLL_S * 5)
        if not self._stop.is_set() and not hung:
            self._set(port=0, error=f"the manager exited with code {process.poll()}"
                      + ("" if port else f" before answering; see {log_file}: {_tail(log_file)}"))
        return bool(port)

    def _watch(self, process: subprocess.Popen, port: int) -> bool:
        """Health-check the running manager until it exits; kill it once it has missed
        `health_failures` checks in a row (stopped or deadlocked: it would never exit itself).
        While it misses them it is `unresponsive` with port 0, so nobody waits on it. True when
        it was killed for that."""
        missed, due = 0, time.monotonic() + self.health_every_s
        while process.poll() is None and not self._stop.wait(POLL_S * 5):
            if time.monotonic() < due:
                continue
            answered = healthy(self.connect_host, port, self.health_timeout_s)
            due = time.monotonic() + self.health_every_s
            if answered:
                if missed:
                    self._set(state="running", port=port, error="")
                missed = 0
                continue
            missed += 1
            if process.poll() is not None or self._stop.is_set():
                return False
            error = f"no answer to {missed} health check(s) in a row"
            self._set(state="unresponsive", port=0, error=error)
            if missed >= self.health_failures:
                log.warning("Hikaze manager (pid %d) is hung: %s; replacing it", process.pid, error)
                self._set(error=f"the manager stopped answering ({error}); it was restarted")
                process.kill()  # SIGKILL ends a stopped process too
                process.wait()
                return True
        return False

    def _files(self) -> tuple[Path, Path, Path]:
        pid = os.getpid()
        return (self.data_dir / f"comfyui-host-{pid}.json", self.data_dir / f"sidecar-{pid}.port.json",
                self.data_dir / "sidecar.log")

    def _command(self, snapshot: Path, port_file: Path) -> list[str]:
        return [self.python, "-m", "server", "--snapshot", str(snapshot), "--parent-pid",
                str(os.getpid()), "--port-file", str(port_file), "--port-tries", str(self.port_tries)]

    def _wait_until_healthy(self, process: subprocess.Popen, port_file: Path) -> int:
        """The port once /api/health answers; 0 when the process exits or times out first."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while process.poll() is None and not self._stop.is_set():
            port = _read_port(port_file)
            if port and healthy(self.connect_host, port):
                return port
            if time.monotonic() > deadline:
                self._set(state="failed", error=f"no answer within {STARTUP_TIMEOUT_S:.0f} s")
                process.kill()
                break
            self._stop.wait(POLL_S)
        if not self._stop.is_set():
            self._set(state="failed")
        return 0


def write_snapshot(host: Host, path: Path) -> None:
    """What the manager needs to know about this ComfyUI (read by server/config.py)."""
    listen = host.listen()
    snapshot = {
        "version": 1,
        "comfyui": {"listen": listen.address, "port": listen.port, "scheme": listen.scheme,
                    "origins": listen.origins},
        "user_dir": str(host.user_dir()),
        "data_dir": str(host.data_dir()),
        "kinds": host.kinds(),
    }
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(snapshot, indent=2), encoding="utf-8")
    os.replace(partial, path)


def healthy(address: str, port: int, timeout: float = 1.0) -> bool:
    host = f"[{address}]" if ":" in address else address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/health", timeout=timeout) as answer:
            # read_only: up, serving a damaged library without changing it (docs/data-safety.md)
            return answer.status == 200 and json.load(answer).get("status") in ("ok", "read_only")
    except (OSError, ValueError):  # URLError and timeouts are OSErrors; ValueError: bad JSON
        return False


def _read_port(path: Path) -> int:
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def start_in_comfyui(host: Host, extension_dir: Path) -> Sidecar:
    """Add our routes to ComfyUI's server and start the supervisor (called at import time)."""
    from . import routes  # aiohttp: only needed, and only imported, inside ComfyUI

    sidecar = Sidecar(host, extension_dir)
    routes.register(host.routes(), sidecar)
    sidecar.start()
    return sidecar
