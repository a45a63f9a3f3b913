"""create_app(config): the sidecar's aiohttp application with its resources and routes."""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator

from aiohttp import web

from . import demo, routes, security
from .app_keys import CONFIG, GALLERY, IMAGE_THREADS, STARTED_AT, STORE
from .config import Config
from .errors import error_middleware
from .images import Gallery
from .store import Store

FORM_OVERHEAD = 1024 * 1024  # room for the text fields beside an upload of the maximum size


def create_app(config: Config) -> web.Application:
    app = web.Application(
        middlewares=[security.make_middleware(config.cors_origins, config.allowed_hosts),
                     error_middleware],
        client_max_size=config.max_upload_bytes + FORM_OVERHEAD,
    )
    store = Store(config.db_path)
    # Leave a core for the event loop and the store thread while pictures are resized.
    threads = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1),
                                 thread_name_prefix="hikaze-image")
    app[CONFIG] = config
    app[STORE] = store
    app[IMAGE_THREADS] = threads
    app[GALLERY] = Gallery(store, config.images_dir, threads)
    app[STARTED_AT] = time.monotonic()
    app.cleanup_ctx.append(_resources)
    routes.setup(app)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    config.images_dir.mkdir(parents=True, exist_ok=True)
    await app[STORE].open()
    try:
        if config.demo:
            await demo.seed(app[STORE], app[GALLERY], config)
        yield
    finally:
        app[IMAGE_THREADS].shutdown(wait=True)
        await app[STORE].close()
