"""ComfyUI entry point of Hikaze Model Manager.

ComfyUI imports this package and reads the mappings below. The loader nodes and the sidecar
supervisor arrive with the ComfyUI-integration work; until then the extension registers no
nodes, and importing it never needs ComfyUI.
"""

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
# Only web/comfyui is handed to ComfyUI: it executes every .js file under this folder.
WEB_DIRECTORY = "./web/comfyui"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
