// <hikaze-settings>: model folders as seen, NSFW default, auto-import, and the API key.

import { copyText } from "../lib/clipboard.mjs";

const NSFW_LABELS = { hide: "Hide NSFW models", blur: "Show them blurred", show: "Show them as they are" };

/** Set `api`, then load(). Dispatches `hk-settings-changed` ({detail: settings}) after a save. */
export class SettingsPanel extends HTMLElement {
  connectedCallback() {
    if (this.form) return;
    this.innerHTML = `
      <form class="mm-settings-form" novalidate>
        <h2>Settings</h2>
        <fieldset class="mm-nsfw-default"><legend>NSFW, when the page opens</legend>
          ${Object.entries(NSFW_LABELS).map(([value, label]) =>
            `<label><input type="radio" name="nsfw_default" value="${value}"> ${label}</label>`).join("")}
        </fieldset>
        <fieldset><legend>Auto-import</legend>
          <label><input type="checkbox" name="auto_import"> Import new files straight after hashing, without the review step
            <small>(files whose content is already in the library still wait for review)</small></label>
        </fieldset>
        <span class="mm-settings-status" role="status"></span>
        <div class="hk-inline-error" role="alert" hidden></div>
      </form>
      <section class="mm-api-key">
        <h3>API key</h3>
        <p>Other programs use the public API (<code>/api/v1</code>) with <code>Authorization: Bearer &lt;key&gt;</code>.</p>
        <div class="mm-row mm-key-row">
          <code class="mm-key" aria-label="API key">••••••••••••••••</code>
          <button type="button" class="hk-button" data-key="show">Show</button>
          <button type="button" class="hk-button" data-key="copy">Copy</button>
          <button type="button" class="hk-button hk-danger" data-key="regenerate">Regenerate…</button>
        </div>
        <p class="mm-key-status" role="status"></p>
      </section>
      <section class="mm-roots">
        <h3>Model folders</h3>
        <p>As the manager sees them now. They come from ComfyUI (or <code>--models-dir</code>, <code>--comfyui</code>,
           <code>roots:</code> in config.yaml); the library lives in <code class="mm-data-dir"></code>.</p>
        <table><thead><tr><th>Kind</th><th>Folder</th><th>State</th></tr></thead><tbody></tbody></table>
      </section>`;
    this.form = this.querySelector("form");
    this.form.addEventListener("change", (event) => this.save(event.target));
    this.querySelector(".mm-key-row").addEventListener("click", (event) => {
      const action = event.target.closest("[data-key]")?.dataset.key;
      if (action) this.keyAction(action);
    });
  }

  async load() {
    this.showError("");
    try {
      this.render(await this.api.settings.get());
    } catch (error) {
      this.showError(`Settings could not be read: ${error.message}`);
    }
  }

  render(settings) {
    this.settings = settings;
    for (const radio of this.form.elements.nsfw_default) radio.checked = radio.value === settings.nsfw_default;
    this.form.elements.auto_import.checked = settings.auto_import;
    this.querySelector(".mm-data-dir").textContent = settings.data_dir;
    const rows = settings.roots.map((root) => {
      const row = document.createElement("tr");
      row.dataset.present = String(root.present);
      row.append(...[root.kind, root.path, root.present ? "present" : "not there (unmounted?)"]
        .map((text) => Object.assign(document.createElement("td"), { textContent: text })));
      return row;
    });
    if (!rows.length) {
      const row = document.createElement("tr");
      row.append(Object.assign(document.createElement("td"), {
        colSpan: 3, textContent: "No model folders yet. Start the manager with --models-dir DIR or --comfyui DIR.",
      }));
      rows.push(row);
    }
    this.querySelector(".mm-roots tbody").replaceChildren(...rows);
  }

  async save(input) {
    const change = input.name === "auto_import" ? { auto_import: input.checked } : { nsfw_default: input.value };
    const status = this.querySelector(".mm-settings-status");
    status.textContent = "Saving…";
    this.showError("");
    try {
      this.render(await this.api.settings.patch(change));
      status.textContent = "Saved";
      this.dispatchEvent(new CustomEvent("hk-settings-changed", { detail: this.settings, bubbles: true }));
    } catch (error) {
      status.textContent = "";
      this.showError(`Not saved: ${error.message}`);
      if (this.settings) this.render(this.settings);
    }
  }

  async keyAction(action) {
    const status = this.querySelector(".mm-key-status");
    const box = this.querySelector(".mm-key");
    status.textContent = "";
    try {
      if (action === "regenerate") {
        if (!this.querySelector("[data-key=regenerate]").dataset.armed) {
          this.querySelector("[data-key=regenerate]").dataset.armed = "1";
          status.textContent = "Programs using the old key will stop working. Click Regenerate again to confirm.";
          return;
        }
        delete this.querySelector("[data-key=regenerate]").dataset.armed;
        const { key, message } = await this.api.auth.regenerate();
        this.key = key;
        box.textContent = key;
        status.textContent = message || "A new key was made; the old one no longer works.";
        return;
      }
      this.key ??= (await this.api.auth.key()).key;
      if (action === "show") {
        const shown = box.textContent === this.key;
        box.textContent = shown ? "••••••••••••••••" : this.key;
        this.querySelector("[data-key=show]").textContent = shown ? "Show" : "Hide";
      } else {
        await copyText(this.key);
        status.textContent = "Copied";
      }
    } catch (error) {
      status.textContent = error.status === 404 || error.status === 405
        ? "API keys arrive with the v1 API; this manager does not have it yet."
        : `${error.message}`;
    }
  }

  showError(message) {
    const box = this.form.querySelector(".hk-inline-error");
    box.textContent = message;
    box.hidden = !message;
  }
}

customElements.define("hikaze-settings", SettingsPanel);
