"""Numbered, append-only schema migrations (sqlite-utils Migrations).

Never edit an applied migration: add the next number.
"""
from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("hikaze")


@migrations(name="0001_library")
def library(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE models (
            sha256      TEXT PRIMARY KEY CHECK (length(sha256) = 64),
            name        TEXT NOT NULL DEFAULT '',
            type        TEXT NOT NULL DEFAULT '',
            base_model  TEXT NOT NULL DEFAULT '',
            size_bytes  INTEGER NOT NULL DEFAULT 0,
            created_at  INTEGER NOT NULL,
            updated_at  INTEGER NOT NULL,
            meta        TEXT NOT NULL DEFAULT '{}',
            -- lower(display name), kept by the triggers below, so a page sorted by name is
            -- read straight from an index instead of sorting the whole kind
            sort_name   TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX models_type_name ON models(type, sort_name, sha256);
        CREATE INDEX models_name ON models(sort_name, sha256);
        CREATE INDEX models_type_created ON models(type, created_at);
        CREATE INDEX models_created ON models(created_at);
        CREATE INDEX models_type_size ON models(type, size_bytes);
        CREATE INDEX models_size ON models(size_bytes);

        CREATE TABLE files (
            path        TEXT PRIMARY KEY,
            sha256      TEXT,
            size_bytes  INTEGER NOT NULL,
            mtime_ns    INTEGER NOT NULL,
            inode       INTEGER,
            quick_fp    TEXT,
            kind        TEXT NOT NULL DEFAULT '',
            state       TEXT NOT NULL DEFAULT 'present' CHECK (state IN ('present', 'missing')),
            seen_at     INTEGER NOT NULL
        );
        CREATE INDEX files_sha256 ON files(sha256);

        CREATE TABLE tags (
            id    INTEGER PRIMARY KEY AUTOINCREMENT,
            name  TEXT NOT NULL UNIQUE COLLATE NOCASE
        );

        CREATE TABLE model_tags (
            sha256  TEXT NOT NULL REFERENCES models(sha256) ON DELETE CASCADE ON UPDATE CASCADE,
            tag_id  INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
            PRIMARY KEY (sha256, tag_id)
        ) WITHOUT ROWID;
        CREATE INDEX model_tags_tag ON model_tags(tag_id);

        CREATE TABLE images (
            id                 INTEGER PRIMARY KEY AUTOINCREMENT,
            sha256             TEXT NOT NULL REFERENCES models(sha256) ON DELETE CASCADE,
            seq                INTEGER NOT NULL,
            image_sha256       TEXT NOT NULL,
            width              INTEGER NOT NULL,
            height             INTEGER NOT NULL,
            nsfw_level         INTEGER NOT NULL DEFAULT 0,
            prompt             TEXT NOT NULL DEFAULT '',
            negative_prompt    TEXT NOT NULL DEFAULT '',
            generation_params  TEXT NOT NULL DEFAULT '{}',
            source             TEXT NOT NULL DEFAULT 'upload',
            created_at         INTEGER NOT NULL,
            UNIQUE (sha256, seq)
        );
        CREATE INDEX images_content ON images(image_sha256);

        CREATE TABLE settings (
            key    TEXT PRIMARY KEY,
            value  TEXT NOT NULL
        );
        """
    )
    _sort_name_triggers(db)


# The display name is the model's name, or else the file name of its first present file.
# `rtrim(path, <path without separators>)` leaves the folder part, so what follows is the name.
_SORT_NAME = """
    UPDATE models SET sort_name = lower(coalesce(nullif(name, ''), (
        SELECT substr(f.path, length(rtrim(f.path, replace(replace(f.path, '/', ''), '\\', ''))) + 1)
        FROM files f WHERE f.sha256 = models.sha256 ORDER BY f.state != 'present', f.path LIMIT 1
    ), sha256)) WHERE sha256 = {sha};
"""


def _sort_name_triggers(db: Database) -> None:
    statements = [
        ("models_sort_insert", "AFTER INSERT ON models", "NEW.sha256"),
        ("models_sort_rename", "AFTER UPDATE OF name ON models", "NEW.sha256"),
        ("files_sort_insert", "AFTER INSERT ON files", "NEW.sha256"),
        ("files_sort_update", "AFTER UPDATE OF path, sha256, state ON files", "NEW.sha256"),
        ("files_sort_update_old", "AFTER UPDATE OF sha256 ON files", "OLD.sha256"),
        ("files_sort_delete", "AFTER DELETE ON files", "OLD.sha256"),
    ]
    for name, event, sha in statements:
        db.execute(f"CREATE TRIGGER {name} {event} BEGIN {_SORT_NAME.format(sha=sha)} END")


def apply(db: Database) -> list[str]:
    """Bring the database to the latest schema; returns the names applied (empty if current)."""
    pending = [m.name for m in migrations.pending(db)]
    migrations.apply(db)
    return pending


@migrations(name="0002_pending")
def pending(db: Database) -> None:
    db.executescript(
        """
        -- Files and legacy records waiting for the user to import them. AUTOINCREMENT: an id
        -- is never reused, so a stale selection can never name another file.
        CREATE TABLE pending_import (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            path        TEXT NOT NULL UNIQUE,
            sha256      TEXT,
            name        TEXT NOT NULL DEFAULT '',
            type        TEXT NOT NULL DEFAULT '',
            size_bytes  INTEGER NOT NULL DEFAULT 0,
            created_at  INTEGER NOT NULL,
            meta        TEXT NOT NULL DEFAULT '{}',
            source      TEXT NOT NULL DEFAULT 'scan' CHECK (source IN ('scan', 'legacy')),
            legacy_id   INTEGER,
            image       TEXT NOT NULL DEFAULT ''   -- a file name under <data dir>/pending/
        );
        CREATE INDEX pending_sha256 ON pending_import(sha256);

        CREATE TABLE pending_tags (
            pending_id  INTEGER NOT NULL REFERENCES pending_import(id) ON DELETE CASCADE,
            tag_id      INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
            PRIMARY KEY (pending_id, tag_id)
        ) WITHOUT ROWID;
        CREATE INDEX pending_tags_tag ON pending_tags(tag_id);

        CREATE INDEX files_quick_fp ON files(quick_fp);
        CREATE INDEX files_state ON files(state, sha256);

        -- Answers of the opt-in Civitai lookup by hash; found = 0 is the negative cache.
        CREATE TABLE civitai_cache (
            sha256      TEXT PRIMARY KEY,
            found       INTEGER NOT NULL,
            fetched_at  INTEGER NOT NULL,
            payload     TEXT NOT NULL DEFAULT '{}'
        );
        """
    )


@migrations(name="0003_files_verify")
def files_verify(db: Database) -> None:
    # A file recognised as moved by its quick fingerprint takes the sha256 of the file it
    # replaces without being read; verify = 1 asks the hash job to confirm it in the
    # background (after the files that have no hash at all).
    db.executescript(
        """
        ALTER TABLE files ADD COLUMN verify INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX files_verify ON files(state) WHERE verify = 1;
        """
    )


@migrations(name="0004_disk_generation")
def disk_generation(db: Database) -> None:
    # A number that moves whenever something a scan compares changes: a files row, which paths
    # are pending, which contents are in the library. A rescan that walks the same files as the
    # last one while it stood still can skip reading the files table (edits of names, tags or
    # notes do not move it).
    db.executescript(
        """
        CREATE TABLE disk_generation (
            id     INTEGER PRIMARY KEY CHECK (id = 1),
            value  INTEGER NOT NULL
        );
        INSERT INTO disk_generation VALUES (1, 0);
        """
    )
    for name, event in [
        ("files_generation_insert", "AFTER INSERT ON files"),
        ("files_generation_delete", "AFTER DELETE ON files"),
        ("files_generation_update",
         "AFTER UPDATE OF path, size_bytes, mtime_ns, state, sha256 ON files"),
        ("pending_generation_insert", "AFTER INSERT ON pending_import"),
        ("pending_generation_delete", "AFTER DELETE ON pending_import"),
        ("pending_generation_update", "AFTER UPDATE OF path ON pending_import"),
        ("models_generation_insert", "AFTER INSERT ON models"),
        ("models_generation_delete", "AFTER DELETE ON models"),
    ]:
        db.execute(f"CREATE TRIGGER {name} {event} BEGIN "
                   "UPDATE disk_generation SET value = value + 1 WHERE id = 1; END")


@migrations(name="0005_nsfw_index")
def nsfw_index(db: Database) -> None:
    # The page hides NSFW models by default (max_nsfw_level=0): an index on the level keeps that
    # filter from parsing every model's meta on each list and count.
    level = "coalesce(json_extract(meta, '$.nsfw_level'), 0)"
    db.execute(f"CREATE INDEX models_nsfw ON models({level})")
    db.execute(f"CREATE INDEX models_type_nsfw ON models(type, {level})")


@migrations(name="0006_v1_filters")
def v1_filters(db: Database) -> None:
    # The public API filters by base model (case-insensitive) and by "has metadata". The second
    # index holds library.HAS_METADATA (the same expression, so the planner matches it): its
    # count parses no meta, and with created_at beside it the default newest-first page of a
    # filter that matches most models is read in order instead of sorting them all.
    db.execute("CREATE INDEX models_base_model ON models(base_model COLLATE NOCASE)")
    db.execute(
        """CREATE INDEX models_has_metadata ON models((
            coalesce(json_extract(meta, '$.description'), '') != ''
            OR coalesce(json_array_length(meta, '$.trigger_words'), 0) > 0
            OR coalesce(json_extract(meta, '$.source.model_id'),
                        json_extract(meta, '$.source.version_id'),
                        json_extract(meta, '$.source.url'), '') != ''), created_at)""")
