"""errors: every failure, from any route, is one JSON envelope {"error", "code", "details"}."""
from __future__ import annotations

import logging
import re

from aiohttp import FormData, web

from server.app import create_app
from server.app_keys import API_KEY, STORE

from tests.factories import expect_error, png_bytes

ENVELOPE_KEYS = {"error", "code", "details"}

BAD_VALUES = ["not-valid", "..", "-1", "0" * 65, "A" * 63, "%2e%2e%2fetc%2fpasswd", "%00",
              "abc%20def", "9" * 30, "1.5", "%E2%98%83", "0x1f"]

BODIES = [  # (headers, body)
    ({}, None),
    ({"Content-Type": "application/octet-stream"}, b"\x00\xffgarbage"),
    ({"Content-Type": "application/json"}, b"{not json"),
    ({"Content-Type": "application/json"}, b"[1, 2, 3]"),
    ({"Content-Type": "application/json"}, b'"text"'),
    ({"Content-Type": "application/json"}, b"null"),
    ({"Content-Type": "application/json"}, b'{"name": NaN, "order": [1e999], "seq": "x"}'),
    ({"Content-Type": "application/json"}, b"[" * 50_000),
    ({"Content-Type": "application/json"}, b'{"meta_json": {"a": {"b": 1}}, "tags": [null, 5]}'),
    ({"Content-Type": "multipart/form-data; boundary=xyz"}, b"--xyz\r\ngarbage"),
    ({"Content-Type": "text/plain; charset=utf-8"}, "é€\u0000".encode()),
]

GARBAGE_QUERY = {"sha256": "zz", "seq": "x", "limit": "-5", "offset": "abc", "sort": "bogus",
                 "quality": "bad", "type": "\u0000", "tags": ",,,", "v": "../"}


def assert_envelope(body) -> None:
    assert isinstance(body, dict) and set(body) == ENVELOPE_KEYS, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["code"], str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", body["code"])
    assert isinstance(body["details"], dict)


async def good_values(client) -> dict[str, str]:
    """A real value for each route variable, so a request can get past the path."""
    def read(db):
        sha = db.execute("SELECT sha256 FROM models ORDER BY sha256").fetchone()[0]
        db.execute("INSERT INTO tags(name) VALUES ('probe')")
        tag = db.execute("SELECT id FROM tags WHERE name = 'probe'").fetchone()[0]
        return sha, tag

    sha, tag = await client.app[STORE].run(read)
    form = FormData()
    form.add_field("sha256", sha)
    form.add_field("image", png_bytes(), filename="a.png", content_type="image/png")
    upload = await client.post("/api/images/upload", data=form)
    assert upload.status == 200, await upload.text()
    return {"sha256": sha, "id": str(tag), "name": f"{sha}_0.webp"}


async def test_every_route_answers_failures_with_the_envelope(make_client, make_tree):
    client = await make_client(make_tree())
    good = await good_values(client)
    routes = sorted(((r.method, r.resource.canonical) for r in client.app.router.routes()),
                    key=lambda route: route[0] == "DELETE")  # delete the real things last
    assert len(routes) > 10
    failures, seen_errors = [], 0

    for method, template in routes:
        names = re.findall(r"{(\w+)}", template)
        values = [good[n] for n in names if n in good][:1] + BAD_VALUES if names else [None]
        for value in values:
            path = re.sub(r"{\w+}", value, template) if value is not None else template
            for query in ({}, GARBAGE_QUERY):
                for headers, body in BODIES:
                    response = await client.request(method, path, params=query, data=body,
                                                    headers=headers)
                    raw = await response.read()
                    where = f"{method} {path} {query and 'garbage-query'} {body!r:.40}"
                    if response.status >= 500:
                        failures.append(f"{where}: {response.status} {raw[:200]!r}")
                    if response.status < 400:
                        continue
                    seen_errors += 1
                    if response.content_type != "application/json":
                        failures.append(f"{where}: {response.status} {response.content_type}")
                    elif method != "HEAD":
                        try:
                            assert_envelope(await response.json())
                        except AssertionError as exc:
                            failures.append(f"{where}: {exc}")

    assert failures == []
    assert seen_errors > 500  # the walk really did provoke failures everywhere


async def test_unknown_route_is_a_json_404(make_client):
    client = await make_client()
    for method, path in [("GET", "/api/nothing"), ("POST", "/api/nothing"), ("GET", "/nothing"),
                         ("GET", "/api/images/"), ("DELETE", "/api/models/a/b/c"),
                         ("GET", "/api/models/" + "a" * 64 + "/images")]:
        response = await client.request(method, path)
        assert response.status == 404, (method, path)
        assert response.content_type == "application/json"
        body = await response.json()
        assert_envelope(body)
        assert body["code"] == "NOT_FOUND"


async def test_wrong_method_is_a_json_405_with_allow(make_client):
    client = await make_client()
    for method, path, allowed in [("POST", "/api/health", {"GET", "HEAD"}),
                                  ("DELETE", "/api/tags", {"GET", "HEAD"}),
                                  ("GET", "/api/tags_add", {"POST"}),
                                  ("PUT", "/api/images/delete", {"DELETE", "GET", "HEAD"}),
                                  ("PUT", "/api/models/" + "a" * 64,
                                   {"GET", "HEAD", "PATCH", "DELETE"})]:
        response = await client.request(method, path)
        assert response.status == 405, (method, path)
        assert response.content_type == "application/json"
        body = await response.json()
        assert_envelope(body)
        assert body["code"] == "METHOD_NOT_ALLOWED"
        assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
        assert set(body["details"]["allowed"]) == allowed


async def test_unexpected_exception_is_a_500_without_the_traceback(aiohttp_client, make_config,
                                                                   caplog):
    secret = "secret-detail /home/someone/.hikaze/library.db"

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError(secret)

    app = create_app(make_config())
    app.router.add_get("/api/broken", broken)
    client = await aiohttp_client(app)

    with caplog.at_level(logging.ERROR, logger="server.errors"):
        response = await client.get("/api/broken")

    assert response.status == 500
    assert response.content_type == "application/json"
    text = await response.text()
    body = await response.json()
    assert_envelope(body)
    assert body["code"] == "INTERNAL" and body["details"] == {}
    assert "Traceback" not in text and "RuntimeError" not in text and secret not in text
    assert "broken.py" not in text and "errors.py" not in text
    # The details go to the log instead.
    logged = [r for r in caplog.records if r.name == "server.errors"]
    assert logged and logged[0].exc_info and secret in str(logged[0].exc_info[1])


async def test_unexpected_exception_keeps_cors_headers(aiohttp_client, make_config):
    async def broken(request: web.Request) -> web.Response:
        raise KeyError("boom")

    app = create_app(make_config())
    app.router.add_post("/api/broken", broken)
    client = await aiohttp_client(app)

    response = await client.post("/api/broken", headers={"Origin": "http://127.0.0.1:8188"})

    assert response.status == 500
    assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8188"
    assert_envelope(await response.json())


async def test_a_lone_surrogate_in_a_json_body_is_a_400_and_nothing_is_written(client, sha):
    # JSON can escape half a UTF-16 pair; such a string is not text and cannot be stored.
    auth = {"Authorization": f"Bearer {client.app[API_KEY].current()}"}
    added = await client.post("/api/v1/servers", json={"alias": "a", "url": "http://127.0.0.1:9"},
                              headers=auth)
    assert added.status == 201
    for method, path, body in [
            ("POST", "/api/v1/queue/jobs", {"workflow": {"\udb1e": {"class_type": "L", "inputs": {}}}}),
            ("POST", "/api/v1/queue/jobs", {"workflow": {"1": {"class_type": "L", "inputs": {"x": "\ud800"}}}}),
            ("PATCH", f"/api/models/{sha}", {"name": "bad \udfff name"}),
            ("POST", "/api/tags_add", {"newtags": ["\ud83d"]})]:
        response = await client.request(method, path, json=body, headers=auth)
        await expect_error(response, 400, "BAD_JSON")
    jobs = await (await client.get("/api/v1/queue/jobs", headers=auth)).json()
    assert jobs["total"] == 0
    model = await (await client.get(f"/api/models/{sha}")).json()
    assert "\udfff" not in model["name"]
    tags = (await (await client.get("/api/tags")).json())["tags"]
    assert not any("\ud83d" in tag["name"] for tag in tags)
    # A proper pair (an emoji) is text, and is kept.
    fine = await client.patch(f"/api/models/{sha}", json={"name": "fox \U0001F98A"})
    assert fine.status == 200 and (await fine.json())["name"] == "fox \U0001F98A"
