// "Queue with it" and "compare": the current workflow's prompt, rewritten per model or
// strength and queued as the Run button queues; the saved workflow is never changed.

import { labelOf } from "../lib/node-payload.mjs";
import { graphToPrompt, queuePrompt, toast } from "./host.mjs";
import { checkpointVariants, loraStrengthVariants, withCheckpoint, withLora } from "./prompt-rewrite.mjs";

/** Queue every prompt `rewrite(output)` returns; answers the prompt ids ([] on failure, shown as a toast). */
export async function queueVariants(rewrite, what) {
  let prompts;
  try {
    const { output, workflow } = await graphToPrompt();
    prompts = rewrite(output);
    const ids = [];
    for (const prompt of prompts) {
      const queued = await queuePrompt(prompt, workflow);
      ids.push(queued?.prompt_id);
    }
    toast("success", `Queued ${ids.length} prompt${ids.length === 1 ? "" : "s"}`, what);
    return ids;
  } catch (error) {
    const detail = error?.response?.error?.message ?? error?.message ?? String(error);
    toast("error", `Could not queue ${what}`, detail);
    return [];
  }
}

export function queueWithCheckpoint(model) {
  return queueVariants((output) => [withCheckpoint(output, model)], `with ${labelOf(model)}`);
}

export function queueWithLora(model, strength = 1) {
  return queueVariants((output) => [withLora(output, model, strength)], `with the LoRA ${labelOf(model)}`);
}

export function compareCheckpoints(models) {
  return queueVariants((output) => checkpointVariants(output, models), `one per checkpoint (${models.length})`);
}

export function compareLoraStrengths(model, strengths) {
  return queueVariants((output) => loraStrengthVariants(output, model, strengths),
    `${labelOf(model)} at ${strengths.join(", ")}`);
}
