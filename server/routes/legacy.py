"""/api/migration/migrate_legacy_db: bring a Hikaze v1 database into the library."""
from __future__ import annotations

from aiohttp import web

from .. import legacy, schemas
from ..app_keys import CONFIG, EVENTS, IMAGE_THREADS, STORE
from . import parse

routes = web.RouteTableDef()


@routes.post("/api/migration/migrate_legacy_db")
async def migrate_legacy_db(request: web.Request) -> web.Response:
    body = await parse.json_body(request, schemas.LEGACY_MIGRATION)
    app = request.app
    migration = legacy.Migration(app[STORE], app[IMAGE_THREADS], app[CONFIG], app[EVENTS])
    report = await migration.run(body["legacy_db_path"], body.get("legacy_images_dir") or None,
                                 body.get("dry_run", False))
    return web.json_response(report)
