// Rewrite the API prompt (`graphToPrompt().output`) to queue it with another model, leaving
// the workflow itself untouched: one checkpoint swapped in, one LoRA added, or variants.

import { dumpLoras, dumpModel, loraEntry, modelRef, PAYLOAD_WIDGET, readLoras } from "../lib/node-payload.mjs";
import { CHECKPOINT_NODE, LORA_NODE } from "./node-kinds.mjs";

/** The prompt cannot take the model; the message says what the workflow lacks. */
export class RewriteError extends Error {
  constructor(message) {
    super(message);
    this.name = "RewriteError";
  }
}

const MODEL_SOURCES = [CHECKPOINT_NODE, "CheckpointLoaderSimple", "CheckpointLoader"];
const byId = (a, b) => Number(a) - Number(b) || String(a).localeCompare(String(b));
const idsOf = (output, classType) => Object.keys(output).filter((id) => output[id].class_type === classType).sort(byId);

/** The prompt with every Hikaze checkpoint loader set to `model`. */
export function withCheckpoint(output, model) {
  const ids = idsOf(output, CHECKPOINT_NODE);
  if (!ids.length) throw new RewriteError("The workflow has no Hikaze Checkpoint Loader to put the checkpoint in");
  const prompt = structuredClone(output);
  for (const id of ids) prompt[id].inputs[PAYLOAD_WIDGET] = dumpModel(modelRef(model));
  return prompt;
}

/**
 * The prompt with `model` added as a LoRA at `strength` (model and CLIP): appended to the
 * first Hikaze LoRA loader, or (when there is none) a new one inserted after the checkpoint
 * loader, with everything that used the checkpoint's MODEL and CLIP rewired through it.
 */
export function withLora(output, model, strength = 1) {
  const prompt = structuredClone(output);
  const entry = loraEntry(model, { strength_model: strength, strength_clip: strength });
  const [loraId] = idsOf(prompt, LORA_NODE);
  if (loraId !== undefined) {
    const inputs = prompt[loraId].inputs;
    const entries = readLoras(inputs[PAYLOAD_WIDGET]); // a malformed list throws: never replaced
    const others = entries.filter((e) => !(e.sha256 && e.sha256 === entry.sha256));
    inputs[PAYLOAD_WIDGET] = dumpLoras([...others, entry]);
    return prompt;
  }
  const sourceId = MODEL_SOURCES.map((type) => idsOf(prompt, type)[0]).find((id) => id !== undefined);
  if (sourceId === undefined) throw new RewriteError("The workflow has no checkpoint loader to add the LoRA after");
  const newId = String(Math.max(0, ...Object.keys(prompt).map(Number).filter(Number.isFinite)) + 1);
  for (const node of Object.values(prompt)) {
    for (const [name, value] of Object.entries(node.inputs ?? {})) {
      if (Array.isArray(value) && String(value[0]) === String(sourceId) && (value[1] === 0 || value[1] === 1)) {
        node.inputs[name] = [newId, value[1]];
      }
    }
  }
  prompt[newId] = {
    class_type: LORA_NODE,
    inputs: { model: [String(sourceId), 0], clip: [String(sourceId), 1], [PAYLOAD_WIDGET]: dumpLoras([entry]) },
    _meta: { title: "Hikaze LoRA (queued with)" },
  };
  return prompt;
}

/** One prompt per checkpoint. */
export function checkpointVariants(output, models) {
  return models.map((model) => withCheckpoint(output, model));
}

/** One prompt per LoRA strength. */
export function loraStrengthVariants(output, model, strengths) {
  return strengths.map((strength) => withLora(output, model, strength));
}

/** "0.25, 0.5 1" → [0.25, 0.5, 1]; anything that is not a number list throws RewriteError. */
export function parseStrengths(text) {
  const parts = String(text ?? "").split(/[\s,;]+/).filter(Boolean);
  if (!parts.length) throw new RewriteError("Give at least one strength, e.g. 0.5, 0.75, 1");
  return parts.map((part) => {
    const value = Number(part);
    if (!Number.isFinite(value)) throw new RewriteError(`'${part}' is not a strength (a number such as 0.8)`);
    return value;
  });
}
