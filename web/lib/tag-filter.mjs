// <hikaze-tag-filter>: every tag as a chip that cycles neutral → include (+) → exclude (−).

import { tagState } from "./library-query.mjs";

/**
 * Set `tags` ([{name, count}]) and `state` ({include, exclude}); a click dispatches
 * `hk-tag-toggle` with {detail: {name}} and the owner sets the new state.
 */
export class TagFilter extends HTMLElement {
  connectedCallback() {
    this.setAttribute("role", "group");
    this.setAttribute("aria-label", "Filter by tag: click to include, again to exclude, again to clear");
    this.addEventListener("click", (event) => {
      const chip = event.target.closest("button[data-tag]");
      if (chip) {
        this.dispatchEvent(new CustomEvent("hk-tag-toggle", { detail: { name: chip.dataset.tag }, bubbles: true }));
      }
    });
  }

  set tags(list) {
    this._tags = list;
    this.render();
  }

  set state(state) {
    this._state = state;
    this.render();
  }

  render() {
    if (!this._tags || !this._state) return;
    this.replaceChildren(...this._tags.map(({ name, count }) => {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "hk-filter-chip";
      chip.dataset.tag = name;
      const state = tagState(this._state, name);
      chip.dataset.state = state;
      chip.setAttribute("aria-pressed", state ? "true" : "false");
      const sign = state === "include" ? "+ " : state === "exclude" ? "− " : "";
      chip.textContent = `${sign}${name}`;
      chip.title = `${count} model${count === 1 ? "" : "s"}` +
        (state === "include" ? " · included" : state === "exclude" ? " · excluded" : "");
      return chip;
    }));
  }
}

customElements.define("hikaze-tag-filter", TagFilter);
