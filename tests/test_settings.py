"""GET/PATCH /api/settings on a real app and SQLite: defaults, persistence across restarts, bad
input refused with nothing stored, the model roots as seen, and the scanner reading auto-import
when it runs."""
from __future__ import annotations

import shutil

import pytest

from server import settings
from server.app_keys import STORE
from server.config import Kind
from tests.factories import expect_error, write_safetensors
from tests.test_scanner import KINDS, Lab, age


async def test_defaults_come_from_the_config_until_the_user_chooses(make_client, make_tree):
    tree = make_tree()
    client = await make_client(tree, auto_import=True)
    response = await client.get("/api/settings")
    assert response.status == 200
    body = await response.json()
    assert (body["nsfw_default"], body["auto_import"]) == ("hide", True)
    assert {(root["kind"], root["present"]) for root in body["roots"]} == \
        {(kind, True) for kind in ("checkpoints", "loras", "vae")}
    assert {root["path"] for root in body["roots"]} == {str(tree.root / k) for k in KINDS}
    assert body["data_dir"]


async def test_a_change_is_stored_and_survives_a_restart(make_client, make_config):
    client = await make_client()
    response = await client.patch("/api/settings", json={"nsfw_default": "blur"})
    assert response.status == 200
    assert (await response.json())["nsfw_default"] == "blur"
    response = await client.patch("/api/settings", json={"auto_import": True})
    assert (await response.json())["nsfw_default"] == "blur", "a partial change keeps the rest"
    await client.close()

    again = await make_client()  # the same data dir, a new app
    body = await (await again.get("/api/settings")).json()
    assert (body["nsfw_default"], body["auto_import"]) == ("blur", True)


@pytest.mark.parametrize("body, field", [
    ({"nsfw_default": "maybe"}, "nsfw_default"),
    ({"nsfw_default": None}, "nsfw_default"),
    ({"auto_import": "yes"}, "auto_import"),
    ({"auto_import": 1}, "auto_import"),
    ({"api_key": "x" * 64}, ""),
    ({}, ""),
    ([], ""),
    ("hide", ""),
])
async def test_bad_input_is_refused_and_nothing_changes(make_client, body, field):
    client = await make_client()
    error = await expect_error(await client.patch("/api/settings", json=body), 400, "VALIDATION")
    assert error["details"]["field"] == field
    stored = await client.app[STORE].run(lambda db: db.execute("SELECT count(*) FROM settings")
                                         .fetchone()[0])
    assert stored == 0


async def test_a_body_that_is_not_json_is_refused(make_client):
    client = await make_client()
    await expect_error(await client.patch("/api/settings", data="nsfw_default=show"), 415)
    await expect_error(await client.patch("/api/settings", data="{",
                                          headers={"Content-Type": "application/json"}), 400,
                       "BAD_JSON")


async def test_a_missing_folder_is_listed_as_not_present(make_client, make_tree):
    tree = make_tree()
    client = await make_client(tree)
    shutil.rmtree(tree.root / "vae")  # an unmounted drive, say
    body = await (await client.get("/api/settings")).json()
    assert {r["kind"]: r["present"] for r in body["roots"]} == \
        {"checkpoints": True, "loras": True, "vae": False}


async def test_the_scanner_reads_auto_import_when_it_runs(make_client, make_tree):
    tree = make_tree()
    age(tree.root)
    kinds = {k: Kind(k, (tree.root / k,)) for k in KINDS}
    lab = Lab(await make_client(kinds=kinds, auto_import=False))
    await lab.client.patch("/api/settings", json={"auto_import": True})
    report = await lab.scan()
    assert "auto_import" in lab.job(report["hash_job"])["result"]
    assert await lab.query("SELECT count(*) FROM models") != [(0,)]

    await lab.client.patch("/api/settings", json={"auto_import": False})
    fresh = tree.root / "loras" / "fresh.safetensors"
    write_safetensors(fresh, seed=77)
    age(fresh)
    report = await lab.scan()
    assert report["added"] == 1
    assert "auto_import" not in lab.job(report["hash_job"])["result"]


def test_read_and_write_are_plain_functions_over_the_db(db, make_config):
    config = make_config()
    assert settings.read(db, config) == {"nsfw_default": "hide", "auto_import": False}
    assert settings.write(db, config, {"auto_import": True})["auto_import"] is True
    assert settings.auto_import(db, config) is True
