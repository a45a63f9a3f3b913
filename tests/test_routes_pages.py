"""The manager page and its modules: known files only, typed, revalidated, never a listing."""
import pytest


@pytest.mark.parametrize("path, content_type", [
    ("/", "text/html"),
    ("/manager/main.mjs", "text/javascript"),
    ("/manager/manager.css", "text/css"),
    ("/lib/api.mjs", "text/javascript"),
    ("/lib/hikaze.css", "text/css"),
])
async def test_page_files_are_served_typed_and_revalidated(make_client, path, content_type):
    client = await make_client()
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == content_type
    assert response.headers["Cache-Control"] == "no-cache"
    etag = response.headers.get("ETag")
    if etag:
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304


@pytest.mark.parametrize("path", [
    "/lib/", "/manager/", "/lib/missing.js", "/lib/../server/app.py", "/lib/%2e%2e/server/app.py",
    "/lib/..%2fserver%2fapp.py", "/manager/.hidden.js", "/lib/api.py", "/lib/api",
])
async def test_no_listing_no_escape_no_unknown_types(make_client, path):
    client = await make_client()
    response = await client.get(path)
    assert response.status == 404
    body = await response.json()
    assert body["code"] in {"FILE_NOT_FOUND", "NOT_FOUND"}


async def test_a_symlink_out_of_the_folder_is_not_followed(make_client, tmp_path):
    from server.routes import pages

    outside = tmp_path / "secret.js"
    outside.write_text("secret")
    link = pages.WEB_DIR / "lib" / "zz-test-link.js"
    link.symlink_to(outside)
    try:
        client = await make_client()
        assert (await client.get("/lib/zz-test-link.js")).status == 404
    finally:
        link.unlink()
