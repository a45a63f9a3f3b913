"""create_app(config): the sidecar's aiohttp application with its resources and routes."""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator

from aiohttp import web

from . import backups, demo, integrity, recovery, routes, security
from .api_key import ApiKey
from .app_keys import (API_KEY, CONFIG, EVENTS, GALLERY, GEN_QUEUE, IMAGE_THREADS, JOBS,
                       LIBRARY_STATE, SCANNER, STARTED_AT, STORE)
from .config import Config
from .errors import error_middleware
from .events import Events
from .images import Gallery
from .jobs import Jobs
from .queue import Queue
from .scanner import Scanner
from .store import Store

log = logging.getLogger(__name__)
FORM_OVERHEAD = 1024 * 1024  # room for the text fields beside an upload of the maximum size
IMAGE_WORKERS = 2
# aiohttp's parser refuses a longer request line with a plain-text 400 before any middleware
# sees it; room for a few long ids or paths keeps even those answers in the JSON error envelope.
MAX_REQUEST_LINE = 64 * 1024
BACKGROUND_NICE = 10


def create_app(config: Config) -> web.Application:
    state = integrity.LibraryState()
    app = web.Application(
        middlewares=[security.make_middleware(config.cors_origins, config.allowed_hosts),
                     integrity.make_middleware(state), error_middleware],
        client_max_size=config.max_upload_bytes + FORM_OVERHEAD,
        handler_args={"max_line_size": MAX_REQUEST_LINE},
    )
    store = Store(config.db_path)
    # Leave a core for the event loop and the store thread while pictures are resized, and
    # cap the count: each large picture in work holds tens of MB.
    threads = ThreadPoolExecutor(max_workers=max(1, min(IMAGE_WORKERS, (os.cpu_count() or 2) - 1)),
                                 thread_name_prefix="hikaze-image", initializer=lower_priority)
    app[CONFIG] = config
    app[LIBRARY_STATE] = state
    app[API_KEY] = ApiKey.in_data_dir(config.data_dir)
    app[STORE] = store
    app[IMAGE_THREADS] = threads
    app[GALLERY] = Gallery(store, config.images_dir, threads)
    app[EVENTS] = Events()
    app[STARTED_AT] = time.monotonic()
    app[JOBS] = Jobs(app[EVENTS], channel="scan")
    # Hash threads at a lower priority too: hashlib releases the GIL, so they would otherwise
    # compete with the event loop and the store thread for every core.
    hash_threads = ThreadPoolExecutor(max_workers=config.hash_workers,
                                      thread_name_prefix="hikaze-hash", initializer=lower_priority)
    app[SCANNER] = Scanner(config, store, app[JOBS], hash_threads, app[EVENTS])
    app[GEN_QUEUE] = Queue(store, app[EVENTS], app[GALLERY], config.data_dir, config.comfyui_url)
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(_scanning)
    app.cleanup_ctx.append(_generation_queue)
    routes.setup(app)
    return app


def lower_priority() -> None:
    """Run the calling worker thread at a lower CPU priority, so requests stay quick while it
    resizes pictures. Linux gives each thread its own nice value; elsewhere this does nothing."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        except OSError as exc:  # a container may forbid it; the work still runs
            log.debug("Could not lower the image thread's priority: %s", exc)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    config.images_dir.mkdir(parents=True, exist_ok=True)
    app[EVENTS].bind(asyncio.get_running_loop())
    state = app[LIBRARY_STATE]
    await asyncio.get_running_loop().run_in_executor(None, state.check, config.db_path)
    # Held while we run, so `restore-backup` cannot swap the database under us.
    with backups.manager_lock(config.data_dir) as held:
        if not held:
            log.warning("Another manager seems to use %s too", config.data_dir)
        await app[STORE].open(read_only=state.read_only)
        if not state.read_only:  # never act on what a damaged database says
            await app[STORE].run(recovery.clean_up, config.images_dir, config.pending_dir)
        try:
            if config.demo and not state.read_only:
                await demo.seed(app[STORE], app[GALLERY], config)
            yield
        finally:
            app[IMAGE_THREADS].shutdown(wait=True)
            await app[STORE].close()


async def _scanning(app: web.Application) -> AsyncIterator[None]:
    """Resume unfinished hashing and run scheduled scans; stop both (keeping finished work)
    before the store closes. Nothing runs on a read-only library."""
    if app[LIBRARY_STATE].read_only:
        yield
        return
    app[SCANNER].start()
    try:
        yield
    finally:
        await app[SCANNER].stop()


async def _generation_queue(app: web.Application) -> AsyncIterator[None]:
    """Follow unfinished generation jobs (those of an earlier run too); stop following them,
    leaving them unfinished for the next start, before the store closes."""
    if app[LIBRARY_STATE].read_only:
        yield
        return
    await app[GEN_QUEUE].start()
    try:
        yield
    finally:
        await app[GEN_QUEUE].stop()
