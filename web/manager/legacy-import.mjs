// <hikaze-legacy-import>: bring a Hikaze v1 database in — paths, a dry-run summary, the result report.

import "./progress-bar.mjs";
import { importProgress } from "./progress.mjs";

const COUNTS = [["total", "models in the v1 database"], ["migrated", "to the library"], ["pending", "to the pending list"],
                ["skipped", "already migrated"], ["errors", "could not be written"], ["images_processed", "pictures"],
                ["image_errors", "pictures not found or unreadable"]];

/** Set `api` and `events`. Dispatches `hk-library-changed` after a real (not dry) run. */
export class LegacyImport extends HTMLElement {
  connectedCallback() {
    if (this.form) return;
    this.innerHTML = `
      <form class="mm-legacy-form" novalidate>
        <p>Import the library of Hikaze Model Manager v1: its models, tags, descriptions and pictures.
           The v1 database is only read. Try a dry run first: it reports what would happen and writes nothing.</p>
        <label>v1 database file <input name="legacy_db_path" required placeholder="/path/to/ComfyUI/custom_nodes/…/data/hikaze_mm.sqlite3" autocomplete="off" spellcheck="false"></label>
        <label>v1 images folder <small>(optional; the <code>images</code> folder beside the database)</small>
          <input name="legacy_images_dir" autocomplete="off" spellcheck="false"></label>
        <div class="mm-row">
          <button type="submit" class="hk-button" data-dry-run="true">Dry run</button>
          <button type="submit" class="hk-button hk-primary" data-dry-run="false">Import</button>
        </div>
        <hikaze-progress hidden></hikaze-progress>
        <div class="hk-inline-error" role="alert" hidden></div>
      </form>
      <div class="mm-legacy-report" hidden>
        <h3></h3>
        <table class="mm-counts"><tbody></tbody></table>
        <ul class="mm-legacy-details"></ul>
      </div>`;
    this.form = this.querySelector("form");
    this.bar = this.querySelector("hikaze-progress");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run(event.submitter?.dataset.dryRun === "true");
    });
  }

  set events(events) {
    events.addEventListener("hk-event", (event) => {
      if (!this.running || event.detail.channel !== "import" || !event.detail.type.startsWith("legacy")) return;
      this.bar.progress = importProgress(event.detail);
    });
  }

  async run(dryRun) {
    const path = this.form.elements.legacy_db_path.value.trim();
    const images = this.form.elements.legacy_images_dir.value.trim();
    if (!path) {
      this.showError("Give the path of the v1 database file (hikaze_mm.sqlite3).");
      this.form.elements.legacy_db_path.focus();
      return;
    }
    this.showError("");
    this.running = true;
    for (const button of this.form.querySelectorAll("button")) button.disabled = true;
    this.bar.progress = { fraction: null, text: dryRun ? "Checking what would be imported…" : "Importing the v1 database…" };
    try {
      const report = await this.api.pending.migrateLegacy({ legacy_db_path: path, legacy_images_dir: images || undefined, dry_run: dryRun });
      this.bar.progress = { fraction: 1, text: "Finished" };
      this.showReport(report);
      if (!dryRun) this.dispatchEvent(new CustomEvent("hk-library-changed", { bubbles: true }));
    } catch (error) {
      this.bar.progress = null;
      const field = error.details?.field ? ` (${error.details.field})` : "";
      this.showError(`${error.message}${field}`);
    } finally {
      this.running = false;
      for (const button of this.form.querySelectorAll("button")) button.disabled = false;
    }
  }

  showReport(report) {
    const box = this.querySelector(".mm-legacy-report");
    box.hidden = false;
    box.dataset.dryRun = String(report.dry_run);
    box.querySelector("h3").textContent = report.dry_run
      ? "Dry run: nothing was written. This is what an import would do:"
      : report.status === "success" ? "Imported." : "Imported, with errors (run it again after fixing them; nothing is duplicated):";
    box.querySelector("tbody").replaceChildren(...COUNTS.map(([key, label]) => {
      const row = document.createElement("tr");
      row.dataset.count = key;
      row.append(Object.assign(document.createElement("td"), { textContent: String(report[key] ?? 0) }),
                 Object.assign(document.createElement("td"), { textContent: label }));
      return row;
    }));
    box.querySelector(".mm-legacy-details").replaceChildren(...(report.details ?? []).map((detail) => {
      const item = document.createElement("li");
      item.dataset.result = detail.result;
      const reasons = [detail.message, ...(detail.image_errors ?? [])].filter(Boolean).join("; ");
      item.textContent = `${detail.result}: ${detail.path || `v1 id ${detail.legacy_ids.join(", ")}`}${reasons ? ` — ${reasons}` : ""}`;
      return item;
    }));
  }

  showError(message) {
    const box = this.form.querySelector(".hk-inline-error");
    box.textContent = message;
    box.hidden = !message;
  }
}

customElements.define("hikaze-legacy-import", LegacyImport);
