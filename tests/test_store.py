"""Store: every call runs on the one owner thread; a failing write leaves nothing behind."""
import threading

import pytest

from server.errors import StorageFull
from server.store import Store


async def test_work_runs_on_one_thread(tmp_path):
    store = Store(tmp_path / "library.db")
    await store.open()
    try:
        names = {await store.run(lambda db: threading.current_thread().name) for _ in range(5)}
        assert len(names) == 1 and names.pop().startswith("hikaze-store")
    finally:
        await store.close()


async def test_a_failed_transaction_is_rolled_back(tmp_path):
    store = Store(tmp_path / "library.db")
    await store.open()

    def half_done(db):
        with db.atomic():
            db.execute("INSERT INTO tags(name) VALUES ('first')")
            raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError):
            await store.run(half_done)
        assert await store.run(lambda db: db.execute("SELECT count(*) FROM tags").fetchone()[0]) == 0
    finally:
        await store.close()


async def test_run_before_open_is_an_error(tmp_path):
    store = Store(tmp_path / "library.db")
    with pytest.raises(RuntimeError, match="not open"):
        await store.run(lambda db: None)
    await store.close()


async def test_a_write_the_disk_has_no_room_for_is_storage_full_and_changes_nothing(tmp_path):
    store = Store(tmp_path / "library.db")
    await store.open()

    def fill(db):
        # A page limit makes SQLite's own "database or disk is full" (SQLITE_FULL), as a full
        # disk would.
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 2}")
        with db.atomic():
            for i in range(1000):
                db.execute("INSERT INTO tags(name) VALUES (?)", [f"tag {i} " + "x" * 500])

    try:
        with pytest.raises(StorageFull) as caught:
            await store.run(fill)
        assert caught.value.status == 507 and caught.value.code == "DISK_FULL"
        assert await store.run(lambda db: db.execute("SELECT count(*) FROM tags").fetchone()[0]) == 0
        await store.run(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))
        await store.run(lambda db: db.execute("INSERT INTO tags(name) VALUES ('room again')"))
    finally:
        await store.close()
