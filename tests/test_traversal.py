"""The traversal matrix: every name, hash, id or path a route takes (in its path, its query or
its body) fed `..`, encoded dots, slashes and backslashes, absolute and drive paths, NUL bytes,
over-long values and symlinks out of the roots. The matrix is built from the OpenAPI document
(which test_openapi proves matches the router), so a new route is covered without editing this
file. Every answer must be a 4xx JSON envelope without a planted secret's content, and nothing
outside the data dir may change."""
from __future__ import annotations

import asyncio
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from aiohttp import FormData
from PIL import Image, PngImagePlugin
from yarl import URL

from server import library, openapi, pending
from server.app_keys import CONFIG, STORE
from tests.factories import bearer, expect_error, write_safetensors

SECRET = "hikaze-canary-5f1d0c7e"  # the content of every file planted outside
PASSWD = "root:x:0:"
# As they go into a URL (percent-encoded where it matters); bodies get them decoded and as sent.
HOSTILE = [
    "..", "%2e%2e", ".%2e", "%2f", "..%2f", "%2e%2e%2f%2e%2e%2fsecret.txt",
    "..%2f..%2f..%2foutside%2fsecret.txt", "../../outside/secret.txt", "%252e%252e%252f",
    "%5c", "..%5c..%5coutside%5csecret.txt", "%2fetc%2fpasswd", "C:%5CWindows%5Cwin.ini",
    "C:%2FWindows%2Fwin.ini", "%5c%5cserver%5cshare%5csecret.txt", "%00", "secret.txt%00.png",
    "a" * 10_000, "escape.png", "escape.safetensors",
]
# Symlinks planted in the pending folder and a model root, leading outside. As names they are
# plain (a server alias may be "escape.png"), so they must only never reach the file behind them.
SYMLINK_NAMES = {"escape.png", "escape.safetensors"}
# A parameter with one of these names holds a name, hash, id or path: it must refuse them all.
IDENTIFIER = re.compile(r"(^|_)(sha256|id|ids|seq|index|alias|name|path|dir)$", re.IGNORECASE)
# ...except where the name is text the user types (a display name may well be "..").
DISPLAY_NAMES = {("patch", "/api/models/{sha256}", "name"), ("patch", "/api/tags/{id}", "name")}
SKIPPED_PATHS = {"/api/ws"}  # a WebSocket, not a request with an answer


@dataclass(frozen=True)
class Target:
    """One parameter of one operation, where the hostile value goes."""

    method: str
    path: str
    where: str  # path, query, json, form
    name: str
    operation: dict

    @property
    def identifier(self) -> bool:
        return (bool(IDENTIFIER.search(self.name))
                and (self.method, self.path, self.name) not in DISPLAY_NAMES)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} {self.where}:{self.name}"


def resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        found = doc
        for part in node["$ref"][2:].split("/"):
            found = found[part.replace("~1", "/").replace("~0", "~")]
        node = found
    return node


def parameters(doc: dict, path: str, operation: dict) -> list[dict]:
    return [resolve(doc, p) for p in doc["paths"][path].get("parameters", [])
            + operation.get("parameters", [])]


def body_schema(doc: dict, operation: dict) -> tuple[str, dict] | None:
    for content_type, content in operation.get("requestBody", {}).get("content", {}).items():
        return ("json" if "json" in content_type else "form"), resolve(doc, content["schema"])
    return None


def targets(doc: dict) -> list[Target]:
    found = []
    for path, method, operation in openapi.operations(doc):
        if path in SKIPPED_PATHS:
            continue
        for parameter in parameters(doc, path, operation):
            if parameter["in"] in ("path", "query"):
                found.append(Target(method, path, parameter["in"], parameter["name"], operation))
        body = body_schema(doc, operation)
        if body:
            found += [Target(method, path, body[0], name, operation)
                      for name in body[1].get("properties", {})]
    return found


DOC = openapi.document()
TARGETS = targets(DOC)


def test_the_matrix_covers_every_path_parameter_and_the_known_path_fields():
    covered = {str(t) for t in TARGETS if t.identifier}
    for path, method, operation in openapi.operations(DOC):
        for parameter in parameters(DOC, path, operation):
            if parameter["in"] == "path":
                assert f"{method.upper()} {path} path:{parameter['name']}" in covered
    for expected in ["POST /api/migration/migrate_legacy_db json:legacy_db_path",
                     "POST /api/migration/migrate_legacy_db json:legacy_images_dir",
                     "GET /api/migration/pending_model query:id",
                     "POST /api/migration/import_models json:id",
                     "GET /api/images/pending/{name} path:name", "GET /lib/{path} path:path",
                     "GET /manager/{path} path:path", "POST /api/images/upload form:sha256",
                     "GET /api/v1/models/{sha256}/download path:sha256",
                     "POST /api/v1/servers json:alias", "DELETE /api/images/delete query:seq"]:
        assert expected in covered


# --- the planted world -------------------------------------------------------------------------

def secret_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("secret", SECRET)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


@dataclass
class World:
    client: object
    outside: Path
    data_dir: Path
    watched: Path  # everything but the data dir: the model roots and the outside folder
    sha: str
    escaped_sha: str  # a library model whose only file is a symlink out of the roots
    pending_id: int  # a pending item whose stored preview is a symlink out of the data dir


@pytest.fixture
async def world(make_client, make_tree, tmp_path) -> World:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "secret.png").write_bytes(secret_png())
    escaped_sha = write_safetensors(outside / "secret.safetensors", 9, {"secret": SECRET})
    tree = make_tree()
    client = await make_client(tree)
    config = client.app[CONFIG]
    link = tree.root / "loras" / "escape.safetensors"
    link.symlink_to(outside / "secret.safetensors")
    config.pending_dir.mkdir(parents=True, exist_ok=True)
    (config.pending_dir / "escape.png").symlink_to(outside / "secret.png")
    (config.pending_dir / "escape.safetensors").symlink_to(outside / "secret.safetensors")

    def plant(db):
        library.add_model(db, library.NewModel(
            sha256=escaped_sha, name="escaped", type="loras", size_bytes=link.stat().st_size,
            created_at=library.now_ms(), paths=(str(link),)))
        return pending.add_pending(db, pending.NewPending(
            path=str(outside / "secret.safetensors"), created_at=library.now_ms(),
            source="legacy", image="escape.png"))

    pending_id = await client.app[STORE].run(plant)
    return World(client, outside, config.data_dir, tmp_path, tree.files[0].sha256, escaped_sha,
                 pending_id)


def snapshot(folder: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every entry under `folder` (symlinks not followed) with its size and mtime."""
    found = {}
    for root, dirs, names in os.walk(folder):
        if skip is not None and Path(root) == skip.parent:
            dirs[:] = [d for d in dirs if Path(root, d) != skip]
        for name in dirs + names:
            info = os.lstat(os.path.join(root, name))
            found[os.path.relpath(os.path.join(root, name), folder)] = (info.st_size,
                                                                        info.st_mtime_ns)
    return found


# --- sending -----------------------------------------------------------------------------------

BASELINE = {"sha256": None, "url": "http://127.0.0.1:9", "legacy_db_path": "/nonexistent/v1.db"}


def baseline(world: World, name: str, schema: dict | None = None) -> object:
    """A harmless valid-looking value for the parameters not under test."""
    kind = (schema or {}).get("type", "string")
    if name == "sha256":
        return world.sha
    if name in BASELINE:
        return BASELINE[name]
    return {"integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}.get(kind, "1")


def build(world: World, target: Target, raw: str, hostile_in_body: str) -> dict:
    """The request putting `raw` (URL form) or `hostile_in_body` (decoded) into the target."""
    path = target.path
    query = []
    for parameter in parameters(DOC, target.path, target.operation):
        name = parameter["name"]
        if parameter["in"] not in ("path", "query"):
            continue
        mine = parameter["in"] == target.where and name == target.name
        if parameter["in"] == "query" and not mine and not parameter.get("required"):
            continue
        value = raw if mine else quote(str(baseline(world, name, parameter.get("schema"))),
                                       safe="")
        if parameter["in"] == "path":
            path = path.replace(f"{{{name}}}", value)
        else:
            query.append(f"{name}={value}")
    server = world.client.server
    url = URL(f"http://{server.host}:{server.port}{path}" + (f"?{'&'.join(query)}" if query
                                                              else ""), encoded=True)
    request = {"method": target.method.upper(), "url": url, "headers": bearer(world.client)}
    body = body_schema(DOC, target.operation)
    if body:
        kind, schema = body
        properties = schema.get("properties", {})
        values = {name: baseline(world, name, resolve(DOC, properties[name]))
                  for name in schema.get("required", []) if name in properties}
        if target.where in ("json", "form"):
            values[target.name] = hostile_in_body
        if kind == "json":
            request["json"] = values
        else:
            form = FormData()
            for name, value in values.items():
                form.add_field(name, str(value))
            request["data"] = form
    return request


def body_values(raw: str) -> list[str]:
    return list(dict.fromkeys([unquote(raw), raw]))


async def send_all(world: World, chosen: list[Target]) -> list[tuple[str, int, bytes, str, str]]:
    answers = []
    session = world.client.session
    for target in chosen:
        for raw in HOSTILE:
            values = body_values(raw) if target.where in ("json", "form") else [raw]
            for value in values:
                async with session.request(**build(world, target, raw, value)) as response:
                    answers.append((f"{target} <- {value[:60]!r}", response.status,
                                    await response.read(), response.content_type, raw))
    return answers


def refusal(status: int, body: bytes, content_type: str) -> bool:
    """A 4xx error envelope."""
    if not 400 <= status < 500 or content_type != "application/json":
        return False
    envelope = json.loads(body)
    return set(envelope) == {"error", "code", "details"} and bool(envelope["error"])


def leaks(body: bytes) -> bool:
    return SECRET.encode() in body or PASSWD.encode() in body


async def test_names_hashes_ids_and_paths_refuse_every_hostile_value(world):
    outside_before = snapshot(world.watched, skip=world.data_dir)
    data_before = snapshot(world.data_dir)

    chosen = [t for t in TARGETS if t.identifier]
    answers = await send_all(world, chosen)

    wrong = [(label, status, body[:200]) for label, status, body, content_type, raw in answers
             if leaks(body) or status >= 500
             or raw not in SYMLINK_NAMES and not refusal(status, body, content_type)]
    assert not wrong, f"{len(wrong)} of {len(answers)} answers wrong, e.g. {wrong[:5]}"
    assert len(answers) >= len(chosen) * len(HOSTILE)
    assert snapshot(world.watched, skip=world.data_dir) == outside_before
    assert (world.outside / "secret.txt").read_text() == SECRET
    assert set(snapshot(world.data_dir)) <= set(data_before) | {"library.db-journal"}


async def test_every_other_text_parameter_never_errs_or_leaks(world):
    """Free text (search, prompts, display names) may be accepted, but never a 5xx or a leak."""
    outside_before = snapshot(world.watched, skip=world.data_dir)

    answers = await send_all(world, [t for t in TARGETS if not t.identifier])

    wrong = [(label, status, body[:200]) for label, status, body, *_ in answers
             if status >= 500 or leaks(body)]
    assert not wrong, f"{len(wrong)} of {len(answers)} answers wrong, e.g. {wrong[:5]}"
    assert snapshot(world.watched, skip=world.data_dir) == outside_before


# --- symlinks out of the roots, named directly -------------------------------------------------

async def test_a_model_file_linked_out_of_the_roots_is_not_sent(world):
    client = world.client
    response = await client.get(f"/api/v1/models/{world.escaped_sha}/download",
                                headers=bearer(client))
    body = await expect_error(response, 403)
    assert SECRET not in str(body)


async def test_a_pending_preview_linked_out_of_the_data_dir_is_not_sent(world):
    client = world.client
    for path in (f"/api/images/pending/{world.pending_id}", "/api/images/pending/escape.png",
                 "/api/images/pending/escape"):
        response = await client.get(path)
        body = await expect_error(response, 404, "PENDING_IMAGE_NOT_FOUND")
        assert SECRET not in str(body)


@pytest.mark.parametrize("request_line", [
    "GET /lib/../../../../etc/passwd", "GET /manager/../../server/config.py",
    "GET /lib/%2e%2e/%2e%2e/server/config.py", "GET /api/images/pending/../../outside/secret.txt",
    "GET /api/images/pending/..%2f..%2f..%2foutside%2fsecret.txt",
    "GET /../../../etc/passwd", "GET /lib/..\\..\\server\\config.py",
])
async def test_raw_request_lines_are_refused(world, request_line):
    """Straight onto the socket: no client library normalises these on the way."""
    server = world.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"{request_line} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                 .encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert 400 <= status < 500, answer[:300]
    assert b"application/json" in head.lower()
    assert not leaks(body) and b"hikaze_data" not in body
