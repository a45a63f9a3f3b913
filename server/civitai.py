"""The opt-in Civitai lookup by sha256: a client that backs off on 429 and 5xx, a cache of its
answers (unknown hashes too), and the refresh that merges an answer into a library model.

A lookup that fails changes nothing: neither the model nor the cache.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web
from sqlite_utils import Database

from . import library, metadata, schemas
from .config import Config
from .errors import Forbidden, NotFound
from .events import Events
from .store import Store

log = logging.getLogger(__name__)

FOUND, NOT_FOUND, CACHED, FAILED = "found", "not_found", "cached", "failed"
UNKNOWN_MODEL = "unknown_model"  # bulk only: the hash is not in the library; nothing was asked
OUTCOMES = (FOUND, NOT_FOUND, CACHED, FAILED, UNKNOWN_MODEL)
SOURCE = "civitai"
DAY_MS = 24 * 3600 * 1000
NOT_FOUND_TTL_MS = 7 * DAY_MS  # an unknown hash is asked again after a week
FOUND_TTL_MS = 1 * DAY_MS  # a known one is re-read at most daily
USER_AGENT = "hikaze-model-manager"


@dataclass(frozen=True)
class Backoff:
    """How hard to retry: waits double from `base_delay`, each capped at `max_delay` (Retry-After
    too), all of them together at `max_total` seconds."""

    retries: int = 4
    base_delay: float = 2.0
    max_delay: float = 60.0
    max_total: float = 120.0
    timeout: float = 30.0  # one request


# Tests and embedders may put faster (or gentler) settings on the app under this key.
BACKOFF = web.AppKey("civitai_backoff", Backoff)


class LookupFailed(Exception):
    """Civitai gave no usable answer (network, 5xx, rate limit or a malformed reply)."""


@dataclass(frozen=True)
class Answer:
    """What Civitai knows about one hash: the fields taken from its model version, if found."""

    found: bool
    fields: dict


class Client:
    """Asks Civitai's `model-versions/by-hash` endpoint. Once a lookup has used up its retries
    (rate limited, 5xx, unreachable), later ones fail at once: a batch waits out one backoff,
    not one per hash, and does not hammer a struggling API."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, backoff: Backoff = Backoff(),
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.backoff = backoff
        self.sleep = sleep
        self.gave_up = False

    async def by_hash(self, sha256: str) -> Answer:
        if self.gave_up:
            raise LookupFailed("Civitai did not answer the previous lookup; not asked")
        url = f"{self.base_url}/api/v1/model-versions/by-hash/{sha256}"
        attempt, waited = 0, 0.0
        while True:
            outcome = await self._attempt(url)
            if isinstance(outcome, Answer):
                return outcome
            problem, retry_after = outcome
            delay = min(self.backoff.max_delay, self.backoff.base_delay * 2 ** attempt
                        if retry_after is None else retry_after)
            if attempt >= self.backoff.retries or waited + delay > self.backoff.max_total:
                self.gave_up = True
                raise LookupFailed(f"Civitai gave no usable answer ({problem}) in "
                                   f"{attempt + 1} tries")
            log.info("Civitai answered %s for %s; trying again in %.1f s", problem, sha256, delay)
            await self.sleep(delay)
            attempt, waited = attempt + 1, waited + delay

    async def _attempt(self, url: str) -> Answer | tuple[int | str, float | None]:
        """One request: an Answer, or (what went wrong, Retry-After) for a retryable failure."""
        try:
            async with self.session.get(url) as response:
                if response.status == 429 or response.status >= 500:
                    return response.status, _retry_after(response.headers.get("Retry-After"))
                body = await _json(response)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return type(exc).__name__, None
        if response.status == 200 and isinstance(body, dict) and "id" in body:
            return Answer(True, metadata.civitai_fields(body, self.base_url))
        if response.status == 404 and isinstance(body, dict) and "error" in body:
            return Answer(False, {})
        # 401/403 (a bad API key), a wrong civitai_url, a changed API: not worth retrying.
        raise LookupFailed(f"Civitai answered {response.status} with an unexpected body")


async def _json(response: aiohttp.ClientResponse) -> object:
    try:
        return json.loads(await response.read())
    except (ValueError, UnicodeDecodeError):
        return None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def require_enabled(config: Config) -> None:
    if not config.civitai_lookup:
        raise Forbidden("Civitai lookup is off. To allow it, set `civitai_lookup: true` in "
                        f"{config.config_file or config.data_dir / 'config.yaml'} and restart "
                        "the manager (optionally with `civitai_api_key`).",
                        code="CIVITAI_DISABLED")


@asynccontextmanager
async def open_client(config: Config, backoff: Backoff) -> AsyncIterator[Client]:
    """A Client over its own HTTP session, with the API key if one is configured."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if config.civitai_api_key:
        headers["Authorization"] = f"Bearer {config.civitai_api_key}"
    timeout = aiohttp.ClientTimeout(total=backoff.timeout)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        yield Client(session, config.civitai_url, backoff)


# --- refresh: the cache and the merge, on the store thread ------------------------------------

async def refresh(store: Store, client: Client, sha256: str, events: Events | None = None) -> str:
    """Look one library model up (or reuse a fresh cached answer) and merge what is found.
    NotFound if the model is not in the library; returns the outcome."""
    if not await store.run(has_model, sha256):
        raise NotFound(f"Model {sha256} is not in the library", code="MODEL_NOT_FOUND",
                       sha256=sha256)
    now = library.now_ms()
    answer = await store.run(cached_answer, sha256, now)
    outcome = CACHED
    if answer is None:
        try:
            answer = await client.by_hash(sha256)
        except LookupFailed as exc:
            log.warning("Civitai lookup of %s failed: %s; nothing was changed", sha256, exc)
            return FAILED
        outcome = FOUND if answer.found else NOT_FOUND
    changed = await store.run(save_answer, sha256, answer, now, outcome != CACHED)
    if changed and events is not None:
        events.publish("library", "model_changed", {"sha256": sha256})
    return outcome


async def refresh_many(store: Store, client: Client, sha256s: list[str],
                       events: Events | None = None) -> dict:
    """Refresh several models one after the other (politely); a report with a count per outcome."""
    results = []
    for sha256 in dict.fromkeys(sha256s):
        try:
            outcome = await refresh(store, client, sha256, events)
        except NotFound:
            outcome = UNKNOWN_MODEL
        results.append({"sha256": sha256, "lookup": outcome})
    counts = {o: sum(r["lookup"] == o for r in results) for o in OUTCOMES}
    return {"total": len(results), **counts, "results": results}


def has_model(db: Database, sha256: str) -> bool:
    return db.execute("SELECT 1 FROM models WHERE sha256 = ?", [sha256]).fetchone() is not None


def cached_answer(db: Database, sha256: str, now_ms: int) -> Answer | None:
    """The cached answer for `sha256` if it is still fresh."""
    row = db.execute("SELECT found, fetched_at, payload FROM civitai_cache WHERE sha256 = ?",
                     [sha256]).fetchone()
    if row is None:
        return None
    found, fetched_at, payload = row
    if now_ms - fetched_at > (FOUND_TTL_MS if found else NOT_FOUND_TTL_MS):
        return None
    return Answer(bool(found), json.loads(payload) if found else {})


def save_answer(db: Database, sha256: str, answer: Answer, now_ms: int, cache: bool) -> bool:
    """Remember the answer (when `cache`) and merge a found one into the model; True if the
    model changed. An answer of "not found" never removes anything."""
    with db.atomic():
        if cache:
            db.execute("INSERT OR REPLACE INTO civitai_cache(sha256, found, fetched_at, payload) "
                       "VALUES (?, ?, ?, ?)",
                       [sha256, int(answer.found), now_ms, json.dumps(answer.fields)])
        if not answer.found:
            return False
        return merge_into_model(db, sha256, answer.fields, SOURCE)


def merge_into_model(db: Database, sha256: str, fields: dict, source: str) -> bool:
    """Merge `fields` (meta fields, plus `name`, `base_model`; `tags` ignored) into a library
    model under metadata.merge_into's rules; True if anything changed."""
    row = db.execute("SELECT name, base_model, meta FROM models WHERE sha256 = ?",
                     [sha256]).fetchone()
    if row is None:
        return False
    name, base_model, meta = row[0], row[1], json.loads(row[2])
    incoming = {k: v for k, v in fields.items() if k != "tags"}
    merged = metadata.merge_into({**meta, "name": name, "base_model": base_model}, incoming, source)
    new_name, new_base = merged.pop("name"), merged.pop("base_model")
    if (new_name, new_base, merged) == (name, base_model, meta):
        return False
    schemas.check(schemas.META, merged, "meta")
    db["models"].update(sha256, {"name": new_name, "base_model": new_base,
                                 "updated_at": library.now_ms(),
                                 "meta": json.dumps(merged, ensure_ascii=False)})
    return True
