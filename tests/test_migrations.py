"""Migrations: empty → latest, re-applying is a no-op, data survives a reopen."""
import sqlite3

from server import migrations, store


def test_empty_database_reaches_the_latest_schema(tmp_path):
    db = store.connect(tmp_path / "library.db")
    assert {"models", "files", "tags", "model_tags", "images", "settings"} <= set(db.table_names())
    applied = [m.name for m in migrations.migrations.applied(db)]
    assert applied == [m.name for m in migrations.migrations._migrations]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_reapplying_is_a_no_op(tmp_path):
    db = store.connect(tmp_path / "library.db")
    db["tags"].insert({"name": "kept"})
    schema = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert migrations.apply(db) == []
    db.conn.close()
    again = store.connect(tmp_path / "library.db")
    assert again.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert [r["name"] for r in again["tags"].rows] == ["kept"]


def test_tag_names_are_unique_without_case(tmp_path):
    db = store.connect(tmp_path / "library.db")
    db["tags"].insert({"name": "Style"})
    try:
        db["tags"].insert({"name": "style"})
    except sqlite3.IntegrityError:
        pass
    else:
        raise AssertionError("a tag differing only in case was accepted")


def test_sort_name_follows_the_name_and_the_first_present_file(tmp_path):
    db = store.connect(tmp_path / "library.db")
    sha = "a" * 64
    db.execute("INSERT INTO models(sha256, name, created_at, updated_at) VALUES (?, '', 0, 0)", [sha])
    sort_name = lambda: db.execute("SELECT sort_name FROM models").fetchone()[0]  # noqa: E731
    assert sort_name() == sha  # no name, no file yet
    db["files"].insert({"path": "C:\\models\\Apple.safetensors", "sha256": sha, "size_bytes": 1,
                        "mtime_ns": 0, "seen_at": 0})
    assert sort_name() == "apple.safetensors"  # Windows separators too
    db["files"].insert({"path": "/m/loras/Zebra.safetensors", "sha256": sha, "size_bytes": 1,
                        "mtime_ns": 0, "seen_at": 0})
    assert sort_name() == "zebra.safetensors"  # the first file by path
    db.execute("UPDATE files SET state = 'missing' WHERE path LIKE '/m/%'")
    assert sort_name() == "apple.safetensors"  # a present file comes first
    db.execute("UPDATE models SET name = 'My Model'")
    assert sort_name() == "my model"
    db.execute("UPDATE models SET name = ''")
    db.execute("DELETE FROM files WHERE path LIKE 'C:%'")
    assert sort_name() == "zebra.safetensors"
