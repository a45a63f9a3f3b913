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
