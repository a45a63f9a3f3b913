"""Store: every call runs on the one owner thread; a failing write leaves nothing behind."""
import threading

import pytest

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
