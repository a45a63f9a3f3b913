"""Real manager processes for the CLI and fault tests: start `python -m server` on loopback,
call it, kill it, and check what it left in its data dir."""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "server", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def get_json(port: int, path: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        output, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"the manager did not stop on {sig!r}:\n{output}")
    return process.returncode, output


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               every: float = 0.05) -> object:
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return result


@dataclass
class Manager:
    """One `python -m server` on loopback whose output goes to a log file (a pipe nobody reads
    could fill and stall it)."""

    data_dir: Path
    port: int
    process: subprocess.Popen
    log_path: Path

    @classmethod
    def launch(cls, data_dir: Path, models_dir: Path | None = None, *extra: str,
               port: int | None = None, wait: bool = True) -> Manager:
        data_dir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        args = ["--data-dir", str(data_dir), "--port", str(port)]
        if models_dir is not None:
            args += ["--models-dir", str(models_dir)]
        args += extra
        log_path = data_dir.parent / f"{data_dir.name}-manager.log"  # not on a full disk
        with open(log_path, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "server", *args], cwd=ROOT,
                                       stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT)
        manager = cls(data_dir, port, process, log_path)
        if wait:
            manager.wait_healthy()
        return manager

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 30.0) -> dict:
        def answer():
            assert self.process.poll() is None, f"the manager exited:\n{self.log()}"
            try:
                return self.call("GET", "/api/health", timeout=2)[1]
            except OSError:
                return None
        return wait_until(answer, timeout, "the manager's health check")

    def call(self, method: str, path: str, body: object = None, *, data: bytes | None = None,
             headers: dict | None = None, timeout: float = 60.0) -> tuple[int, object]:
        """(status, parsed JSON body) of one request; HTTP errors are answers, not exceptions."""
        headers = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _parse(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _parse(error.read())

    def json(self, method: str, path: str, body: object = None, status: int = 200, **kw) -> dict:
        code, answer = self.call(method, path, body, **kw)
        assert code == status, f"{method} {path} → {code}: {answer}"
        return answer

    def wait_job(self, job_id: str, timeout: float = 120.0) -> dict:
        def finished():
            job = self.json("GET", f"/api/jobs/{job_id}")
            return job if job["state"] in ("done", "failed", "cancelled") else None
        job = wait_until(finished, timeout, f"job {job_id}", every=0.1)
        assert job["state"] == "done", job
        return job

    def scan_and_import(self) -> None:
        """Scan the model folders, wait for hashing, and import every pending item."""
        self.wait_job(self.json("POST", "/api/scan")["hash_job"])
        ids = [item["id"] for item in
               self.json("GET", "/api/migration/pending_models?limit=1000")["models"]]
        self.json("POST", "/api/migration/import_models", {"id": ids}, status=207)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.process.send_signal(sig)
        self.process.wait(15)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the manager did not stop on SIGTERM:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _parse(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def upload_form(fields: dict[str, str], image: bytes, boundary: str = "hikazeFaultBoundary"
                ) -> tuple[bytes, dict]:
    """A multipart body with text fields and an `image` part, and its Content-Type header."""
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             .encode() for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                 f'filename="p.png"\r\nContent-Type: image/png\r\n\r\n'.encode() + image + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def record_figures(test: str, **figures: object) -> None:
    """Append one test's figures (faults survived, writes verified, ...) as a JSON line to the
    file named by $HIKAZE_FAULT_REPORT, when set: docs/reliability.md quotes the last run."""
    target = os.environ.get("HIKAZE_FAULT_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"test": test, **figures}) + "\n")


# --- what a data dir must look like after any crash -------------------------------------------

def open_library(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{(data_dir / 'library.db').resolve().as_uri()}?mode=ro", uri=True)


def library_problems(data_dir: Path) -> list[str]:
    """Everything wrong with a library at rest: a failed integrity check, broken references,
    duplicated rows, temp files, image records without files and picture files without records."""
    problems: list[str] = []
    with open_library(data_dir) as db:
        check = [row[0] for row in db.execute("PRAGMA integrity_check")]
        if check != ["ok"]:
            problems.append(f"integrity_check: {check}")
        problems += [f"foreign key: {row}" for row in db.execute("PRAGMA foreign_key_check")]
        for table, key in (("images", "sha256, image_sha256"), ("pending_import", "path")):
            problems += [f"duplicated {table} row {row}" for row in db.execute(
                f"SELECT {key}, count(*) FROM {table} GROUP BY {key} HAVING count(*) > 1")]
        problems += [f"images of {sha} not numbered 0..n-1" for sha, in db.execute(
            "SELECT sha256 FROM images GROUP BY sha256 HAVING max(seq) + 1 != count(*)")]
        problems += [f"{path} is both pending and in the library" for path, in db.execute(
            "SELECT p.path FROM pending_import p JOIN files f ON f.path = p.path "
            "JOIN models m ON m.sha256 = f.sha256")]
        contents = {row[0] for row in db.execute("SELECT DISTINCT image_sha256 FROM images")}
        previews = {row[0] for row in db.execute("SELECT image FROM pending_import WHERE image != ''")}
    images_dir, pending_dir = data_dir / "images", data_dir / "pending"
    for folder in (images_dir, pending_dir):
        problems += [f"temp file left: {p}" for p in folder.rglob("*")
                     if p.is_file() and (p.name.startswith(".") or p.suffix in (".tmp", ".partial"))]
    stored = {p.name.split("_")[0].split(".")[0] for p in images_dir.rglob("*") if p.is_file()}
    problems += [f"image files without a record: {c}" for c in sorted(stored - contents)]
    for content in contents:
        for tier in ("high", "medium", "low"):
            if not (images_dir / content[:2] / f"{content}_{tier}.webp").is_file():
                problems.append(f"image record without its {tier} file: {content}")
    if pending_dir.is_dir():
        problems += [f"pending preview without an item: {p.name}" for p in pending_dir.iterdir()
                     if p.is_file() and p.name not in previews]
    return problems
