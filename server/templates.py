"""Built-in workflow templates (`txt2img` through our own loader nodes, models named by sha256)
and the checks of a workflow against a server's /object_info."""
from __future__ import annotations

import json
import secrets

from sqlite_utils import Database

from . import schemas
from .comfy import combo_options
from .errors import Invalid

TEMPLATES = ("txt2img",)
TXT2IMG_DEFAULTS = {
    "loras": [], "positive_prompt": "", "negative_prompt": "", "seed": -1, "steps": 20,
    "cfg_scale": 7.0, "sampler_name": "euler", "scheduler": "normal", "width": 512, "height": 512,
    "batch_size": 1,
}
SEED_LIMIT = 2**32  # a random seed is below this, so every UI shows it whole
SAMPLER = "KSampler"


def resolve_txt2img(db: Database, params: dict) -> dict:
    """The parameters with defaults filled in, a random seed drawn for -1, and each model's
    library name and path (the nodes' path hint). Runs on the store thread."""
    problems = schemas.errors(schemas.TXT2IMG, params)
    if problems:
        field = ".".join(part for part in ("params", problems[0][0]) if part)
        raise Invalid(f"Invalid params: {field}: {problems[0][1]}", code="VALIDATION", field=field,
                      problems=[{"field": f"params.{f}".rstrip("."), "message": m}
                                for f, m in problems[:20]])
    resolved = {**TXT2IMG_DEFAULTS, **params}
    if resolved["seed"] == -1:
        resolved["seed"] = secrets.randbelow(SEED_LIMIT)
    resolved["checkpoint"] = {"sha256": params["checkpoint"].lower(),
                              **_model(db, params["checkpoint"], "params.checkpoint")}
    resolved["loras"] = [
        {"sha256": lora["sha256"].lower(), "strength_model": lora.get("strength_model", 1.0),
         "strength_clip": lora.get("strength_clip", 1.0),
         **_model(db, lora["sha256"], f"params.loras.{i}.sha256")}
        for i, lora in enumerate(resolved["loras"])]
    return resolved


def _model(db: Database, sha256: str, field: str) -> dict:
    row = db.execute(
        "SELECT m.name, (SELECT path FROM files f WHERE f.sha256 = m.sha256 "
        "ORDER BY f.state != 'present', f.path LIMIT 1) FROM models m WHERE m.sha256 = ?",
        [sha256.lower()]).fetchone()
    if row is None:
        raise Invalid(f"{field}: model {sha256} is not in the library", code="UNKNOWN_MODEL",
                      field=field, sha256=sha256)
    name, path = row
    return {"name": name or (path or "").replace("\\", "/").rsplit("/", 1)[-1], "path": path or ""}


def txt2img_workflow(p: dict) -> dict:
    """The API-format graph: our checkpoint and LoRA loaders → prompts → KSampler → SaveImage."""
    checkpoint = {"ckpt_path": p["checkpoint"]["path"], "sha256": p["checkpoint"]["sha256"],
                  "name": p["checkpoint"]["name"]}
    loras = {"version": 2, "loras": [
        {"name": lora["name"], "full_path": lora["path"], "sha256": lora["sha256"],
         "strength_model": lora["strength_model"], "strength_clip": lora["strength_clip"],
         "enabled": True} for lora in p["loras"]]}
    return {
        "1": {"class_type": "HikazeCheckpointLoader",
              "inputs": {"hikaze_payload": json.dumps(checkpoint)}},
        "2": {"class_type": "HikazeLoraPowerLoader",
              "inputs": {"model": ["1", 0], "clip": ["1", 1], "hikaze_payload": json.dumps(loras)}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": p["positive_prompt"], "clip": ["2", 1]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": p["negative_prompt"], "clip": ["2", 1]}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": p["width"], "height": p["height"], "batch_size": p["batch_size"]}},
        "6": {"class_type": SAMPLER, "inputs": {
            "model": ["2", 0], "positive": ["3", 0], "negative": ["4", 0], "latent_image": ["5", 0],
            "seed": p["seed"], "steps": p["steps"], "cfg": p["cfg_scale"],
            "sampler_name": p["sampler_name"], "scheduler": p["scheduler"], "denoise": 1.0}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "hikaze/txt2img"}},
    }


def check_workflow(object_info: dict, workflow: dict, field: str = "workflow") -> None:
    """Refuse node types the server does not have, and COMBO values it does not offer
    (an unknown sampler names the valid ones)."""
    missing = sorted({node["class_type"] for node in workflow.values()} - set(object_info))
    if missing:
        hint = (" (install the Hikaze Model Manager extension on that ComfyUI)"
                if any(name.startswith("Hikaze") for name in missing) else "")
        raise Invalid(f"{field}: the server has no node type {', '.join(missing)}{hint}",
                      code="UNKNOWN_NODE", field=field, missing=missing)
    for node_id, node in workflow.items():
        for name, value in node["inputs"].items():
            if not isinstance(value, str):
                continue  # links and numbers: ComfyUI validates them itself
            options = combo_options(object_info, node["class_type"], name)
            if options is not None and value not in options and not name.endswith("_payload"):
                raise Invalid(f"{field}: {name} '{value}' is not offered by the server; valid: "
                              f"{', '.join(options[:100])}", code="INVALID_CHOICE",
                              field=_param_field(field, node["class_type"], name, node_id),
                              options=options)


def _param_field(field: str, class_type: str, name: str, node_id: str) -> str:
    if field == "params" and class_type == SAMPLER and name in ("sampler_name", "scheduler"):
        return f"params.{name}"
    return f"{field}.{node_id}.inputs.{name}"
