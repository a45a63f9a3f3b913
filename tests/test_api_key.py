"""api_key and the /api/v1 key check: the key file, the command line, and every /api/v1 route
refusing a missing or wrong key while our own pages get in."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from server.api_key import ApiKey, KeyFileError, bearer_token
from server.app import create_app
from server.app_keys import API_KEY

ROOT = Path(__file__).resolve().parents[1]
COMFYUI = "http://127.0.0.1:8188"
AUTO_METHODS = {"HEAD", "OPTIONS"}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def v1_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every /api/v1 route, with sample values in its variables."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if path.startswith("/api/v1") and route.method not in AUTO_METHODS:
            for name in ("sha256", "id", "alias", "image_id", "job_id"):
                path = path.replace("{%s}" % name, "0" * 64 if name == "sha256" else "1")
            found.append((route.method, path))
    return sorted(found)


# --- the key file ----------------------------------------------------------------------------

def test_first_start_makes_a_private_64_hex_key(tmp_path):
    key = ApiKey.in_data_dir(tmp_path / "data")
    value = key.current()
    assert len(value) == 64 and int(value, 16) >= 0
    assert json.loads(key.path.read_text())["key"] == value
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert ApiKey.in_data_dir(tmp_path / "data").current() == value  # kept across starts


def test_regenerate_replaces_the_key_and_a_running_copy_notices(tmp_path):
    running = ApiKey.in_data_dir(tmp_path)
    old = running.current()
    new = ApiKey(running.path).regenerate()  # as the command line does, from another process
    assert new != old and running.current() == new
    assert running.matches(new) and not running.matches(old)
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"key": 5}', '{"key": "abc"}',
                                     '{"key": "%s"}' % ("G" * 64)])
def test_a_broken_key_file_is_a_clear_error_and_is_left_alone(tmp_path, content):
    path = tmp_path / "api-key.json"
    path.write_text(content)
    with pytest.raises(KeyFileError, match="api-key regenerate"):
        ApiKey.in_data_dir(tmp_path)
    assert path.read_text() == content


@pytest.mark.parametrize("header, token", [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None),
    ("Bearer ", None), ("", None), (None, None), ("abc", None)])
def test_bearer_token(header, token):
    assert bearer_token(header) == token


# --- the command line ------------------------------------------------------------------------

def test_cli_show_and_regenerate(tmp_path):
    data = str(tmp_path / "data")
    shown = cli("api-key", "show", "--data-dir", data)
    assert shown.returncode == 0, shown.stderr
    key = shown.stdout.strip()
    assert len(key) == 64 and cli("api-key", "show", "--data-dir", data).stdout.strip() == key
    new = cli("api-key", "regenerate", "--data-dir", data).stdout.strip()
    assert len(new) == 64 and new != key
    assert json.loads((tmp_path / "data" / "api-key.json").read_text())["key"] == new


def test_cli_show_refuses_a_broken_file_and_regenerate_replaces_it(tmp_path):
    (tmp_path / "api-key.json").write_text("garbage")
    shown = cli("api-key", "show", "--data-dir", str(tmp_path))
    assert shown.returncode == 2 and "api-key regenerate" in shown.stderr
    assert (tmp_path / "api-key.json").read_text() == "garbage"
    fixed = cli("api-key", "regenerate", "--data-dir", str(tmp_path))
    assert fixed.returncode == 0 and len(fixed.stdout.strip()) == 64


def test_serve_with_a_broken_key_file_stops_with_one_message(tmp_path):
    (tmp_path / "api-key.json").write_text("{}")
    result = cli("--data-dir", str(tmp_path), "--port", "0")
    assert result.returncode == 2 and "api-key regenerate" in result.stderr


def test_create_app_refuses_a_broken_key_file(make_config, tmp_path):
    config = make_config()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    (config.data_dir / "api-key.json").write_text('{"key": "short"}')
    with pytest.raises(KeyFileError):
        create_app(config)


# --- the /api/v1 key check -------------------------------------------------------------------

async def test_every_v1_route_refuses_a_missing_or_wrong_key(client):
    routes = v1_routes(client.app)
    assert ("POST", "/api/v1/auth/regenerate") in routes and ("GET", "/api/v1/auth/key") in routes
    key = client.app[API_KEY].current()
    wrong = "0" * 64 if key != "0" * 64 else "1" * 64
    for method, path in routes + [("GET", "/api/v1/no-such-route")]:
        for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": f"Basic {key}"},
                        {"Authorization": "Bearer"}, {"Authorization": f"Bearer {key[:-1]}"},
                        {"Origin": "http://evil.example"} if method == "GET" else {}):
            response = await client.request(method, path, headers=headers)
            assert response.status == 401, (method, path, headers, await response.text())
            body = await response.json()
            assert body["code"] == "UNAUTHORIZED" and "api-key show" in body["error"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.app[API_KEY].current() == key  # nothing regenerated by a refused call


async def test_the_key_lets_a_script_in(client):
    key = client.app[API_KEY].current()
    response = await client.get("/api/v1/auth/key", headers={"Authorization": f"Bearer {key}"})
    assert response.status == 200 and (await response.json()) == {"key": key}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin"},   # our page's same-origin GET (no Origin header)
    {"Origin": COMFYUI},                 # ComfyUI's page calling the manager's port
])
async def test_our_pages_get_in_without_the_key(make_client, headers):
    client = await make_client(cors_origins=(COMFYUI,))
    response = await client.get("/api/v1/auth/key", headers=headers)
    assert response.status == 200 and len((await response.json())["key"]) == 64


async def test_own_origin_gets_in_and_other_browser_contexts_do_not(client):
    own = f"http://{client.server.host}:{client.server.port}"
    assert (await client.get("/api/v1/auth/key", headers={"Origin": own})).status == 200
    for headers in ({"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}):
        assert (await client.get("/api/v1/auth/key", headers=headers)).status == 401


async def test_regenerate_over_the_api(client):
    old = client.app[API_KEY].current()
    response = await client.post("/api/v1/auth/regenerate",
                                 headers={"Authorization": f"Bearer {old}"})
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"key", "message"} and body["key"] != old and len(body["key"]) == 64
    again = await client.get("/api/v1/auth/key", headers={"Authorization": f"Bearer {old}"})
    assert again.status == 401
    now = await client.get("/api/v1/auth/key", headers={"Authorization": f"Bearer {body['key']}"})
    assert now.status == 200


async def test_a_foreign_page_cannot_regenerate_even_with_the_key(client):
    key = client.app[API_KEY].current()
    response = await client.post("/api/v1/auth/regenerate", headers={
        "Authorization": f"Bearer {key}", "Origin": "http://evil.example"})
    assert response.status == 403 and client.app[API_KEY].current() == key


async def test_internal_routes_need_no_key(client):
    assert (await client.get("/api/health")).status == 200
    assert (await client.get("/api/models")).status == 200
