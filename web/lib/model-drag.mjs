// A library model carried by drag-and-drop (sidebar, manager page in another tab → ComfyUI canvas).

/** The custom type holding the model as JSON; text/plain carries its name for other targets. */
export const MODEL_DRAG_TYPE = "application/x-hikaze-model";
const FIELDS = ["sha256", "name", "type", "path"];

/** Put `model` (an /api/models summary) on a drag's dataTransfer. */
export function writeModelDrag(dataTransfer, model) {
  const picked = Object.fromEntries(FIELDS.map((key) => [key, model[key] ?? ""]));
  dataTransfer.setData(MODEL_DRAG_TYPE, JSON.stringify(picked));
  dataTransfer.setData("text/plain", model.name || model.path || model.sha256);
  dataTransfer.effectAllowed = "copy";
}

/** True while a drag carries one of our models (the data itself is readable only on drop). */
export function carriesModel(dataTransfer) {
  return Boolean(dataTransfer) && [...(dataTransfer.types ?? [])].includes(MODEL_DRAG_TYPE);
}

/** The dropped model {sha256, name, type, path}, or null when the drop is not ours or is broken. */
export function readModelDrag(dataTransfer) {
  if (!carriesModel(dataTransfer)) return null;
  try {
    const model = JSON.parse(dataTransfer.getData(MODEL_DRAG_TYPE));
    return model && typeof model.sha256 === "string" && /^[0-9a-f]{64}$/i.test(model.sha256) ? model : null;
  } catch {
    return null;
  }
}
