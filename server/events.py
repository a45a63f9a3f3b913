"""The events hub: background work publishes `{channel, type, data}`; WebSocket clients
subscribe to channels (`scan`, `import`, `library`, `queue`).

`publish` may be called from any thread. Each subscriber has a bounded queue: a client too slow
to keep up loses the oldest events rather than growing the sidecar's memory.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

CHANNELS = frozenset({"scan", "import", "library", "queue"})
QUEUE_SIZE = 256


class Subscriber:
    """One client's view of the hub: the channels it wants and the events waiting for it."""

    def __init__(self) -> None:
        self.channels: set[str] = set()
        self.queue: asyncio.Queue[dict] = asyncio.Queue(QUEUE_SIZE)

    def offer(self, event: dict) -> None:
        if event["channel"] not in self.channels:
            return
        if self.queue.full():
            self.queue.get_nowait()  # drop the oldest: progress is superseded anyway
        self.queue.put_nowait(event)


class Events:
    def __init__(self) -> None:
        self._subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the event loop, so threads can publish through it."""
        self._loop, self._loop_thread = loop, threading.get_ident()

    def publish(self, channel: str, type_: str, data: dict[str, Any]) -> None:
        event = {"channel": channel, "type": type_, "data": data}
        if self._loop is None or self._loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            self._deliver(event)
        else:
            self._loop.call_soon_threadsafe(self._deliver, event)

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def _deliver(self, event: dict) -> None:
        for subscriber in self._subscribers:
            subscriber.offer(event)
