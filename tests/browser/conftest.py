"""Browser tier: Debian's Chromium driven by Python playwright against a real sidecar process.

Skipped when playwright or /usr/bin/chromium is missing, unless HIKAZE_REQUIRE_BROWSER=1
(as in .ci/run), which turns the skip into a failure.
"""
from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _unavailable(reason: str):
    if os.environ.get("HIKAZE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tier required (HIKAZE_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


# Module scope, not session: playwright's sync API keeps an event loop running in this thread
# until it stops, and the async tests collected after this folder need the thread free.
@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    """Screenshots go here (the path is printed, to look at them)."""
    folder = Path(os.environ.get("HIKAZE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sidecar(data_dir: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """`python -m server` on a free loopback port; returns the process and its base URL."""
    port = _free_port()
    log = open(data_dir / "sidecar.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(data_dir), *extra], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sidecar exited: {(data_dir / 'sidecar.log').read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=1):
                return process, base
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the sidecar did not become healthy in 30 s")


def stop_sidecar(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def demo_sidecar(browser, tmp_path):
    """A fresh --demo library per test (tests edit it), so each test starts from the same state."""
    process, base = start_sidecar(tmp_path, "--demo")
    yield base
    stop_sidecar(process)


@pytest.fixture
def make_page(browser):
    """make_page(width=1280, height=800, allow=()) → a page whose console errors fail the test,
    except those containing one of the `allow` strings (a request the test means to fail)."""
    contexts, errors = [], []

    def make(width: int = 1280, height: int = 800, allow: tuple[str, ...] = ()):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()

        def record(text: str) -> None:
            if not any(expected in text for expected in allow):
                errors.append(text)

        page.on("console", lambda m: record(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: record(f"page error: {e}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"console errors: {errors}"


@pytest.fixture(scope="module")
def big_sidecar(browser, tmp_path_factory):
    """A sidecar over a 10 000-model library written straight into SQLite (as bench/api.py)."""
    from bench.api import build_library

    data_dir = tmp_path_factory.mktemp("big")
    models_dir = data_dir / "models"
    build_library(data_dir / "library.db", models_dir, random.Random(5))
    process, base = start_sidecar(data_dir, "--models-dir", str(models_dir))
    yield base
    stop_sidecar(process)
