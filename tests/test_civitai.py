"""civitai.py against a local fake Civitai: answers merged, the caches, backoff on 429 and 5xx,
and failures that change nothing. Never the real internet."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest

from server import civitai, library
from server.civitai import Backoff, Client
from server.store import Store
from tests.fake_civitai import FakeCivitai, fake_civitai  # noqa: F401  (the fixture)

INK, GLOW, UNKNOWN = "ab" * 32, "cd" * 32, "ef" * 32
FAST = Backoff(retries=3, base_delay=1.0, max_delay=5.0, max_total=100.0, timeout=5.0)


@dataclass
class Lookups:
    store: Store
    fake: FakeCivitai
    waits: list[float]

    def __post_init__(self) -> None:
        self._sessions: list[aiohttp.ClientSession] = []

    async def client(self, backoff: Backoff = FAST) -> Client:
        session = aiohttp.ClientSession()
        self._sessions.append(session)
        return Client(session, self.fake.url, backoff, sleep=self._sleep)

    async def refresh(self, sha: str, **client) -> str:
        return await civitai.refresh(self.store, await self.client(**client), sha)

    async def model(self, sha: str) -> dict:
        return await self.store.run(library.get_model, sha)

    async def cache(self, sha: str) -> tuple | None:
        return await self.store.run(lambda db: db.execute(
            "SELECT found, fetched_at, payload FROM civitai_cache WHERE sha256 = ?",
            [sha]).fetchone())

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)  # recorded, not slept: the tests stay fast

    async def close(self) -> None:
        for session in self._sessions:
            await session.close()


@pytest.fixture
async def lookups(tmp_path: Path, fake_civitai) -> Lookups:  # noqa: F811
    store = Store(tmp_path / "library.db")
    await store.open()
    for sha, meta in ((INK, {}), (GLOW, {"description": "hand-written"})):
        await store.run(library.add_model, library.NewModel(
            sha256=sha, name="", type="loras", size_bytes=1, created_at=1, meta=meta))
    found = Lookups(store, fake_civitai, [])
    yield found
    await found.close()
    await store.close()


async def test_found_fills_the_model(lookups):
    lookups.fake.found(INK, nsfw_level=2)
    assert await lookups.refresh(INK) == civitai.FOUND
    model = await lookups.model(INK)
    assert (model["name"], model["base_model"]) == ("Ink Style", "SDXL 1.0")
    meta = model["meta_json"]
    link = f"{lookups.fake.url}/models/1234?modelVersionId=5678"
    assert meta["trigger_words"] == ["inkstyle", "sumi-e"]
    assert meta["description"] == "Ink wash style & brush strokes.\nUse at 0.8."
    assert meta["community_links"] == link
    assert meta["source"] == {"provider": "civitai", "model_id": 1234, "version_id": 5678,
                              "url": link}
    assert meta["nsfw_level"] == 2
    assert set(meta["sources"].values()) == {"civitai"}
    found, _, payload = await lookups.cache(INK)
    assert found == 1 and json.loads(payload)["name"] == "Ink Style"
    assert lookups.waits == []


async def test_the_configured_api_key_is_sent_as_a_bearer_token(lookups, make_config):
    lookups.fake.found(INK)
    config = make_config(civitai_url=lookups.fake.url, civitai_api_key="k1")
    async with civitai.open_client(config, FAST) as client:
        assert (await client.by_hash(INK)).found
    async with civitai.open_client(replace(config, civitai_api_key=""), FAST) as client:
        await client.by_hash(INK)
    first, second = (headers for _, headers in lookups.fake.requests)
    assert first["Authorization"] == "Bearer k1" and "Authorization" not in second


async def test_user_edits_and_hand_written_values_are_kept(lookups):
    lookups.fake.found(INK)
    lookups.fake.found(GLOW)
    await lookups.store.run(library.patch_model, INK, {"name": "My ink",
                                                       "meta_json": {"trigger_words": ["mine"]}})
    await lookups.refresh(INK)
    await lookups.refresh(GLOW)
    ink, glow = await lookups.model(INK), await lookups.model(GLOW)
    assert (ink["name"], ink["meta_json"]["trigger_words"]) == ("My ink", ["mine"])
    assert ink["meta_json"]["description"].startswith("Ink wash")  # blank, so filled
    assert glow["meta_json"]["description"] == "hand-written"
    assert glow["name"] == "Ink Style"


async def test_not_found_is_cached_and_not_asked_again(lookups):
    assert await lookups.refresh(INK) == civitai.NOT_FOUND
    assert await lookups.refresh(INK) == civitai.CACHED
    assert lookups.fake.asked(INK) == 1
    found, _, _ = await lookups.cache(INK)
    assert found == 0
    assert (await lookups.model(INK))["meta_json"] == {}


async def test_an_expired_negative_answer_is_asked_again(lookups):
    await lookups.refresh(INK)
    week_ago = library.now_ms() - civitai.NOT_FOUND_TTL_MS - 1
    await lookups.store.run(lambda db: db.execute(
        "UPDATE civitai_cache SET fetched_at = ? WHERE sha256 = ?", [week_ago, INK]))
    lookups.fake.found(INK)
    assert await lookups.refresh(INK) == civitai.FOUND
    assert lookups.fake.asked(INK) == 2


async def test_a_cached_positive_answer_is_reused(lookups):
    lookups.fake.found(INK)
    await lookups.refresh(INK)
    assert await lookups.refresh(INK) == civitai.CACHED
    assert lookups.fake.asked(INK) == 1


async def test_not_found_never_removes_what_an_earlier_lookup_found(lookups):
    lookups.fake.found(INK)
    await lookups.refresh(INK)
    before = await lookups.model(INK)
    await lookups.store.run(lambda db: db.execute("DELETE FROM civitai_cache"))
    del lookups.fake.answers[INK]
    assert await lookups.refresh(INK) == civitai.NOT_FOUND
    after = await lookups.model(INK)
    assert (after["name"], after["meta_json"]) == (before["name"], before["meta_json"])


async def test_429_waits_for_retry_after_then_succeeds(lookups):
    body = lookups.fake.found(INK)
    lookups.fake.script(INK, (429, {"error": "Too many"}, {"Retry-After": "3"}), (200, body, {}))
    assert await lookups.refresh(INK) == civitai.FOUND
    assert lookups.waits == [3.0]
    assert lookups.fake.asked(INK) == 2


async def test_retry_after_is_capped(lookups):
    body = lookups.fake.found(INK)
    lookups.fake.script(INK, (429, None, {"Retry-After": "3600"}), (200, body, {}))
    assert await lookups.refresh(INK) == civitai.FOUND
    assert lookups.waits == [FAST.max_delay]


async def test_retry_after_as_an_http_date(lookups):
    body = lookups.fake.found(INK)
    lookups.fake.script(INK, (429, None, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                        (200, body, {}))
    assert await lookups.refresh(INK) == civitai.FOUND
    assert lookups.waits == [0.0]  # a date in the past: at once


async def test_repeated_5xx_fails_and_changes_nothing(lookups):
    await lookups.store.run(library.patch_model, INK, {"meta_json": {"notes": "keep"}})
    before = await lookups.model(INK)
    lookups.fake.script(INK, (500, None, {}), (502, {"error": "bad gateway"}, {}), (503, None, {}))
    assert await lookups.refresh(INK) == civitai.FAILED
    assert lookups.fake.asked(INK) == FAST.retries + 1
    assert lookups.waits == [1.0, 2.0, 4.0]  # doubling from base_delay
    assert await lookups.model(INK) == before
    assert await lookups.cache(INK) is None


async def test_waits_stop_at_the_total_cap(lookups):
    lookups.fake.script(INK, (500, None, {}))
    backoff = replace(FAST, retries=10, max_delay=4.0, max_total=6.0)
    assert await lookups.refresh(INK, backoff=backoff) == civitai.FAILED
    assert lookups.waits == [1.0, 2.0]  # the next (4.0) would pass 6 s in all
    assert lookups.fake.asked(INK) == 3


@pytest.mark.parametrize("answer", [(429, None, {"Retry-After": "1"}), (503, None, {})])
async def test_after_giving_up_the_client_asks_no_more(lookups, answer):
    lookups.fake.script(INK, answer)
    lookups.fake.found(GLOW)
    client = await lookups.client(replace(FAST, retries=1))
    assert await civitai.refresh(lookups.store, client, INK) == civitai.FAILED
    assert await civitai.refresh(lookups.store, client, GLOW) == civitai.FAILED
    assert lookups.fake.asked(GLOW) == 0


async def test_an_unusable_answer_does_not_stop_the_next_lookup(lookups):
    lookups.fake.script(INK, (401, {"error": "Unauthorized"}, {}))
    lookups.fake.found(GLOW)
    client = await lookups.client()
    assert await civitai.refresh(lookups.store, client, INK) == civitai.FAILED
    assert await civitai.refresh(lookups.store, client, GLOW) == civitai.FOUND


@pytest.mark.parametrize("status, body", [
    (401, {"error": "Unauthorized"}), (200, ["not", "a", "version"]), (404, None),
    (200, {"no": "id"})])
async def test_unusable_answers_fail_at_once_and_cache_nothing(lookups, status, body):
    lookups.fake.script(INK, (status, body, {}))
    assert await lookups.refresh(INK) == civitai.FAILED
    assert lookups.fake.asked(INK) == 1 and lookups.waits == []
    assert await lookups.cache(INK) is None


async def test_an_unreachable_server_fails(lookups):
    lookups.fake.url = "http://127.0.0.1:9"  # the discard port: nothing listens
    assert await lookups.refresh(INK) == civitai.FAILED
    assert len(lookups.waits) == FAST.retries


async def test_a_model_not_in_the_library_is_not_asked_about(lookups):
    with pytest.raises(civitai.NotFound):
        await lookups.refresh(UNKNOWN)
    assert lookups.fake.requests == []


async def test_refresh_many_reports_each_outcome(lookups):
    lookups.fake.found(INK)
    report = await civitai.refresh_many(lookups.store, await lookups.client(),
                                        [INK, GLOW, UNKNOWN, INK])
    assert report["results"] == [{"sha256": INK, "lookup": "found"},
                                 {"sha256": GLOW, "lookup": "not_found"},
                                 {"sha256": UNKNOWN, "lookup": "unknown_model"}]
    assert (report["total"], report["found"], report["not_found"], report["unknown_model"],
            report["failed"], report["cached"]) == (3, 1, 1, 1, 0, 0)
