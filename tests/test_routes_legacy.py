"""POST /api/migration/migrate_legacy_db over HTTP: the report, the dry run, every refusal."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest

from server import library
from server.app_keys import CONFIG, EVENTS, STORE

from tests.factories import expect_error
from tests.test_legacy import V1_SCHEMA, build_v1

URL = "/api/migration/migrate_legacy_db"


@pytest.fixture
def v1(tmp_path):
    return build_v1(tmp_path)


async def test_migration_answers_its_report(make_client, v1):
    client = await make_client()
    response = await client.post(URL, json={"legacy_db_path": str(v1.db_path)})
    assert response.status == 200
    report = await response.json()
    assert {k: report[k] for k in ("status", "migrated", "pending", "skipped", "errors",
                                   "images_processed", "image_errors")} == {
        "status": "success", "migrated": 3, "pending": 3, "skipped": 0, "errors": 0,
        "images_processed": 3, "image_errors": 4}
    assert isinstance(report["details"], list)
    models = await (await client.get("/api/models?type=loras")).json()
    assert [m["sha256"] for m in models["models"]] == [v1.ink]
    assert models["models"][0]["images_count"] == 2

    again = await (await client.post(URL, json={"legacy_db_path": str(v1.db_path)})).json()
    assert (again["migrated"], again["pending"], again["skipped"]) == (0, 0, 6)


async def test_progress_is_published_on_the_import_channel(make_client, v1):
    client = await make_client()
    subscriber = client.app[EVENTS].subscribe()
    subscriber.channels.add("import")
    await client.post(URL, json={"legacy_db_path": str(v1.db_path)})
    events = []
    while not subscriber.queue.empty():
        events.append(await asyncio.wait_for(subscriber.queue.get(), 1))
    assert events[-2]["type"] == "legacy_progress"
    assert (events[-2]["data"]["done"], events[-2]["data"]["total"]) == (6, 6)
    assert events[-1]["type"] == "legacy_completed" and events[-1]["data"]["migrated"] == 3


async def test_a_dry_run_changes_nothing(make_client, v1):
    client = await make_client()
    body = {"legacy_db_path": str(v1.db_path), "legacy_images_dir": str(v1.images_dir),
            "dry_run": True}
    report = await (await client.post(URL, json=body)).json()
    assert report["dry_run"] is True and report["migrated"] == 3
    assert await client.app[STORE].run(library.counts) == {
        "models": 0, "files": 0, "tags": 0, "images": 0}
    config = client.app[CONFIG]
    assert not any(config.images_dir.iterdir()) and not config.pending_dir.exists()


async def test_image_names_inside_the_database_cannot_escape_the_images_folder(make_client, v1):
    client = await make_client()
    report = await (await client.post(URL, json={"legacy_db_path": str(v1.db_path)})).json()
    face = next(d for d in report["details"] if d["legacy_ids"] == [6])
    assert len(face["image_errors"]) == 3
    pending = await client.app[STORE].run(
        lambda db: db.execute("SELECT image FROM pending_import WHERE legacy_id = 6").fetchone())
    assert pending == ("",)


def write_sqlite(path, script: str):
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.close()
    return path


@pytest.mark.parametrize("body, status, code", [
    ({}, 400, "VALIDATION"),
    ({"legacy_db_path": 5}, 400, "VALIDATION"),
    ({"legacy_db_path": ""}, 400, "VALIDATION"),
    ({"legacy_db_path": "/x.db", "dry_run": "yes"}, 400, "VALIDATION"),
    ({"legacy_db_path": "/x.db", "legacy_images_dir": ["a"]}, 400, "VALIDATION"),
    ({"legacy_db_path": "/x.db", "extra": 1}, 400, "VALIDATION"),
    ([], 400, "VALIDATION"),
    ({"legacy_db_path": "relative/v1.sqlite3"}, 400, "INVALID_PATH"),
    ({"legacy_db_path": "/no/such/hikaze_mm.sqlite3"}, 404, "PATH_NOT_FOUND"),
])
async def test_bad_bodies_are_refused(make_client, body, status, code):
    client = await make_client()
    body = await expect_error(await client.post(URL, json=body), status, code)
    if code != "VALIDATION":
        assert body["details"]["field"] == "legacy_db_path"


async def test_a_body_that_is_not_json_is_refused(make_client):
    client = await make_client()
    await expect_error(await client.post(URL, data="legacy_db_path=/x"), 415, "NOT_JSON")
    await expect_error(await client.post(URL, data="{", headers={
        "Content-Type": "application/json"}), 400, "BAD_JSON")


@pytest.mark.parametrize("make_target, status, code", [
    (lambda d: d, 400, "NOT_A_FILE"),
    (lambda d: d / "notes.txt", 422, "NOT_SQLITE"),
    (lambda d: write_sqlite(d / "library.db", "CREATE TABLE models(sha256 TEXT);"), 422,
     "NOT_LEGACY_DB"),
    (lambda d: write_sqlite(d / "half.db", V1_SCHEMA.replace(
        "CREATE TABLE model_tags", "CREATE TABLE other_links")), 422, "NOT_LEGACY_DB"),
])
async def test_paths_that_are_not_a_v1_database_are_refused(make_client, tmp_path, make_target,
                                                            status, code):
    (tmp_path / "notes.txt").write_text("a text file, not a database")
    client = await make_client()
    target = make_target(tmp_path)
    body = await expect_error(await client.post(URL, json={"legacy_db_path": str(target)}),
                              status, code)
    assert str(target) in body["error"] and body["details"]["field"] == "legacy_db_path"
    assert await client.app[STORE].run(library.counts) == {
        "models": 0, "files": 0, "tags": 0, "images": 0}


async def test_a_bad_images_folder_is_refused(make_client, v1, tmp_path):
    client = await make_client()
    for folder, status, code in [(tmp_path / "nope", 404, "PATH_NOT_FOUND"),
                                 (v1.db_path, 400, "NOT_A_FOLDER"),
                                 ("images", 400, "INVALID_PATH")]:
        response = await client.post(URL, json={"legacy_db_path": str(v1.db_path),
                                                "legacy_images_dir": str(folder)})
        body = await expect_error(response, status, code)
        assert body["details"]["field"] == "legacy_images_dir"
    assert (await client.app[STORE].run(library.counts))["models"] == 0
