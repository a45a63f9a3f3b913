"""/api/migration/migrate_legacy_db: bring a Hikaze v1 database into the library."""
from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
