"""A page of another origin, in headless Chromium, tries to read and change the library through
a real sidecar: fetch (CORS and no-cors), a multipart upload, a form post and the events
WebSocket. It reads nothing, changes nothing, and the browser saw the sidecar's refusals."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sqlite3
import threading
import urllib.request
from pathlib import Path

from aiohttp import web

from tests.browser.conftest import _free_port
from tests.factories import png_bytes

ATTACK = """<!doctype html><meta charset="utf-8"><title>not the manager</title>
<iframe name="sink"></iframe>
<form id="csrf" method="post" target="sink" action="{{sidecar}}/api/scan"></form>
<script type="module">
const SIDECAR = "{{sidecar}}", SHA = "{{sha}}";
const png = Uint8Array.from(atob("{{png}}"), c => c.charCodeAt(0));
const upload = () => {
  const form = new FormData();
  form.append("sha256", SHA);
  form.append("image", new Blob([png], {type: "image/png"}), "a.png");
  return form;
};
const v1Upload = () => {
  const form = new FormData();
  form.append("file", new Blob([png], {type: "image/png"}), "a.png");
  return form;
};
const results = {};
async function attempt(name, url, init = {}) {
  try {
    const response = await fetch(SIDECAR + url, init);
    results[name] = {type: response.type, status: response.status, body: await response.text()};
  } catch (error) {
    results[name] = {error: String(error)};
  }
}
await attempt("list", "/api/models?type=loras");
await attempt("model", `/api/models/${SHA}`);
await attempt("v1 list", "/api/v1/models");
await attempt("v1 key", "/api/v1/auth/key");
await attempt("patch", `/api/models/${SHA}`, {method: "PATCH",
  headers: {"Content-Type": "application/json"}, body: JSON.stringify({name: "pwned"})});
await attempt("upload", "/api/images/upload", {method: "POST", body: upload()});
await attempt("v1 upload", `/api/v1/models/${SHA}/images`, {method: "POST", body: v1Upload()});
await attempt("delete", `/api/models/${SHA}`, {method: "DELETE"});
// "Simple" requests: sent without a preflight; the page may not read the answer, but the
// request itself reaches the server, so only the server's Origin check stops it.
await attempt("no-cors upload", "/api/images/upload", {method: "POST", mode: "no-cors",
  body: upload()});
await attempt("no-cors tags", "/api/tags_add", {method: "POST", mode: "no-cors",
  headers: {"Content-Type": "text/plain"}, body: JSON.stringify({newtags: ["pwned"]})});
await attempt("no-cors scan", "/api/scan", {method: "POST", mode: "no-cors"});
await attempt("no-cors regenerate", "/api/v1/auth/regenerate", {method: "POST", mode: "no-cors"});
results.socket = await new Promise(resolve => {
  const socket = new WebSocket(SIDECAR.replace("http", "ws") + "/api/ws");
  socket.onopen = () => {
    socket.send(JSON.stringify({type: "subscribe", channel: "library"}));
    socket.onmessage = event => resolve("read: " + event.data);
  };
  socket.onerror = () => resolve("refused");
  setTimeout(() => resolve("timeout"), 5000);
});
await new Promise(resolve => {
  document.querySelector("iframe").onload = resolve;
  document.getElementById("csrf").submit();
  setTimeout(resolve, 3000);
});
window.results = results;
</script>"""


def get(base: str, path: str) -> object:
    with urllib.request.urlopen(f"{base}{path}", timeout=5) as response:
        return json.load(response)


def scans(base: str) -> list[int]:
    return [job["id"] for job in get(base, "/api/jobs?kind=scan")["jobs"]]


def library(data_dir: Path) -> tuple:
    """Every table of the library and the stored files, read beside the running sidecar."""
    uri = f"{(data_dir / 'library.db').as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                             "ORDER BY name")]
        dump = {t: conn.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables}
    files = sorted(str(p.relative_to(data_dir)) for p in (data_dir / "images").rglob("*"))
    return dump, files, (data_dir / "api-key.json").read_text()


@contextlib.contextmanager
def attacker_site(html: str):
    """A tiny aiohttp app on another port (another origin) serving the attack page."""
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    port = _free_port()
    loop = asyncio.new_event_loop()  # its own thread: playwright's sync API holds this one
    runner = web.AppRunner(app)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_page_of_another_origin_reads_nothing_and_changes_nothing(make_page, demo_sidecar,
                                                                    tmp_path):
    sha = get(demo_sidecar, "/api/models?type=loras")["models"][0]["sha256"]
    before, scans_before = library(tmp_path), scans(demo_sidecar)
    html = (ATTACK.replace("{{sidecar}}", demo_sidecar).replace("{{sha}}", sha)
            .replace("{{png}}", base64.b64encode(png_bytes()).decode()))
    with attacker_site(html) as attacker:
        page = make_page(allow=("CORS", "Failed to load resource", "WebSocket", "net::ERR"))
        answers, blocked = [], []
        page.on("response", lambda r: answers.append((r.request.method, r.url, r.status))
                if r.url.startswith(demo_sidecar) else None)
        page.on("requestfailed", lambda r: blocked.append((r.method, r.url)))
        page.goto(attacker)
        page.wait_for_function("window.results !== undefined", timeout=20_000)
        results = page.evaluate("window.results")

    for name in ("list", "model", "v1 list", "v1 key", "patch", "upload", "v1 upload", "delete"):
        assert "error" in results[name], (name, results[name])  # nothing readable
    for name in ("no-cors upload", "no-cors tags", "no-cors scan", "no-cors regenerate"):
        assert results[name] == {"type": "opaque", "status": 0, "body": ""}, name
    assert results["socket"] == "refused"
    assert sha not in json.dumps(results)

    # The browser held back every answer without CORS headers from the page; the simple
    # requests it did send, the sidecar itself refused.
    assert {("GET", f"{demo_sidecar}/api/models/{sha}"),
            ("POST", f"{demo_sidecar}/api/images/upload")} <= set(blocked)
    statuses = {(method, url.removeprefix(demo_sidecar)): status for method, url, status in answers}
    for method, path in [("POST", "/api/images/upload"), ("POST", "/api/tags_add"),
                         ("POST", "/api/scan"), ("POST", "/api/v1/auth/regenerate")]:
        assert statuses[(method, path)] == 403, (method, path, statuses)
    assert library(tmp_path) == before
    assert scans(demo_sidecar) == scans_before  # neither fetch nor the form post started one
