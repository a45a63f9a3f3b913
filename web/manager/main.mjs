// The manager page's entry: wires the library view (tabs, toolbar, filter, grid) to the details panel.

import { createApi } from "../lib/api.mjs";
import "../lib/kind-tabs.mjs";
import "../lib/library-toolbar.mjs";
import "../lib/model-details.mjs";
import "../lib/model-grid.mjs";
import "../lib/status-box.mjs";
import "../lib/tag-filter.mjs";
import { cycleTag, initialQuery, listParams } from "../lib/library-query.mjs";
import { ModelPages } from "../lib/model-pages.mjs";

const PREFS_KEY = "hikaze.manager.view";
const SUMMARY_FIELDS = ["name", "type", "base_model", "size_bytes", "tags", "images_count", "path"];

const api = createApi("");
const $ = (selector) => document.querySelector(selector);
const tabs = $("hikaze-kind-tabs");
const toolbar = $("hikaze-library-toolbar");
const tagFilter = $("hikaze-tag-filter");
const grid = $("hikaze-model-grid");
const status = $("hikaze-status");
const details = $("hikaze-model-details");

const view = { view: "grid", cardWidth: 180, ...readPrefs() };
let query = { ...initialQuery(), sort: view.sort ?? "name" };
const pages = new ModelPages((offset, limit) => api.models.list({ ...listParams(query), offset, limit }));

grid.source = pages;
grid.imageUrl = api.imageUrl;
details.api = api;
applyView();

pages.addEventListener("change", () => {
  grid.refresh();
  toolbar.count = pages.total;
  showState();
});

tabs.addEventListener("hk-kind-change", (event) => setQuery({ type: event.detail.kind }));
toolbar.addEventListener("hk-query-change", (event) => setQuery(event.detail));
toolbar.addEventListener("hk-view-change", (event) => {
  Object.assign(view, event.detail);
  writePrefs();
  applyView();
});
tagFilter.addEventListener("hk-tag-toggle", (event) => setQuery(cycleTag(query, event.detail.name)));
grid.addEventListener("hk-open", (event) => details.open(event.detail.model.sha256));
details.addEventListener("hk-close", () => grid.focus());
details.addEventListener("hk-model-changed", (event) => {
  const { model } = event.detail;
  pages.update(model.sha256, summaryOf(model));
  loadTags();
});
document.addEventListener("keydown", onKey);

start();

/** First load: kinds and tags, then the first page. The manager may be down: say so, offer Retry. */
async function start() {
  status.show("loading", "Loading the library…");
  try {
    const [{ types }] = await Promise.all([api.models.types(), loadTags()]);
    tabs.kinds = types;
    tabs.value = query.type;
    reload();
  } catch (error) {
    status.show("error", error.message, { label: "Retry", run: start });
  }
}

async function loadTags() {
  const { tags } = await api.tags.list();
  tagFilter.tags = tags;
  tagFilter.state = query;
  details.tagSuggestions = tags.map((tag) => tag.name);
}

function setQuery(changes) {
  query = { ...query, ...changes };
  if ("sort" in changes) {
    view.sort = query.sort;
    writePrefs();
  }
  tagFilter.state = query;
  grid.showNsfw = query.showNsfw;
  reload();
}

function reload() {
  pages.reset();
  toolbar.count = null;
  grid.reset();
  status.show("loading", "Loading models…");
  pages.ensure(0, pages.pageSize);
}

function showState() {
  if (pages.error) {
    const retry = pages.total === null ? reload : () => { status.clear(); grid.refresh(); };
    status.show("error", pages.error.message, { label: "Retry", run: retry });
  } else if (pages.total === 0) {
    const filtered = query.search || query.include.length || query.exclude.length || query.type;
    if (filtered) status.show("empty", "No models match. Clear the search or the tag filter, or pick another tab.");
    else status.show("empty", "The library is empty. Scan your model folders to find models.", { label: "Scan now", run: scan });
  } else {
    status.clear();
  }
}

async function scan() {
  status.show("loading", "Scanning the model folders…");
  try {
    const report = await api.scan.start();
    status.show("empty", `Found ${report.scanned} files; ${report.added} wait for review in the pending list.`);
  } catch (error) {
    status.show("error", error.message, { label: "Retry", run: scan });
  }
}

function applyView() {
  grid.view = view.view;
  grid.cardWidth = view.cardWidth;
  grid.showNsfw = query.showNsfw;
  toolbar.values = { ...query, ...view };
  grid.refresh();
}

function onKey(event) {
  const typing = event.target.closest?.("input, textarea, select, [contenteditable]");
  if (event.key === "Escape") {
    if (details.isOpen) details.close();
    else if (typing) grid.focus();
  } else if (event.key === "/" && !typing) {
    event.preventDefault();
    toolbar.search.focus();
    toolbar.search.select();
  } else if (event.target === document.body && event.key.startsWith("Arrow")) {
    grid.focus();
    grid.onKey(event);
  }
}

/** The list's summary of a full record (which carries the gallery instead of `cover`). */
function summaryOf(model) {
  const summary = Object.fromEntries(SUMMARY_FIELDS.filter((key) => key in model).map((key) => [key, model[key]]));
  summary.cover = model.cover ?? model.images?.[0]?.url ?? null;
  summary.nsfw_level = model.nsfw_level ?? model.meta_json?.nsfw_level ?? 0;
  return summary;
}

function readPrefs() {
  try {
    return JSON.parse(localStorage.getItem(PREFS_KEY)) ?? {};
  } catch {
    return {};
  }
}

function writePrefs() {
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify({ view: view.view, cardWidth: view.cardWidth, sort: view.sort }));
  } catch {
    // private mode or storage full: the view simply is not remembered
  }
}
