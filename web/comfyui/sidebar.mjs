// The "Models" sidebar tab: the library (kind tabs, search, thumbnails, NSFW hidden by default),
// cards to drag onto the canvas, and each model's menu (add, queue with it, compare).

import "../lib/kind-tabs.mjs";
import "../lib/library-toolbar.mjs";
import "../lib/model-grid.mjs";
import "../lib/status-box.mjs";
import { initialQuery, listParams } from "../lib/library-query.mjs";
import { writeModelDrag } from "../lib/model-drag.mjs";
import { labelOf } from "../lib/node-payload.mjs";
import { ModelPages } from "../lib/model-pages.mjs";
import { addModelToCanvas } from "./canvas-drop.mjs";
import { toast } from "./host.mjs";
import { parseStrengths } from "./prompt-rewrite.mjs";
import { compareCheckpoints, compareLoraStrengths, queueWithCheckpoint, queueWithLora } from "./queue.mjs";

export const SIDEBAR_TAB_ID = "hikaze-library";

/** The sidebar's panel, built once and moved into whatever element the frontend renders the tab in. */
export class LibraryPanel {
  constructor(connection, { openManager }) {
    this.connection = connection;
    this.openManager = openManager;
    this.query = { ...initialQuery() };
    this.compare = new Map(); // sha256 → checkpoint chosen for "compare"
    this.element = document.createElement("section");
    this.element.className = "hk-comfy hk-sidebar";
    this.element.innerHTML = `
      <header class="hk-sidebar-head">
        <strong>Hikaze models</strong>
        <button type="button" class="hk-button hk-open-manager" title="Open the full manager page">Manager ↗</button>
      </header>
      <hikaze-kind-tabs></hikaze-kind-tabs>
      <hikaze-library-toolbar></hikaze-library-toolbar>
      <div class="hk-compare-bar" hidden>
        <span></span>
        <button type="button" class="hk-button hk-primary hk-compare-run">Queue one per checkpoint</button>
        <button type="button" class="hk-button hk-compare-clear">Clear</button>
      </div>
      <hikaze-status></hikaze-status>
      <hikaze-model-grid aria-label="Models"></hikaze-model-grid>`;
    const $ = (selector) => this.element.querySelector(selector);
    this.tabs = $("hikaze-kind-tabs");
    this.toolbar = $("hikaze-library-toolbar");
    this.grid = $("hikaze-model-grid");
    this.status = $("hikaze-status");
    this.compareBar = $(".hk-compare-bar");
    this.built = false;
    $(".hk-open-manager").addEventListener("click", () => this.openManager());
    $(".hk-compare-run").addEventListener("click", () => compareCheckpoints([...this.compare.values()]));
    $(".hk-compare-clear").addEventListener("click", () => { this.compare.clear(); this.showCompare(); });
    connection.addEventListener("change", () => this.start());
  }

  /** Show the panel inside `container` (the frontend gives a fresh element each time the tab opens). */
  mount(container) {
    container.append(this.element);
    // The frontend may render the tab into an element it attaches to the page only later; our
    // components build their insides once connected.
    if (!this.element.isConnected) {
      requestAnimationFrame(() => this.element.parentElement === container && this.mount(container));
      return;
    }
    if (!this.built) {
      this.built = true;
      this.wire();
      this.start();
    } else {
      this.grid.refresh();
    }
  }

  wire() {
    this.grid.draggableCards = true;
    this.grid.cardWidth = 120;
    this.grid.isMarked = (model) => Boolean(model && this.compare.has(model.sha256));
    this.tabs.addEventListener("hk-kind-change", (event) => this.setQuery({ type: event.detail.kind }));
    this.toolbar.addEventListener("hk-query-change", (event) => this.setQuery(event.detail));
    this.toolbar.addEventListener("hk-view-change", (event) => {
      if (event.detail.view) this.grid.view = event.detail.view;
      if (event.detail.cardWidth) this.grid.cardWidth = event.detail.cardWidth;
      this.toolbar.values = { ...this.query, view: this.grid.view, cardWidth: this.grid.cardWidth };
      this.grid.refresh();
    });
    this.toolbar.values = { ...this.query, view: "grid", cardWidth: 120 };
    this.grid.addEventListener("hk-drag", (event) => writeModelDrag(event.detail.event.dataTransfer, event.detail.model));
    this.grid.addEventListener("hk-open", (event) => this.showMenu(event.detail.model, event.detail.index));
  }

  async start() {
    if (!this.built) return;
    const api = this.connection.api;
    if (!api) {
      this.status.show("error", this.connection.found.message, { label: "Retry", run: () => this.retry() });
      return;
    }
    try {
      const { types } = await api.models.types();
      this.tabs.kinds = types;
      this.tabs.value = this.query.type;
    } catch (error) {
      this.status.show("error", error.message, { label: "Retry", run: () => this.retry() });
      return;
    }
    this.pages = new ModelPages((offset, limit) => api.models.list({ ...listParams(this.query), offset, limit }));
    this.pages.addEventListener("change", () => this.showState());
    this.grid.source = this.pages;
    this.grid.imageUrl = api.imageUrl;
    this.reload();
  }

  retry() {
    this.status.show("loading", "Looking for the Hikaze manager…");
    this.connection.connect();
  }

  setQuery(changes) {
    this.query = { ...this.query, ...changes };
    this.grid.showNsfw = this.query.showNsfw;
    this.reload();
  }

  reload() {
    if (!this.pages) return;
    this.pages.reset();
    this.toolbar.count = null;
    this.grid.reset();
    this.status.show("loading", "Loading models…");
    this.pages.ensure(0, this.pages.pageSize);
  }

  showState() {
    this.grid.refresh();
    this.toolbar.count = this.pages.total;
    if (this.pages.error) this.status.show("error", this.pages.error.message, { label: "Retry", run: () => this.retry() });
    else if (this.pages.total === 0) this.status.show("empty", "No models here. Scan or import models in the manager.");
    else this.status.clear();
  }

  showCompare() {
    this.compareBar.hidden = this.compare.size === 0;
    this.compareBar.querySelector("span").textContent = `${this.compare.size} checkpoint${this.compare.size === 1 ? "" : "s"} to compare`;
    this.grid.refresh();
  }

  /** The menu of one model: what can be done with it from here. */
  showMenu(model, index) {
    this.element.querySelector(".hk-model-menu")?.remove();
    const menu = document.createElement("div");
    menu.className = "hk-model-menu";
    menu.setAttribute("role", "menu");
    const item = (label, run) => {
      const button = Object.assign(document.createElement("button"), { type: "button", className: "hk-menu-item", textContent: label });
      button.setAttribute("role", "menuitem");
      button.addEventListener("click", () => { menu.remove(); run(); });
      menu.append(button);
    };
    menu.append(Object.assign(document.createElement("strong"), { textContent: labelOf(model) }));
    item("Add to canvas", () => this.guard(() => addModelToCanvas(model)));
    if (model.type === "checkpoints") {
      item("Queue with this checkpoint", () => queueWithCheckpoint(model));
      const chosen = this.compare.has(model.sha256);
      item(chosen ? "Remove from compare" : "Add to compare", () => {
        if (chosen) this.compare.delete(model.sha256);
        else this.compare.set(model.sha256, model);
        this.showCompare();
      });
    } else if (model.type === "loras") {
      item("Queue with this LoRA", () => queueWithLora(model));
      this.strengthForm(menu, model);
    }
    item("Close", () => {});
    const card = this.grid.querySelector(`[data-index="${index}"]`);
    this.element.append(menu);
    const top = card ? card.getBoundingClientRect().bottom - this.element.getBoundingClientRect().top : 80;
    menu.style.top = `${Math.max(0, top)}px`;
    menu.querySelector(".hk-menu-item")?.focus();
    menu.addEventListener("keydown", (event) => { if (event.key === "Escape") menu.remove(); });
  }

  strengthForm(menu, model) {
    const form = document.createElement("form");
    form.className = "hk-strengths";
    form.innerHTML = `<label>Compare strengths <input name="strengths" value="0.25, 0.5, 0.75, 1" aria-label="LoRA strengths"></label>
      <button type="submit" class="hk-button">Queue one per strength</button>`;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.guard(() => {
        const strengths = parseStrengths(form.elements.strengths.value);
        menu.remove();
        compareLoraStrengths(model, strengths);
      });
    });
    menu.append(form);
  }

  guard(run) {
    try {
      run();
    } catch (error) {
      toast("error", "Hikaze", error.message);
    }
  }
}
