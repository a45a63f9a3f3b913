// <hikaze-kind-tabs>: one tab per model kind, plus All and Others; arrow keys move between tabs.

import { OTHERS } from "./library-query.mjs";

const LABELS = { loras: "LoRAs", vae: "VAE", controlnet: "ControlNet", clip: "CLIP", clip_vision: "CLIP vision", unet: "UNet" };

/** "upscale_models" → "Upscale models", "loras" → "LoRAs". */
export function kindLabel(kind) {
  if (!kind) return "All";
  if (kind === OTHERS) return "Others";
  if (LABELS[kind]) return LABELS[kind];
  const words = kind.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Set `kinds` (from /api/models/get_types) and `value`; dispatches `hk-kind-change` ({detail: {kind}}). */
export class KindTabs extends HTMLElement {
  connectedCallback() {
    this.setAttribute("role", "tablist");
    this.setAttribute("aria-label", "Model kinds");
    this.addEventListener("click", (event) => {
      const tab = event.target.closest("[role=tab]");
      if (tab) this.choose(tab.dataset.kind);
    });
    this.addEventListener("keydown", (event) => {
      const tabs = [...this.querySelectorAll("[role=tab]")];
      const at = tabs.indexOf(document.activeElement);
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (at < 0 || !step) return;
      event.preventDefault();
      const next = tabs[(at + step + tabs.length) % tabs.length];
      next.focus();
      this.choose(next.dataset.kind);
    });
  }

  set kinds(list) {
    this._kinds = ["", ...list, OTHERS];
    this.render();
  }

  set value(kind) {
    this._value = kind;
    this.render();
  }

  choose(kind) {
    if (kind === this._value) return;
    this.value = kind;
    this.dispatchEvent(new CustomEvent("hk-kind-change", { detail: { kind }, bubbles: true }));
  }

  render() {
    if (!this._kinds) return;
    const value = this._value ?? "";
    this.replaceChildren(...this._kinds.map((kind) => {
      const tab = document.createElement("button");
      tab.type = "button";
      tab.setAttribute("role", "tab");
      tab.dataset.kind = kind;
      tab.textContent = kindLabel(kind);
      tab.setAttribute("aria-selected", String(kind === value));
      tab.tabIndex = kind === value ? 0 : -1;
      return tab;
    }));
  }
}

customElements.define("hikaze-kind-tabs", KindTabs);
