"""Fake of `nodes.load_custom_node` (COMFYUI.md §1.1): path-derived module name, WEB_DIRECTORY,
V1 (`NODE_CLASS_MAPPINGS`, even `{}`) checked before V3 (`comfy_entrypoint`)."""
import importlib.util
import inspect
import os
import sys


async def load_custom_node(module_path, registry):
    """Import one custom node package into `registry` (a Registry). Returns True on success."""
    module_name = os.path.basename(module_path)
    sys_module_name = module_path.replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(sys_module_name, os.path.join(module_path, "__init__.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[sys_module_name] = module
    registry.module_names.append(sys_module_name)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # ComfyUI logs IMPORT FAILED and carries on
        registry.failed[module_path] = exc
        return False
    if getattr(module, "WEB_DIRECTORY", None) is not None:
        web_dir = os.path.abspath(os.path.join(module_path, module.WEB_DIRECTORY))
        if os.path.isdir(web_dir):
            registry.web_dirs[module_name] = web_dir
    if getattr(module, "NODE_CLASS_MAPPINGS", None) is not None:
        registry.nodes.update(module.NODE_CLASS_MAPPINGS)
        registry.display_names.update(getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None) or {})
        return True
    if hasattr(module, "comfy_entrypoint"):
        extension = module.comfy_entrypoint()
        if inspect.isawaitable(extension):
            extension = await extension
        for node in await extension.get_node_list():
            registry.nodes[node.GET_SCHEMA().node_id] = node
        return True
    return False


class Registry:
    def __init__(self):
        self.nodes, self.display_names, self.web_dirs, self.failed = {}, {}, {}, {}
        self.module_names = []
