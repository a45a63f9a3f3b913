"""ComfyUI entry point of Hikaze Model Manager: the loader nodes (V1 API), the web folder, and,
when ComfyUI is the running program, the discovery and proxy routes and the manager process.

Importing this package needs no ComfyUI and starts nothing outside it; inside ComfyUI it adds
the routes and starts the supervisor thread, then returns at once (docs/comfyui.md).
"""
from pathlib import Path

from .nodes.host import Host
from .nodes.loaders import DISPLAY_NAMES, node_classes

_HOST = Host()
NODE_CLASS_MAPPINGS = node_classes(_HOST)
NODE_DISPLAY_NAME_MAPPINGS = dict(DISPLAY_NAMES)
# ComfyUI serves this folder and executes every .js file in it: only web/comfyui/hikaze.js is
# named .js; the shared modules are .mjs, served but run only when the entry imports them.
WEB_DIRECTORY = "./web"

if Host.inside_comfyui():
    from .nodes import sidecar as _sidecar  # noqa: E402  (only inside ComfyUI)
    SIDECAR = _sidecar.start_in_comfyui(_HOST, Path(__file__).resolve().parent)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
