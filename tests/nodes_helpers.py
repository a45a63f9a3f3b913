"""Shared builders for the node tests: a fake ComfyUI with a real library database in its
user dir (`<user dir>/hikaze/library.db`, as inside ComfyUI)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from nodes.host import Host
from server import library, store
from tests.comfy_fake import FakeComfy


def make_fake(root: Path, **kw) -> FakeComfy:
    return FakeComfy(root, **kw)


def add_to_library(fake: FakeComfy, kind: str, path: Path, meta: dict | None = None,
                   present: bool = True) -> str:
    """Put a file in the library database the nodes read, as an import would."""
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    db = store.connect(Host(fake.import_module).data_dir() / "library.db")
    try:
        library.add_model(db, library.NewModel(sha256=sha, name=path.stem, type=kind,
                                               size_bytes=path.stat().st_size,
                                               created_at=library.now_ms(), meta=meta or {},
                                               paths=(str(path),)))
        if not present:
            db.execute("UPDATE files SET state = 'missing' WHERE path = ?", [str(path)])
            db.conn.commit()
    finally:
        db.conn.close()
    return sha
