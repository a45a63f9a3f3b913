// Where the manager answers for this ComfyUI page: its own port, or ComfyUI's proxy route.

export const SNIFFER_ROUTE = "/hikaze/sniffer_port"; // for api.fetchApi, which adds /api
export const PROXY_PATH = "/api/hikaze/proxy";

/** The manager's origin on its own port, on the host this page was loaded from. */
export function directOrigin(location, port) {
  const host = location.hostname.includes(":") && !location.hostname.startsWith("[")
    ? `[${location.hostname}]` : location.hostname;
  return `${location.protocol}//${host}:${port}`;
}

/** The manager through ComfyUI's proxy route (for browsers that reach only ComfyUI's port). */
export function proxyBase(location, apiBase = "") {
  return `${location.origin}${apiBase}${PROXY_PATH}`;
}

/**
 * Find the manager. `sniff()` answers the discovery route's JSON ({port, state, error?});
 * `probe(baseUrl)` resolves true when `${baseUrl}/api/health` answers. Resolves
 * {baseUrl, via: "direct"|"proxy"} or {baseUrl: "", via: "none", state, message}.
 */
export async function discover({ sniff, probe, location, apiBase = "" }) {
  let status;
  try {
    status = await sniff();
  } catch (error) {
    return unavailable("unknown", `ComfyUI's discovery route did not answer (${error.message}). Is the extension installed?`);
  }
  if (!status?.port) {
    const why = status?.error ? `: ${status.error}` : "";
    return unavailable(status?.state ?? "unknown", `The Hikaze manager is not running (${status?.state ?? "no answer"})${why}`);
  }
  const direct = directOrigin(location, status.port);
  if (await probe(direct)) return { baseUrl: direct, via: "direct" };
  const proxy = proxyBase(location, apiBase);
  if (await probe(proxy)) return { baseUrl: proxy, via: "proxy" };
  return unavailable(status.state, `The Hikaze manager (port ${status.port}) does not answer, neither directly nor through ComfyUI`);
}

function unavailable(state, message) {
  return { baseUrl: "", via: "none", state, message };
}

/** The full manager page's URL for a discovery result ("" when the manager is down). */
export function managerPageUrl(found) {
  return found.baseUrl ? `${found.baseUrl}/` : "";
}
