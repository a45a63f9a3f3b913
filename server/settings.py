"""The user's settings (NSFW default, auto-import) in the `settings` table, and the model roots as seen."""
from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from sqlite_utils import Database

from .config import Config
from .store import Store

NSFW_CHOICES = ("hide", "blur", "show")
# Each setting's default when the user never chose: auto_import's comes from the config file.
DEFAULTS: dict[str, Any] = {"nsfw_default": "hide", "auto_import": None}


def read(db: Database, config: Config) -> dict[str, Any]:
    """Every setting: the stored value, else its default."""
    stored = {key: json.loads(value) for key, value in
              db.execute("SELECT key, value FROM settings WHERE key IN (?, ?)", list(DEFAULTS))}
    values = {**DEFAULTS, "auto_import": config.auto_import}
    return {key: stored.get(key, default) for key, default in values.items()}


def write(db: Database, config: Config, changes: dict[str, Any]) -> dict[str, Any]:
    """Store the given (already validated) settings together; return them all."""
    with db.atomic():
        for key, value in changes.items():
            db.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       [key, json.dumps(value)])
    return read(db, config)


def auto_import(db: Database, config: Config) -> bool:
    """Whether hashed files are imported without review, as the user last chose it."""
    return bool(read(db, config)["auto_import"])


def roots(config: Config) -> list[dict[str, Any]]:
    """Every configured model folder with its kind, and whether it is there right now (an
    unmounted drive or a deleted folder is listed as not present)."""
    return [{"kind": kind.name, "path": str(root), "present": os.path.isdir(root)}
            for kind in config.kinds.values() for root in kind.roots]


async def snapshot(store: Store, config: Config, changes: dict[str, Any] | None = None) -> dict:
    """GET /api/settings (after storing `changes`, if any); folders are checked off the event
    loop and off the store thread, since a network drive may take a while to answer."""
    values = await store.run(write, config, changes) if changes else await store.run(read, config)
    seen = await asyncio.get_running_loop().run_in_executor(None, roots, config)
    return {**values, "roots": seen, "data_dir": str(config.data_dir)}
