// <hikaze-chip-input>: a list of words as chips (tags, trigger words); Enter or comma adds one.

import { copyText } from "./clipboard.mjs";

let lists = 0;

/**
 * Properties: `values` (strings), `suggestions` (strings offered while typing), `copyable`
 * (clicking a chip copies it). Dispatches `change` when the values change.
 */
export class ChipInput extends HTMLElement {
  constructor() {
    super();
    this._values = [];
    this.copyable = false;
  }

  connectedCallback() {
    if (this.input) return;
    lists += 1;
    this.chips = document.createElement("span");
    this.chips.className = "hk-chips";
    this.input = document.createElement("input");
    this.input.type = "text";
    this.input.placeholder = this.getAttribute("placeholder") ?? "Add…";
    this.input.setAttribute("aria-label", this.getAttribute("label") ?? "Add an entry");
    this.list = document.createElement("datalist");
    this.list.id = `hk-chip-suggestions-${lists}`;
    this.input.setAttribute("list", this.list.id);
    this.append(this.chips, this.input, this.list);
    this.input.addEventListener("keydown", (event) => this.onKey(event));
    this.input.addEventListener("input", () => {
      if (this.input.value.includes(",")) this.commit();
    });
    this.input.addEventListener("blur", () => this.commit());
    this.chips.addEventListener("click", (event) => this.onChipClick(event));
    this.renderChips();
    this.renderSuggestions();
  }

  get values() {
    return [...this._values];
  }

  set values(list) {
    this._values = [...list];
    this.renderChips();
    this.renderSuggestions();
  }

  set suggestions(list) {
    this._suggestions = list;
    this.renderSuggestions();
  }

  /** Adds what is typed (comma-separated words allowed); the rest of the input is kept. */
  commit() {
    const words = this.input.value.split(",").map((w) => w.trim()).filter(Boolean);
    this.input.value = "";
    let changed = false;
    for (const word of words) {
      if (!this._values.some((v) => v.toLowerCase() === word.toLowerCase())) {
        this._values.push(word);
        changed = true;
      }
    }
    if (changed) this.changed();
  }

  changed() {
    this.renderChips();
    this.renderSuggestions();
    this.dispatchEvent(new Event("change", { bubbles: true }));
  }

  onKey(event) {
    if (event.key === "Enter" || event.key === ",") {
      if (!this.input.value.trim()) return;
      event.preventDefault();
      this.commit();
    } else if (event.key === "Backspace" && !this.input.value && this._values.length) {
      this._values.pop();
      this.changed();
    }
  }

  async onChipClick(event) {
    const chip = event.target.closest(".hk-chip");
    if (!chip) return;
    const index = Number(chip.dataset.index);
    if (event.target.closest(".hk-chip-remove")) {
      this._values.splice(index, 1);
      this.changed();
      this.input.focus();
    } else if (this.copyable) {
      try {
        await copyText(this._values[index]);
        chip.classList.add("is-copied");
        setTimeout(() => chip.classList.remove("is-copied"), 900);
      } catch {
        chip.classList.add("is-copy-failed");
      }
    }
  }

  renderChips() {
    if (!this.chips) return;
    this.chips.replaceChildren(...this._values.map((value, index) => {
      const chip = document.createElement("span");
      chip.className = "hk-chip";
      chip.dataset.index = String(index);
      const label = document.createElement(this.copyable ? "button" : "span");
      label.className = "hk-chip-label";
      label.textContent = value;
      if (this.copyable) {
        label.type = "button";
        label.title = "Click to copy";
      }
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "hk-chip-remove";
      remove.textContent = "×";
      remove.setAttribute("aria-label", `Remove ${value}`);
      chip.append(label, remove);
      return chip;
    }));
  }

  renderSuggestions() {
    if (!this.list) return;
    const taken = new Set(this._values.map((v) => v.toLowerCase()));
    this.list.replaceChildren(...(this._suggestions ?? [])
      .filter((name) => !taken.has(name.toLowerCase()))
      .map((name) => Object.assign(document.createElement("option"), { value: name })));
  }
}

customElements.define("hikaze-chip-input", ChipInput);
