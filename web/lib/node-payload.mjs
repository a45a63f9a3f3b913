// The `hikaze_payload` JSON our nodes keep in a workflow (DESIGN §7): the twin of nodes/payload.py.
//
// The reader is as lenient as the Python one (the original extension's shapes load), and what
// it cannot read throws PayloadError with the reason: the UI shows it and never overwrites the
// text. Entries without a sha256 are kept as they are.

export const PAYLOAD_WIDGET = "hikaze_payload";
export const LORA_LIST_VERSION = 2;
const LIST_KEYS = ["loras", "LoRAs", "LoRAList", "loRAList"];

/** The payload cannot be read; the message says which part and why. */
export class PayloadError extends Error {
  constructor(message) {
    super(message);
    this.name = "PayloadError";
  }
}

function loadJson(text, what) {
  if (text === null || text === undefined || !String(text).trim()) return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new PayloadError(`${what} payload is not valid JSON (${error.message})`);
  }
}

const typeName = (value) => (Array.isArray(value) ? "list" : value === null ? "null" : typeof value);

function text(value, field) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "string") throw new PayloadError(`'${field}' must be a string, not ${typeName(value)}`);
  return value.trim();
}

/** A single-model payload → {path, sha256, name} (all "" when the node holds nothing). */
export function readModel(payload) {
  const data = loadJson(payload, "model");
  if (data === null) return { path: "", sha256: "", name: "" };
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new PayloadError(`model payload must be a JSON object, not ${typeName(data)}`);
  }
  const pathKey = ["ckpt_path", "path", "full_path"].find((key) => data[key]) ?? "ckpt_path";
  return { path: text(data[pathKey], pathKey), sha256: text(data.sha256, "sha256").toLowerCase(), name: text(data.name, "name") };
}

/** A LoRA list document (version 1 or 2) or an older shape → entries (see loraEntry). */
export function readLoras(payload) {
  const data = loadJson(payload, "LoRA list");
  if (data === null) return [];
  let items = data;
  if (typeof data === "object" && !Array.isArray(data)) {
    checkVersion("version" in data ? data.version : LORA_LIST_VERSION);
    const key = LIST_KEYS.find((k) => k in data);
    items = key ? data[key] : [];
  }
  if (!Array.isArray(items)) throw new PayloadError("LoRA list payload must hold a list of LoRAs under 'loras'");
  return items.map(readEntry);
}

function checkVersion(value) {
  const version = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (version !== 1 && version !== 2) {
    throw new PayloadError(`LoRA list version ${JSON.stringify(value)} is not supported (expected 1 or 2)`);
  }
}

const first = (item, ...keys) => keys.map((k) => item[k]).find((v) => v !== null && v !== undefined);

function readEntry(item, index) {
  const where = `LoRA #${index + 1}`;
  if (typeof item !== "object" || item === null || Array.isArray(item)) throw new PayloadError(`${where} must be a JSON object`);
  let entry;
  try {
    entry = {
      name: text(item.name, "name"),
      full_path: text(first(item, "full_path", "path"), "full_path"),
      sha256: text(item.sha256, "sha256").toLowerCase(),
      strength_model: number(first(item, "strength_model", "MStrength"), 1),
      strength_clip: number(first(item, "strength_clip", "CStrength"), 1),
      enabled: flag(first(item, "enabled", "toggleOn"), true),
    };
  } catch (error) {
    throw new PayloadError(`${where}: ${error.message}`);
  }
  if (!entry.sha256 && !entry.full_path && !entry.name) {
    throw new PayloadError(`${where} names no file: it has neither 'sha256' nor 'full_path'`);
  }
  return entry;
}

function number(value, fallback) {
  if (value === null || value === undefined) return fallback;
  const parsed = typeof value === "number" ? value : typeof value === "string" && value.trim() ? Number(value) : NaN;
  if (Number.isNaN(parsed)) throw new PayloadError(`strength ${JSON.stringify(value)} is not a number`);
  return parsed;
}

function flag(value, fallback) {
  if (value === null || value === undefined) return fallback;
  if (typeof value === "string" && ["true", "false"].includes(value.trim().toLowerCase())) {
    return value.trim().toLowerCase() === "true";
  }
  if (typeof value !== "boolean") throw new PayloadError(`'enabled' must be true or false, not ${JSON.stringify(value)}`);
  return value;
}

/** The canonical single-model payload (`ckpt_path` for checkpoints, `path` for other kinds). */
export function dumpModel(ref, pathKey = "ckpt_path") {
  return JSON.stringify({ [pathKey]: ref.path ?? "", sha256: ref.sha256 ?? "", name: ref.name ?? "" });
}

/** The canonical LoRA list document. */
export function dumpLoras(entries) {
  const loras = entries.map((e) => ({
    name: e.name ?? "", full_path: e.full_path ?? "", sha256: e.sha256 ?? "",
    strength_model: e.strength_model ?? 1, strength_clip: e.strength_clip ?? 1, enabled: e.enabled ?? true,
  }));
  return JSON.stringify({ version: LORA_LIST_VERSION, loras }, null, 2);
}

/** A library model (from /api/models) as a single-model reference. */
export function modelRef(model) {
  return { path: model.path ?? "", sha256: (model.sha256 ?? "").toLowerCase(), name: model.name ?? "" };
}

/** A library model as a new LoRA entry. */
export function loraEntry(model, { strength_model = 1, strength_clip = 1, enabled = true } = {}) {
  const ref = modelRef(model);
  return { name: ref.name, full_path: ref.path, sha256: ref.sha256, strength_model, strength_clip, enabled };
}

/**
 * The list after the picker: entries the user deselected (by sha256) are removed, every other
 * entry — including those without a sha256 — keeps its place and settings, and newly chosen
 * models are appended in the order given.
 */
export function applyLoraSelection(entries, chosenModels) {
  const chosen = new Set(chosenModels.map((m) => m.sha256.toLowerCase()));
  const kept = entries.filter((e) => !e.sha256 || chosen.has(e.sha256));
  const held = new Set(kept.map((e) => e.sha256).filter(Boolean));
  const added = chosenModels.filter((m) => !held.has(m.sha256.toLowerCase())).map((m) => loraEntry(m));
  return [...kept, ...added];
}

/** A label for a reference or entry: its display name, else its file name, else its hash. */
export function labelOf(ref) {
  const path = ref.path ?? ref.full_path ?? "";
  return ref.name || path.replace(/\\/g, "/").split("/").pop() || (ref.sha256 ?? "").slice(0, 12) || "(none)";
}
