"""Generate a tiny SD1.5-shaped checkpoint and a kohya LoRA with ComfyUI's own classes
(COMFYUI.md §4.4). Run with ComfyUI's Python and its folder on PYTHONPATH:
`python make_models.py <checkpoint path> <lora path>`."""
from __future__ import annotations

import sys

PATHS, sys.argv = sys.argv[1:], sys.argv[:1] + ["--cpu"]
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()  # so ComfyUI reads --cpu (no CUDA here)

import comfy.ops  # noqa: E402
import torch  # noqa: E402
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
from safetensors.torch import save_file  # noqa: E402

TARGET = "input_blocks.1.1.transformer_blocks.0.attn1.to_q"
LORA_KEY = "lora_unet_" + TARGET.replace(".", "_")
RANK, ALPHA = 4, 2.0


def checkpoint(path: str) -> None:
    torch.manual_seed(0)
    unet = UNetModel(image_size=32, in_channels=4, model_channels=320, out_channels=4,
                     num_res_blocks=[1], channel_mult=(1,), use_spatial_transformer=True,
                     num_head_channels=64, transformer_depth=[1], transformer_depth_output=[1, 1],
                     context_dim=768, use_linear_in_transformer=False, transformer_depth_middle=-2,
                     dtype=torch.float32, operations=comfy.ops.disable_weight_init)
    with torch.no_grad():
        for param in unet.parameters():  # the disabled-init ops leave memory as it was
            param.normal_(0.0, 0.02)
    state = {f"model.diffusion_model.{k}": v.to(torch.float16).contiguous()
             for k, v in unet.state_dict().items()}
    save_file(state, path)


def lora(path: str) -> None:
    torch.manual_seed(1)
    save_file({f"{LORA_KEY}.lora_up.weight": torch.randn(320, RANK) * 0.1,
               f"{LORA_KEY}.lora_down.weight": torch.randn(RANK, 320) * 0.1,
               f"{LORA_KEY}.alpha": torch.tensor(ALPHA)}, path,
              metadata={"ss_tag_frequency": '{"set": {"hikaze_ink": 3}}'})


if __name__ == "__main__":
    checkpoint(PATHS[0])
    lora(PATHS[1])
