// The page's link to the manager: discovery, the REST client, retry, and what changed.

import { createApi } from "../lib/api.mjs";
import { comfyApi } from "./host.mjs";
import { discover, managerPageUrl, SNIFFER_ROUTE } from "./discovery.mjs";

const PROBE_TIMEOUT_MS = 3000;

async function probe(baseUrl) {
  try {
    const answer = await fetch(`${baseUrl}/api/health`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    return answer.ok;
  } catch {
    return false;
  }
}

async function sniff() {
  const answer = await comfyApi().fetchApi(SNIFFER_ROUTE, { cache: "no-store" });
  if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
  return answer.json();
}

/**
 * `connection.api` is a createApi client while the manager answers (null otherwise);
 * `connection.found` is the discovery result. Dispatches "change" after every (re)connect.
 */
export class Connection extends EventTarget {
  constructor() {
    super();
    this.api = null;
    this.found = { baseUrl: "", via: "none", state: "unknown", message: "Looking for the Hikaze manager…" };
    this.pending = null;
    this.covers = new Map(); // sha256 → Promise of the model's details (for node previews)
  }

  get managerUrl() {
    return managerPageUrl(this.found);
  }

  /** Discover (again); concurrent calls share one attempt. */
  connect() {
    this.pending ??= discover({ sniff, probe, location: window.location, apiBase: comfyApi()?.api_base ?? "" })
      .then((found) => {
        this.found = found;
        this.api = found.baseUrl ? createApi(found.baseUrl) : null;
        this.covers.clear();
        this.dispatchEvent(new Event("change"));
        return found;
      })
      .finally(() => { this.pending = null; });
    return this.pending;
  }

  /** The library's record of a model (cached), or null when unknown or unreachable. */
  details(sha256) {
    if (!this.api || !sha256) return Promise.resolve(null);
    if (!this.covers.has(sha256)) {
      this.covers.set(sha256, this.api.models.get(sha256).catch(() => {
        this.covers.delete(sha256); // unknown now, maybe imported later
        return null;
      }));
    }
    return this.covers.get(sha256);
  }
}
