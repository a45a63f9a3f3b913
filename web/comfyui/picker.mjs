// The picker modal: the library of one kind in a searchable grid; one model, or several (LoRAs)
// with what the node already holds pre-selected.

import "../lib/model-grid.mjs";
import "../lib/status-box.mjs";
import { debounce, initialQuery, listParams } from "../lib/library-query.mjs";
import { ModelPages } from "../lib/model-pages.mjs";
import { kindLabel } from "../lib/kind-tabs.mjs";

/**
 * openPicker({connection, kind, multiple, selected: [sha256]}) → the chosen models (for a
 * multiple picker: every selected one, pre-selected ones as {sha256} stubs unless seen in the
 * list), or null when cancelled.
 */
export function openPicker({ connection, kind, multiple = false, selected = [] }) {
  return new Promise((resolve) => {
    const chosen = new Map(selected.map((sha256) => [sha256, { sha256 }]));
    const dialog = document.createElement("dialog");
    dialog.className = "hk-comfy hk-picker";
    dialog.innerHTML = `
      <header class="hk-picker-head">
        <strong>Choose ${multiple ? "" : "a "}${kindLabel(kind)}</strong>
        <input type="search" class="hk-search" placeholder="Search name, path or sha256" aria-label="Search models">
        <label class="hk-compact"><input type="checkbox" class="hk-show-nsfw"> Show NSFW (blurred)</label>
      </header>
      <hikaze-model-grid aria-label="Models"></hikaze-model-grid>
      <hikaze-status></hikaze-status>
      <footer class="hk-picker-foot">
        <span class="hk-picker-count"></span>
        <button type="button" class="hk-button hk-cancel">Cancel</button>
        ${multiple ? '<button type="button" class="hk-button hk-primary hk-apply">Apply</button>' : ""}
      </footer>`;
    const grid = dialog.querySelector("hikaze-model-grid");
    const status = dialog.querySelector("hikaze-status");
    const count = dialog.querySelector(".hk-picker-count");
    let query = { ...initialQuery(), type: kind };
    const finish = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    document.body.append(dialog);
    dialog.addEventListener("cancel", (event) => { event.preventDefault(); finish(null); });
    dialog.querySelector(".hk-cancel").addEventListener("click", () => finish(null));
    dialog.querySelector(".hk-apply")?.addEventListener("click", () => finish([...chosen.values()]));
    const showCount = () => { count.textContent = multiple ? `${chosen.size} selected` : ""; };
    showCount();
    dialog.showModal();

    if (!connection.api) {
      status.show("error", connection.found.message, { label: "Retry", run: () => connection.connect().then(() => { finish(null); }) });
      return;
    }
    const api = connection.api;
    const pages = new ModelPages((offset, limit) => api.models.list({ ...listParams(query), offset, limit }));
    grid.source = pages;
    grid.imageUrl = api.imageUrl;
    grid.cardWidth = 140;
    grid.isMarked = (model) => Boolean(model && chosen.has(model.sha256));
    const reload = () => {
      pages.reset();
      grid.showNsfw = query.showNsfw;
      grid.reset();
      status.show("loading", "Loading models…");
      pages.ensure(0, pages.pageSize);
    };
    pages.addEventListener("change", () => {
      grid.refresh();
      if (pages.error) status.show("error", pages.error.message, { label: "Retry", run: reload });
      else if (pages.total === 0) status.show("empty", query.search ? "No models match." : `No ${kindLabel(kind)} in the library yet.`);
      else status.clear();
      // Pre-selected entries become full models once seen, so new ones carry their name and path.
      for (const model of [...pages.pages.values()].flat()) {
        if (chosen.has(model.sha256)) chosen.set(model.sha256, model);
      }
    });
    grid.addEventListener("hk-open", (event) => {
      const { model } = event.detail;
      if (!multiple) return finish([model]);
      if (chosen.has(model.sha256)) chosen.delete(model.sha256);
      else chosen.set(model.sha256, model);
      showCount();
      grid.refresh();
    });
    const search = dialog.querySelector(".hk-search");
    search.addEventListener("input", debounce(() => { query = { ...query, search: search.value }; reload(); }, 250));
    dialog.querySelector(".hk-show-nsfw").addEventListener("change", (event) => {
      query = { ...query, showNsfw: event.target.checked };
      reload();
    });
    reload();
    search.focus();
  });
}
