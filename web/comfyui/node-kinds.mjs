// Which of our nodes loads which model kind, and what a dropped model does to the canvas.

export const CHECKPOINT_NODE = "HikazeCheckpointLoader";
export const LORA_NODE = "HikazeLoraPowerLoader";

/** Model kind (as /api/models names it) → our loader node; LoRAs are the only list node. */
export const NODE_FOR_KIND = Object.freeze({
  checkpoints: CHECKPOINT_NODE,
  loras: LORA_NODE,
  vae: "HikazeVAELoader",
  diffusion_models: "HikazeDiffusionModelLoader",
  text_encoders: "HikazeTextEncoderLoader",
  controlnet: "HikazeControlNetLoader",
  upscale_models: "HikazeUpscaleModelLoader",
});

const KIND_FOR_NODE = Object.fromEntries(Object.entries(NODE_FOR_KIND).map(([kind, node]) => [node, kind]));

/** The model kind our node type loads, or "" for any other node. */
export function kindOfNode(nodeType) {
  return KIND_FOR_NODE[nodeType] ?? "";
}

/** The payload key a single-model node keeps the path under (the original's names). */
export function pathKeyOf(nodeType) {
  return nodeType === CHECKPOINT_NODE ? "ckpt_path" : "path";
}

/**
 * What dropping `model` ({type, sha256, ...}) does, given the node type under the pointer
 * (or "" for empty canvas): {action: "create", nodeType} | {action: "set", nodeType} |
 * {action: "append", nodeType} | {action: "none", reason}.
 */
export function dropPlan(model, targetType = "") {
  const nodeType = NODE_FOR_KIND[model?.type];
  if (!nodeType) return { action: "none", reason: `No Hikaze loader takes ${model?.type ? `'${model.type}'` : "this"} model` };
  if (targetType === nodeType) return { action: nodeType === LORA_NODE ? "append" : "set", nodeType };
  // Dropped on a node that cannot take it (or on empty canvas): a new loader beside it.
  return { action: "create", nodeType };
}
