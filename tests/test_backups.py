"""Backups before migrations and legacy imports, the bound kept, restore, and read-only mode."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nodes.sidecar import healthy
from server import backups, legacy, library, migrations, store
from server.__main__ import main as cli
from tests.factories import bearer, expect_error
from tests.test_cli import ROOT, free_port, get_json, stop
from tests.test_legacy import build_v1

SHA = "a" * 64


def make_library(db_path: Path) -> None:
    db = store.connect(db_path)
    library.add_model(db, library.NewModel(sha256=SHA, name="Kept", type="loras", size_bytes=1,
                                           created_at=1, tags=("style",)))
    db.conn.close()


def roll_back_last_migration(db_path: Path) -> str:
    """Make the library look as an older version left it: the last migration not applied."""
    last = migrations.migrations._migrations[-1].name
    conn = sqlite3.connect(db_path)
    conn.execute(f"DELETE FROM {migrations.migrations.migrations_table} WHERE name = ?", [last])
    conn.executescript("DROP TABLE queue_jobs; DROP TABLE servers;")
    conn.commit()
    conn.close()
    return last


def corrupt(db_path: Path) -> None:
    """Overwrite three pages after the schema page with garbage (a torn disk write)."""
    data = bytearray(db_path.read_bytes())
    for page in (3, 4, 5):
        data[page * 4096:(page + 1) * 4096] = os.urandom(4096)
    db_path.write_bytes(bytes(data))


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --- before migrations ------------------------------------------------------------------------

def test_a_pending_migration_on_an_existing_library_is_preceded_by_a_backup(tmp_path):
    db_path = tmp_path / "library.db"
    make_library(db_path)
    assert roll_back_last_migration(db_path) == "0007_generation_queue"

    db = store.connect(db_path)
    assert "servers" in db.table_names()
    db.conn.close()

    [backup] = backups.listing(tmp_path / "backups")
    assert backup.reason == "migration" and backup.path.name.endswith("-migration.db")
    copy = sqlite3.connect(backup.path)
    assert copy.execute("SELECT name FROM models").fetchall() == [("Kept",)]
    assert "servers" not in {r[0] for r in copy.execute("SELECT name FROM sqlite_master")}
    copy.close()
    assert not any(n.endswith(".partial") for n in names(tmp_path / "backups"))


def test_no_backup_for_a_new_library_or_one_already_current(tmp_path):
    make_library(tmp_path / "library.db")  # new
    store.connect(tmp_path / "library.db").conn.close()  # current
    assert not (tmp_path / "backups").exists()


def test_only_the_newest_are_kept(tmp_path):
    conn = sqlite3.connect(tmp_path / "library.db")
    made = [backups.make(conn, tmp_path / "backups", "import", keep=3) for _ in range(5)]
    conn.close()
    assert [b.path for b in backups.listing(tmp_path / "backups")] == \
        [b.path for b in reversed(made[2:])]
    assert backups.latest(tmp_path / "backups") == made[-1]
    with pytest.raises(ValueError):
        backups.make(sqlite3.connect(":memory:"), tmp_path / "backups", "../escape")


def test_half_written_and_foreign_files_are_not_listed(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    for name in ("library-20260101T000000_000000Z-import.db.partial", "notes.txt",
                 "library-x-import.db"):
        (folder / name).write_text("x")
    assert backups.listing(folder) == []


# --- before a legacy import -------------------------------------------------------------------

def test_a_legacy_import_backs_the_library_up_first_but_a_dry_run_does_not(tmp_path, make_config):
    config = make_config()
    v1 = build_v1(tmp_path)
    make_library(config.db_path)
    legacy.run_standalone(config, str(v1.db_path), None, dry_run=True)
    assert backups.listing(config.data_dir / "backups") == []

    assert cli(["migrate-legacy", "--db", str(v1.db_path), "--data-dir", str(config.data_dir)]) == 0

    [backup] = backups.listing(config.data_dir / "backups")
    assert backup.reason == "legacy-import"
    copy = sqlite3.connect(backup.path)  # the library as it was before the v1 models came
    assert copy.execute("SELECT count(*) FROM models").fetchone()[0] == 1
    copy.close()


async def test_the_api_legacy_import_backs_up_and_health_reports_it(make_client, tmp_path):
    v1 = build_v1(tmp_path)
    client = await make_client()
    assert (await (await client.get("/api/health")).json())["backup"] is None
    response = await client.post("/api/migration/migrate_legacy_db",
                                 json={"legacy_db_path": str(v1.db_path)})
    assert response.status == 200, await response.text()
    health = await (await client.get("/api/health")).json()
    assert health["status"] == "ok" and health["read_only_reason"] is None
    assert health["backup"]["reason"] == "legacy-import"
    assert Path(health["backup"]["path"]).is_file()
    assert isinstance(health["backup"]["created_at"], int)


# --- a damaged library: read-only -------------------------------------------------------------

async def test_a_damaged_library_is_served_read_only(make_client, make_config):
    config = make_config()
    make_library(config.db_path)
    conn = sqlite3.connect(config.db_path)
    backup = backups.make(conn, config.data_dir / "backups", "import")
    conn.close()
    corrupt(config.db_path)
    before = config.db_path.read_bytes()
    # A picture no record it can read names: the start-up clean-up must not touch it here.
    stray = config.images_dir / "ab" / ("ab" * 32 + "_high.webp")
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"picture")

    client = await make_client()
    health = await (await client.get("/api/health")).json()
    assert health["status"] == "read_only"
    assert stray.read_bytes() == b"picture"
    assert "damaged" in health["read_only_reason"]
    assert health["backup"]["path"] == str(backup.path)
    assert health["counts"] is None or health["counts"]["models"] == 1
    for method, path, body in [("PATCH", f"/api/models/{SHA}", {"name": "x"}),
                               ("POST", "/api/scan", {}), ("DELETE", f"/api/models/{SHA}", None),
                               ("PUT", "/api/v1/servers/a", {"url": "http://x"}),
                               ("POST", "/api/migration/migrate_legacy_db", {})]:
        response = await client.request(method, path, json=body, headers=bearer(client))
        await expect_error(response, 503, "READ_ONLY")
    assert (await client.get("/api/tags")).status == 200  # what SQLite can read is still served
    await client.close()
    assert config.db_path.read_bytes() == before
    assert backup.path.is_file() and names(config.data_dir / "backups") == [backup.path.name]


def test_the_sidecar_starts_read_only_on_a_damaged_library(tmp_path):
    data = tmp_path / "data"
    make_library(data / "library.db")
    conn = sqlite3.connect(data / "library.db")
    backup = backups.make(conn, data / "backups", "migration")
    conn.close()
    corrupt(data / "library.db")
    before = (data / "library.db").read_bytes()
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "server", "--data-dir", str(data),
                                "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        health = get_json(port, "/api/health")
        assert healthy("127.0.0.1", port)  # ComfyUI's supervisor counts it as up: no restart loop
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/models/{SHA}",
                                         data=b'{"name": "x"}', method="PATCH",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
    finally:
        code, output = stop(process)
    assert health["status"] == "read_only" and health["backup"]["path"] == str(backup.path)
    assert refused.value.code == 503
    assert b'"READ_ONLY"' in refused.value.read()
    assert code == 0, output
    assert "READ-ONLY" in output and f"restore-backup {backup.path}" in output
    assert (data / "library.db").read_bytes() == before
    assert names(data / "backups") == [backup.path.name]


# --- restore ----------------------------------------------------------------------------------

def test_restore_moves_the_damaged_file_aside_and_brings_the_backup_back(tmp_path, capsys):
    make_library(tmp_path / "library.db")
    conn = sqlite3.connect(tmp_path / "library.db")
    backup = backups.make(conn, tmp_path / "backups", "import")
    conn.close()
    corrupt(tmp_path / "library.db")
    damaged = (tmp_path / "library.db").read_bytes()

    assert cli(["restore-backup", str(backup.path), "--data-dir", str(tmp_path)]) == 0

    assert backups.quick_check(tmp_path / "library.db") is None
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("library.db.replaced-")]
    assert aside.read_bytes() == damaged
    assert backup.path.is_file()
    assert str(aside) in capsys.readouterr().out
    db = store.connect(tmp_path / "library.db")
    assert library.get_model(db, SHA)["name"] == "Kept"
    db.conn.close()


def test_restore_is_refused_while_a_manager_holds_the_data_folder(tmp_path):
    make_library(tmp_path / "library.db")
    conn = sqlite3.connect(tmp_path / "library.db")
    backup = backups.make(conn, tmp_path / "backups", "import")
    conn.close()
    before = (tmp_path / "library.db").read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from server import backups\n"
        "with backups.manager_lock(Path(sys.argv[1])) as held:\n"
        "    print(held, flush=True); time.sleep(60)"), str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        assert cli(["restore-backup", str(backup.path), "--data-dir", str(tmp_path)]) == 3
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / "library.db").read_bytes() == before


def test_restore_refuses_a_file_that_is_not_a_database(tmp_path):
    make_library(tmp_path / "library.db")
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"not sqlite" * 100)
    assert cli(["restore-backup", str(bogus), "--data-dir", str(tmp_path)]) == 2
    assert cli(["restore-backup", str(tmp_path / "absent.db"), "--data-dir", str(tmp_path)]) == 2
    assert backups.quick_check(tmp_path / "library.db") is None
    assert not any(p.name.startswith("library.db.replaced-") for p in tmp_path.iterdir())
