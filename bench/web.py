"""Manager page benchmark: the real sidecar over a 10 000-model library, driven by headless Chromium.

Run from the repository root: `python -m bench.web`. It builds the library in a temp folder (as
bench/api.py does), starts `python -m server` on a free loopback port, and with Debian's
/usr/bin/chromium through Python playwright measures the time from navigation to the first
painted grid (cold, then warm loads) and the most card elements in the DOM while scrolling the
grid to its end. It prints one table (figure, value, limit, ratio) and always exits 0:
benchmarks report, they do not fail CI.
"""
from __future__ import annotations

import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.api import SEED, build_library
from bench.sidecar import free_port, start_sidecar, stop_sidecar, wait_healthy

log = logging.getLogger("bench.web")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 900}
LOADS = 5  # the first is cold (new browser context, empty cache), the others warm
LIMITS = {"first_grid_ms": 1000.0, "max_cards": 500}

# Resolves, at the frame after the first real card appears, with the milliseconds since the
# navigation started (performance.now() counts from the document's time origin).
FIRST_GRID = """() => new Promise((resolve) => {
    const look = () => {
        if (document.querySelector('hikaze-model-grid .hk-card:not(.is-placeholder)')) {
            requestAnimationFrame(() => resolve(performance.now()));
        } else {
            requestAnimationFrame(look);
        }
    };
    look();
})"""

SCROLL_TO_END = """async () => {
    const grid = document.querySelector('hikaze-model-grid');
    const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
    let most = grid.querySelectorAll('.hk-card').length, steps = 0;
    while (grid.scrollTop + grid.clientHeight < grid.scrollHeight - 1) {
        grid.scrollTop += grid.clientHeight * 2;
        await frame(); await frame();
        most = Math.max(most, grid.querySelectorAll('.hk-card').length);
        steps += 1;
    }
    return {most, steps};
}"""


def measure(base: str) -> dict:
    from playwright.sync_api import sync_playwright

    results: dict = {"loads_ms": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        for _ in range(LOADS):
            page.goto(f"{base}/", wait_until="commit")
            results["loads_ms"].append(page.evaluate(FIRST_GRID))
        page.wait_for_function("document.querySelector('.hk-count').textContent !== ''")
        shown = page.text_content(".hk-count")
        scrolled = page.evaluate(SCROLL_TO_END)
        last = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                             "'hikaze-model-grid .hk-card')].map((c) => Number(c.dataset.index)))")
        results.update(max_cards=scrolled["most"], steps=scrolled["steps"], last_index=last,
                       shown=shown)
        browser.close()
    return results


def run(work: Path) -> dict:
    data_dir, models_dir = work / "data", work / "models"
    data_dir.mkdir()
    started = time.monotonic()
    build_library(data_dir / "library.db", models_dir, random.Random(SEED))
    log.info("Library built in %.1f s", time.monotonic() - started)
    port = free_port()
    with open(work / "sidecar.log", "wb") as sidecar_log:
        process = start_sidecar(data_dir, port, sidecar_log, "--models-dir", str(models_dir))
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, process)
            return measure(base)
        finally:
            stop_sidecar(process)


def report(results: dict) -> str:
    loads = results["loads_ms"]
    cold, warm = loads[0], loads[1:]
    rows = [
        ("first painted grid, cold load", f"{cold:.0f} ms", f"{LIMITS['first_grid_ms']:.0f} ms",
         f"{cold / LIMITS['first_grid_ms']:.2f}"),
        (f"first painted grid, warm (median of {len(warm)})", f"{statistics.median(warm):.0f} ms",
         f"{LIMITS['first_grid_ms']:.0f} ms", f"{statistics.median(warm) / LIMITS['first_grid_ms']:.2f}"),
        ("  slowest warm load", f"{max(warm):.0f} ms", "", ""),
        (f"most cards in the DOM, scrolled to the end ({results['steps']} steps)",
         str(results["max_cards"]), str(LIMITS["max_cards"]),
         f"{results['max_cards'] / LIMITS['max_cards']:.2f}"),
        ("  last card reached (index)", str(results["last_index"]), "", ""),
    ]
    widths = [max(len(row[i]) for row in rows + [("figure", "value", "limit", "ratio")])
              for i in range(4)]
    lines = [("figure", "value", "limit", "ratio"), tuple("-" * w for w in widths), *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in lines)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not CHROMIUM.exists():
        log.error("%s is missing (apt-get install -y chromium); nothing measured", CHROMIUM)
        return 0
    with tempfile.TemporaryDirectory(prefix="hikaze-bench-web-") as work:
        results = run(Path(work))
    print(f"\nHikaze manager page benchmark: a 10 000-model library, {results['shown']} shown, "
          f"viewport {VIEWPORT['width']}×{VIEWPORT['height']}; ratio = value ÷ limit (≤ 1 is "
          "within it)\n")
    print(report(results))
    print("\nLoad average when done: {:.2f} {:.2f} {:.2f} on {} CPUs".format(
        *os.getloadavg(), os.cpu_count()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
