// <hikaze-library-toolbar>: search, sort, view, card size, the NSFW toggle and the shown count.

import { debounce, SORTS } from "./library-query.mjs";

const SORT_LABELS = { name: "Name", newest: "Newest", oldest: "Oldest", size: "Size" };

/**
 * Dispatches `hk-query-change` ({detail: {search} | {sort} | {showNsfw}}, search debounced)
 * and `hk-view-change` ({detail: {view} | {cardWidth}}). Set `values` to show a state and
 * `count` to show how many models match.
 */
export class LibraryToolbar extends HTMLElement {
  connectedCallback() {
    if (this.search) return;
    this.innerHTML = `
      <input type="search" class="hk-search" placeholder="Search name, path or sha256  ( / )"
             aria-label="Search models" autocomplete="off" spellcheck="false">
      <label class="hk-compact">Sort <select class="hk-sort" aria-label="Sort by">
        ${SORTS.map((s) => `<option value="${s}">${SORT_LABELS[s]}</option>`).join("")}</select></label>
      <div class="hk-view-switch" role="group" aria-label="View">
        <button type="button" data-view="grid" aria-label="Cards">▦</button>
        <button type="button" data-view="list" aria-label="List">☰</button>
      </div>
      <label class="hk-compact hk-size">Size <input type="range" class="hk-card-size" min="120" max="360" step="10" aria-label="Card size"></label>
      <label class="hk-compact hk-nsfw-toggle"><input type="checkbox" class="hk-show-nsfw"> Show NSFW (blurred)</label>
      <span class="hk-count" role="status" aria-live="polite"></span>`;
    this.search = this.querySelector(".hk-search");
    const emit = (type, detail) => this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true }));
    const searchChanged = debounce((search) => emit("hk-query-change", { search }), 250);
    this.search.addEventListener("input", () => searchChanged(this.search.value));
    this.querySelector(".hk-sort").addEventListener("change", (e) => emit("hk-query-change", { sort: e.target.value }));
    this.querySelector(".hk-show-nsfw").addEventListener("change", (e) => emit("hk-query-change", { showNsfw: e.target.checked }));
    this.querySelector(".hk-card-size").addEventListener("input", (e) => emit("hk-view-change", { cardWidth: Number(e.target.value) }));
    this.querySelector(".hk-view-switch").addEventListener("click", (e) => {
      const view = e.target.closest("[data-view]")?.dataset.view;
      if (view) emit("hk-view-change", { view });
    });
  }

  /** {search, sort, showNsfw, view, cardWidth}: show these values. */
  set values({ search, sort, showNsfw, view, cardWidth }) {
    this.search.value = search;
    this.querySelector(".hk-sort").value = sort;
    this.querySelector(".hk-show-nsfw").checked = showNsfw;
    this.querySelector(".hk-card-size").value = String(cardWidth);
    this.querySelector(".hk-size").hidden = view === "list";
    for (const button of this.querySelectorAll("[data-view]")) {
      button.setAttribute("aria-pressed", String(button.dataset.view === view));
    }
  }

  /** How many models match (null while unknown). */
  set count(total) {
    this.querySelector(".hk-count").textContent =
      total === null ? "" : `${total.toLocaleString()} model${total === 1 ? "" : "s"}`;
  }
}

customElements.define("hikaze-library-toolbar", LibraryToolbar);
