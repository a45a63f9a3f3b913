// The manager page's entry: wires the library view (tabs, toolbar, filter, grid, details), the
// pending view (migration wizard) and the settings to one API client and one events socket.

import { createApi } from "../lib/api.mjs";
import { EventSocket } from "../lib/event-socket.mjs";
import "../lib/kind-tabs.mjs";
import "../lib/library-toolbar.mjs";
import "../lib/model-details.mjs";
import "../lib/model-grid.mjs";
import "../lib/status-box.mjs";
import "../lib/tag-filter.mjs";
import { cycleTag, initialQuery, listParams } from "../lib/library-query.mjs";
import { writeModelDrag } from "../lib/model-drag.mjs";
import { ModelPages } from "../lib/model-pages.mjs";
import "./migration-wizard.mjs";
import "./settings-panel.mjs";

const PREFS_KEY = "hikaze.manager.view";
const SUMMARY_FIELDS = ["name", "type", "base_model", "size_bytes", "tags", "images_count", "path"];

const MODES = ["library", "pending", "settings"];

// The sidecar's root is the folder above this module: "/" when served directly, or a prefix
// such as "/api/hikaze/proxy/" behind ComfyUI's proxy. Every URL is built from it.
const api = createApi(new URL("../", import.meta.url).href);
const events = new EventSocket(api.eventsUrl(), ["scan", "import"]);
const $ = (selector) => document.querySelector(selector);
const tabs = $("hikaze-kind-tabs");
const toolbar = $("hikaze-library-toolbar");
const tagFilter = $("hikaze-tag-filter");
const grid = $("hikaze-model-grid");
const status = $("hikaze-status");
const details = $("hikaze-model-details");
const wizard = $("hikaze-migration-wizard");
const settingsPanel = $("hikaze-settings");
const badge = $(".mm-badge");

const view = { view: "grid", cardWidth: 180, ...readPrefs() };
let query = { ...initialQuery(), sort: view.sort ?? "name" };
const pages = new ModelPages((offset, limit) => api.models.list({ ...listParams(query), offset, limit }));

grid.source = pages;
grid.imageUrl = api.imageUrl;
details.api = api;
wizard.api = api;
wizard.events = events;
settingsPanel.api = api;
applyView();
events.start();

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
// Cards can be dragged onto ComfyUI's canvas in another tab (docs/web.md, "Inside ComfyUI").
grid.draggableCards = true;
grid.addEventListener("hk-drag", (event) => writeModelDrag(event.detail.event.dataTransfer, event.detail.model));
details.addEventListener("hk-close", () => grid.focus());
details.addEventListener("hk-model-changed", (event) => {
  const { model } = event.detail;
  pages.update(model.sha256, summaryOf(model));
  loadTags();
});
document.addEventListener("keydown", onKey);
window.addEventListener("hashchange", showMode);
window.addEventListener("beforeunload", (event) => {
  if (!details.isDirty) return;
  event.preventDefault();
  event.returnValue = ""; // the browser asks "Leave site? Changes you made may not be saved."
});
wizard.addEventListener("hk-pending-count", (event) => showPendingCount(event.detail.total));
wizard.addEventListener("hk-library-changed", () => {
  refreshLibrary();
  countPending();
});
settingsPanel.addEventListener("hk-settings-changed", (event) => applyNsfwDefault(event.detail.nsfw_default));
events.addEventListener("hk-event", (event) => {
  const { channel, type, data } = event.detail;
  const finished = channel === "scan" && ["done", "failed", "cancelled"].includes(type);
  if (finished || (channel === "import" && type === "completed")) countPending();
  if (channel === "import" && type === "completed" && data?.success) refreshLibrary();
});

showMode();
start();

/** First load: kinds and tags, then the first page. The manager may be down: say so, offer Retry. */
async function start() {
  status.show("loading", "Loading the library…");
  try {
    countPending(); // the badge need not hold up the grid
    const [{ types }, , settings] = await Promise.all([
      api.models.types(), loadTags(), api.settings.get().catch(() => null)]);
    tabs.kinds = types;
    tabs.value = query.type;
    if (settings) applyNsfwDefault(settings.nsfw_default, false);
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

/** Library, Pending or Settings, from the address's #fragment (so reload and links keep it). */
function showMode() {
  const wanted = location.hash.slice(1);
  const mode = MODES.includes(wanted) ? wanted : "library";
  document.body.dataset.mode = mode;
  for (const part of document.querySelectorAll("[data-in]")) part.hidden = part.dataset.in !== mode;
  for (const link of document.querySelectorAll(".mm-modes [data-mode]")) {
    if (link.dataset.mode === mode) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (mode === "pending") wizard.load().catch((error) => status.show("error", error.message));
  else if (mode === "settings") settingsPanel.load();
  else grid.refresh();
}

async function countPending() {
  try {
    showPendingCount((await api.pending.list({ limit: 1 })).total);
  } catch {
    badge.hidden = true; // the library view says what is wrong
  }
}

function showPendingCount(total) {
  badge.textContent = total.toLocaleString();
  badge.hidden = !total;
  badge.title = `${total} model${total === 1 ? "" : "s"} wait for review`;
}

/** After an import: kinds, tags and models may all have changed. */
async function refreshLibrary() {
  try {
    const [{ types }] = await Promise.all([api.models.types(), loadTags()]);
    tabs.kinds = types;
    tabs.value = query.type;
  } catch {
    // the reload below shows the error state
  }
  reload();
}

/** The NSFW setting: "hide" leaves NSFW models out, "blur" lists them blurred, "show" plain. */
function applyNsfwDefault(choice, reloadNow = true) {
  document.body.classList.toggle("mm-nsfw-show", choice === "show");
  const showNsfw = choice !== "hide";
  if (showNsfw === query.showNsfw) return;
  query = { ...query, showNsfw };
  toolbar.values = { ...query, ...view };
  grid.showNsfw = showNsfw;
  if (reloadNow) reload();
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
    countPending();
    status.show("empty", `Found ${report.scanned} files; ${report.added} wait for review in the pending list.`,
                { label: "Review them", run: () => { location.hash = "#pending"; } });
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
  if (document.body.dataset.mode !== "library") return;
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
