// <hikaze-model-grid>: the virtualised card grid / list; only visible rows exist in the DOM.

import { createCard, fillCard } from "./model-card.mjs";
import {
  contentHeight, itemPosition, layout, moveSelection, scrollToReveal, visibleRange,
} from "./virtual-window.mjs";

const GAP = 8;

/**
 * Set `source` (a ModelPages), `imageUrl` (url, quality → src), and optionally `view`
 * ("grid" | "list"), `cardWidth` and `showNsfw`, then call refresh(). Dispatches
 * `hk-open` ({detail: {model, index}}) on click or Enter. Optional: `isMarked(model)` marks
 * cards (`.is-marked`, e.g. a multiple choice), `draggableCards` lets cards be dragged (then
 * `hk-drag` ({detail: {model, event}}) is dispatched on dragstart to fill the dataTransfer).
 */
export class ModelGrid extends HTMLElement {
  constructor() {
    super();
    this.view = "grid";
    this.cardWidth = 180;
    this.showNsfw = false;
    this.selected = -1;
    this.active = new Map(); // index → card element in the DOM
    this.pool = []; // detached cards, reused before new ones are made
    this.frame = 0;
  }

  connectedCallback() {
    if (this.canvas) return;
    this.tabIndex = 0;
    this.setAttribute("role", "listbox");
    this.canvas = document.createElement("div");
    this.canvas.className = "hk-grid-canvas";
    this.append(this.canvas);
    this.addEventListener("scroll", () => this.schedule(), { passive: true });
    this.addEventListener("keydown", (event) => this.onKey(event));
    this.addEventListener("click", (event) => this.onClick(event));
    this.addEventListener("dragstart", (event) => this.onDragStart(event));
    new ResizeObserver(() => this.schedule()).observe(this);
  }

  /** A new list (new query): back to the top, nothing selected. */
  reset() {
    this.scrollTop = 0;
    this.selected = -1;
    this.refresh();
  }

  refresh() {
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  /** The current geometry (exposed for the page's keyboard handling and for tests). */
  geometry() {
    return layout({ width: this.canvas.clientWidth, cardWidth: this.cardWidth, gap: GAP, view: this.view });
  }

  render() {
    if (!this.source || !this.canvas) return;
    const total = this.source.total ?? 0;
    const geo = this.geometry();
    this.dataset.view = this.view;
    this.canvas.style.height = `${contentHeight(total, geo.columns, geo.rowHeight)}px`;
    const { first, last } = visibleRange({
      scrollTop: this.scrollTop, viewportHeight: this.clientHeight,
      rowHeight: geo.rowHeight, columns: geo.columns, total,
    });
    if (total && last > first) this.source.ensure(first, last);
    for (const [index, card] of this.active) {
      if (index < first || index >= last) {
        card.remove();
        this.active.delete(index);
        this.pool.push(card);
      }
    }
    const options = { showNsfw: this.showNsfw, imageUrl: this.imageUrl };
    for (let index = first; index < last; index += 1) {
      let card = this.active.get(index);
      if (!card) {
        card = this.pool.pop() ?? createCard();
        this.active.set(index, card);
        this.canvas.append(card);
      }
      fillCard(card, this.source.get(index), index, options);
      const { x, y } = itemPosition(index, geo, GAP);
      card.style.transform = `translate(${x}px, ${y}px)`;
      card.style.width = `${geo.itemWidth}px`;
      card.style.height = `${geo.itemHeight}px`;
      const isSelected = index === this.selected;
      card.classList.toggle("is-selected", isSelected);
      card.classList.toggle("is-marked", Boolean(this.isMarked?.(this.source.get(index))));
      card.draggable = Boolean(this.draggableCards);
      card.setAttribute("aria-selected", String(isSelected));
    }
    if (this.selected >= 0 && this.active.has(this.selected)) {
      this.setAttribute("aria-activedescendant", `hk-card-${this.selected}`);
    } else {
      this.removeAttribute("aria-activedescendant");
    }
  }

  select(index) {
    this.selected = index;
    const geo = this.geometry();
    const top = scrollToReveal(index, geo.columns, geo.rowHeight, this.scrollTop, this.clientHeight, GAP);
    if (top !== null) this.scrollTop = top;
    this.render();
  }

  open(index) {
    const model = this.source.get(index);
    if (model) this.dispatchEvent(new CustomEvent("hk-open", { detail: { model, index }, bubbles: true }));
  }

  onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "Enter" && this.selected >= 0) {
      event.preventDefault();
      this.open(this.selected);
      return;
    }
    const geo = this.geometry();
    const pageRows = Math.max(1, Math.floor(this.clientHeight / geo.rowHeight));
    const next = moveSelection(this.selected, event.key, geo.columns, this.source?.total ?? 0, pageRows);
    if (next === null) return;
    event.preventDefault();
    this.select(next);
  }

  onDragStart(event) {
    const model = this.source?.get(Number(event.target.closest?.(".hk-card")?.dataset.index));
    if (!model) return;
    this.dispatchEvent(new CustomEvent("hk-drag", { detail: { model, event }, bubbles: true }));
  }

  onClick(event) {
    const card = event.target.closest(".hk-card");
    if (!card || !this.contains(card)) return;
    const index = Number(card.dataset.index);
    this.select(index);
    this.open(index);
  }
}

customElements.define("hikaze-model-grid", ModelGrid);
