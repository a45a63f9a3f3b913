"""The manager page in headless Chromium against a real sidecar: grid, NSFW, filters, edit, upload, keys."""
from __future__ import annotations

import io
import json
import urllib.request

from PIL import Image

CARD = "hikaze-model-grid .hk-card:not(.is-placeholder)"


def api(base: str, path: str) -> dict:
    with urllib.request.urlopen(f"{base}{path}", timeout=5) as response:
        return json.load(response)


def card_names(page) -> list[str]:
    return page.eval_on_selector_all(f"{CARD} .hk-card-name", "els => els.map(e => e.textContent)")


def wait_for_count(page, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('hikaze-model-grid .hk-card:not(.is-placeholder)').length === n",
        arg=count)


def open_page(make_page, base: str, **size):
    page = make_page(**size)
    page.goto(f"{base}/")
    page.wait_for_selector(CARD)
    return page


def test_grid_shows_the_demo_models_with_nsfw_hidden_then_blurred(make_page, demo_sidecar, shots):
    safe = api(demo_sidecar, "/api/models?exclude_tags=nsfw")
    everything = api(demo_sidecar, "/api/models")
    assert safe["total"] < everything["total"]
    page = open_page(make_page, demo_sidecar)
    wait_for_count(page, safe["total"])
    assert sorted(card_names(page)) == sorted(m["name"] for m in safe["models"])
    assert "Night Lounge" not in card_names(page)
    assert page.text_content(".hk-count") == f"{safe['total']} models"
    page.wait_for_function("[...document.querySelectorAll('.hk-card img')].every(i => i.complete && i.naturalWidth > 0)")
    assert "quality=medium" in page.get_attribute(f"{CARD} img", "src")
    page.screenshot(path=str(shots / "grid.png"))

    page.check(".hk-show-nsfw")
    wait_for_count(page, everything["total"])
    night = page.locator(CARD, has_text="Night Lounge")
    assert night.get_attribute("data-nsfw") == "blur"
    assert "blur" in night.locator("img").evaluate("img => getComputedStyle(img).filter")
    page.screenshot(path=str(shots / "grid-nsfw-blurred.png"))


def test_search_and_the_tag_filter_narrow_the_grid(make_page, demo_sidecar):
    page = open_page(make_page, demo_sidecar)
    total = api(demo_sidecar, "/api/models?exclude_tags=nsfw")["total"]
    wait_for_count(page, total)
    page.fill(".hk-search", "film")
    wait_for_count(page, 1)
    assert card_names(page) == ["Film Grain"]
    page.fill(".hk-search", "")
    wait_for_count(page, total)

    style = {m["name"] for m in api(demo_sidecar, "/api/models?tags=style&exclude_tags=nsfw")["models"]}
    page.click('hikaze-tag-filter [data-tag="style"]')  # include
    wait_for_count(page, len(style))
    assert set(card_names(page)) == style
    page.click('hikaze-tag-filter [data-tag="style"]')  # exclude
    wait_for_count(page, total - len(style))
    assert not set(card_names(page)) & style
    assert page.get_attribute('hikaze-tag-filter [data-tag="style"]', "data-state") == "exclude"

    page.click('hikaze-kind-tabs [data-kind="checkpoints"]')
    page.click('hikaze-tag-filter [data-tag="style"]')  # back to neutral
    expected = api(demo_sidecar, "/api/models?type=checkpoints&exclude_tags=nsfw")["total"]
    wait_for_count(page, expected)


def test_edit_and_save_sends_only_the_changes_and_persists(make_page, demo_sidecar, shots):
    page = open_page(make_page, demo_sidecar, allow=("status of 400",))  # the refused save at the end
    page.locator(CARD, has_text="Pixel Mix").click()
    page.wait_for_selector("hikaze-model-details input[name=name]")
    page.wait_for_function("document.querySelector('hikaze-model-details input[name=name]').value === 'Pixel Mix'")
    sha = page.locator(CARD, has_text="Pixel Mix").get_attribute("data-sha256")
    page.fill("hikaze-model-details input[name=name]", "Pixel Mix Deluxe")
    page.fill("hikaze-model-details textarea[name=description]", "Sprites, now deluxe.")
    tag_input = page.locator('[data-field="tags"] input')
    tag_input.fill("retro")
    tag_input.press("Enter")
    words = page.locator('[data-field="trigger_words"] input')
    words.fill("pxl, 8bit,")
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.method == "PATCH" else None)
    page.click("hikaze-model-details [data-save]")
    page.wait_for_function("document.querySelector('.hk-save-status').textContent === 'Saved'")

    assert len(bodies) == 1
    assert set(bodies[0]) == {"name", "tags", "meta_json"}, "only what changed is sent"
    assert bodies[0]["name"] == "Pixel Mix Deluxe"
    assert sorted(bodies[0]["tags"]) == ["pixel art", "retro", "sd15"]
    assert bodies[0]["meta_json"] == {"description": "Sprites, now deluxe.", "trigger_words": ["pxl", "8bit"]}
    saved = api(demo_sidecar, f"/api/models/{sha}")
    assert saved["name"] == "Pixel Mix Deluxe"
    assert "retro" in {t["name"] for t in saved["tags"]}
    assert saved["meta_json"]["description"] == "Sprites, now deluxe."
    assert saved["meta_json"]["trigger_words"] == ["pxl", "8bit"]
    assert saved["meta_json"]["prompts"]["negative"] == "lowres, blurry", "untouched fields stay"
    card = page.locator(CARD, has_text="Pixel Mix Deluxe")
    assert card.count() == 1, "the grid shows the new name"
    card.locator("img.is-loaded").wait_for()  # and still its cover
    page.screenshot(path=str(shots / "details-saved.png"))

    page.fill("hikaze-model-details input[name=base_model]", "x" * 300)
    page.click("hikaze-model-details [data-save]")
    error = page.locator("hikaze-model-details form .hk-inline-error")
    error.wait_for(state="visible")
    assert error.text_content().startswith("Not saved:")


def test_an_upload_shows_in_the_gallery(make_page, demo_sidecar, shots, tmp_path):
    picture = tmp_path / "new-preview.png"
    Image.new("RGB", (300, 450), (30, 200, 120)).save(picture)
    page = open_page(make_page, demo_sidecar)
    page.locator(CARD, has_text="Aurora XL v2").click()
    page.wait_for_selector(".hk-gallery-counter:text('1 / 2')")
    sha = page.locator(CARD, has_text="Aurora XL v2").get_attribute("data-sha256")
    page.set_input_files("hikaze-gallery input[type=file]", str(picture))
    page.wait_for_selector(".hk-gallery-counter:text('3 / 3')")
    page.wait_for_function("document.querySelector('.hk-gallery-main').naturalWidth > 0")
    assert api(demo_sidecar, f"/api/models/{sha}")["images_count"] == 3
    assert page.locator(".hk-gallery-thumb").count() == 3
    page.screenshot(path=str(shots / "gallery-uploaded.png"))

    page.click("hikaze-gallery [data-action=cover]")
    page.wait_for_selector(".hk-gallery-counter:text('1 / 3')")
    cover = api(demo_sidecar, f"/api/models/{sha}")["images"][0]
    assert (cover["width"], cover["height"]) == (300, 450)
    page.click("hikaze-gallery [data-action=delete]")
    page.wait_for_selector(".hk-gallery-counter:text('1 / 2')")
    assert api(demo_sidecar, f"/api/models/{sha}")["images_count"] == 2


def test_keyboard_arrows_enter_slash_and_escape(make_page, demo_sidecar):
    page = open_page(make_page, demo_sidecar)
    page.focus("hikaze-model-grid")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    selected = page.locator(".hk-card.is-selected")
    assert selected.get_attribute("data-index") == "1"
    name = selected.locator(".hk-card-name").text_content()
    page.keyboard.press("Enter")
    page.wait_for_function("n => document.querySelector('hikaze-model-details input[name=name]').value === n", arg=name)
    page.keyboard.press("Escape")
    assert page.locator("hikaze-model-details").is_hidden()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.classList.contains('hk-search')")


def test_an_unreachable_manager_says_so_and_retry_recovers(make_page, demo_sidecar):
    page = make_page(allow=("net::ERR_FAILED",))  # Chromium logs the refused requests
    page.route("**/api/**", lambda route: route.abort())
    page.goto(f"{demo_sidecar}/")
    status = page.locator("hikaze-status[data-kind=error]")
    status.wait_for()
    assert "did not answer" in status.text_content()
    page.unroute("**/api/**")
    status.locator("button", has_text="Retry").click()
    page.wait_for_selector(CARD)
    assert page.locator("hikaze-status").is_hidden()


def test_phone_width_is_usable(make_page, demo_sidecar, shots):
    page = open_page(make_page, demo_sidecar, width=390, height=844)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(shots / "phone-grid.png"))
    page.locator(CARD).first.click()
    page.wait_for_selector("hikaze-model-details input[name=name]")
    box = page.locator("hikaze-model-details").bounding_box()
    assert box["width"] == 390, "details cover the screen on a phone"
    page.screenshot(path=str(shots / "phone-details.png"))


def test_ten_thousand_models_scroll_to_the_end_with_a_bounded_dom(make_page, big_sidecar, shots):
    total = api(big_sidecar, "/api/models?exclude_tags=nsfw&max_nsfw_level=0&limit=1")["total"]
    assert total > 7000
    page = open_page(make_page, big_sidecar, width=1400, height=900)
    page.wait_for_function(f"document.querySelector('.hk-count').textContent.startsWith('{total:,}')")
    most = page.evaluate("""async () => {
        const grid = document.querySelector('hikaze-model-grid');
        const frame = () => new Promise(r => requestAnimationFrame(() => r()));
        let most = 0;
        while (grid.scrollTop + grid.clientHeight < grid.scrollHeight - 1) {
            grid.scrollTop += grid.clientHeight * 3;
            await frame(); await frame();
            most = Math.max(most, grid.querySelectorAll('.hk-card').length);
        }
        return most;
    }""")
    assert 0 < most < 500
    last = page.locator(f'.hk-card[data-index="{total - 1}"]:not(.is-placeholder)')
    last.wait_for()
    assert page.locator(".hk-card").count() < 500
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "grid-10k-end.png"))


def test_a_dragged_card_carries_its_model_for_comfyui(make_page, demo_sidecar):
    page = open_page(make_page, demo_sidecar)
    name = card_names(page)[0]
    dragged = page.evaluate("""() => {
        const card = document.querySelector('hikaze-model-grid .hk-card:not(.is-placeholder)');
        const transfer = new DataTransfer();
        card.dispatchEvent(new DragEvent('dragstart', {dataTransfer: transfer, bubbles: true}));
        return {draggable: card.draggable, text: transfer.getData('text/plain'),
                model: JSON.parse(transfer.getData('application/x-hikaze-model') || 'null')};
    }""")
    assert dragged["draggable"] and dragged["text"] == name
    model = dragged["model"]
    assert model["name"] == name and len(model["sha256"]) == 64 and model["type"]
    assert api(demo_sidecar, f"/api/models/{model['sha256']}")["name"] == name
