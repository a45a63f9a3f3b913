// <hikaze-migration-wizard>: scan → review pending items → conflict strategies → import → report.

import "./progress-bar.mjs";
import "./legacy-import.mjs";
import { formatBytes } from "../lib/format.mjs";
import { importProgress, jobProgress } from "./progress.mjs";
import { idsOfKind, importBatches, kindsOf, mergeReports, reportLines, reportSummary, STRATEGIES, STRATEGY_LABELS } from "./pending-review.mjs";

const STEPS = [["scan", "1 Scan"], ["review", "2 Review"], ["report", "3 Import"], ["legacy", "Legacy v1 database"]];
const FINISHED = new Set(["done", "failed", "cancelled"]);
const PAGE = 5000;

/**
 * Set `api` and `events` (an EventSocket on "scan" and "import"), then call load(). Dispatches
 * `hk-pending-count` ({detail: {total}}) whenever the queue was read, and `hk-library-changed`
 * after an import or a legacy migration.
 */
export class MigrationWizard extends HTMLElement {
  constructor() {
    super();
    this.items = [];
    this.selected = new Set();
    this.perItem = new Map();
    this.jobs = new Map(); // job id → latest snapshot from the `scan` channel
  }

  connectedCallback() {
    if (this.nav) return;
    const strategyOptions = (first) => (first ? `<option value="">As for all</option>` : "") +
      STRATEGIES.map((s) => `<option value="${s}">${STRATEGY_LABELS[s]}</option>`).join("");
    this.innerHTML = `
      <nav class="mm-steps" role="tablist" aria-label="Migration steps">
        ${STEPS.map(([id, label]) => `<button type="button" role="tab" data-step="${id}">${label}</button>`).join("")}
      </nav>
      <section data-panel="scan">
        <p>Look through the model folders for files that are not in the library yet. New files are
           hashed in the background and wait in the pending list for your review.</p>
        <div class="mm-row"><button type="button" class="hk-button hk-primary" data-action="scan">Scan the model folders</button>
          <button type="button" class="hk-button" data-action="cancel-hash" hidden>Cancel hashing</button></div>
        <hikaze-progress data-job="scan" hidden></hikaze-progress>
        <hikaze-progress data-job="hash" hidden></hikaze-progress>
        <p class="mm-scan-summary" role="status"></p>
        <div class="hk-inline-error" role="alert" hidden></div>
      </section>
      <section data-panel="review" hidden>
        <div class="mm-review-tools">
          <span>Select</span>
          <button type="button" class="hk-button" data-select="all">All</button>
          <button type="button" class="hk-button" data-select="none">None</button>
          <span class="mm-kind-buttons"></span>
          <label>Conflicts, for all: <select class="mm-strategy-all" aria-label="Conflict strategy for all">${strategyOptions(false)}</select></label>
          <button type="button" class="hk-button hk-primary" data-action="import" disabled>Import</button>
        </div>
        <hikaze-progress data-job="import" hidden></hikaze-progress>
        <p class="mm-review-empty" hidden>Nothing is waiting for review. Scan the model folders to find new files.</p>
        <ul class="mm-pending-list" aria-label="Pending models"></ul>
        <template class="mm-strategy-template"><select class="mm-strategy" aria-label="Conflict strategy for this item">${strategyOptions(true)}</select></template>
        <div class="hk-inline-error" role="alert" hidden></div>
      </section>
      <section data-panel="report" hidden>
        <p class="mm-report-summary" role="status">No import yet: select items in the review step.</p>
        <ul class="mm-report-lines"></ul>
        <button type="button" class="hk-button" data-step="review">Back to the review</button>
      </section>
      <section data-panel="legacy" hidden><hikaze-legacy-import></hikaze-legacy-import></section>`;
    this.nav = this.querySelector(".mm-steps");
    this.list = this.querySelector(".mm-pending-list");
    this.strategyAll = this.querySelector(".mm-strategy-all");
    this.legacy = this.querySelector("hikaze-legacy-import");
    this.addEventListener("click", (event) => this.onClick(event));
    this.list.addEventListener("change", (event) => this.onRowChange(event));
    this.showStep("scan");
  }

  set api(api) {
    this._api = api;
    if (this.legacy) this.legacy.api = api;
  }

  get api() {
    return this._api;
  }

  set events(events) {
    this._events = events;
    if (this.legacy) this.legacy.events = events;
    events.addEventListener("hk-event", (event) => {
      const { channel, data } = event.detail;
      if (channel === "scan" && data?.id) {
        this.jobs.set(data.id, data);
        this.dispatchEvent(new CustomEvent("hk-job-event"));
      } else if (channel === "import" && this.importing) {
        const progress = importProgress(event.detail);
        if (progress && !event.detail.type.startsWith("legacy")) this.querySelector('[data-job="import"]').progress = progress;
      }
    });
  }

  showStep(step) {
    for (const button of this.nav.querySelectorAll("[data-step]")) button.setAttribute("aria-selected", String(button.dataset.step === step));
    for (const panel of this.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== step;
    this.dataset.step = step;
  }

  onClick(event) {
    const target = event.target.closest("[data-step], [data-action], [data-select], [data-kind]");
    if (!target) return;
    if (target.dataset.step) this.showStep(target.dataset.step);
    else if (target.dataset.action === "scan") this.scan();
    else if (target.dataset.action === "cancel-hash") this.cancelHash();
    else if (target.dataset.action === "import") this.importSelected();
    else if (target.dataset.select) this.select(target.dataset.select === "all" ? this.items.map((i) => i.id) : [], true);
    else if (target.dataset.kind !== undefined) this.select(idsOfKind(this.items, target.dataset.kind), false);
  }

  /** Read the whole pending queue (in pages) and show it. */
  async load() {
    const items = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await this.api.pending.list({ offset, limit: PAGE });
      items.push(...page.models);
      if (items.length >= page.total || !page.models.length) break;
    }
    this.items = items;
    const ids = new Set(items.map((item) => item.id));
    this.selected = new Set([...this.selected].filter((id) => ids.has(id)));
    this.perItem = new Map([...this.perItem].filter(([id]) => ids.has(id)));
    this.renderList();
    this.dispatchEvent(new CustomEvent("hk-pending-count", { detail: { total: items.length }, bubbles: true }));
    return items;
  }

  async scan() {
    const section = this.querySelector('[data-panel="scan"]');
    const button = section.querySelector('[data-action="scan"]');
    const scanBar = section.querySelector('[data-job="scan"]');
    const hashBar = section.querySelector('[data-job="hash"]');
    const summary = section.querySelector(".mm-scan-summary");
    this.showError(section, "");
    button.disabled = true;
    summary.textContent = "";
    hashBar.progress = null;
    scanBar.progress = { fraction: null, text: "Scanning the model folders…" };
    const follow = () => {
      const running = [...this.jobs.values()].find((job) => job.kind === "scan" && !FINISHED.has(job.state));
      if (running) scanBar.progress = jobProgress(running);
    };
    this.addEventListener("hk-job-event", follow);
    try {
      const report = await this.api.scan.start();
      scanBar.progress = { fraction: 1, text: `Scanned ${report.scanned.toLocaleString("en-US")} files: ${report.added} new` };
      if (report.missing_roots?.length) summary.textContent = `Not there right now: ${report.missing_roots.join(", ")}. `;
      if (report.hash_job) await this.followHash(report.hash_job, hashBar);
      const items = await this.load();
      summary.textContent += `${items.length} item${items.length === 1 ? "" : "s"} wait for review.`;
      if (items.length) this.showStep("review");
    } catch (error) {
      scanBar.progress = null;
      this.showError(section, error.message);
    } finally {
      this.removeEventListener("hk-job-event", follow);
      button.disabled = false;
    }
  }

  /** Show a hash job's progress until it ends (events, with a poll in case the socket is down). */
  async followHash(id, bar) {
    const cancel = this.querySelector('[data-action="cancel-hash"]');
    this.hashJob = id;
    cancel.hidden = false;
    try {
      for (;;) {
        const known = this._events?.open && this.jobs.get(id);
        const job = known || await this.api.scan.job(id);
        this.jobs.set(id, job);
        bar.progress = jobProgress(job);
        if (FINISHED.has(job.state)) return job;
        await this.nextJobEvent(1000);
      }
    } finally {
      cancel.hidden = true;
      this.hashJob = null;
    }
  }

  /** Resolves at the next `scan` channel event, or after `ms` (then the caller polls). */
  nextJobEvent(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.removeEventListener("hk-job-event", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.addEventListener("hk-job-event", done);
    });
  }

  async cancelHash() {
    if (this.hashJob) await this.api.scan.cancel(this.hashJob).catch(() => {});
  }

  select(ids, replace) {
    if (replace) this.selected = new Set(ids);
    else for (const id of ids) this.selected.add(id);
    for (const box of this.list.querySelectorAll("input[type=checkbox]")) box.checked = this.selected.has(Number(box.value));
    this.updateTools();
  }

  onRowChange(event) {
    const row = event.target.closest("[data-id]");
    if (!row) return;
    const id = Number(row.dataset.id);
    if (event.target.matches("input[type=checkbox]")) {
      if (event.target.checked) this.selected.add(id);
      else this.selected.delete(id);
    } else if (event.target.matches(".mm-strategy")) {
      if (event.target.value) this.perItem.set(id, event.target.value);
      else this.perItem.delete(id);
    }
    this.updateTools();
  }

  updateTools() {
    const button = this.querySelector('[data-action="import"]');
    button.disabled = !this.selected.size || this.importing;
    button.textContent = `Import ${this.selected.size} selected`;
  }

  renderList() {
    this.querySelector(".mm-review-empty").hidden = this.items.length > 0;
    this.querySelector(".mm-kind-buttons").replaceChildren(...kindsOf(this.items).map(({ kind, count }) => {
      const button = Object.assign(document.createElement("button"), {
        type: "button", className: "hk-button", textContent: `+ ${kind || "other"} (${count})`,
        title: `Select every ${kind || "other"} item too`,
      });
      button.dataset.kind = kind;
      return button;
    }));
    const template = this.querySelector(".mm-strategy-template").content;
    this.list.replaceChildren(...this.items.map((item) => {
      const row = document.createElement("li");
      row.className = "mm-pending-item";
      row.dataset.id = String(item.id);
      const check = Object.assign(document.createElement("input"), { type: "checkbox", value: String(item.id), checked: this.selected.has(item.id) });
      check.setAttribute("aria-label", `Select ${item.name}`);
      const thumb = document.createElement("div");
      thumb.className = "mm-pending-thumb";
      if (item.image_url) thumb.append(Object.assign(document.createElement("img"), { src: this.api.imageUrl(item.image_url), alt: "", loading: "lazy" }));
      const text = document.createElement("div");
      text.className = "mm-pending-text";
      const name = Object.assign(document.createElement("strong"), { textContent: item.name });
      const meta = Object.assign(document.createElement("small"), { textContent: `${item.type || "other"} · ${formatBytes(item.size_bytes)} · ${item.path}` });
      text.append(name, meta);
      if (item.duplicate_of) {
        text.append(Object.assign(document.createElement("span"), {
          className: "mm-duplicate", textContent: `duplicate of a library model (${item.duplicate_of.slice(0, 10)})`,
        }));
      } else if (!item.sha256) {
        text.append(Object.assign(document.createElement("span"), { className: "mm-unhashed", textContent: "not hashed yet" }));
      }
      const strategy = template.firstElementChild.cloneNode(true);
      strategy.value = this.perItem.get(item.id) ?? "";
      row.append(check, thumb, text, strategy);
      return row;
    }));
    this.updateTools();
  }

  async importSelected() {
    const section = this.querySelector('[data-panel="review"]');
    const bar = section.querySelector('[data-job="import"]');
    const ids = this.items.map((item) => item.id).filter((id) => this.selected.has(id));
    const batches = importBatches(ids, this.perItem, this.strategyAll.value);
    const byId = new Map(this.items.map((item) => [item.id, item]));
    this.importing = true;
    this.updateTools();
    this.showError(section, "");
    bar.progress = { fraction: 0, text: `Importing ${ids.length} item${ids.length === 1 ? "" : "s"}…` };
    const reports = [];
    try {
      for (const batch of batches) reports.push(await this.api.pending.importModels(batch.ids, batch.strategy));
      bar.progress = { fraction: 1, text: "Finished" };
      this.showReport(mergeReports(reports), byId);
      this.dispatchEvent(new CustomEvent("hk-library-changed", { bubbles: true }));
    } catch (error) {
      bar.progress = null;
      this.showError(section, `Import stopped: ${error.message}`);
      if (reports.length) this.showReport(mergeReports(reports), byId);
    } finally {
      this.importing = false;
      this.selected.clear(); // what is left (conflicts, failures) is chosen again, knowingly
      await this.load().catch((error) => this.showError(section, error.message));
    }
  }

  showReport(report, byId) {
    this.querySelector(".mm-report-summary").textContent = reportSummary(report);
    this.querySelector(".mm-report-lines").replaceChildren(...reportLines(report, byId).map((line) => {
      const item = document.createElement("li");
      item.dataset.kind = line.kind;
      item.append(Object.assign(document.createElement("strong"), { textContent: line.name }), `: ${line.reason}`);
      return item;
    }));
    this.showStep("report");
  }

  showError(section, message) {
    const box = section.querySelector(":scope > .hk-inline-error");
    box.textContent = message;
    box.hidden = !message;
  }
}

customElements.define("hikaze-migration-wizard", MigrationWizard);
