// The API client: URLs, bodies and the one ApiError for every failure.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, createApi, errorFromResponse, queryString } from "../../web/lib/api.mjs";

function fakeFetch(status, body) {
  const calls = [];
  const impl = async (url, init) => {
    calls.push({ url, init });
    return { ok: status >= 200 && status < 300, status, text: async () => (typeof body === "string" ? body : JSON.stringify(body)) };
  };
  return { calls, impl };
}

test("the error envelope becomes an ApiError with status, code and details", () => {
  const error = errorFromResponse(400, JSON.stringify({ error: "sha256 must be 64 hex", code: "INVALID_SHA256", details: { field: "sha256" } }));
  assert.ok(error instanceof ApiError && error instanceof Error);
  assert.equal(error.message, "sha256 must be 64 hex");
  assert.deepEqual([error.status, error.code, error.details], [400, "INVALID_SHA256", { field: "sha256" }]);
});

test("a body that is not the envelope still gives an ApiError", () => {
  const error = errorFromResponse(502, "<html>Bad gateway</html>");
  assert.deepEqual([error.status, error.code, error.details], [502, "HTTP_502", {}]);
  assert.match(error.message, /502/);
});

test("query strings leave out empty values and join lists", () => {
  assert.equal(queryString({ search: "", tags: ["a", "b c"], exclude_tags: [], offset: 0, type: undefined }),
               "?tags=a%2Cb+c&offset=0");
  assert.equal(queryString({}), "");
});

test("requests go to the base URL with JSON bodies", async () => {
  const fetch = fakeFetch(200, { models: [], total: 0 });
  const api = createApi("http://127.0.0.1:8189/", { fetchImpl: fetch.impl });
  await api.models.list({ type: "loras", exclude_tags: ["nsfw"], offset: 200, limit: 200 });
  assert.equal(fetch.calls[0].url, "http://127.0.0.1:8189/api/models?type=loras&exclude_tags=nsfw&offset=200&limit=200");
  await api.models.patch("ab", { name: "x" });
  assert.equal(fetch.calls[1].init.method, "PATCH");
  assert.equal(fetch.calls[1].init.headers["Content-Type"], "application/json");
  assert.deepEqual(JSON.parse(fetch.calls[1].init.body), { name: "x" });
  await api.images.cover("ab", 2);
  assert.equal(fetch.calls[2].url, "http://127.0.0.1:8189/api/models/ab/images/cover");
  assert.equal(api.imageUrl("/api/images/ab_0.webp?v=1", "medium"), "http://127.0.0.1:8189/api/images/ab_0.webp?v=1&quality=medium");
  assert.equal(api.imageUrl("/api/images/ab_0.webp", "low"), "http://127.0.0.1:8189/api/images/ab_0.webp?quality=low");
});

test("a failed request rejects with the server's ApiError", async () => {
  const api = createApi("", { fetchImpl: fakeFetch(404, { error: "No model", code: "MODEL_NOT_FOUND", details: {} }).impl });
  await assert.rejects(api.models.get("ab"), { name: "ApiError", status: 404, code: "MODEL_NOT_FOUND", message: "No model" });
});

test("an unreachable manager is an ApiError with status 0 and a clear message", async () => {
  const api = createApi("http://127.0.0.1:9", { fetchImpl: async () => { throw new TypeError("Failed to fetch"); } });
  await assert.rejects(api.health(), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 0);
    assert.equal(error.code, "NETWORK_ERROR");
    assert.match(error.message, /did not answer/);
    return true;
  });
});
