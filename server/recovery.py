"""Start-up clean-up of what a killed manager left half done: temp files, pictures stored for
an image record that was never committed, and pending previews no pending item names."""
from __future__ import annotations

import logging
import re
from pathlib import Path

from sqlite_utils import Database

log = logging.getLogger(__name__)
_CONTENT = re.compile(r"[0-9a-f]{64}")


def clean_up(db: Database, images_dir: Path, pending_dir: Path) -> int:
    """Delete the leftovers of an interrupted write; returns how many files went. Run on the
    store thread before the app serves anything, so no upload can be recording one of them."""
    removed = [*_temp_files(images_dir), *_temp_files(pending_dir),
               *_unrecorded_pictures(db, images_dir), *_unnamed_previews(db, pending_dir)]
    for path in removed:
        path.unlink(missing_ok=True)
    if removed:
        log.warning("Removed %d files an interrupted write left in %s (temp files, pictures "
                    "without a record)", len(removed), images_dir.parent)
    return len(removed)


def _temp_files(folder: Path) -> list[Path]:
    # image_files.write_atomic names them `.<uuid>.tmp`; its rename never happened.
    return [p for p in folder.glob("**/.*.tmp") if p.is_file()] if folder.is_dir() else []


def _unrecorded_pictures(db: Database, images_dir: Path) -> list[Path]:
    """Files of image contents no record uses: stored, then the process died before the
    record was written (an upload is acknowledged only after both)."""
    if not images_dir.is_dir():
        return []
    recorded = {row[0] for row in db.execute("SELECT DISTINCT image_sha256 FROM images")}
    return [p for p in images_dir.glob("??/*") if p.is_file() and not p.name.startswith(".")
            and _CONTENT.fullmatch(p.name[:64]) and p.name[:64] not in recorded]


def _unnamed_previews(db: Database, pending_dir: Path) -> list[Path]:
    """Stored previews of pending items whose row was never written (release_image deletes
    them once the last item naming them is gone, so any other is a leftover)."""
    if not pending_dir.is_dir():
        return []
    named = {row[0] for row in db.execute("SELECT DISTINCT image FROM pending_import")}
    return [p for p in pending_dir.iterdir() if p.is_file() and not p.name.startswith(".")
            and p.name not in named]
