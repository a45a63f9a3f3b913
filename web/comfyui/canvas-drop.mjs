// Dropping a library model (from our sidebar, or the manager page in another tab) on the canvas:
// onto empty canvas a new loader, onto our node set (one model) or appended (LoRAs).

import { carriesModel, readModelDrag } from "../lib/model-drag.mjs";
import { labelOf } from "../lib/node-payload.mjs";
import { addNode, canvasCentre, canvasPosition, comfyApp, markModified, nodeAtEvent, toast } from "./host.mjs";
import { dropPlan } from "./node-kinds.mjs";
import { overlayOf } from "./node-overlay.mjs";

/** Apply a drop of `model` at canvas position `pos` onto `target` (a node or null); answers the node. */
export function placeModel(model, target, pos) {
  const plan = dropPlan(model, target?.comfyClass ?? target?.type ?? "");
  if (plan.action === "none") throw new Error(plan.reason);
  const node = plan.action === "create" ? addNode(plan.nodeType, pos) : target;
  const overlay = overlayOf(node);
  if (!overlay) throw new Error(`The ${plan.nodeType} node has no Hikaze editor (is its payload input missing?)`);
  if (plan.action === "append" || (plan.action === "create" && overlay.isList)) overlay.appendLora(model);
  else overlay.setModel(model);
  markModified();
  return node;
}

/** Put `model` on the canvas without a drop (the sidebar's "Add to canvas"). */
export function addModelToCanvas(model) {
  const selected = Object.values(comfyApp().canvas.selected_nodes ?? {})[0] ?? null;
  return placeModel(model, selected, canvasCentre());
}

/** Listen on the window in the capture phase, so ComfyUI's own file drop never sees our drags. */
export function installCanvasDrop() {
  const onCanvas = (event) => Boolean(event.target?.closest?.(".graph-canvas-container, #graph-canvas, [data-node-id], .lgraphcanvas, canvas"));
  window.addEventListener("dragover", (event) => {
    if (!carriesModel(event.dataTransfer) || !onCanvas(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  }, true);
  window.addEventListener("drop", (event) => {
    if (!carriesModel(event.dataTransfer) || !onCanvas(event)) return;
    event.preventDefault();
    event.stopPropagation();
    const model = readModelDrag(event.dataTransfer);
    if (!model) return toast("error", "Could not read the dropped model");
    try {
      placeModel(model, nodeAtEvent(event), canvasPosition(event));
    } catch (error) {
      toast("error", `Could not place ${labelOf(model)}`, error.message);
    }
  }, true);
}
