// The one client of the manager's REST API: one method per resource, every failure an ApiError.

/** A failed call: the server's {error, code, details} envelope, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(message, { status = 0, code = "NETWORK_ERROR", details = {} } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Turns a non-2xx answer (status and raw body text) into an ApiError. */
export function errorFromResponse(status, bodyText) {
  let body = null;
  try {
    body = JSON.parse(bodyText);
  } catch {
    // a proxy's HTML error page, or an empty body: fall through to the generic message
  }
  if (body && typeof body.error === "string") {
    return new ApiError(body.error, {
      status, code: typeof body.code === "string" ? body.code : `HTTP_${status}`,
      details: body.details && typeof body.details === "object" ? body.details : {},
    });
  }
  return new ApiError(`The manager answered ${status} without an explanation`,
                      { status, code: `HTTP_${status}` });
}

/** The ApiError for a request that never got an answer. */
export function networkError(baseUrl, cause) {
  const where = baseUrl || "this page's server";
  const error = new ApiError(`The manager at ${where} did not answer. Is it running?`);
  error.cause = cause;
  return error;
}

/** Query string from an object, leaving out empty values ("", null, undefined, []). */
export function queryString(params = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) {
      if (value.length) search.set(key, value.join(","));
    } else {
      search.set(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * createApi("http://127.0.0.1:8189") → the client; "" means this page's own server.
 * `fetchImpl` and `xhrFactory` are for tests and for hosts that wrap fetch.
 */
export function createApi(baseUrl = "", { fetchImpl, xhrFactory } = {}) {
  const base = baseUrl.replace(/\/+$/, "");
  const doFetch = fetchImpl ?? ((...args) => globalThis.fetch(...args));

  async function request(method, path, { query, json } = {}) {
    const init = { method, headers: {} };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    let response;
    try {
      response = await doFetch(`${base}${path}${queryString(query)}`, init);
    } catch (cause) {
      throw networkError(base, cause);
    }
    const text = await response.text();
    if (!response.ok) throw errorFromResponse(response.status, text);
    return text ? JSON.parse(text) : null;
  }

  const sha = (value) => encodeURIComponent(value);

  /** Multipart upload with progress (fetch cannot report upload progress; XHR can). */
  function upload(path, form, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = xhrFactory ? xhrFactory() : new XMLHttpRequest();
      xhr.open("POST", `${base}${path}`);
      xhr.upload.onprogress = (event) => {
        if (onProgress && event.lengthComputable) onProgress(event.loaded / event.total);
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
        else reject(errorFromResponse(xhr.status, xhr.responseText));
      };
      xhr.onerror = () => reject(networkError(base));
      xhr.send(form);
    });
  }

  return {
    baseUrl: base,
    /** An image URL from the API (relative to the server) at a quality tier, for <img src>. */
    imageUrl(url, quality) {
      if (!url) return "";
      const absolute = /^[a-z]+:/i.test(url) ? url : `${base}${url}`;
      return quality ? `${absolute}${absolute.includes("?") ? "&" : "?"}quality=${quality}` : absolute;
    },
    health: () => request("GET", "/api/health"),
    /** The events socket's URL (ws: or wss:, under the same base as the REST calls). */
    eventsUrl() {
      const url = new URL(`${base}/api/ws`, globalThis.location?.href ?? "http://localhost/");
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      return url.href;
    },
    models: {
      types: () => request("GET", "/api/models/get_types"),
      list: (query) => request("GET", "/api/models", { query }),
      get: (sha256) => request("GET", `/api/models/${sha(sha256)}`),
      patch: (sha256, changes) => request("PATCH", `/api/models/${sha(sha256)}`, { json: changes }),
      remove: (sha256) => request("DELETE", `/api/models/${sha(sha256)}`),
    },
    tags: {
      list: () => request("GET", "/api/tags"),
      add: (names) => request("POST", "/api/tags_add", { json: { newtags: names } }),
      rename: (id, name, merge = false) => request("PATCH", `/api/tags/${id}`, { json: { name, merge } }),
      remove: (id) => request("DELETE", `/api/tags/${id}`),
    },
    images: {
      upload(sha256, file, { onProgress, ...fields } = {}) {
        const form = new FormData();
        form.append("image", file);
        form.append("sha256", sha256);
        for (const [key, value] of Object.entries(fields)) {
          if (value !== undefined && value !== null) {
            form.append(key, typeof value === "object" ? JSON.stringify(value) : String(value));
          }
        }
        return upload("/api/images/upload", form, onProgress);
      },
      remove: (sha256, seq) => request("DELETE", "/api/images/delete", { query: { sha256, seq } }),
      order: (sha256, order) => request("PUT", `/api/models/${sha(sha256)}/images/order`, { json: { order } }),
      cover: (sha256, seq) => request("PUT", `/api/models/${sha(sha256)}/images/cover`, { json: { seq } }),
      count: (sha256) => request("GET", "/api/images/get_img_count", { query: { sha256 } }),
    },
    scan: {
      start: () => request("POST", "/api/scan"),
      jobs: (kind) => request("GET", "/api/jobs", { query: { kind } }),
      job: (id) => request("GET", `/api/jobs/${encodeURIComponent(id)}`),
      cancel: (id) => request("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`),
    },
    pending: {
      list: (query) => request("GET", "/api/migration/pending_models", { query }),
      get: (id) => request("GET", "/api/migration/pending_model", { query: { id } }),
      importModels: (ids, conflictStrategy = null) =>
        request("POST", "/api/migration/import_models", { json: { id: ids, conflict_strategy: conflictStrategy } }),
      migrateLegacy: (body) => request("POST", "/api/migration/migrate_legacy_db", { json: body }),
    },
    settings: {
      get: () => request("GET", "/api/settings"),
      patch: (changes) => request("PATCH", "/api/settings", { json: changes }),
    },
    auth: {
      key: () => request("GET", "/api/v1/auth/key"),
      regenerate: () => request("POST", "/api/v1/auth/regenerate"),
    },
  };
}
