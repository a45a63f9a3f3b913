"""Our panels in ComfyUI's real frontend, in headless Chromium (Debian's, driven by Python
playwright; never `playwright install`): the sidebar lists the library, models dragged onto the
canvas become our nodes, the node pickers write the payload, the queued prompt executes, in the
classic canvas and in Vue-nodes mode, with no console error from our code.

Run by driver.py with a Python that has playwright (the CI venv, not ComfyUI's):
`python frontend_check.py <ComfyUI url> <checkpoint sha256> <lora sha256> <lora sha256> [<screenshot dir>]`.
"""
from __future__ import annotations

import json
import sys
import tempfile
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]
# Errors from our code: raised in our modules (served from our folder) or logged as "[Hikaze]".
# The frontend's own offline lookups (api.comfy.org/comfy-nodes/Hikaze...) are not ours.
OURS = ("/extensions/hikaze-model-manager/", "[hikaze]")
TIMEOUT_MS = 30_000


def step(message: str) -> None:
    print(f"[frontend] {message}", flush=True)


def put_setting(base: str, name: str, value) -> None:
    request = urllib.request.Request(f"{base}/api/settings/{name}", data=json.dumps(value).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


class FrontendCheck:
    def __init__(self, page: Page, base: str, ckpt: str, loras: list[str], shots: Path):
        self.page, self.base, self.ckpt, self.loras, self.shots = page, base, ckpt, loras, shots
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text} @ {m.location}"))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e} {e.stack or ''}"))
        page.set_default_timeout(TIMEOUT_MS)

    # --- helpers ------------------------------------------------------------------------
    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def wait(self, script: str, arg=None):
        return self.page.wait_for_function(script, arg=arg, timeout=TIMEOUT_MS)

    def open(self) -> None:
        self.page.goto(self.base + "/")
        self.wait("() => window.app?.graph && window.app.extensions?.some(e => e.name === 'Hikaze.ModelManager')"
                  " && document.querySelector('style[data-hikaze]')")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"))

    def payload(self, node_id: int) -> str:
        return self.js("id => app.graph.getNodeById(id).widgets.find(w => w.name === 'hikaze_payload').value", node_id)

    def overlay(self, node_id: int, vue: bool):
        """Our overlay element of a node, as the user sees it in this canvas mode."""
        if vue:
            return self.page.locator(f"[data-node-id='{node_id}'] .hk-node-overlay")
        return self.page.locator(".hk-node-overlay").filter(has=self.page.locator("*")).nth(
            self.js("id => [...document.querySelectorAll('.hk-node-overlay')].indexOf("
                    "app.graph.getNodeById(id).hikazeOverlay.element)", node_id))

    def modified(self) -> bool:
        return self.js("() => app.extensionManager.workflow.activeWorkflow?.isModified === true")

    def our_errors(self) -> list[str]:
        return [e for e in self.errors if any(mark in e.lower() for mark in OURS)]

    # --- the checks ---------------------------------------------------------------------
    def sidebar(self) -> None:
        self.js("() => app.extensionManager.command.execute('Workspace.ToggleSidebarTab.hikaze-library')")
        cards = self.page.locator(".hk-sidebar .hk-card[data-sha256]")
        self.wait("n => document.querySelectorAll('.hk-sidebar .hk-card[data-sha256]').length >= n", 1 + len(self.loras))
        shown = set(cards.evaluate_all("cs => cs.map(c => c.dataset.sha256)"))
        assert {self.ckpt, *self.loras} <= shown, shown
        assert not self.page.locator(".hk-sidebar .hk-show-nsfw").is_checked(), "NSFW must be hidden by default"
        self.shot("sidebar")
        step(f"sidebar tab lists the library ({len(shown)} models), NSFW hidden by default")

    def open_manager(self) -> None:
        """Alt+Shift+M (our command) opens the manager page in a new tab at the discovered URL."""
        self.page.locator("#graph-canvas").click(position={"x": 900, "y": 900})  # empty canvas, below the banners
        with self.page.context.expect_page() as opened:
            self.page.keyboard.press("Alt+Shift+M")
        manager = opened.value
        manager.wait_for_load_state()
        port = int(self.base.rsplit(":", 1)[1])
        assert manager.url.startswith("http://127.0.0.1:") and int(manager.url.split(":")[2].split("/")[0]) > port, manager.url
        manager.close()
        step(f"Alt+Shift+M opened the manager page at {manager.url}")

    def card(self, sha: str):
        return self.page.locator(f".hk-sidebar .hk-card[data-sha256='{sha}']")

    def drag_to_canvas(self, sha: str, x: int, y: int) -> None:
        """A real HTML5 drag with the mouse, from the sidebar card to a point on the page."""
        box = self.card(sha).bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        self.page.mouse.down()
        self.page.mouse.move(x, y, steps=8)
        self.page.mouse.up()

    def nodes_of(self, node_type: str) -> list[int]:
        return self.js("t => app.graph._nodes.filter(n => n.type === t).map(n => n.id)", node_type)

    def drag_and_drop(self) -> tuple[int, int]:
        self.js("() => { app.graph.clear(); app.canvas.ds.offset = [0, 0]; app.canvas.ds.scale = 1; app.graph.setDirtyCanvas(true, true); }")
        canvas = self.page.locator("#graph-canvas").bounding_box()
        left = int(canvas["x"] + canvas["width"] * 0.45)
        self.drag_to_canvas(self.ckpt, left, int(canvas["y"] + 160))
        self.wait("() => app.graph._nodes.some(n => n.type === 'HikazeCheckpointLoader')")
        self.drag_to_canvas(self.loras[0], left + 420, int(canvas["y"] + 160))
        self.wait("() => app.graph._nodes.some(n => n.type === 'HikazeLoraPowerLoader')")
        [ckpt_id], [lora_id] = self.nodes_of("HikazeCheckpointLoader"), self.nodes_of("HikazeLoraPowerLoader")
        assert json.loads(self.payload(ckpt_id))["sha256"] == self.ckpt
        assert [e["sha256"] for e in json.loads(self.payload(lora_id))["loras"]] == self.loras[:1]
        step("dragging a checkpoint and a LoRA from the sidebar created both nodes with their payloads")
        self.drop_from_other_tab(self.loras[1], lora_id)
        self.wait("([id, n]) => JSON.parse(app.graph.getNodeById(id).widgets[0].value).loras.length === n", [lora_id, 2])
        entries = json.loads(self.payload(lora_id))["loras"]
        assert [e["sha256"] for e in entries] == self.loras, entries
        self.drop_from_other_tab(self.ckpt, ckpt_id)
        assert self.nodes_of("HikazeCheckpointLoader") == [ckpt_id], "a checkpoint dropped on our node sets it"
        step("a model dropped from another page (our drag type) onto our nodes: LoRA appended, checkpoint set")
        return ckpt_id, lora_id

    def drop_from_other_tab(self, sha: str, node_id: int) -> None:
        """What a drag from the manager page in another tab delivers: our JSON type plus text/plain."""
        self.js("""([sha, id, kind]) => {
            const transfer = new DataTransfer();
            transfer.setData('application/x-hikaze-model', JSON.stringify({sha256: sha, name: 'dropped', type: kind, path: ''}));
            transfer.setData('text/plain', 'dropped');
            const node = app.graph.getNodeById(id);
            const [x, y] = app.canvas.ds.convertOffsetToCanvas([node.pos[0] + 30, node.pos[1] + 40]);
            const rect = app.canvas.canvas.getBoundingClientRect();
            const at = {clientX: rect.left + x, clientY: rect.top + y};
            const target = document.elementFromPoint(at.clientX, at.clientY);
            for (const type of ['dragenter', 'dragover', 'drop']) {
                target.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: transfer, ...at}));
            }
        }""", [sha, node_id, "checkpoints" if sha == self.ckpt else "loras"])

    def pick(self, ckpt_id: int, lora_id: int, vue: bool) -> None:
        self.page.keyboard.press("Escape")
        self.js("() => app.canvas.draw(true, true)")
        self.overlay(ckpt_id, vue).locator(".hk-pick").click()
        dialog = self.page.locator("dialog.hk-picker[open]")
        dialog.locator(f".hk-card[data-sha256='{self.ckpt}']").click()
        self.wait("() => !document.querySelector('dialog.hk-picker')")
        assert json.loads(self.payload(ckpt_id))["sha256"] == self.ckpt
        self.overlay(lora_id, vue).locator(".hk-pick").click()
        marked = dialog.locator(".hk-card.is-marked")
        self.wait("n => document.querySelectorAll('dialog.hk-picker .hk-card.is-marked').length === n", 2)
        assert sorted(marked.evaluate_all("cs => cs.map(c => c.dataset.sha256)")) == sorted(self.loras), \
            "what the node holds is pre-selected"
        dialog.locator(f".hk-card[data-sha256='{self.loras[1]}']").click()  # deselect
        dialog.locator(".hk-apply").click()
        self.wait("() => !document.querySelector('dialog.hk-picker')")
        assert [e["sha256"] for e in json.loads(self.payload(lora_id))["loras"]] == self.loras[:1]
        self.overlay(lora_id, vue).locator(".hk-pick").click()
        dialog.locator(f".hk-card[data-sha256='{self.loras[1]}']").click()
        dialog.locator(".hk-apply").click()
        self.wait("() => !document.querySelector('dialog.hk-picker')")
        entries = json.loads(self.payload(lora_id))["loras"]
        assert [e["sha256"] for e in entries] == self.loras, entries
        self.wait("id => app.graph.getNodeById(id).hikazeOverlay.element.querySelectorAll('.hk-lora-row').length === 2", lora_id)
        step("checkpoint picked through its node; the LoRA picker pre-selected both held LoRAs, removed one, added it back")

    def edit_list(self, lora_id: int, vue: bool) -> None:
        rows = self.overlay(lora_id, vue).locator(".hk-lora-row")
        rows.nth(0).locator(".hk-strength-m").fill("0.5")
        rows.nth(0).locator(".hk-strength-m").press("Enter")
        rows.nth(1).locator("input[type=checkbox]").uncheck()
        rows.nth(1).locator("[aria-label='Move up']").click()
        entries = json.loads(self.payload(lora_id))["loras"]
        assert [e["sha256"] for e in entries] == self.loras[::-1], entries
        assert entries[0]["enabled"] is False and entries[1]["strength_model"] == 0.5, entries
        rows.nth(0).locator("input[type=checkbox]").check()
        assert self.modified(), "editing the list must mark the workflow modified"
        step("on the node: strength edited, LoRA disabled, moved up; the workflow is marked modified")

    def malformed(self, lora_id: int, vue: bool) -> None:
        good = self.payload(lora_id)
        self.js("id => { const w = app.graph.getNodeById(id).widgets.find(w => w.name === 'hikaze_payload');"
                " w.value = '{\"loras\": [5]'; }", lora_id)
        error = self.overlay(lora_id, vue).locator(".hk-payload-error")
        error.wait_for()
        assert "not valid JSON" in error.inner_text()
        assert self.payload(lora_id) == '{"loras": [5]', "a malformed payload is never replaced"
        assert self.overlay(lora_id, vue).locator(".hk-pick").is_disabled()
        self.js("([id, text]) => { const w = app.graph.getNodeById(id).widgets.find(w => w.name === 'hikaze_payload');"
                " w.value = text; }", [lora_id, good])
        self.overlay(lora_id, vue).locator(".hk-lora-row").nth(1).wait_for()
        step("a malformed payload is shown as an error and left as it is")

    def build_graph(self, ckpt_id: int, lora_id: int) -> None:
        self.js("""([ckptId, loraId]) => {
            const add = (type, x, y) => { const n = LiteGraph.createNode(type); n.pos = [x, y]; app.graph.add(n); return n; };
            const ckpt = app.graph.getNodeById(ckptId), lora = app.graph.getNodeById(loraId);
            const cond = add('HikazeE2EZeroConditioning', 50, 500);
            const latent = add('EmptyLatentImage', 50, 650);
            latent.widgets.find(w => w.name === 'width').value = 64;
            latent.widgets.find(w => w.name === 'height').value = 64;
            const sampler = add('KSampler', 900, 200);
            sampler.widgets.find(w => w.name === 'steps').value = 2;
            sampler.widgets.find(w => w.name === 'cfg').value = 1;
            const save = add('SaveLatent', 1300, 200);
            ckpt.connect(0, lora, 0); ckpt.connect(1, lora, 1);
            lora.connect(0, sampler, 0); cond.connect(0, sampler, 1); cond.connect(0, sampler, 2);
            latent.connect(0, sampler, 3); sampler.connect(0, save, 0);
            app.graph.setDirtyCanvas(true, true);
        }""", [ckpt_id, lora_id])

    def queue_and_wait(self, action: str) -> None:
        """Run `action` (JS) and wait until ComfyUI reports a new successful execution."""
        self.js("""() => { if (window.__hkRuns) return; window.__hkRuns = {ok: 0, failed: []};
            const {api} = window.comfyAPI.api;
            api.addEventListener('execution_success', () => { window.__hkRuns.ok += 1; });
            api.addEventListener('execution_error', (e) => { window.__hkRuns.failed.push(e.detail); }); }""")
        before = self.js("() => window.__hkRuns.ok")
        self.js(action)
        self.page.wait_for_function("n => window.__hkRuns.ok > n || window.__hkRuns.failed.length", arg=before,
                                    timeout=120_000)
        failed = self.js("() => window.__hkRuns.failed")
        assert not failed, failed

    def queue(self, ckpt_id: int, lora_id: int) -> None:
        self.queue_and_wait("() => app.queuePrompt(0, 1)")
        step("the workflow with our nodes, queued as the Run button does: execution_success")
        saved = self.payload(lora_id)
        self.card(self.loras[1]).click()
        self.page.locator(".hk-model-menu").get_by_role("menuitem", name="Queue with this LoRA").click()
        self.wait("() => window.__hkRuns.ok >= 2 || window.__hkRuns.failed.length")
        assert not self.js("() => window.__hkRuns.failed")
        assert self.payload(lora_id) == saved, "queueing with a model must not change the workflow"
        step("'Queue with this LoRA' from the sidebar executed; the workflow is unchanged")
        before = self.js("() => window.__hkRuns.ok")
        for _ in range(2):  # compare: the same checkpoint twice gives two prompts with one click
            self.card(self.ckpt).click()
            menu = self.page.locator(".hk-model-menu")
            name = "Add to compare" if menu.get_by_role("menuitem", name="Add to compare").count() else "Close"
            menu.get_by_role("menuitem", name=name).click()
        self.card(self.loras[0]).click()
        form = self.page.locator(".hk-model-menu .hk-strengths")
        form.locator("input").fill("0.5, 1")
        form.get_by_role("button").click()
        self.wait("n => window.__hkRuns.ok >= n + 2 || window.__hkRuns.failed.length", before)
        self.page.locator(".hk-compare-run").click()
        self.wait("n => window.__hkRuns.ok >= n + 3 || window.__hkRuns.failed.length", before)
        assert not self.js("() => window.__hkRuns.failed")
        assert self.payload(lora_id) == saved
        self.page.locator(".hk-compare-clear").click()
        step("compare: one prompt per LoRA strength (2) and per chosen checkpoint (1), all executed")

    def survive(self, ckpt_id: int, lora_id: int, vue: bool) -> None:
        saved = self.payload(lora_id)
        self.js("id => { const n = app.graph.getNodeById(id); n.collapse(); n.collapse(); app.canvas.draw(true, true); }", lora_id)
        self.overlay(lora_id, vue).locator(".hk-lora-row").nth(1).wait_for()
        workflow = self.js("() => JSON.stringify(app.graph.serialize())")
        self.js("() => app.extensionManager.command.execute('Comfy.NewBlankWorkflow')")
        self.wait("() => app.graph._nodes.length === 0")
        self.js("w => app.loadGraphData(JSON.parse(w), true, true, 'hikaze-check')", workflow)
        self.wait("id => app.graph.getNodeById(id)?.hikazeOverlay?.element.querySelectorAll('.hk-lora-row').length === 2", lora_id)
        assert self.payload(lora_id) == saved
        self.page.reload()
        self.wait("id => window.app?.graph?.getNodeById(id)?.hikazeOverlay?.element.querySelectorAll('.hk-lora-row').length === 2", lora_id)
        assert self.payload(lora_id) == saved
        self.js("() => app.canvas.draw(true, true)")
        self.overlay(lora_id, vue).locator(".hk-lora-row").nth(1).wait_for()
        step("the list survives collapse/expand, switching to another workflow and back, and a page reload")

    def offline(self, lora_id: int) -> None:
        """The manager unreachable (both its port and ComfyUI's proxy): our panels say so and
        offer Retry, the canvas keeps working; Retry once it answers again brings the list back."""
        blocked = lambda route: route.abort()
        self.page.route(f"http://127.0.0.1:{int(self.base.rsplit(':', 1)[1]) + 1}/**", blocked)
        self.page.route("**/api/hikaze/proxy/**", blocked)
        try:
            for port in range(int(self.base.rsplit(":", 1)[1]) + 2, int(self.base.rsplit(":", 1)[1]) + 21):
                self.page.route(f"http://127.0.0.1:{port}/**", blocked)  # wherever the manager bound
            self.page.reload()
            self.wait("() => window.app?.graph && document.querySelector('style[data-hikaze]')")
            self.js("() => app.extensionManager.command.execute('Workspace.ToggleSidebarTab.hikaze-library')")
            status = self.page.locator(".hk-sidebar hikaze-status[data-kind=error]")
            status.wait_for()
            assert "does not answer" in status.inner_text(), status.inner_text()
            self.wait("id => app.graph.getNodeById(id)?.hikazeOverlay?.element.querySelector('.hk-offline')", lora_id)
            self.js("() => { const n = LiteGraph.createNode('EmptyLatentImage'); app.graph.add(n); }")
            assert self.js("() => app.graph._nodes.some(n => n.type === 'EmptyLatentImage')")
            self.shot("offline")
        finally:
            self.page.unroute_all()
        status.get_by_role("button", name="Retry").click()
        self.wait("() => document.querySelectorAll('.hk-sidebar .hk-card[data-sha256]').length >= 3")
        self.wait("id => !app.graph.getNodeById(id).hikazeOverlay.element.querySelector('.hk-offline')", lora_id)
        step("manager unreachable: the sidebar says so with Retry, nodes say 'offline', the canvas works; Retry recovers")

    def run_mode(self, vue: bool) -> None:
        name = "Vue-nodes" if vue else "classic"
        put_setting(self.base, "Comfy.VueNodes.Enabled", vue)
        self.open()
        assert self.js("() => app.extensionManager.setting.get('Comfy.VueNodes.Enabled')") is vue
        step(f"--- {name} canvas")
        self.sidebar()
        if not vue:
            self.open_manager()
        ckpt_id, lora_id = self.drag_and_drop()
        self.pick(ckpt_id, lora_id, vue)
        self.edit_list(lora_id, vue)
        self.malformed(lora_id, vue)
        self.build_graph(ckpt_id, lora_id)
        self.shot(f"nodes-{name}")
        self.queue(ckpt_id, lora_id)
        self.survive(ckpt_id, lora_id, vue)
        self.shot(f"after-reload-{name}")
        if not vue:
            self.offline(lora_id)
        mine = self.our_errors()
        assert not mine, "console errors from our code:\n" + "\n".join(mine)
        step(f"{name} canvas: no console error from our code ({len(self.errors)} others, e.g. offline checks)")


def main() -> int:
    base, ckpt, *loras = sys.argv[1:5]
    shots = Path(sys.argv[5]) if len(sys.argv) > 5 else Path(tempfile.mkdtemp(prefix="hikaze-frontend-"))
    shots.mkdir(parents=True, exist_ok=True)
    put_setting(base, "Comfy.TutorialCompleted", True)
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                       args=ARGS, viewport={"width": 1600, "height": 1000})
        check = FrontendCheck(context.pages[0] if context.pages else context.new_page(), base, ckpt, loras, shots)
        try:
            for vue in (False, True):
                check.run_mode(vue)
        except Exception:
            check.shot("failure")
            print("\n".join(check.errors[-20:]), file=sys.stderr)
            raise
        finally:
            context.close()
    step(f"all frontend checks passed (screenshots in {shots})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
