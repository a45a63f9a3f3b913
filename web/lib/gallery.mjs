// <hikaze-gallery>: a model's preview carousel with upload (picker or drop), cover, order, delete.

import { isNsfw } from "./nsfw.mjs";
import { movedOrder } from "./reorder.mjs";

const DRAG_TYPE = "application/x-hikaze-image-seq";

/**
 * Set `api` and then `model` (a full record with `images`). Every change is saved at once;
 * afterwards the fresh record is announced as `hk-model-changed` ({detail: {model}}).
 */
export class Gallery extends HTMLElement {
  constructor() {
    super();
    this.current = 0;
    this.revealed = new Set(); // image ids the user chose to see unblurred
  }

  connectedCallback() {
    if (this.stage) return;
    this.innerHTML = `
      <div class="hk-gallery-stage">
        <button type="button" class="hk-gallery-prev" aria-label="Previous image">‹</button>
        <img class="hk-gallery-main" alt="">
        <div class="hk-gallery-empty">No previews yet. Drop pictures here or upload them.</div>
        <button type="button" class="hk-gallery-next" aria-label="Next image">›</button>
        <span class="hk-gallery-counter"></span>
      </div>
      <div class="hk-gallery-strip" role="list"></div>
      <div class="hk-gallery-actions">
        <label class="hk-button">Upload…<input type="file" accept="image/png,image/jpeg,image/webp,image/gif" multiple hidden></label>
        <button type="button" class="hk-button" data-action="cover">Set as cover</button>
        <button type="button" class="hk-button" data-action="earlier" aria-label="Move earlier">◀ Move</button>
        <button type="button" class="hk-button" data-action="later" aria-label="Move later">Move ▶</button>
        <button type="button" class="hk-button hk-danger" data-action="delete">Delete</button>
      </div>
      <div class="hk-gallery-progress" hidden><progress max="1" value="0"></progress><span></span></div>
      <div class="hk-inline-error" role="alert" hidden></div>`;
    this.stage = this.querySelector(".hk-gallery-stage");
    this.main = this.querySelector(".hk-gallery-main");
    this.querySelector(".hk-gallery-prev").addEventListener("click", () => this.show(this.current - 1));
    this.querySelector(".hk-gallery-next").addEventListener("click", () => this.show(this.current + 1));
    this.main.addEventListener("click", () => this.reveal());
    this.querySelector(".hk-gallery-strip").addEventListener("click", (event) => {
      const thumb = event.target.closest("[data-seq]");
      if (thumb) this.show(Number(thumb.dataset.seq));
    });
    this.listenForReorder(this.querySelector(".hk-gallery-strip"));
    this.querySelector("input[type=file]").addEventListener("change", (event) => {
      this.upload([...event.target.files]);
      event.target.value = "";
    });
    this.querySelector(".hk-gallery-actions").addEventListener("click", (event) => {
      const action = event.target.closest("[data-action]")?.dataset.action;
      if (action) this.act(action);
    });
    this.addEventListener("dragover", (event) => {
      if (![...(event.dataTransfer?.types ?? [])].includes("Files")) return;
      event.preventDefault();
      this.classList.add("is-dropping");
    });
    this.addEventListener("dragleave", (event) => {
      if (!this.contains(event.relatedTarget)) this.classList.remove("is-dropping");
    });
    this.addEventListener("drop", (event) => {
      event.preventDefault();
      this.classList.remove("is-dropping");
      const files = [...(event.dataTransfer?.files ?? [])].filter((f) => f.type.startsWith("image/"));
      if (files.length) this.upload(files);
    });
    this.render();
  }

  set model(model) {
    const same = this._model?.sha256 === model?.sha256;
    this._model = model;
    if (!same) {
      this.current = 0;
      this.revealed.clear();
      this.showError("");
    }
    this.render();
  }

  get images() {
    return this._model?.images ?? [];
  }

  show(index) {
    const count = this.images.length;
    if (!count) return;
    this.current = (index + count) % count;
    this.render();
  }

  reveal() {
    const image = this.images[this.current];
    if (image) this.revealed.add(image.id);
    this.render();
  }

  render() {
    if (!this.stage || !this._model) return;
    const images = this.images;
    this.current = Math.min(this.current, Math.max(0, images.length - 1));
    const image = images[this.current];
    this.classList.toggle("is-empty", !image);
    const blurred = image && (isNsfw(image) || isNsfw(this._model)) && !this.revealed.has(image.id);
    this.main.classList.toggle("is-blurred", Boolean(blurred));
    this.main.title = blurred ? "NSFW: click to show" : "";
    this.main.hidden = !image;
    if (image) this.main.src = this.api.imageUrl(image.url, "high");
    else this.main.removeAttribute("src");
    this.querySelector(".hk-gallery-counter").textContent = image ? `${this.current + 1} / ${images.length}` : "";
    this.querySelector(".hk-gallery-strip").replaceChildren(...images.map((img, index) => {
      const thumb = document.createElement("button");
      thumb.type = "button";
      thumb.className = "hk-gallery-thumb";
      thumb.dataset.seq = String(index);
      thumb.setAttribute("role", "listitem");
      thumb.setAttribute("aria-label", `Image ${index + 1}${index === 0 ? " (cover)" : ""}`);
      thumb.classList.toggle("is-current", index === this.current);
      thumb.draggable = images.length > 1;
      thumb.title = images.length > 1 ? "Drag to reorder" : "";
      thumb.classList.toggle("is-blurred", (isNsfw(img) || isNsfw(this._model)) && !this.revealed.has(img.id));
      const picture = document.createElement("img");
      picture.alt = "";
      picture.loading = "lazy";
      picture.src = this.api.imageUrl(img.url, "low");
      thumb.append(picture);
      return thumb;
    }));
    for (const button of this.querySelectorAll("[data-action]")) {
      const action = button.dataset.action;
      button.disabled = !image || (action === "cover" && this.current === 0) ||
        (action === "earlier" && this.current === 0) || (action === "later" && this.current === images.length - 1);
    }
  }

  async act(action) {
    const sha = this._model.sha256;
    const seq = this.current;
    const count = this.images.length;
    await this.run(async () => {
      if (action === "delete") {
        await this.api.images.remove(sha, seq);
        this.current = Math.max(0, seq - 1);
      } else if (action === "cover") {
        await this.api.images.cover(sha, seq);
        this.current = 0;
      } else {
        const target = action === "earlier" ? seq - 1 : seq + 1;
        await this.api.images.order(sha, movedOrder(count, seq, target));
        this.current = target;
      }
    });
  }

  /** Drag a thumbnail onto another to move it there; saved at once like the Move buttons. */
  listenForReorder(strip) {
    const thumbOf = (event) => event.target.closest?.(".hk-gallery-thumb");
    strip.addEventListener("dragstart", (event) => {
      const thumb = thumbOf(event);
      if (!thumb) return;
      event.dataTransfer.setData(DRAG_TYPE, thumb.dataset.seq);
      event.dataTransfer.effectAllowed = "move";
      thumb.classList.add("is-dragged");
    });
    strip.addEventListener("dragend", (event) => thumbOf(event)?.classList.remove("is-dragged"));
    strip.addEventListener("dragover", (event) => {
      if (!thumbOf(event) || ![...event.dataTransfer.types].includes(DRAG_TYPE)) return;
      event.preventDefault();
      event.stopPropagation();
      event.dataTransfer.dropEffect = "move";
      for (const other of strip.querySelectorAll(".is-drop-target")) other.classList.remove("is-drop-target");
      thumbOf(event).classList.add("is-drop-target");
    });
    strip.addEventListener("drop", (event) => {
      const thumb = thumbOf(event);
      const raw = event.dataTransfer.getData(DRAG_TYPE);
      if (!thumb || raw === "") return;
      event.preventDefault();
      event.stopPropagation();
      thumb.classList.remove("is-drop-target");
      this.move(Number(raw), Number(thumb.dataset.seq));
    });
  }

  async move(from, to) {
    const count = this.images.length;
    if (from === to || from >= count || to >= count) return;
    await this.run(async () => {
      await this.api.images.order(this._model.sha256, movedOrder(count, from, to));
      this.current = to;
    });
  }

  async upload(files) {
    const sha = this._model.sha256;
    const progress = this.querySelector(".hk-gallery-progress");
    const bar = progress.querySelector("progress");
    const label = progress.querySelector("span");
    progress.hidden = false;
    await this.run(async () => {
      for (const [index, file] of files.entries()) {
        label.textContent = `Uploading ${file.name} (${index + 1} of ${files.length})`;
        await this.api.images.upload(sha, file, {
          onProgress: (fraction) => { bar.value = (index + fraction) / files.length; },
        });
      }
      this.current = this.images.length + files.length - 1;
    });
    progress.hidden = true;
    bar.value = 0;
  }

  /** Runs one change, then reloads the record; a failure is shown inline, never in alert(). */
  async run(change) {
    this.showError("");
    this.classList.add("is-busy");
    try {
      await change();
    } catch (error) {
      this.showError(error.message);
    }
    try {
      const model = await this.api.models.get(this._model.sha256);
      this.model = model;
      this.dispatchEvent(new CustomEvent("hk-model-changed", { detail: { model }, bubbles: true }));
    } catch (error) {
      this.showError(error.message);
    } finally {
      this.classList.remove("is-busy");
    }
  }

  showError(message) {
    const box = this.querySelector(".hk-inline-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = !message;
  }
}

customElements.define("hikaze-gallery", Gallery);
