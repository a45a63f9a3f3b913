"""Export → import: round trip, merge without duplicates, idempotence, bad documents refused."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from server import backups, image_files, images, library, settings, servers, store, user_data
from server.errors import Invalid
from tests.factories import png_bytes

INK, GLOW, ONLY_B = "1" * 64, "2" * 64, "3" * 64
RED, BLUE, GREEN = (png_bytes(colour=c) for c in [(200, 0, 0), (0, 0, 200), (0, 200, 0)])
RED_SHA = hashlib.sha256(RED).hexdigest()


def add_picture(db, images_dir: Path, sha256: str, picture: bytes, **fields) -> str:
    stored = image_files.ingest(io.BytesIO(picture), images_dir)
    images.add_image(db, sha256, stored, images.ImageFields(**fields), 1_700_000_000_000)
    return stored.image_sha256


def build_library(config) -> None:
    """Two models with names, meta, tags and pictures, an unused tag, a setting, a server."""
    db = store.connect(config.db_path)
    library.add_model(db, library.NewModel(
        sha256=INK, name="Ink", type="loras", size_bytes=10, created_at=1, base_model="SDXL",
        tags=("Style", "ink"), meta={"description": "inky", "trigger_words": ["ink"],
                                     "prompts": {"positive": "ink art"}}))
    library.add_model(db, library.NewModel(sha256=GLOW, name="", type="loras", size_bytes=20,
                                           created_at=2))
    add_picture(db, config.images_dir, INK, RED, prompt="red", generation_params={"seed": 1})
    add_picture(db, config.images_dir, INK, BLUE, nsfw_level=4)
    add_picture(db, config.images_dir, GLOW, RED)
    db["tags"].insert({"name": "unused"})
    settings.write(db, config, {"nsfw_default": "blur"})
    servers.add_server(db, {"alias": "gpu", "url": "http://10.0.0.2:8188"}, 5)
    db.conn.close()


def export(config, tmp_path: Path, name: str = "export") -> tuple[Path, Path, dict]:
    archive = tmp_path / f"{name}.tar"
    document, _ = user_data.export_library(config, archive)
    file = tmp_path / f"{name}.json"
    file.write_text(json.dumps(document))
    return file, archive, document


def user_rows(config) -> dict:
    """Every user-data row of the library (ids left out: they are local)."""
    db = store.connect(config.db_path)
    try:
        return {
            "models": db.execute("SELECT sha256, name, type, base_model, size_bytes, created_at, "
                                 "updated_at, meta FROM models ORDER BY 1").fetchall(),
            "tags": db.execute("SELECT name FROM tags ORDER BY 1").fetchall(),
            "model_tags": db.execute("SELECT mt.sha256, t.name FROM model_tags mt JOIN tags t "
                                     "ON t.id = mt.tag_id ORDER BY 1, 2").fetchall(),
            "images": db.execute("SELECT sha256, seq, image_sha256, width, height, nsfw_level, "
                                 "prompt, negative_prompt, generation_params, source, created_at "
                                 "FROM images ORDER BY 1, 2").fetchall(),
            "settings": db.execute("SELECT * FROM settings ORDER BY 1").fetchall(),
            "servers": db.execute("SELECT * FROM servers ORDER BY 1").fetchall(),
        }
    finally:
        db.conn.close()


def stored_files(config) -> list[str]:
    return sorted(str(p.relative_to(config.images_dir)) for p in config.images_dir.rglob("*")
                  if p.is_file())


@pytest.fixture
def source(make_config, tmp_path):
    config = make_config(data_dir=tmp_path / "a")
    build_library(config)
    return config


@pytest.fixture
def target(make_config, tmp_path):
    return make_config(data_dir=tmp_path / "b")


def test_round_trip_into_a_fresh_data_folder_gives_identical_user_data(source, target, tmp_path):
    file, archive, document = export(source, tmp_path)
    assert document["format"] == "hikaze-user-data" and document["schema_version"] == 1
    assert "files" not in document and all("path" not in m for m in document["models"])

    report = user_data.import_library(target, file, archive, dry_run=False)

    assert report["models_added"] == 2 and report["images_added"] == 3
    assert report["image_files"]["extracted"] == len(stored_files(source))
    assert user_rows(target) == user_rows(source)
    assert stored_files(target) == stored_files(source)
    again, _ = user_data.export_library(target, None)
    assert {**again, "exported_at": ""} == {**document, "exported_at": ""}


def test_a_second_import_changes_nothing(source, target, tmp_path):
    file, archive, _ = export(source, tmp_path)
    user_data.import_library(target, file, archive, dry_run=False)
    before, files = user_rows(target), stored_files(target)

    report = user_data.import_library(target, file, archive, dry_run=False)

    assert {k: v for k, v in report.items() if k.endswith(("added", "merged", "created",
                                                           "linked"))} == dict.fromkeys(
        ("models_added", "models_merged", "tags_created", "tags_linked", "images_added",
         "settings_added", "servers_added"), 0)
    assert report["models_unchanged"] == 2 and report["images_present"] == 3
    assert report["image_files"]["extracted"] == 0
    assert user_rows(target) == before and stored_files(target) == files


def test_import_into_an_existing_library_merges_without_duplicates(source, target, tmp_path):
    file, archive, _ = export(source, tmp_path)
    db = store.connect(target.db_path)
    library.add_model(db, library.NewModel(
        sha256=INK, name="My ink", type="", size_bytes=10, created_at=9, tags=("STYLE", "mine"),
        meta={"notes": "my notes", "prompts": {"negative": "blurry"}}))
    library.add_model(db, library.NewModel(sha256=ONLY_B, name="Only here", type="vae",
                                           size_bytes=3, created_at=3))
    add_picture(db, target.images_dir, INK, BLUE, prompt="my own words")
    add_picture(db, target.images_dir, INK, GREEN)
    settings.write(db, target, {"nsfw_default": "show"})
    db.conn.close()

    report = user_data.import_library(target, file, archive, dry_run=False)

    assert (report["models_added"], report["models_merged"]) == (1, 1)
    db = store.connect(target.db_path)
    ink = library.get_model(db, INK)
    assert ink["name"] == "My ink"  # the existing edit wins
    assert ink["type"] == "loras" and ink["base_model"] == "SDXL"  # empty fields are filled
    meta = ink["meta_json"]
    assert meta["notes"] == "my notes" and meta["description"] == "inky"
    assert meta["prompts"] == {"negative": "blurry", "positive": "ink art"}
    tag_names = sorted(t["name"] for t in ink["tags"])
    assert tag_names == ["STYLE", "ink", "mine"]  # "Style" matched "STYLE" without case
    gallery = images.list_images(db, INK)
    contents = [image["image_sha256"] for image in gallery]
    assert len(contents) == len(set(contents)) == 3  # blue once, green kept, red appended
    assert gallery[0]["prompt"] == "my own words"
    assert library.get_model(db, ONLY_B)["name"] == "Only here"
    assert settings.read(db, target)["nsfw_default"] == "show"
    assert db.execute("SELECT count(*) FROM tags WHERE name = 'Style' COLLATE NOCASE"
                      ).fetchone()[0] == 1
    db.conn.close()
    [backup] = backups.listing(target.data_dir / "backups")  # the library as it was
    assert backup.reason == "import"


def test_a_field_the_user_cleared_is_not_refilled(source, target, tmp_path):
    file, archive, _ = export(source, tmp_path)
    db = store.connect(target.db_path)
    library.add_model(db, library.NewModel(sha256=INK, name="x", type="loras", size_bytes=1,
                                           created_at=1, meta={"description": "d"}))
    library.patch_model(db, INK, {"meta_json": {"description": None}})
    db.conn.close()
    user_data.import_library(target, file, archive, dry_run=False)
    db = store.connect(target.db_path)
    assert "description" not in library.get_model(db, INK)["meta_json"]
    db.conn.close()


def test_images_without_their_files_are_skipped_not_recorded(source, target, tmp_path):
    file, _, _ = export(source, tmp_path)
    report = user_data.import_library(target, file, None, dry_run=False)
    assert report["images_added"] == 0 and report["images_without_files"] == 3
    assert report["models_added"] == 2
    assert user_rows(target)["images"] == []


def test_a_dry_run_reports_and_writes_nothing(source, target, tmp_path):
    file, archive, _ = export(source, tmp_path)
    report = user_data.import_library(target, file, archive, dry_run=True)
    assert report["dry_run"] and report["models_added"] == 2 and report["images_added"] == 3
    assert not target.db_path.exists() and stored_files(target) == []


@pytest.mark.parametrize("text, code", [
    ("{not json", "BAD_JSON"),
    ('["a list"]', "WRONG_FORMAT"),
    ('{"format": "lora-manager", "schema_version": 1}', "WRONG_FORMAT"),
    ('{"format": "hikaze-user-data", "schema_version": 2, "exported_at": "", "models": []}',
     "NEWER_VERSION"),
    ('{"format": "hikaze-user-data", "schema_version": 1, "exported_at": ""}', "VALIDATION"),
    ('{"format": "hikaze-user-data", "schema_version": "1", "exported_at": "", "models": []}',
     "VALIDATION"),
    ('{"format": "hikaze-user-data", "schema_version": 1, "exported_at": "", "models": '
     '[{"sha256": "../../etc"}]}', "VALIDATION"),
    ('{"format": "hikaze-user-data", "schema_version": 1, "exported_at": "", "models": '
     f'[{{"sha256": "{INK}", "images": [{{"image_sha256": "{INK}", "width": "9", "height": 1}}]}}]}}',
     "VALIDATION"),
    ('{"format": "hikaze-user-data", "schema_version": 1, "exported_at": "", "models": '
     f'[{{"sha256": "{INK}", "meta": {{"nsfw_level": 99}}}}]}}', "VALIDATION"),
])
def test_a_bad_document_is_refused_with_nothing_written(source, tmp_path, text, code):
    _, archive, _ = export(source, tmp_path)
    before, files = user_rows(source), stored_files(source)
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(Invalid) as refused:
        user_data.import_library(source, bad, archive, dry_run=False)
    assert refused.value.code == code, refused.value.message
    assert user_rows(source) == before and stored_files(source) == files
    assert backups.listing(source.data_dir / "backups") == []


def test_a_broken_archive_is_refused_before_anything_is_written(source, target, tmp_path):
    file, _, _ = export(source, tmp_path)
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(Invalid) as refused:
        user_data.import_library(target, file, broken, dry_run=False)
    assert refused.value.code == "BAD_ARCHIVE"
    assert not target.db_path.exists()


def test_archive_members_outside_the_picture_names_are_ignored(source, target, tmp_path):
    file, archive, _ = export(source, tmp_path)
    with tarfile.open(archive, "a") as tar:
        for name in ("../../escape.webp", "/tmp/abs.webp", "images/../../x.png",
                     f"images/ab/{'c' * 64}.png", "images/notes.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
        link = tarfile.TarInfo(f"images/{RED_SHA[:2]}/{RED_SHA}.gif")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    report = user_data.import_library(target, file, archive, dry_run=False)
    assert report["image_files"]["ignored"] == 6
    assert stored_files(target) == stored_files(source)
    assert not (tmp_path / "escape.webp").exists() and not (tmp_path / "x.png").exists()

