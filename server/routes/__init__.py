"""HTTP routes, one module per resource; `setup(app)` registers them all."""
from __future__ import annotations

from aiohttp import web

from . import (events, health, images, legacy, metadata, models, openapi, pages, pending, queue,
               scan, servers, settings, tags, v1_auth, v1_images, v1_models)


def setup(app: web.Application) -> None:
    # Order matters where a fixed path shares a prefix with a {variable} one.
    for module in (health, openapi, events, scan, legacy, pending, metadata, models, tags, images,
                   settings, v1_auth, v1_models, v1_images, servers, queue, pages):
        app.router.add_routes(module.routes)
