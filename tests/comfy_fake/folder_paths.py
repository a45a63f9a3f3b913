"""Fake of ComfyUI's `folder_paths`, written from COMFYUI.md §1.4 and §8a (no ComfyUI code).

`init(root)` roots everything at a temp dir: `<root>/models/<kind>`, `<root>/user`, …
"""
import os

supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
LEGACY = {"unet": "diffusion_models", "clip": "text_encoders"}
KINDS = ("checkpoints", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
         "style_models", "embeddings", "vae_approx", "controlnet", "gligen", "upscale_models",
         "hypernetworks", "photomaker", "classifiers")
base_path = models_dir = ""
folder_names_and_paths: dict = {}
_dirs: dict = {}


def init(root):
    global base_path, models_dir
    base_path, models_dir = str(root), os.path.join(str(root), "models")
    folder_names_and_paths.clear()
    for kind in KINDS:
        folder_names_and_paths[kind] = ([os.path.join(models_dir, kind)], set(supported_pt_extensions))
    folder_names_and_paths["configs"] = ([os.path.join(models_dir, "configs")], [".yaml"])
    folder_names_and_paths["custom_nodes"] = ([os.path.join(base_path, "custom_nodes")], set())
    for name in ("output", "input", "temp", "user"):
        _dirs[name] = os.path.join(base_path, name)


def map_legacy(folder_name):
    return LEGACY.get(folder_name, folder_name)


def add_model_folder_path(folder_name, full_folder_path, is_default=False):
    folder_name = map_legacy(folder_name)
    paths, exts = folder_names_and_paths.setdefault(folder_name, ([], set()))
    if full_folder_path in paths:
        paths.remove(full_folder_path)
    paths.insert(0, full_folder_path) if is_default else paths.append(full_folder_path)


def get_folder_paths(folder_name):
    return folder_names_and_paths[map_legacy(folder_name)][0][:]


def get_full_path(folder_name, filename):
    folder_name = map_legacy(folder_name)
    if folder_name not in folder_names_and_paths:
        return None
    filename = os.path.relpath(os.path.join("/", filename), "/")  # neutralises ../
    for folder in folder_names_and_paths[folder_name][0]:
        full_path = os.path.join(folder, filename)
        if os.path.isfile(full_path):
            return full_path
    return None


def get_full_path_or_raise(folder_name, filename):
    full_path = get_full_path(folder_name, filename)
    if full_path is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return full_path


def get_filename_list(folder_name):
    folders, exts = folder_names_and_paths[map_legacy(folder_name)]
    found = set()
    for folder in folders:
        for dirpath, subdirs, files in os.walk(folder, followlinks=True):
            subdirs[:] = [d for d in subdirs if d != ".git"]
            for name in files:
                relative = os.path.relpath(os.path.join(dirpath, name), folder).replace(os.sep, "/")
                if not exts or os.path.splitext(name)[1].lower() in exts:
                    found.add(relative)
    return sorted(found)


def get_output_directory():
    return _dirs["output"]


def get_input_directory():
    return _dirs["input"]


def get_temp_directory():
    return _dirs["temp"]


def get_user_directory():
    return _dirs["user"]
