"""The manager page in headless Chromium: settings that persist, the unsaved-edit question, drag
reorder of the gallery, and the whole page served under a path prefix by the extension's own
proxy (as ComfyUI serves it at /api/hikaze/proxy/)."""
from __future__ import annotations

import asyncio
import json
import threading
import types
import urllib.error
import urllib.request

import pytest
from aiohttp import web

from nodes.routes import forward
from tests.browser.conftest import _free_port

CARD = "hikaze-model-grid .hk-card:not(.is-placeholder)"


def api(base: str, path: str) -> dict:
    with urllib.request.urlopen(f"{base}{path}", timeout=5) as response:
        return json.load(response)


def test_settings_persist_and_the_nsfw_default_applies(make_page, demo_sidecar, shots):
    page = make_page()
    page.goto(f"{demo_sidecar}/#settings")
    form = page.locator("hikaze-settings form")
    form.locator("input[value=hide]").wait_for()
    page.wait_for_function("document.querySelector('hikaze-settings input[value=hide]').checked")
    roots = page.locator(".mm-roots tbody tr")
    assert roots.count() == len([r for rs in api(demo_sidecar, "/api/health")["kinds"].values() for r in rs])
    assert roots.first.get_attribute("data-present") == "true"

    form.locator("input[value=show]").check()
    page.wait_for_function("document.querySelector('.mm-settings-status').textContent === 'Saved'")
    form.locator("input[name=auto_import]").check()
    page.wait_for_function("document.querySelector('.mm-settings-status').textContent === 'Saved'")
    assert api(demo_sidecar, "/api/settings")["nsfw_default"] == "show"
    assert api(demo_sidecar, "/api/settings")["auto_import"] is True
    page.screenshot(path=str(shots / "settings.png"))

    again = make_page()  # a fresh visit: the NSFW models are listed, unblurred
    again.goto(f"{demo_sidecar}/")
    again.locator(CARD, has_text="Night Lounge").wait_for()
    night = again.locator(CARD, has_text="Night Lounge")
    assert night.get_attribute("data-nsfw") == "blur"
    assert night.locator("img").evaluate("img => getComputedStyle(img).filter") == "none"
    again.goto(f"{demo_sidecar}/#settings")
    again.wait_for_function("document.querySelector('hikaze-settings input[name=auto_import]').checked")
    assert again.locator("hikaze-settings input[value=show]").is_checked()


def key_works(base: str, key: str) -> bool:
    request = urllib.request.Request(f"{base}/api/v1/auth/key",
                                     headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)["key"] == key
    except urllib.error.HTTPError as error:
        assert error.code == 401
        return False


def test_the_api_key_can_be_shown_copied_and_regenerated(make_page, demo_sidecar):
    page = make_page()
    page.goto(f"{demo_sidecar}/#settings")
    key_box = page.locator(".mm-key")
    assert "•" in key_box.text_content(), "hidden until asked"
    page.click("hikaze-settings [data-key=show]")
    page.wait_for_function("/^[0-9a-f]{64}$/.test(document.querySelector('.mm-key').textContent)")
    key = key_box.text_content()
    assert key_works(demo_sidecar, key), "the page needs no key; other programs need this one"
    page.click("hikaze-settings [data-key=copy]")
    page.locator(".mm-key-status", has_text="Copied").wait_for()

    status = page.locator(".mm-key-status")
    page.click("hikaze-settings [data-key=regenerate]")
    assert "Click Regenerate again" in status.text_content()
    assert key_works(demo_sidecar, key), "nothing changes before the confirmation"
    page.click("hikaze-settings [data-key=regenerate]")
    page.wait_for_function("k => document.querySelector('.mm-key').textContent !== k && "
                           "/^[0-9a-f]{64}$/.test(document.querySelector('.mm-key').textContent)", arg=key)
    assert "old one no longer works" in status.text_content()
    assert not key_works(demo_sidecar, key)
    assert key_works(demo_sidecar, key_box.text_content())


def test_unsaved_edits_ask_before_switching_closing_or_leaving(make_page, demo_sidecar):
    page = make_page()
    page.goto(f"{demo_sidecar}/")
    page.locator(CARD, has_text="Pixel Mix").click()
    name = page.locator("hikaze-model-details input[name=name]")
    page.wait_for_function("document.querySelector('hikaze-model-details input[name=name]').value === 'Pixel Mix'")
    name.fill("Pixel Mix (edited)")
    question = page.locator("hikaze-model-details .hk-confirm")

    page.locator(CARD, has_text="Film Grain").click()  # another model: asked first
    question.wait_for(state="visible")
    page.click("hikaze-model-details [data-confirm=keep]")
    assert question.is_hidden() and name.input_value() == "Pixel Mix (edited)"

    page.click("hikaze-model-details [data-close]")  # closing: asked too
    question.wait_for(state="visible")
    page.keyboard.press("Escape")  # Esc keeps editing
    assert question.is_hidden() and page.locator("hikaze-model-details").is_visible()

    with page.expect_event("dialog") as asked:
        page.close(run_before_unload=True)  # leaving the page: the browser asks
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()  # stay
    assert name.input_value() == "Pixel Mix (edited)"


def test_discarding_and_saving_from_the_question(make_page, demo_sidecar):
    page = make_page()
    page.goto(f"{demo_sidecar}/")
    page.locator(CARD, has_text="Pixel Mix").click()
    name = page.locator("hikaze-model-details input[name=name]")
    page.wait_for_function("document.querySelector('hikaze-model-details input[name=name]').value === 'Pixel Mix'")
    name.fill("Thrown away")
    page.locator(CARD, has_text="Film Grain").click()
    page.click("hikaze-model-details [data-confirm=discard]")
    page.wait_for_function("document.querySelector('hikaze-model-details input[name=name]').value === 'Film Grain'")
    sha = page.locator(CARD, has_text="Film Grain").get_attribute("data-sha256")
    name.fill("Film Grain Kept")
    page.click("hikaze-model-details [data-close]")
    page.click("hikaze-model-details [data-confirm=save]")
    page.locator("hikaze-model-details").wait_for(state="hidden")
    assert api(demo_sidecar, f"/api/models/{sha}")["name"] == "Film Grain Kept"
    assert all(m["name"] != "Thrown away" for m in api(demo_sidecar, "/api/models?limit=100")["models"])


def test_dragging_a_gallery_thumbnail_reorders_and_persists(make_page, demo_sidecar):
    page = make_page()
    page.goto(f"{demo_sidecar}/")
    page.locator(CARD, has_text="Aurora XL v2").click()
    page.wait_for_selector(".hk-gallery-counter:text('1 / 2')")
    sha = page.locator(CARD, has_text="Aurora XL v2").get_attribute("data-sha256")
    before = [image["image_sha256"] for image in api(demo_sidecar, f"/api/models/{sha}")["images"]]
    page.drag_and_drop(".hk-gallery-thumb[data-seq='1']", ".hk-gallery-thumb[data-seq='0']")
    page.wait_for_selector(".hk-gallery-counter:text('1 / 2')")
    page.wait_for_function("!document.querySelector('hikaze-gallery').classList.contains('is-busy')")
    after = [image["image_sha256"] for image in api(demo_sidecar, f"/api/models/{sha}")["images"]]
    assert after == before[::-1]
    page.reload()
    page.locator(CARD, has_text="Aurora XL v2").click()
    page.wait_for_selector(".hk-gallery-counter:text('1 / 2')")
    cover = page.get_attribute(".hk-gallery-main", "src")
    assert api(demo_sidecar, f"/api/models/{sha}")["images"][0]["url"] in cover


@pytest.fixture
def prefixed(demo_sidecar):
    """The extension's own proxy route (nodes/routes.forward) on another port, as ComfyUI
    mounts it: the manager page at http://127.0.0.1:<port>/api/hikaze/proxy/."""
    port = int(demo_sidecar.rsplit(":", 1)[1])
    sidecar = types.SimpleNamespace(connect_host="127.0.0.1", status=types.SimpleNamespace(
        state="running", port=port, as_json=lambda: {"port": port, "state": "running"}))

    async def proxy(request: web.Request) -> web.StreamResponse:
        return await forward(request, sidecar)

    app = web.Application()
    app.router.add_route("*", "/api/hikaze/proxy/{tail:.*}", proxy)
    # Its own loop on its own thread: playwright's sync API keeps a loop running in this one.
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    proxy_port = _free_port()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", proxy_port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{proxy_port}/api/hikaze/proxy/"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_the_page_works_under_a_path_prefix(prefixed, make_page, demo_sidecar, shots):
    # `prefixed` first: its proxy stops after the pages (and their events socket) have closed
    page = make_page()
    outside = []
    page.on("request", lambda r: outside.append(r.url) if "/api/hikaze/proxy/" not in r.url
            and not r.url.startswith("data:") else None)
    page.goto(prefixed)
    page.wait_for_selector(CARD)
    page.wait_for_function("[...document.querySelectorAll('.hk-card img')].some(i => i.complete && i.naturalWidth > 0)")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgba(0, 0, 0, 0)", "styles loaded"
    page.locator(CARD, has_text="Pixel Mix").click()
    page.fill("hikaze-model-details input[name=name]", "Pixel Mix via proxy")
    page.click("hikaze-model-details [data-save]")
    page.wait_for_function("document.querySelector('.hk-save-status').textContent === 'Saved'")
    page.click("hikaze-model-details [data-close]")

    page.click(".mm-modes [data-mode=pending]")  # the events socket goes through the proxy too
    page.click("hikaze-migration-wizard [data-action=scan]")
    page.locator('hikaze-progress[data-job="scan"]').filter(has_text="Scanned").wait_for()
    assert page.evaluate("location.pathname") == "/api/hikaze/proxy/"
    assert outside == [], f"requests that left the prefix: {outside}"
    assert any(m["name"] == "Pixel Mix via proxy"
               for m in api(demo_sidecar, "/api/models?limit=100")["models"])
    page.screenshot(path=str(shots / "prefix.png"))
