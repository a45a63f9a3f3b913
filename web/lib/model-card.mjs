// One model as a grid card or a list row; elements are recycled, so fill() rewrites everything.

import { formatBytes } from "./format.mjs";
import { nsfwDisplay } from "./nsfw.mjs";

/** An empty card element, to be filled (and refilled while scrolling). */
export function createCard() {
  const card = document.createElement("div");
  card.className = "hk-card";
  card.setAttribute("role", "option");
  card.innerHTML = `<div class="hk-thumb"><img alt="" decoding="async" draggable="false">` +
    `<span class="hk-nsfw-badge">NSFW</span></div>` +
    `<div class="hk-card-info"><div class="hk-card-name"></div><div class="hk-card-meta"></div></div>`;
  const img = card.querySelector("img");
  img.addEventListener("load", () => img.classList.add("is-loaded"));
  return card;
}

/** Show `model` (or a placeholder while its page loads) at list position `index`. */
export function fillCard(card, model, index, { showNsfw, imageUrl }) {
  card.dataset.index = String(index);
  card.id = `hk-card-${index}`;
  const name = card.querySelector(".hk-card-name");
  const meta = card.querySelector(".hk-card-meta");
  const img = card.querySelector("img");
  card.classList.toggle("is-placeholder", !model);
  if (!model) {
    delete card.dataset.sha256;
    name.textContent = "\u00a0";
    meta.textContent = "\u00a0";
    setSource(img, "");
    card.dataset.nsfw = "show";
    return;
  }
  card.dataset.sha256 = model.sha256;
  name.textContent = model.name;
  card.title = model.path ? `${model.name}\n${model.path}` : model.name;
  meta.textContent = [model.type || "other", model.base_model, formatBytes(model.size_bytes)]
    .filter(Boolean).join(" · ");
  const display = nsfwDisplay(model, showNsfw);
  card.dataset.nsfw = display; // "hide" never loads the picture; "blur" blurs it (CSS)
  setSource(img, display === "hide" || !model.cover ? "" : imageUrl(model.cover, "medium"));
}

function setSource(img, src) {
  if ((img.dataset.src ?? "") === src) return;
  img.dataset.src = src;
  img.classList.remove("is-loaded"); // shown again once the new picture has arrived
  if (src) {
    img.src = src;
    img.hidden = false;
  } else {
    img.removeAttribute("src"); // a recycled card must not show the previous model's picture
    img.hidden = true;
  }
}
