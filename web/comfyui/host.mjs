// The one module that knows where ComfyUI's frontend objects come from (window.comfyAPI, the
// LiteGraph global) and how to ask it for what we need: nodes, positions, "modified", toasts.

const registry = () => globalThis.window?.comfyAPI ?? {};

/** ComfyUI's app (what `scripts/app.js` re-exports). */
export function comfyApp() {
  return registry().app?.app;
}

/** ComfyUI's api client (what `scripts/api.js` re-exports). */
export function comfyApi() {
  return registry().api?.api;
}

export function liteGraph() {
  return globalThis.LiteGraph;
}

/** The frontend setting for the Vue-nodes canvas mode (1.27 … 1.58). */
export const VUE_NODES_SETTING = "Comfy.VueNodes.Enabled";

export function setting(id) {
  return comfyApp()?.extensionManager?.setting?.get(id);
}

/**
 * Tell the frontend the graph changed: its change tracker compares the graph with the saved
 * state (that is what sets the workflow's "modified" mark and records undo), then redraw.
 */
export function markModified() {
  const app = comfyApp();
  app?.extensionManager?.workflow?.activeWorkflow?.changeTracker?.checkState();
  app?.graph?.setDirtyCanvas(true, true);
}

/** A message in ComfyUI's toast area; severity "success" | "info" | "warn" | "error". */
export function toast(severity, summary, detail = "") {
  const manager = comfyApp()?.extensionManager;
  if (manager?.toast) manager.toast.add({ severity, summary, detail, life: severity === "error" ? 8000 : 4000 });
  else globalThis.console?.warn?.(`[Hikaze] ${summary} ${detail}`);
}

/** Canvas coordinates of a pointer or drag event. */
export function canvasPosition(event) {
  return comfyApp().canvas.convertEventToCanvasOffset(event);
}

/** The node under a pointer or drag event: the Vue node element first, then the canvas hit test. */
export function nodeAtEvent(event) {
  const app = comfyApp();
  const element = event.target?.closest?.("[data-node-id]");
  if (element) return app.graph.getNodeById(element.dataset.nodeId) ?? null;
  const [x, y] = canvasPosition(event);
  return app.graph.getNodeOnPos(x, y) ?? null;
}

/** A new node of `type` at canvas position `pos`, added to the graph. */
export function addNode(type, pos) {
  const app = comfyApp();
  const node = liteGraph().createNode(type);
  if (!node) throw new Error(`ComfyUI does not know the node type ${type}`);
  node.pos = [pos[0], pos[1]];
  app.graph.add(node);
  return node;
}

/** The canvas centre in canvas coordinates (where menu actions put new nodes). */
export function canvasCentre() {
  const canvas = comfyApp().canvas;
  const [ox, oy] = canvas.ds.offset;
  const scale = canvas.ds.scale || 1;
  const element = canvas.canvas;
  return [element.clientWidth / 2 / scale - ox, element.clientHeight / 2 / scale - oy];
}

/** The current workflow as an API prompt, and the workflow JSON (what the Run button sends). */
export function graphToPrompt() {
  return comfyApp().graphToPrompt();
}

/** Queue an API prompt on ComfyUI, exactly as the Run button does; answers {prompt_id, ...}. */
export function queuePrompt(output, workflow) {
  return comfyApi().queuePrompt(0, { output, workflow });
}
