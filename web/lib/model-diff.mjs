// The editable fields of a model as a form draft, and the PATCH body holding only what changed.

const META_TEXT = ["description", "community_links", "notes"];

/** The form's starting values for a full model record (GET /api/models/{sha256}). */
export function draftFromModel(model) {
  const meta = model.meta_json ?? {};
  return {
    name: model.name ?? "",
    base_model: model.base_model ?? "",
    tags: (model.tags ?? []).map((tag) => tag.name),
    description: text(meta.description),
    community_links: text(meta.community_links),
    notes: text(meta.notes),
    positive: text(meta.prompts?.positive),
    negative: text(meta.prompts?.negative),
    trigger_words: Array.isArray(meta.trigger_words) ? meta.trigger_words.map(String) : [],
  };
}

/**
 * The PATCH body turning `model` into `draft`: only changed fields; `meta_json` as a JSON
 * Merge Patch with only the changed keys. A cleared field is sent as "" or [] rather than
 * removed, so the server records the user's choice and later imports do not refill it.
 */
export function modelPatch(model, draft) {
  const before = draftFromModel(model);
  const patch = {};
  for (const field of ["name", "base_model"]) {
    if (draft[field].trim() !== before[field].trim()) patch[field] = draft[field].trim();
  }
  if (!sameSet(draft.tags, before.tags)) patch.tags = [...draft.tags];
  const meta = {};
  for (const field of META_TEXT) {
    if (draft[field] !== before[field]) meta[field] = draft[field];
  }
  const prompts = {};
  if (draft.positive !== before.positive) prompts.positive = draft.positive;
  if (draft.negative !== before.negative) prompts.negative = draft.negative;
  if (Object.keys(prompts).length) meta.prompts = prompts;
  if (!sameList(draft.trigger_words, before.trigger_words)) meta.trigger_words = [...draft.trigger_words];
  if (Object.keys(meta).length) patch.meta_json = meta;
  return patch;
}

/** True when the draft differs from the model. */
export function hasChanges(model, draft) {
  return Object.keys(modelPatch(model, draft)).length > 0;
}

function text(value) {
  return typeof value === "string" ? value : "";
}

function sameList(a, b) {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

function sameSet(a, b) {
  const key = (list) => [...new Set(list.map((n) => n.trim().toLowerCase()))].sort().join("\n");
  return key(a) === key(b);
}
