// <hikaze-model-details>: one model's panel — gallery, editable fields, read-only facts, Save.

import "./chip-input.mjs";
import "./gallery.mjs";
import { copyText } from "./clipboard.mjs";
import { formatBytes, formatDate } from "./format.mjs";
import { draftFromModel, hasChanges, modelPatch } from "./model-diff.mjs";

const TEXT_FIELDS = ["name", "base_model", "description", "community_links", "notes", "positive", "negative"];

/**
 * Set `api` and `tagSuggestions`, then `open(sha256)`. Save sends only the changed fields.
 * Dispatches `hk-model-changed` ({detail: {model}}) after a save or a gallery change, and
 * `hk-close` when closed. Opening another model or closing with unsaved edits asks first
 * (`confirmLeave`); `isDirty` tells a page whether to warn before it is left.
 */
export class ModelDetails extends HTMLElement {
  connectedCallback() {
    if (this.form) return;
    this.setAttribute("role", "dialog");
    this.setAttribute("aria-label", "Model details");
    this.hidden = true;
    this.innerHTML = `
      <header class="hk-details-header">
        <h2 class="hk-details-title"></h2>
        <button type="button" class="hk-icon-button" data-close aria-label="Close (Esc)">×</button>
      </header>
      <div class="hk-details-state" role="status"></div>
      <div class="hk-confirm" role="alertdialog" aria-label="Unsaved changes" hidden>
        <p>Your changes to this model are not saved.</p>
        <button type="button" class="hk-button hk-primary" data-confirm="save">Save them</button>
        <button type="button" class="hk-button hk-danger" data-confirm="discard">Discard them</button>
        <button type="button" class="hk-button" data-confirm="keep">Keep editing</button>
      </div>
      <div class="hk-details-body">
        <hikaze-gallery></hikaze-gallery>
        <form class="hk-details-form" novalidate>
          <label>Display name <input name="name" autocomplete="off"></label>
          <label>Base model <input name="base_model" autocomplete="off"></label>
          <div class="hk-field"><span>Tags</span><hikaze-chip-input data-field="tags" label="Add a tag" placeholder="Add a tag…"></hikaze-chip-input></div>
          <div class="hk-field"><span>Trigger words <small>(click one to copy)</small></span><hikaze-chip-input data-field="trigger_words" label="Add a trigger word" placeholder="Add a trigger word…"></hikaze-chip-input></div>
          <label>Positive prompt <textarea name="positive" rows="3"></textarea></label>
          <label>Negative prompt <textarea name="negative" rows="2"></textarea></label>
          <label>Description <textarea name="description" rows="4"></textarea></label>
          <label>Links <small>(one per line)</small> <textarea name="community_links" rows="2"></textarea></label>
          <div class="hk-links"></div>
          <label>Notes <textarea name="notes" rows="3"></textarea></label>
          <div class="hk-inline-error" role="alert" hidden></div>
          <div class="hk-details-actions">
            <button type="submit" class="hk-button hk-primary" data-save disabled>Save</button>
            <button type="button" class="hk-button" data-revert disabled>Revert</button>
            <span class="hk-save-status" role="status"></span>
          </div>
        </form>
        <dl class="hk-facts"></dl>
      </div>`;
    this.form = this.querySelector("form");
    this.gallery = this.querySelector("hikaze-gallery");
    this.gallery.api = this.api;
    this.tagsInput = this.querySelector('[data-field="tags"]');
    this.wordsInput = this.querySelector('[data-field="trigger_words"]');
    this.wordsInput.copyable = true;
    this.querySelector("[data-close]").addEventListener("click", () => this.close());
    this.querySelector(".hk-confirm").addEventListener("click", (event) => {
      const answer = event.target.closest("[data-confirm]")?.dataset.confirm;
      if (answer) this.answerConfirm?.(answer);
    });
    this.querySelector("[data-revert]").addEventListener("click", () => this.fill());
    this.form.addEventListener("input", () => this.updateState());
    this.form.addEventListener("change", () => this.updateState());
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.save(); });
    this.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.answerConfirm) { event.stopPropagation(); this.answerConfirm("keep"); return; }
      if (event.key === "s" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); this.save(); }
    });
    this.addEventListener("hk-model-changed", (event) => {
      if (event.target === this.gallery) this.record = event.detail.model; // the draft stays as typed
    });
    this.querySelector(".hk-facts").addEventListener("click", (event) => this.onCopy(event));
  }

  set tagSuggestions(names) {
    this._tagSuggestions = names;
    if (this.tagsInput) this.tagsInput.suggestions = names;
  }

  get isOpen() {
    return !this.hidden;
  }

  /** True while the form holds edits that are not saved. */
  get isDirty() {
    return Boolean(this.isOpen && this.record && this.record.sha256 === this.sha256 && hasChanges(this.record, this.draft()));
  }

  /**
   * Before leaving unsaved edits: ask (Save them / Discard them / Keep editing). Resolves true
   * when the panel may move on (saved or discarded), false to stay.
   */
  async confirmLeave() {
    if (!this.isDirty) return true;
    if (this.answerConfirm) return false; // already asking
    const box = this.querySelector(".hk-confirm");
    box.hidden = false;
    box.querySelector("[data-confirm=keep]").focus();
    const answer = await new Promise((resolve) => { this.answerConfirm = resolve; });
    this.answerConfirm = null;
    box.hidden = true;
    if (answer === "save") return this.save();
    return answer === "discard";
  }

  async open(sha256) {
    if (sha256 !== this.sha256 && !(await this.confirmLeave())) return;
    this.hidden = false;
    this.sha256 = sha256;
    this.gallery.api = this.api;
    this.tagsInput.suggestions = this._tagSuggestions ?? [];
    this.setState("Loading…");
    try {
      const record = await this.api.models.get(sha256);
      if (this.sha256 !== sha256) return; // another model was opened meanwhile
      this.record = record;
      this.setState("");
      this.fill();
      this.querySelector('input[name="name"]').focus();
    } catch (error) {
      if (this.sha256 !== sha256) return;
      this.setState(error.message, () => this.open(sha256));
    }
  }

  async close() {
    if (this.hidden || !(await this.confirmLeave())) return;
    this.hidden = true;
    this.sha256 = null;
    this.dispatchEvent(new CustomEvent("hk-close", { bubbles: true }));
  }

  /** Loading / error message over the body; `retry` adds a Retry button. */
  setState(message, retry) {
    const box = this.querySelector(".hk-details-state");
    box.replaceChildren(message);
    if (retry) {
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: "Retry", className: "hk-button" });
      button.addEventListener("click", retry);
      box.append(" ", button);
    }
    box.hidden = !message;
    this.querySelector(".hk-details-body").hidden = Boolean(message);
  }

  /** Fill the form from the record (also Revert). */
  fill() {
    const draft = draftFromModel(this.record);
    for (const field of TEXT_FIELDS) this.form.elements[field].value = draft[field];
    this.tagsInput.values = draft.tags;
    this.wordsInput.values = draft.trigger_words;
    this.gallery.model = this.record;
    this.querySelector(".hk-details-title").textContent = this.record.name;
    this.renderFacts();
    this.showError("");
    this.updateState();
  }

  draft() {
    const draft = {};
    for (const field of TEXT_FIELDS) draft[field] = this.form.elements[field].value;
    draft.tags = this.tagsInput.values;
    draft.trigger_words = this.wordsInput.values;
    return draft;
  }

  updateState() {
    if (!this.record) return;
    const changed = hasChanges(this.record, this.draft());
    this.querySelector("[data-save]").disabled = !changed;
    this.querySelector("[data-revert]").disabled = !changed;
    if (changed) this.querySelector(".hk-save-status").textContent = "";
    this.renderLinks();
  }

  async save() {
    this.tagsInput.commit();
    this.wordsInput.commit();
    const patch = modelPatch(this.record, this.draft());
    if (!Object.keys(patch).length) return true;
    const status = this.querySelector(".hk-save-status");
    status.textContent = "Saving…";
    this.showError("");
    try {
      this.record = await this.api.models.patch(this.record.sha256, patch);
      this.fill();
      status.textContent = "Saved";
      this.dispatchEvent(new CustomEvent("hk-model-changed", { detail: { model: this.record }, bubbles: true }));
      return true;
    } catch (error) {
      status.textContent = "";
      const field = error.details?.field ? ` (${error.details.field})` : "";
      this.showError(`Not saved: ${error.message}${field}`);
      return false;
    }
  }

  showError(message) {
    const box = this.form.querySelector(".hk-inline-error");
    box.textContent = message;
    box.hidden = !message;
  }

  renderLinks() {
    const urls = this.form.elements.community_links.value.split(/\s+/).filter((u) => /^https?:\/\//i.test(u));
    this.querySelector(".hk-links").replaceChildren(...urls.map((url) =>
      Object.assign(document.createElement("a"), { href: url, textContent: url, target: "_blank", rel: "noopener noreferrer" })));
  }

  renderFacts() {
    const model = this.record;
    const facts = this.querySelector(".hk-facts");
    const row = (term, ...content) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.append(...content);
      facts.append(dt, dd);
    };
    const copyButton = (value, what) => {
      const button = Object.assign(document.createElement("button"), {
        type: "button", className: "hk-copy", textContent: "Copy", title: `Copy the ${what}`,
      });
      button.dataset.copy = value;
      return button;
    };
    facts.replaceChildren();
    row("Kind", model.type || "other");
    row("Size", formatBytes(model.size_bytes));
    row("Added", formatDate(model.created_at));
    const sha = Object.assign(document.createElement("code"), { textContent: model.sha256, className: "hk-sha" });
    row("SHA256", sha, copyButton(model.sha256, "sha256"));
    row("AutoV2", Object.assign(document.createElement("code"), { textContent: model.autov2 ?? "" }));
    const list = document.createElement("ul");
    list.className = "hk-files";
    for (const file of model.files ?? []) {
      const item = document.createElement("li");
      item.textContent = file.path;
      if (file.state === "missing") {
        item.classList.add("is-missing");
        item.append(Object.assign(document.createElement("span"), { className: "hk-missing", textContent: "missing" }));
      }
      list.append(item);
    }
    if (!list.children.length) list.append(Object.assign(document.createElement("li"), { textContent: "No file on disk is known." }));
    row("Files", list);
  }

  async onCopy(event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    try {
      await copyText(button.dataset.copy);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 1200);
  }
}

customElements.define("hikaze-model-details", ModelDetails);
