"""A test-only ComfyUI node for the real-ComfyUI tier: zero conditioning without CLIP weights."""
import torch


class HikazeE2EZeroConditioning:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "make"
    CATEGORY = "testing"

    def make(self):
        return ([[torch.zeros(1, 77, 768), {"pooled_output": None}]],)


NODE_CLASS_MAPPINGS = {"HikazeE2EZeroConditioning": HikazeE2EZeroConditioning}
