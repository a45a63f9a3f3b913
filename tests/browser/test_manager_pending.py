"""The manager page's pending view, migration wizard and legacy import in headless Chromium,
against a real sidecar over a real temporary model tree: scan with progress, review, strategies,
import with a report of failures, and a v1 database dry run then import."""
from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser.conftest import start_sidecar, stop_sidecar
from tests.factories import build_tree
from tests.test_legacy import build_v1

ROWS = "hikaze-migration-wizard .mm-pending-item"


def api(base: str, path: str) -> dict:
    with urllib.request.urlopen(f"{base}{path}", timeout=5) as response:
        return json.load(response)


def settle(root: Path) -> None:
    """Files younger than a few seconds may still be downloading: a scan leaves them alone."""
    stamp = time.time() - 60
    for path in root.rglob("*"):
        os.utime(path, (stamp, stamp), follow_symlinks=False)


@pytest.fixture
def tree_sidecar(browser, tmp_path):
    """A sidecar whose model folders hold build_tree's files (none in the library yet)."""
    tree = build_tree(tmp_path / "models")
    settle(tree.root)
    data = tmp_path / "data"
    data.mkdir()
    process, base = start_sidecar(data, "--models-dir", str(tree.root))
    yield base, tree
    stop_sidecar(process)


def test_scan_review_and_import_with_strategies_and_a_failure_report(make_page, tree_sidecar, shots):
    base, tree = tree_sidecar
    page = make_page()
    page.goto(f"{base}/#pending")
    page.wait_for_selector("hikaze-migration-wizard .mm-review-empty", state="attached")
    assert page.locator(".mm-badge").is_hidden(), "nothing pending yet"

    page.click("hikaze-migration-wizard [data-action=scan]")
    page.wait_for_selector('hikaze-migration-wizard[data-step="review"]')
    assert page.locator(ROWS).count() == len(tree.files)
    hash_bar = page.locator('hikaze-progress[data-job="hash"]')
    assert hash_bar.get_attribute("data-done") == "true"
    assert "Hashing new files" in hash_bar.text_content()
    assert page.text_content(".mm-badge") == str(len(tree.files))
    assert page.locator(f"{ROWS} img").count() == 1, "the sibling preview of ink"
    page.wait_for_function("document.querySelector('.mm-pending-thumb img').naturalWidth > 0")
    page.screenshot(path=str(shots / "wizard-review.png"))

    # select by kind, then none, then all
    page.click("hikaze-migration-wizard [data-select=none]")
    page.click('hikaze-migration-wizard [data-kind="loras"]')
    assert page.text_content("[data-action=import]") == "Import 2 selected"
    page.click('hikaze-migration-wizard [data-kind="vae"]')
    assert page.text_content("[data-action=import]") == "Import 3 selected"
    page.click("hikaze-migration-wizard [data-select=none]")
    assert page.locator("[data-action=import]").is_disabled()
    page.click("hikaze-migration-wizard [data-select=all]")
    assert page.text_content("[data-action=import]") == f"Import {len(tree.files)} selected"

    (tree.root / "checkpoints" / "old.ckpt").unlink()  # gone before the import: a failure
    page.click("hikaze-migration-wizard [data-action=import]")
    page.wait_for_selector('hikaze-migration-wizard[data-step="report"]')
    summary = page.text_content(".mm-report-summary")
    assert summary == "4 imported, 1 conflict, 1 failed"
    failed = page.locator('.mm-report-lines li[data-kind="failed"]')
    assert "old.ckpt" in failed.text_content() and "FILE_MISSING" in failed.text_content()
    assert page.locator('.mm-report-lines li[data-kind="conflict"]').count() == 1
    page.screenshot(path=str(shots / "wizard-report.png"))
    assert api(base, "/api/models?limit=1")["total"] == 4

    # back to the review: the conflicting copy is marked, and merged on its own strategy
    page.click("hikaze-migration-wizard [data-panel=report] [data-step=review]")
    page.wait_for_function("document.querySelectorAll('hikaze-migration-wizard .mm-pending-item').length === 2")
    copy = page.locator(ROWS, has_text="duplicate of")
    assert copy.count() == 1
    assert page.locator("[data-action=import]").is_disabled(), "the selection ends with the import"
    copy.locator("input[type=checkbox]").check()
    copy.locator("select.mm-strategy").select_option("merge")
    page.click("hikaze-migration-wizard [data-action=import]")
    page.wait_for_function("document.querySelector('.mm-report-summary').textContent === '1 imported'")
    page.wait_for_function("document.querySelector('.mm-badge').textContent === '1'")
    ink = next(f for f in tree.files if f.path.name == "ink.safetensors")
    files = api(base, f"/api/models/{ink.sha256}")["files"]
    assert len(files) == 2, "the copy became a second file of the same model"

    page.click(".mm-modes [data-mode=library]")
    page.wait_for_function(
        "document.querySelectorAll('hikaze-model-grid .hk-card:not(.is-placeholder)').length === 4")


def test_a_legacy_database_dry_run_then_import(make_page, demo_sidecar, tmp_path, shots):
    v1 = build_v1(tmp_path / "legacy")
    page = make_page(allow=("status of 404",))  # the refused path first
    page.goto(f"{demo_sidecar}/#pending")
    page.click("hikaze-migration-wizard [data-step=legacy]")
    form = page.locator("hikaze-legacy-import form")
    form.locator("input[name=legacy_db_path]").fill(str(tmp_path / "nothing.sqlite3"))
    form.locator("[data-dry-run=true]").click()
    error = form.locator(".hk-inline-error")
    error.wait_for(state="visible")
    assert "legacy_db_path" in error.text_content()

    before = api(demo_sidecar, "/api/models?limit=1")["total"]
    form.locator("input[name=legacy_db_path]").fill(str(v1.db_path))
    form.locator("[data-dry-run=true]").click()
    report = page.locator(".mm-legacy-report[data-dry-run=true]")
    report.wait_for()
    assert "nothing was written" in report.locator("h3").text_content()
    assert report.locator('[data-count="total"] td').first.text_content() == "6"
    assert api(demo_sidecar, "/api/models?limit=1")["total"] == before
    page.screenshot(path=str(shots / "legacy-dry-run.png"))

    form.locator("[data-dry-run=false]").click()
    page.locator(".mm-legacy-report[data-dry-run=false]").wait_for()
    migrated = int(page.locator('[data-count="migrated"] td').first.text_content())
    assert migrated > 0
    assert api(demo_sidecar, "/api/models?limit=1")["total"] > before
    assert page.locator("hikaze-legacy-import hikaze-progress").get_attribute("data-done") == "true"
    # v1 models without a hash wait in the pending list
    page.wait_for_function("Number(document.querySelector('.mm-badge').textContent) > 0")
