"""Hikaze v1 database → library and pending queue: read-only on v1, idempotent, never overwriting.

A v1 model with a 64-hex hash goes to the library (a model whose file the library already knows
by path counts as hashed); any other to the pending queue. The first run that reaches a library
model fills only its blank fields, adds tags and images, and leaves a `legacy` record in its meta
(v1 ids, migrated image names, v1 params); later runs leave such a model alone except for retrying
images that were missing. A pending item is marked by its `legacy_id` the same way.

A real run first backs the library up (backups.py). Reading v1 and Pillow run on a worker
thread; each model is written in its own transaction on the store thread. A dry run makes the
same decisions in a transaction it rolls back, and stores no file.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from sqlite_utils import Database

from . import backups, images, legacy_source, library, metadata, pending, schemas, tags
from .config import Config
from .errors import Conflict, Invalid
from .events import Events
from .legacy_source import LegacyModel, Prepared, Source, Target, image_name
from .store import Store, transaction

log = logging.getLogger(__name__)
T = TypeVar("T")
COUNTERS = ("migrated", "pending", "skipped", "errors", "images_processed", "image_errors")
PROGRESS_EVERY_S = 0.25


@dataclass
class Outcome:
    model: LegacyModel
    result: str = "error"  # migrated | pending | skipped | error
    message: str = ""
    images_processed: int = 0
    image_errors: list[str] = field(default_factory=list)

    def detail(self) -> dict | None:
        """The report line for this model, or None when there is nothing to say."""
        if self.result in ("migrated", "pending") and not (self.image_errors or self.model.notes):
            return None
        entry: dict[str, Any] = {"legacy_ids": list(self.model.ids), "path": self.model.path,
                                 "result": self.result}
        messages = [m for m in (self.message, *self.model.notes) if m]
        if messages:
            entry["message"] = "; ".join(messages)
        if self.image_errors:
            entry["image_errors"] = self.image_errors
        return entry


@dataclass
class Report:
    dry_run: bool
    total: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    details: list[dict] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.counts["errors" if outcome.result == "error" else outcome.result] += 1
        self.counts["images_processed"] += outcome.images_processed
        self.counts["image_errors"] += len(outcome.image_errors)
        detail = outcome.detail()
        if detail:
            self.details.append(detail)

    def as_dict(self) -> dict:
        return {"status": "success" if self.counts["errors"] == 0 else "partial",
                "dry_run": self.dry_run, "total": self.total, **self.counts,
                "details": self.details}


class Migration:
    """Runs migrations with the app's resources: the store, a worker pool, the events hub."""

    def __init__(self, store: Store, worker: Executor, config: Config,
                 events: Events | None = None) -> None:
        self.store = store
        self.worker = worker
        self.config = config
        self.events = events

    async def run(self, db_path: str, images_dir: str | None = None,
                  dry_run: bool = False) -> dict:
        """Check the paths (ApiError if unusable), then migrate; returns the report."""
        return await self.migrate(await self.check(db_path, images_dir), dry_run)

    async def check(self, db_path: str, images_dir: str | None = None) -> Source:
        return await self._work(legacy_source.check, db_path, images_dir)

    async def migrate(self, source: Source, dry_run: bool = False) -> dict:
        models = await self._work(legacy_source.read, source)
        if not dry_run:  # the library as it was, in case the user wants it back
            await self.store.run(backup_library, self.store.path)
        report = Report(dry_run, total=len(models))
        last = 0.0
        for done, model in enumerate(models, 1):
            report.add(await self._migrate_one(model, source, dry_run))
            if done == len(models) or time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                self._publish("legacy_progress", {"done": done, "total": len(models),
                                                  **report.counts})
        result = report.as_dict()
        self._publish("legacy_completed", {k: v for k, v in result.items() if k != "details"})
        log.info("Legacy migration of %s%s: %s", source.db_path, " (dry run)" if dry_run else "",
                 ", ".join(f"{k} {v}" for k, v in report.counts.items()))
        return result

    async def _migrate_one(self, model: LegacyModel, source: Source, dry_run: bool) -> Outcome:
        target = await self.store.run(find_target, model)
        prepared: list[Prepared] = []
        if target.wanted:
            prepared = await self._work(legacy_source.prepare_images, model, target,
                                        source.images_dir, self.config, dry_run)
        return await self.store.run(write_model, model, target.sha256, prepared,
                                    self.config.images_dir, dry_run)

    async def _work(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.worker, fn, *args)

    def _publish(self, type_: str, data: dict) -> None:
        if self.events is not None:
            self.events.publish("import", type_, data)


def run_standalone(config: Config, db_path: str, images_dir: str | None = None,
                   dry_run: bool = False) -> dict:
    """The migration outside the server (the CLI): its own store and worker thread.

    The paths are checked before the library is opened, so a typo creates nothing.
    """
    async def main() -> dict:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hikaze-legacy") as worker:
            source = await asyncio.get_running_loop().run_in_executor(
                worker, legacy_source.check, db_path, images_dir)
            # A dry run with no library yet compares against an empty one, and creates none.
            fresh = dry_run and not config.db_path.exists()
            store = Store(Path(":memory:") if fresh else config.db_path)
            migration = Migration(store, worker, config)
            await store.open()
            try:
                return await migration.migrate(source, dry_run)
            finally:
                await store.close()

    return asyncio.run(main())


def backup_library(db: Database, db_path: Path) -> backups.Backup:
    return backups.make(db.conn, backups.folder_of(db_path), "legacy-import")


# --- store thread: decide ---------------------------------------------------------------------

def find_target(db: Database, model: LegacyModel) -> Target:
    sha = model.sha256 or _library_sha_of(db, model.path)
    if sha is None:
        row = db.execute("SELECT image FROM pending_import WHERE path = ?", [model.path]).fetchone()
        return Target(None, model.images if row is None or not row[0] else ())
    row = db.execute("SELECT meta FROM models WHERE sha256 = ?", [sha]).fetchone()
    done = _migrated_images(json.loads(row[0])) if row else []
    gallery = frozenset(r[0] for r in db.execute(
        "SELECT image_sha256 FROM images WHERE sha256 = ?", [sha]))
    return Target(sha, tuple(r for r in model.images if image_name(r) not in done), gallery)


def _library_sha_of(db: Database, path: str) -> str | None:
    """The library model whose file is at `path` (an earlier pending item imported since)."""
    row = db.execute("SELECT f.sha256 FROM files f JOIN models m ON m.sha256 = f.sha256 "
                     "WHERE f.path = ?", [path]).fetchone()
    return row[0] if row else None


def _migrated_images(meta: dict) -> list[str]:
    marker = meta.get("legacy")
    names = marker.get("images") if isinstance(marker, dict) else None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


# --- store thread: write ----------------------------------------------------------------------

def write_model(db: Database, model: LegacyModel, sha256: str | None, prepared: list[Prepared],
                images_dir: Path, dry_run: bool) -> Outcome:
    """Write one v1 model in one transaction (rolled back for a dry run)."""
    outcome = Outcome(model, image_errors=[p.error for p in prepared if p.error])
    try:
        with transaction(db, keep=not dry_run):
            if sha256 is None:
                _into_pending(db, model, prepared, outcome)
            else:
                _into_library(db, model, sha256, prepared, outcome)
    except (Invalid, Conflict, sqlite3.IntegrityError) as exc:
        outcome.result, outcome.message = "error", legacy_source.message(exc)
        outcome.images_processed = 0
        log.warning("Legacy model %s (%s) not migrated: %s", model.ids, model.path, exc)
    stored = [p.content.image_sha256 for p in prepared if p.content]
    if stored and not dry_run:  # a picture whose record was not written needs no files
        images.remove_unused(db, images_dir, stored)
    return outcome


def _into_library(db: Database, model: LegacyModel, sha256: str, prepared: list[Prepared],
                  outcome: Outcome) -> None:
    row = db.execute("SELECT name, type, meta FROM models WHERE sha256 = ?", [sha256]).fetchone()
    marker = {"ids": list(model.ids), "images": [], **model.extras}
    if row is None:
        library.add_model(db, library.NewModel(
            sha256=sha256, name=model.name, type=model.type, size_bytes=model.size_bytes,
            created_at=model.created_at or library.now_ms(), tags=model.tags,
            meta={**model.meta, "legacy": marker}))
        outcome.result = "migrated"
    elif "legacy" in json.loads(row[2]):
        outcome.result, outcome.message = "skipped", "already migrated; later edits kept"
    else:
        _fill_library_blanks(db, model, sha256, row, marker)
        outcome.result = "migrated"
    for path in model.present:  # a path the scanner already knows keeps what it found
        if db.execute("SELECT 1 FROM files WHERE path = ?", [path]).fetchone() is None:
            with suppress(FileNotFoundError):  # gone since it was looked at: a scan will see
                library.record_file(db, path, model.type, sha256)
    _add_gallery_images(db, sha256, prepared, outcome)


def _fill_library_blanks(db: Database, model: LegacyModel, sha256: str, row: tuple,
                         marker: dict) -> None:
    """A model already in the library keeps what it has; v1 fills only what is blank, and never
    a field the user set (even to blank: meta.sources records those)."""
    name, type_, meta = row
    current = json.loads(meta)
    sources = current.get("sources") if isinstance(current.get("sources"), dict) else {}
    user_set = {key for key, source in sources.items() if source == metadata.USER}
    incoming = {key: value for key, value in model.meta.items() if key not in user_set}
    merged = {**legacy_source.fill_blanks(current, incoming), "legacy": marker}
    schemas.check(schemas.META, merged, "meta")
    db["models"].update(sha256, {
        "name": name or ("" if "name" in user_set else model.name), "type": type_ or model.type,
        "updated_at": library.now_ms(), "meta": json.dumps(merged, ensure_ascii=False)})
    _link_tags(db, "model_tags", "sha256", sha256, model.tags)


def _add_gallery_images(db: Database, sha256: str, prepared: list[Prepared],
                        outcome: Outcome) -> None:
    """Each new picture once per gallery; every picture handled is remembered in the marker."""
    done = [p.name for p in prepared if not p.error]
    if not done:
        return
    gallery = {r[0] for r in db.execute("SELECT image_sha256 FROM images WHERE sha256 = ?",
                                        [sha256])}
    for item in prepared:
        if item.content and item.content.image_sha256 not in gallery:
            images.add_image(db, sha256, item.content, images.ImageFields(source="legacy"),
                             library.now_ms())
            gallery.add(item.content.image_sha256)
            outcome.images_processed += 1
    meta = json.loads(db.execute("SELECT meta FROM models WHERE sha256 = ?",
                                 [sha256]).fetchone()[0])
    names = list(dict.fromkeys(_migrated_images(meta) + done))
    db.execute("UPDATE models SET meta = json_set(meta, '$.legacy.images', json(?)) "
               "WHERE sha256 = ?", [json.dumps(names), sha256])


def _into_pending(db: Database, model: LegacyModel, prepared: list[Prepared],
                  outcome: Outcome) -> None:
    used = next((p for p in prepared if p.preview), None)
    preview = used.preview if used else ""
    # The marker travels into the library when the item is imported; its picture counts as done.
    marker = {"ids": list(model.ids), "images": [used.name] if used else [], **model.extras}
    row = db.execute("SELECT id, name, type, meta, legacy_id, image FROM pending_import "
                     "WHERE path = ?", [model.path]).fetchone()
    outcome.result = "pending"
    if row is None:
        pending.add_pending(db, pending.NewPending(
            path=model.path, created_at=model.created_at or library.now_ms(), name=model.name,
            type=model.type, size_bytes=model.size_bytes, meta={**model.meta, "legacy": marker},
            source="legacy", legacy_id=model.ids[0], image=preview, tags=model.tags))
    elif row[4] is None:  # queued by a scan: the v1 record fills its blanks
        pending_id, name, type_, meta, _, image = row
        merged = {**legacy_source.fill_blanks(json.loads(meta), model.meta), "legacy": marker}
        db["pending_import"].update(pending_id, {
            "name": name or model.name, "type": type_ or model.type, "legacy_id": model.ids[0],
            "meta": json.dumps(merged, ensure_ascii=False), "image": image or preview})
        _link_tags(db, "pending_tags", "pending_id", pending_id, model.tags)
    else:
        outcome.result, outcome.message = "skipped", "already pending"
        if preview and not row[5]:  # its picture was missing last time
            db["pending_import"].update(row[0], {"image": preview})
    outcome.images_processed = int(bool(preview))  # prepared only for an item without one


def _link_tags(db: Database, table: str, column: str, owner: Any, names: tuple[str, ...]) -> None:
    tag_ids = [tag["id"] for tag in tags.ensure_tags(db, names)]
    db.conn.executemany(f"INSERT OR IGNORE INTO {table}({column}, tag_id) VALUES (?, ?)",
                        [(owner, tag_id) for tag_id in tag_ids])
