"""Numbered, append-only schema migrations (sqlite-utils Migrations).

Never edit an applied migration: add the next number. 0002 is reserved for the pending-import
tables that arrive with model discovery.
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
            meta        TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX models_type ON models(type);
        CREATE INDEX models_created ON models(created_at);

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


def apply(db: Database) -> list[str]:
    """Bring the database to the latest schema; returns the names applied (empty if current)."""
    pending = [m.name for m in migrations.pending(db)]
    migrations.apply(db)
    return pending
