// ComfyUI's entry for Hikaze Model Manager (the only .js under web/: ComfyUI runs every .js
// there). It registers the extension and wires the .mjs modules; it holds no logic of its own.

import { installCanvasDrop } from "./canvas-drop.mjs";
import { Connection } from "./connection.mjs";
import { comfyApp, toast } from "./host.mjs";
import { kindOfNode } from "./node-kinds.mjs";
import { attachOverlay, overlayOf } from "./node-overlay.mjs";
import { chainAfter } from "./patch.mjs";
import { LibraryPanel, SIDEBAR_TAB_ID } from "./sidebar.mjs";
import { installStyles } from "./styles.mjs";

const OPEN_MANAGER = "Hikaze.OpenManager";
const connection = new Connection();

async function openManager() {
  if (!connection.managerUrl) await connection.connect();
  const url = connection.managerUrl;
  if (url) window.open(url, "_blank", "noopener");
  else toast("error", "The Hikaze manager is not available", connection.found.message);
}

comfyApp().registerExtension({
  name: "Hikaze.ModelManager",
  commands: [{ id: OPEN_MANAGER, label: "Open Hikaze Model Manager", icon: "pi pi-images", function: openManager }],
  keybindings: [{ combo: { key: "m", alt: true, shift: true }, commandId: OPEN_MANAGER }],
  menuCommands: [{ path: ["Extensions", "Hikaze"], commands: [OPEN_MANAGER] }],

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!kindOfNode(nodeData.name)) return;
    chainAfter(nodeType.prototype, "onNodeCreated", function attach() {
      attachOverlay(this, connection);
    });
    chainAfter(nodeType.prototype, "onRemoved", function detach() {
      overlayOf(this)?.dispose();
    });
  },

  async setup(app) {
    installStyles();
    installCanvasDrop();
    const panel = new LibraryPanel(connection, { openManager });
    app.extensionManager.registerSidebarTab({
      id: SIDEBAR_TAB_ID, icon: "pi pi-images", title: "Models", tooltip: "Hikaze model library",
      type: "custom", render: (element) => panel.mount(element),
    });
    await connection.connect();
  },
});
