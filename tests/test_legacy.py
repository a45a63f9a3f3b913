"""legacy: a Hikaze v1 database (built here as v1 wrote it) into the library and pending queue."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from server import images, legacy, legacy_source, library, store
from server.__main__ import main as cli_main_argv
from server.errors import Invalid, NotFound, Unprocessable

from tests.factories import png_bytes, write_safetensors

ROOT = Path(__file__).resolve().parents[1]
V1_SCHEMA = """
CREATE TABLE models (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT UNIQUE NOT NULL, name TEXT,
    type TEXT NOT NULL, size_bytes INTEGER, hash_hex TEXT NOT NULL, created_at INTEGER NOT NULL,
    meta_json TEXT, extra_json TEXT);
CREATE INDEX idx_models_hash ON models(hash_hex);
CREATE TABLE tags (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, color TEXT,
    created_at INTEGER);
CREATE TABLE model_tags (model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE, PRIMARY KEY (model_id, tag_id));
CREATE TABLE directories (id INTEGER PRIMARY KEY, path TEXT);
CREATE TABLE schema_version (version INTEGER);
INSERT INTO schema_version VALUES (2);
"""
NO_HASH_SCHEMA = V1_SCHEMA.replace("hash_hex TEXT NOT NULL,", "").replace(
    "CREATE INDEX idx_models_hash ON models(hash_hex);", "")
RED, BLUE = png_bytes(colour=(200, 40, 40)), png_bytes(size=(40, 30), colour=(40, 40, 200))
JPEG = png_bytes(colour=(40, 160, 40), fmt="JPEG")
AURORA, CRISP = "AB" * 32, "cd" * 32  # v1 hashes of files no longer on this disk


@dataclass
class V1:
    """A v1 install: data/hikaze_mm.sqlite3 beside data/images/, and model files elsewhere."""

    db_path: Path
    images_dir: Path
    models: dict[str, Path]
    ink: str  # sha256 of ink.safetensors (v1 rows 1 and 5)
    secret: Path  # a picture outside the images folder that must never be read
    rows: list[tuple] = field(default_factory=list)


def build_v1(root: Path) -> V1:
    data, models_dir = root / "v1" / "data", root / "models"
    images_dir = data / "images"
    images_dir.mkdir(parents=True)
    ink = models_dir / "loras" / "ink.safetensors"
    ink_sha = write_safetensors(ink, 11)
    copy = models_dir / "copies" / "ink_copy.safetensors"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(ink, copy)
    fresh = models_dir / "loras" / "fresh.safetensors"
    write_safetensors(fresh, 12)
    face = models_dir / "ultralytics" / "face.pt"
    face.parent.mkdir(parents=True)
    face.write_bytes(b"yolo" * 64)
    (images_dir / "model_1_1712000000000_ink.png").write_bytes(RED)
    (images_dir / "model_1_1712000000001_ink_b.png").write_bytes(BLUE)
    (images_dir / "model_5_1712000000002_copy.png").write_bytes(RED)  # same picture again
    (images_dir / "model_3_1712000000003_fresh.jpg").write_bytes(JPEG)
    secret = root / "secret.png"
    secret.write_bytes(png_bytes(colour=(1, 2, 3)))
    (images_dir / "escape.png").symlink_to(secret)
    v1 = V1(data / "hikaze_mm.sqlite3", images_dir,
            {"ink": ink, "copy": copy, "fresh": fresh, "face": face}, ink_sha, secret)
    v1.rows = _rows(v1)
    _write_db(v1)
    return v1


def _rows(v1: V1) -> list[tuple]:
    extra = json.dumps
    size = lambda key: v1.models[key].stat().st_size  # noqa: E731
    return [
        (1, str(v1.models["ink"]), "Ink Style", "lora", size("ink"), v1.ink, 1712000000000, "{}",
         extra({"description": "Ink wash style", "community_links": "https://civitai.com/models/1",
                "prompts": {"positive": "ink wash", "negative": "photo"},
                "images": ["/media/model_1_1712000000000_ink.png",
                           "/media/model_1_1712000000001_ink_b.png"],
                "params": {"strength_model": 0.8}})),
        (2, "/nowhere/checkpoints/aurora.safetensors", "Aurora", "ckpt", 6_000_000_000, AURORA,
         1700000000, None, extra({"description": "Photo checkpoint",
                                  "images": ["/media/missing.png"]})),
        (3, str(v1.models["fresh"]), "Fresh LoRA", "LoRA", size("fresh"), "", 1712000000005,
         None, extra({"description": "Not hashed yet", "prompts": {"positive": "fresh"},
                      "images": ["/media/model_3_1712000000003_fresh.jpg"]})),
        (4, "/nowhere/embeddings/bad_hands.pt", None, "textual_inversion", None, "",
         1712000000006, None, "{broken json"),
        (5, str(v1.models["copy"]), "ink copy", "loras", size("copy"), v1.ink, 1712000000007, None,
         extra({"community_links": ["https://example.com/a"],
                "images": ["/media/model_5_1712000000002_copy.png"]})),
        (6, str(v1.models["face"]), "Face detector", "Ultralytics", size("face"), "",
         1712000000008, None,
         extra({"images": ["/media/../../secret.png", str(v1.secret), "/media/escape.png"]})),
        (7, "/nowhere/upscale/crisp.pth", "Crisp", "upscaler", 0, CRISP, 1712000000009, None,
         extra({"prompts": "not an object"})),
    ]


def _write_db(v1: V1) -> None:
    conn = sqlite3.connect(v1.db_path)
    conn.execute("PRAGMA journal_mode=WAL")  # as v1 ran it
    conn.executescript(V1_SCHEMA)
    conn.executemany("INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", v1.rows)
    conn.executemany("INSERT INTO tags(id, name, color, created_at) VALUES (?, ?, ?, 0)", [
        (1, "lora", "#888"), (2, "style", "#00f"), (3, "nsfw", "#f00"), (4, "checkpoint", None),
        (5, "photo", "#0f0"), (6, "ultralytics", None), (7, "unused", None)])
    conn.executemany("INSERT INTO model_tags VALUES (?, ?)", [
        (1, 1), (1, 2), (1, 3), (2, 5), (3, 1), (3, 2), (5, 2), (6, 6), (7, 5)])
    conn.commit()
    conn.close()


@pytest.fixture
def v1(tmp_path) -> V1:
    return build_v1(tmp_path)


@pytest.fixture
def config(make_config):
    return make_config()


def migrate(config, v1: V1, images_dir: str | None = None, dry_run: bool = False) -> dict:
    return legacy.run_standalone(config, str(v1.db_path), images_dir, dry_run)


def counts(report: dict) -> dict:
    return {k: report[k] for k in legacy.COUNTERS}


def open_library(config):
    return store.connect(config.db_path)


def snapshot(config) -> dict:
    """Every row of the library's tables and every file under the data folder but the db (and
    its backups: a real run makes one each time)."""
    db = open_library(config)
    try:
        tables = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in (
            "models", "files", "tags", "model_tags", "images", "pending_import", "pending_tags")}
    finally:
        db.conn.close()
    files = sorted(str(p.relative_to(config.data_dir)) for p in config.data_dir.rglob("*")
                   if p.is_file() and not p.name.startswith("library.db")
                   and p.relative_to(config.data_dir).parts[0] != "backups")
    return {**tables, "files": files}


def model_tags(db, sha: str) -> list[str]:
    return [t["name"] for t in library.get_model(db, sha)["tags"]]


# --- mapping ------------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy_type, kind", [
    ("lora", "loras"), ("LoRA", "loras"), ("loras", "loras"), ("checkpoint", "checkpoints"),
    ("ckpt", "checkpoints"), ("embedding", "embeddings"), ("textual_inversion", "embeddings"),
    ("upscale", "upscale_models"), ("upscaler", "upscale_models"), ("vae", "vae"),
    ("controlnet", "controlnet"), ("hypernetwork", "hypernetworks"), ("unet", "diffusion_models"),
    ("clip", "text_encoders"), (" Ultralytics ", "ultralytics"), ("", ""),
])
def test_legacy_types_map_onto_comfyui_kinds(legacy_type, kind):
    assert legacy_source.kind_of(legacy_type) == kind


@pytest.mark.parametrize("reference, name", [
    ("/media/model_1_x.png", "model_1_x.png"), ("/media/../../secret.png", "secret.png"),
    ("C:\\v1\\data\\images\\a.png", "a.png"), ("plain.png", "plain.png"), ("/media/", ""),
])
def test_image_references_are_reduced_to_a_file_name(reference, name):
    assert legacy.image_name(reference) == name


# --- a first run --------------------------------------------------------------------------------

def test_hashed_models_go_to_the_library_with_their_data(config, v1):
    report = migrate(config, v1)
    assert counts(report) == {"migrated": 3, "pending": 3, "skipped": 0, "errors": 0,
                              "images_processed": 3, "image_errors": 4}
    assert report["status"] == "success" and report["total"] == 6 and not report["dry_run"]
    db = open_library(config)
    ink = library.get_model(db, v1.ink)
    assert (ink["name"], ink["type"], ink["created_at"]) == ("Ink Style", "loras", 1712000000000)
    assert ink["meta_json"]["description"] == "Ink wash style"
    assert ink["meta_json"]["community_links"] == "https://civitai.com/models/1"
    assert ink["meta_json"]["prompts"] == {"positive": "ink wash", "negative": "photo"}
    assert ink["meta_json"]["legacy"]["ids"] == [1, 5]
    assert ink["meta_json"]["legacy"]["params"] == {"strength_model": 0.8}
    # both v1 paths of the content are its files; v1's automatic type tag "lora" is not kept
    assert sorted(f["path"] for f in ink["files"]) == sorted(
        [str(v1.models["ink"]), str(v1.models["copy"])])
    assert {f["state"] for f in ink["files"]} == {"present"}
    assert model_tags(db, v1.ink) == ["nsfw", "style"]
    # three pictures, one of them twice: two gallery images, from the legacy source
    assert [i["image_sha256"] for i in ink["images"]] == [
        hashlib.sha256(RED).hexdigest(), hashlib.sha256(BLUE).hexdigest()]
    assert {i["source"] for i in ink["images"]} == {"legacy"}
    aurora = library.get_model(db, AURORA.lower())
    assert (aurora["type"], aurora["files"]) == ("checkpoints", [])
    assert aurora["created_at"] == 1700000000000  # v1 wrote seconds here
    assert model_tags(db, AURORA.lower()) == ["photo"]
    crisp = library.get_model(db, CRISP)
    assert crisp["type"] == "upscale_models" and crisp["meta_json"]["prompts"] == {
        "positive": "", "negative": ""}
    db.conn.close()


def test_other_models_are_queued_as_pending_with_their_first_picture(config, v1):
    report = migrate(config, v1)
    db = open_library(config)
    rows = {r["legacy_id"]: r for r in db["pending_import"].rows}
    assert set(rows) == {3, 4, 6}
    assert {r["source"] for r in rows.values()} == {"legacy"}
    assert all(r["sha256"] is None for r in rows.values())
    fresh = rows[3]
    assert (fresh["path"], fresh["name"], fresh["type"]) == (
        str(v1.models["fresh"]), "Fresh LoRA", "loras")
    meta = json.loads(fresh["meta"])
    assert meta["description"] == "Not hashed yet"
    assert meta["prompts"] == {"positive": "fresh", "negative": ""}
    assert meta["community_links"] == ""
    preview = config.pending_dir / fresh["image"]
    assert fresh["image"].endswith(".jpg") and "/" not in fresh["image"]
    assert preview.read_bytes() == JPEG
    tag_names = [r[0] for r in db.execute(
        "SELECT t.name FROM pending_tags p JOIN tags t ON t.id = p.tag_id WHERE p.pending_id = ?",
        [fresh["id"]])]
    assert tag_names == ["style"]
    assert (rows[4]["type"], rows[4]["name"], rows[4]["image"]) == ("embeddings", "", "")
    assert (rows[6]["type"], rows[6]["image"]) == ("ultralytics", "")
    db.conn.close()
    face = next(d for d in report["details"] if d["legacy_ids"] == [6])
    assert len(face["image_errors"]) == 3


def test_image_names_never_lead_outside_the_images_folder(config, v1):
    report = migrate(config, v1)
    face = next(d for d in report["details"] if d["legacy_ids"] == [6])
    assert any("outside" in e for e in face["image_errors"])  # the symlink
    assert all("not found" in e or "outside" in e for e in face["image_errors"])
    secret = hashlib.sha256(v1.secret.read_bytes()).hexdigest()
    stored = [p.name for p in config.data_dir.rglob("*")]
    assert not any(secret[:16] in name for name in stored)


def test_tags_are_shared_case_insensitively_with_existing_ones(config, v1):
    db = open_library(config)
    library.add_model(db, library.NewModel(sha256="ef" * 32, name="Mine", type="loras",
                                           size_bytes=1, created_at=1, tags=("Style",)))
    db.conn.close()
    migrate(config, v1)
    db = open_library(config)
    assert [t["name"] for t in db["tags"].rows] == ["Style", "nsfw", "photo"]
    db.conn.close()


def test_a_model_already_in_the_library_only_gets_its_blanks_filled(config, v1):
    db = open_library(config)
    library.add_model(db, library.NewModel(
        sha256=v1.ink, name="My Ink", type="loras", size_bytes=1, created_at=5, tags=("mine",),
        meta={"description": "my own words", "prompts": {"positive": ""}}))
    db.conn.close()
    assert migrate(config, v1)["migrated"] == 3
    db = open_library(config)
    ink = library.get_model(db, v1.ink)
    assert (ink["name"], ink["created_at"]) == ("My Ink", 5)
    assert ink["meta_json"]["description"] == "my own words"
    assert ink["meta_json"]["prompts"] == {"positive": "ink wash", "negative": "photo"}
    assert ink["meta_json"]["community_links"] == "https://civitai.com/models/1"
    assert model_tags(db, v1.ink) == ["mine", "nsfw", "style"]
    assert len(ink["images"]) == 2
    db.conn.close()


def test_a_field_the_user_cleared_before_the_migration_stays_clear(config, v1):
    db = open_library(config)
    library.add_model(db, library.NewModel(sha256=v1.ink, name="", type="loras", size_bytes=1,
                                           created_at=5, meta={"description": "old"}))
    library.patch_model(db, v1.ink, {"meta_json": {"description": ""}})
    db.conn.close()
    migrate(config, v1)
    db = open_library(config)
    ink = library.get_model(db, v1.ink)
    assert ink["meta_json"]["description"] == "" and ink["name"] == "Ink Style"
    db.conn.close()


def test_a_broken_picture_is_an_image_error_and_the_next_one_is_used(config, v1):
    (v1.images_dir / "model_6_broken.png").write_bytes(RED[:40])  # a PNG cut short
    (v1.images_dir / "model_6_good.png").write_bytes(BLUE)
    conn = sqlite3.connect(v1.db_path)
    conn.execute("UPDATE models SET extra_json = ? WHERE id = 6", [json.dumps(
        {"images": ["/media/model_6_broken.png", "/media/model_6_good.png"]})])
    conn.commit()
    conn.close()
    report = migrate(config, v1)
    face = next(d for d in report["details"] if d["legacy_ids"] == [6])
    assert len(face["image_errors"]) == 1 and "model_6_broken.png" in face["image_errors"][0]
    db = open_library(config)
    image = db.execute("SELECT image FROM pending_import WHERE legacy_id = 6").fetchone()[0]
    db.conn.close()
    assert (config.pending_dir / image).read_bytes() == BLUE


def test_a_pending_item_queued_by_a_scan_takes_the_v1_data(config, v1):
    db = open_library(config)
    db["pending_import"].insert({"path": str(v1.models["fresh"]), "name": "", "created_at": 1,
                                 "type": "loras", "source": "scan"})
    db.conn.close()
    assert migrate(config, v1)["pending"] == 3
    db = open_library(config)
    rows = list(db["pending_import"].rows_where("path = ?", [str(v1.models["fresh"])]))
    assert len(rows) == 1
    assert (rows[0]["source"], rows[0]["legacy_id"], rows[0]["name"]) == ("scan", 3, "Fresh LoRA")
    assert json.loads(rows[0]["meta"])["description"] == "Not hashed yet"
    assert rows[0]["image"]
    db.conn.close()


# --- running it again -----------------------------------------------------------------------------

def test_a_second_run_adds_nothing_and_keeps_edits_made_since(config, v1):
    migrate(config, v1)
    db = open_library(config)
    library.patch_model(db, v1.ink, {"name": "Renamed", "tags": ["style"]})  # nsfw removed
    images.delete_image(db, config.images_dir, v1.ink, 1)
    library.patch_model(db, AURORA.lower(), {"meta_json": {"description": None}})
    db.conn.close()
    before = snapshot(config)

    report = migrate(config, v1)

    assert counts(report) == {"migrated": 0, "pending": 0, "skipped": 6, "errors": 0,
                              "images_processed": 0, "image_errors": 4}
    assert snapshot(config) == before
    db = open_library(config)
    ink = library.get_model(db, v1.ink)
    assert ink["name"] == "Renamed" and model_tags(db, v1.ink) == ["style"]
    assert len(ink["images"]) == 1
    assert "description" not in library.get_model(db, AURORA.lower())["meta_json"]
    db.conn.close()


def test_pictures_missing_on_the_first_run_are_added_by_a_later_one(config, v1, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    first = migrate(config, v1, images_dir=str(empty))
    assert first["images_processed"] == 0 and first["image_errors"] == 8

    second = migrate(config, v1)

    assert second["images_processed"] == 3 and second["skipped"] == 6
    db = open_library(config)
    assert len(library.get_model(db, v1.ink)["images"]) == 2
    assert all(r["image"] for r in db["pending_import"].rows_where("legacy_id = 3"))
    db.conn.close()
    assert migrate(config, v1)["images_processed"] == 0


def test_a_pending_item_imported_since_is_not_queued_again(config, v1):
    migrate(config, v1)
    db = open_library(config)  # what an import of pending item 3 leaves behind
    fresh = str(v1.models["fresh"])
    sha = hashlib.sha256(v1.models["fresh"].read_bytes()).hexdigest()
    db.execute("DELETE FROM pending_import WHERE path = ?", [fresh])
    library.add_model(db, library.NewModel(sha256=sha, name="Imported", type="loras",
                                           size_bytes=1, created_at=1, paths=(fresh,)))
    db.conn.close()

    migrate(config, v1)

    db = open_library(config)
    queued = db.execute("SELECT count(*) FROM pending_import WHERE path = ?", [fresh]).fetchone()
    assert queued == (0,)
    model = library.get_model(db, sha)
    assert model["name"] == "Imported"
    assert model["meta_json"]["description"] == "Not hashed yet"
    db.conn.close()


# --- dry run and the v1 file ------------------------------------------------------------------

def test_a_dry_run_reports_the_same_and_writes_nothing(config, v1):
    open_library(config).conn.close()
    before = snapshot(config)
    dry = migrate(config, v1, dry_run=True)
    assert snapshot(config) == before
    assert not config.pending_dir.exists()
    real = migrate(config, v1)
    assert dry["dry_run"] and counts(dry) == counts(real)


def test_the_v1_database_is_never_modified(config, v1):
    def state() -> tuple:
        return (hashlib.sha256(v1.db_path.read_bytes()).hexdigest(), v1.db_path.stat().st_mtime_ns,
                sorted(os.listdir(v1.db_path.parent)))

    before = state()
    migrate(config, v1)
    migrate(config, v1, dry_run=True)
    assert state() == before  # not even -wal or -shm files beside it


def test_rows_still_in_the_wal_of_a_running_v1_are_read(config, v1):
    running = sqlite3.connect(v1.db_path)  # v1 still open, its last write not checkpointed
    running.execute("PRAGMA wal_autocheckpoint=0")
    running.execute("INSERT INTO models VALUES (8, '/nowhere/vae/new.pt', 'New', 'vae', 1, '', 1, "
                    "NULL, NULL)")
    running.commit()
    try:
        report = migrate(config, v1)
    finally:
        running.close()
    assert report["pending"] == 4


# --- checking the paths -------------------------------------------------------------------------

def test_the_images_folder_defaults_to_images_beside_the_database(v1):
    assert legacy_source.check(str(v1.db_path)).images_dir == v1.images_dir
    shutil.rmtree(v1.images_dir)
    assert legacy_source.check(str(v1.db_path)).images_dir is None


def sqlite_file(path: Path, script: str) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.close()
    return path


@pytest.mark.parametrize("make_path, error, code", [
    (lambda d: "relative/hikaze_mm.sqlite3", Invalid, "INVALID_PATH"),
    (lambda d: str(d / "nope.sqlite3"), NotFound, "PATH_NOT_FOUND"),
    (lambda d: str(d), Invalid, "NOT_A_FILE"),
    (lambda d: str(d / "notes.txt"), Unprocessable, "NOT_SQLITE"),
    (lambda d: str(d / "empty.db"), Unprocessable, "NOT_SQLITE"),
    (lambda d: str(sqlite_file(d / "other.db", "CREATE TABLE x(a);")), Unprocessable,
     "NOT_LEGACY_DB"),
    (lambda d: str(sqlite_file(d / "old.db", NO_HASH_SCHEMA)), Unprocessable, "NOT_LEGACY_DB"),
])
def test_unusable_databases_are_refused_before_anything_changes(tmp_path, make_path, error, code):
    (tmp_path / "notes.txt").write_text("hello, not a database\n" * 10)
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(error) as caught:
        legacy_source.check(make_path(tmp_path))
    assert caught.value.code == code and caught.value.details["field"] == "legacy_db_path"


def test_a_missing_table_or_column_is_named(tmp_path):
    path = sqlite_file(tmp_path / "old.db",
                       NO_HASH_SCHEMA.replace("CREATE TABLE model_tags", "CREATE TABLE links"))
    with pytest.raises(Unprocessable) as caught:
        legacy_source.check(str(path))
    assert caught.value.details["missing"] == ["models.hash_hex", "model_tags"]


def test_an_images_folder_given_must_be_a_folder(v1, tmp_path):
    with pytest.raises(NotFound):
        legacy_source.check(str(v1.db_path), str(tmp_path / "nope"))
    with pytest.raises(Invalid) as caught:
        legacy_source.check(str(v1.db_path), str(v1.db_path))
    assert caught.value.code == "NOT_A_FOLDER"


# --- the command line ---------------------------------------------------------------------------

def cli_main(*args: str) -> int:
    return cli_main_argv(list(args))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", "migrate-legacy", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_migrates_and_prints_the_report(tmp_path, v1, capsys):
    data = tmp_path / "library"
    done = run_cli("--db", str(v1.db_path), "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["migrated"], report["pending"], report["status"]) == (3, 3, "success")
    # the same command again, in this process to keep the test fast
    assert cli_main("migrate-legacy", "--db", str(v1.db_path), "--data-dir", str(data)) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["migrated"], again["skipped"]) == (0, 6)


def test_cli_dry_run_on_a_fresh_data_folder_stores_nothing(tmp_path, v1, capsys):
    data = tmp_path / "library"
    images_dir = os.path.relpath(v1.images_dir)  # relative to where the command runs
    assert cli_main("migrate-legacy", "--db", str(v1.db_path), "--images-dir", images_dir,
                    "--data-dir", str(data), "--dry-run") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True and report["images_processed"] == 3
    assert not data.exists()


def test_cli_refuses_a_bad_path_with_one_line_and_creates_nothing(tmp_path):
    data = tmp_path / "library"
    done = run_cli("--db", str(tmp_path / "missing.sqlite3"), "--data-dir", str(data))
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Cannot migrate" in lines[0] and "does not exist" in lines[0]
    assert not data.exists()


def test_cli_refuses_a_folder(tmp_path, caplog, capsys):
    assert cli_main("migrate-legacy", "--db", str(tmp_path), "--data-dir",
                    str(tmp_path / "library")) == 2
    assert "is not a file" in caplog.text and capsys.readouterr().out == ""
    assert not (tmp_path / "library").exists()
