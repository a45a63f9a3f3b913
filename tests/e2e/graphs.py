"""The API-format graph the real-ComfyUI tier runs: our checkpoint and LoRA loaders named by
sha256 only, a few sampler steps on zero conditioning (the tiny checkpoint has no CLIP weights),
the latent saved."""
from __future__ import annotations

import json


def sampling_graph(ckpt_sha: str, lora_sha: str, *, seed: int, strength: float,
                   prefix: str) -> dict:
    lora = {"version": 2, "loras": [{"name": "tiny", "full_path": "", "sha256": lora_sha,
                                     "strength_model": strength, "strength_clip": 1.0,
                                     "enabled": True}]}
    return {
        "1": {"class_type": "HikazeCheckpointLoader",
              "inputs": {"hikaze_payload": json.dumps({"ckpt_path": "", "sha256": ckpt_sha})}},
        "2": {"class_type": "HikazeLoraPowerLoader",
              "inputs": {"model": ["1", 0], "clip": ["1", 1], "hikaze_payload": json.dumps(lora)}},
        "3": {"class_type": "HikazeE2EZeroConditioning", "inputs": {}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["2", 0], "positive": ["3", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            "seed": seed, "steps": 2, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0}},
        "6": {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": prefix}},
    }
