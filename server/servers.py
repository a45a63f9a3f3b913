"""ComfyUI servers the generation queue sends work to: stored ones by alias, plus `local`, the
host ComfyUI from the snapshot, which is read-only."""
from __future__ import annotations

import ipaddress
import re

from sqlite_utils import Database
from yarl import URL

from . import schemas
from .errors import Conflict, Forbidden, Invalid, NotFound

LOCAL = "local"
_ACTIVE = "('pending', 'processing')"


def _record(alias: str, url: str, created: int | None, updated: int | None, read_only: bool) -> dict:
    return {"alias": alias, "url": url, "read_only": read_only, "created_at": created,
            "updated_at": updated}


def list_servers(db: Database, local_url: str) -> list[dict]:
    """`local` first (when running inside ComfyUI), then the stored ones by alias."""
    found = [_record(LOCAL, local_url, None, None, True)] if local_url else []
    rows = db.execute("SELECT alias, url, created_at, updated_at FROM servers ORDER BY alias")
    return found + [_record(*row, False) for row in rows]


def get_server(db: Database, local_url: str, alias: str) -> dict:
    for server in list_servers(db, local_url):
        if server["alias"] == alias:
            return server
    raise NotFound(f"No ComfyUI server '{alias}'", code="SERVER_NOT_FOUND", alias=alias)


def default_server(db: Database, local_url: str) -> dict:
    """The server a job without target_server_alias goes to: `local`, else the first one."""
    servers = list_servers(db, local_url)
    if not servers:
        raise Invalid("No ComfyUI server is configured: add one with POST /api/v1/servers, or "
                      "name one in target_server_alias", code="NO_SERVER",
                      field="target_server_alias")
    return servers[0]


def add_server(db: Database, body: dict, now_ms: int) -> dict:
    schemas.check(schemas.SERVER_NEW, body)
    alias = body["alias"]
    _refuse_local(alias, "add")
    with db.atomic():
        if db.execute("SELECT 1 FROM servers WHERE alias = ?", [alias]).fetchone():
            raise Conflict(f"A server named '{alias}' exists; PUT /api/v1/servers/{alias} changes "
                           "its URL", code="SERVER_EXISTS", alias=alias)
        db.execute("INSERT INTO servers(alias, url, created_at, updated_at) VALUES (?, ?, ?, ?)",
                   [alias, _url(body["url"]), now_ms, now_ms])
    return _record(alias, _url(body["url"]), now_ms, now_ms, False)


def update_server(db: Database, alias: str, body: dict, now_ms: int) -> dict:
    schemas.check(schemas.SERVER_UPDATE, body)
    _refuse_local(alias, "change")
    with db.atomic():
        _require(db, alias)
        db.execute("UPDATE servers SET url = ?, updated_at = ? WHERE alias = ?",
                   [_url(body["url"]), now_ms, alias])
        row = db.execute("SELECT alias, url, created_at, updated_at FROM servers WHERE alias = ?",
                         [alias]).fetchone()
    return _record(*row, False)


def delete_server(db: Database, alias: str) -> None:
    """Forget a server; refused while it has unfinished jobs (they keep their URL otherwise)."""
    _refuse_local(alias, "delete")
    with db.atomic():
        _require(db, alias)
        active = db.execute(f"SELECT count(*) FROM queue_jobs WHERE server_alias = ? AND status IN "
                            f"{_ACTIVE}", [alias]).fetchone()[0]
        if active:
            raise Conflict(f"Server '{alias}' has {active} unfinished job(s); cancel them first",
                           code="SERVER_BUSY", alias=alias, active_jobs=active)
        db.execute("DELETE FROM servers WHERE alias = ?", [alias])


_HOST = re.compile(r"[A-Za-z0-9_.-]+|[0-9A-Fa-f:.]+(%25[A-Za-z0-9_.-]+)?")


def _url(value: str) -> str:
    """The base URL without a trailing slash, once it is an address a request can be sent to:
    the schema's pattern lets through ports out of range, broken IPv6 brackets and empty host
    labels, which would only fail (as a 500) when a job is sent."""
    text = value.rstrip("/")
    try:
        url = URL(text)
        host, port = url.raw_host or "", url.port
        if ":" not in host:
            host.encode("idna")  # an empty or over-long label cannot be looked up
        if re.fullmatch(r"[0-9.]+", host):
            ipaddress.IPv4Address(host)  # `http://8` is no address aiohttp will use
    except (ValueError, UnicodeError):
        host, port = "", None
    if not _HOST.fullmatch(host) or not port or url.user is not None or url.password is not None:
        raise Invalid(f"'{value}' is not a server address: give http(s)://host[:port][/path] "
                      "with a port from 1 to 65535", code="INVALID_URL", field="url")
    return text


def _refuse_local(alias: str, verb: str) -> None:
    if alias == LOCAL:
        raise Forbidden(f"Cannot {verb} '{LOCAL}': it is the ComfyUI this manager runs in",
                        code="SERVER_READ_ONLY", alias=alias)


def _require(db: Database, alias: str) -> None:
    if db.execute("SELECT 1 FROM servers WHERE alias = ?", [alias]).fetchone() is None:
        raise NotFound(f"No ComfyUI server '{alias}'", code="SERVER_NOT_FOUND", alias=alias)
