// The summary and editor our nodes show on the canvas (a DOM widget, so it works in the classic
// LiteGraph canvas and in Vue-nodes mode), and the one place that writes `hikaze_payload`.

import {
  applyLoraSelection, dumpLoras, dumpModel, labelOf, loraEntry, modelRef, PAYLOAD_WIDGET, readLoras, readModel,
} from "../lib/node-payload.mjs";
import { isNsfw } from "../lib/nsfw.mjs";
import { markModified } from "./host.mjs";
import { kindOfNode, pathKeyOf } from "./node-kinds.mjs";
import { openPicker } from "./picker.mjs";

const OVERLAY_WIDGET = "hikaze_overlay";
const ROW_HEIGHT = 30;

/** The overlay controller of `node` (attached by attachOverlay), or undefined. */
export function overlayOf(node) {
  return node?.hikazeOverlay;
}

/** Give `node` (one of our loaders) its overlay; `connection` is the page's Connection. */
export function attachOverlay(node, connection) {
  const payload = node.widgets?.find((w) => w.name === PAYLOAD_WIDGET);
  if (!payload || node.hikazeOverlay) return;
  node.hikazeOverlay = new NodeOverlay(node, payload, connection);
}

class NodeOverlay {
  constructor(node, payload, connection) {
    this.node = node;
    this.payload = payload;
    this.connection = connection;
    this.kind = kindOfNode(node.comfyClass ?? node.type);
    this.isList = this.kind === "loras";
    this.element = document.createElement("div");
    this.element.className = "hk-comfy hk-node-overlay";
    this.element.dataset.kind = this.kind;
    // Keep the canvas from treating clicks and typing in the overlay as its own.
    for (const type of ["pointerdown", "mousedown", "keydown", "wheel", "contextmenu"]) {
      this.element.addEventListener(type, (event) => event.stopPropagation());
    }
    const widget = node.addDOMWidget(OVERLAY_WIDGET, "hikaze-overlay", this.element, {
      serialize: false, hideOnZoom: false,
      getValue: () => "", setValue: () => {},
      getMinHeight: () => this.minHeight(),
    });
    widget.serialize = false; // not in widgets_values: saved workflows keep the original's layout
    this.widget = widget;
    this.watchPayload();
    this.onConnection = () => this.render();
    connection.addEventListener("change", this.onConnection);
    this.render();
  }

  /** The node left the graph: stop listening to the page-wide connection. */
  dispose() {
    this.connection.removeEventListener("change", this.onConnection);
  }

  /** Re-render whenever the payload changes: loading a workflow, undo, typing in the text box. */
  watchPayload() {
    const options = this.payload.options ?? {};
    const setValue = options.setValue;
    if (setValue) {
      options.setValue = (value) => {
        setValue.call(options, value);
        this.render();
      };
    }
    this.payload.inputEl?.addEventListener("input", () => this.render());
  }

  minHeight() {
    if (!this.isList) return 96;
    const rows = this.state?.entries?.length ?? 0;
    return 44 + Math.max(rows, 1) * ROW_HEIGHT;
  }

  get text() {
    return this.payload.value ?? "";
  }

  /** Write a new payload through the widget (so Vue-nodes mode sees it) and mark the workflow. */
  write(text) {
    this.payload.value = text;
    this.payload.callback?.(text);
    this.render();
    const [width] = this.node.size;
    const [, height] = this.node.computeSize();
    if (height > this.node.size[1]) this.node.setSize([width, height]);
    markModified();
  }

  read() {
    try {
      return this.isList ? { entries: readLoras(this.text) } : { ref: readModel(this.text) };
    } catch (error) {
      return { error };
    }
  }

  // --- what other modules do to a node -------------------------------------------------
  /** Set the single model (checkpoint, VAE, ...) to a library model. */
  setModel(model) {
    this.write(dumpModel(modelRef(model), pathKeyOf(this.node.comfyClass ?? this.node.type)));
  }

  /** Append a LoRA (or, if the list holds its hash already, leave the list as it is). */
  appendLora(model) {
    const { entries, error } = this.read();
    if (error) throw error;
    if (entries.some((e) => e.sha256 && e.sha256 === model.sha256.toLowerCase())) return;
    this.write(dumpLoras([...entries, loraEntry(model)]));
  }

  async pick() {
    const state = this.read();
    if (state.error) return;
    const held = this.isList ? state.entries.map((e) => e.sha256).filter(Boolean) : [state.ref.sha256].filter(Boolean);
    const chosen = await openPicker({ connection: this.connection, kind: this.kind, multiple: this.isList, selected: held });
    if (!chosen) return;
    if (this.isList) this.write(dumpLoras(applyLoraSelection(this.read().entries ?? state.entries, chosen)));
    else if (chosen[0]) this.setModel(chosen[0]);
  }

  // --- rendering -------------------------------------------------------------------------
  render() {
    this.state = this.read();
    const { error } = this.state;
    this.element.replaceChildren();
    const head = document.createElement("div");
    head.className = "hk-overlay-head";
    const button = Object.assign(document.createElement("button"), {
      type: "button", className: "hk-button hk-pick",
      textContent: this.isList ? "Choose LoRAs…" : "Choose model…", disabled: Boolean(error),
    });
    button.addEventListener("click", () => this.pick());
    head.append(button);
    if (!this.connection.api) head.append(note("hk-offline", "manager offline"));
    this.element.append(head);
    if (error) {
      // Shown, never replaced: the text stays in the payload box for the user to fix.
      this.element.append(note("hk-inline-error hk-payload-error", `Cannot read this node's payload: ${error.message}`));
    } else if (this.isList) {
      this.element.append(this.renderList(this.state.entries));
    } else {
      this.element.append(this.renderModel(this.state.ref));
    }
  }

  renderModel(ref) {
    const box = document.createElement("div");
    box.className = "hk-chosen";
    if (!ref.sha256 && !ref.path) {
      box.append(note("hk-muted", "No model chosen. Pick one, or drag one from the Models sidebar."));
      return box;
    }
    const img = Object.assign(document.createElement("img"), { alt: "", className: "hk-chosen-thumb", hidden: true });
    const text = document.createElement("div");
    text.className = "hk-chosen-text";
    text.append(note("hk-chosen-name", labelOf(ref)), note("hk-muted hk-mono", ref.sha256 ? ref.sha256.slice(0, 12) : "no hash: found by path"));
    text.title = [ref.path, ref.sha256].filter(Boolean).join("\n");
    box.append(img, text);
    this.connection.details(ref.sha256).then((model) => {
      if (!model?.cover || !this.connection.api || this.state?.ref?.sha256 !== ref.sha256) return;
      if (isNsfw(model)) {
        text.append(note("hk-muted", "NSFW: preview hidden"));
        return; // hidden by default, as everywhere (the picture is never loaded)
      }
      img.src = this.connection.api.imageUrl(model.cover, "medium");
      img.hidden = false;
    });
    return box;
  }

  renderList(entries) {
    const list = document.createElement("ol");
    list.className = "hk-lora-list";
    if (!entries.length) list.append(note("hk-muted", "No LoRAs. Choose some, or drag them from the Models sidebar."));
    entries.forEach((entry, index) => list.append(this.renderRow(entries, entry, index)));
    return list;
  }

  renderRow(entries, entry, index) {
    const row = document.createElement("li");
    row.className = "hk-lora-row";
    row.dataset.enabled = String(entry.enabled);
    const update = (changes) => this.write(dumpLoras(entries.map((e, i) => (i === index ? { ...e, ...changes } : e))));
    const move = (step) => {
      const next = [...entries];
      next.splice(index + step, 0, next.splice(index, 1)[0]);
      this.write(dumpLoras(next));
    };
    const toggle = Object.assign(document.createElement("input"), { type: "checkbox", checked: entry.enabled, title: "Enabled" });
    toggle.addEventListener("change", () => update({ enabled: toggle.checked }));
    const name = note("hk-lora-name", labelOf(entry));
    name.title = [entry.full_path, entry.sha256 || "no sha256: loaded by its path"].filter(Boolean).join("\n");
    if (!entry.sha256) name.classList.add("hk-no-hash");
    this.connection.details(entry.sha256).then((model) => {
      const words = model?.meta_json?.trigger_words ?? [];
      if (words.length) name.title += `\nTrigger words: ${words.join(", ")}`;
    });
    row.append(toggle, name,
      strength("M", entry.strength_model, (value) => update({ strength_model: value })),
      strength("C", entry.strength_clip, (value) => update({ strength_clip: value })),
      iconButton("↑", "Move up", index === 0, () => move(-1)),
      iconButton("↓", "Move down", index === entries.length - 1, () => move(1)),
      iconButton("✕", "Remove", false, () => this.write(dumpLoras(entries.filter((_, i) => i !== index)))));
    return row;
  }
}

function note(className, text) {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  return span;
}

function strength(label, value, onChange) {
  const input = Object.assign(document.createElement("input"), {
    type: "number", step: "0.05", value: String(value), className: `hk-strength hk-strength-${label.toLowerCase()}`,
    title: label === "M" ? "Model strength" : "CLIP strength",
  });
  input.setAttribute("aria-label", input.title);
  input.addEventListener("change", () => {
    const parsed = Number(input.value);
    if (input.value.trim() !== "" && Number.isFinite(parsed)) onChange(parsed);
    else input.value = String(value);
  });
  return input;
}

function iconButton(text, title, disabled, onClick) {
  const button = Object.assign(document.createElement("button"), { type: "button", className: "hk-icon-button", textContent: text, title, disabled });
  button.setAttribute("aria-label", title);
  button.addEventListener("click", onClick);
  return button;
}
