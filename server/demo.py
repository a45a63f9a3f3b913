"""`--demo`: a small generated library (valid tiny safetensors, previews, tags) to explore.

The files live in `<data dir>/demo-models/<kind>/`, never beside real models; seeding is
idempotent, so restarting with --demo adds nothing twice.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import random
import struct
from pathlib import Path

from PIL import Image, ImageDraw

from . import hashing, library, safetensors
from .config import Config, Kind
from .images import Gallery, ImageFields
from .store import Store

log = logging.getLogger(__name__)

# (kind, relative path, display name, base model, tags, nsfw level, description, trigger words)
MODELS = [
    ("checkpoints", "sdxl/aurora_xl_v2.safetensors", "Aurora XL v2", "SDXL 1.0",
     ["sdxl", "photo"], 0, "A general-purpose photographic checkpoint.", []),
    ("checkpoints", "sd15/pixel_mix.safetensors", "Pixel Mix", "SD 1.5",
     ["sd15", "pixel art"], 0, "Crisp pixel-art sprites and scenes.", []),
    ("loras", "styles/watercolor_wash.safetensors", "Watercolor Wash", "SDXL 1.0",
     ["style", "sdxl"], 0, "Soft watercolor washes, trained on 40 paintings.", ["wtrclr"]),
    ("loras", "styles/film_grain.safetensors", "Film Grain", "SD 1.5",
     ["style", "photo"], 0, "Analog film grain and halation.", ["filmgrain", "35mm"]),
    ("loras", "characters/night_lounge.safetensors", "Night Lounge", "SDXL 1.0",
     ["character", "nsfw"], 3, "Moody lounge portraits (marked NSFW).", ["nightlounge"]),
    ("vae", "sdxl_vae_fixed.safetensors", "SDXL VAE (fp16 fix)", "SDXL 1.0", ["sdxl"], 0,
     "A VAE that decodes in half precision without artefacts.", []),
    ("embeddings", "bad_hands.safetensors", "Bad Hands", "SD 1.5", ["negative"], 0,
     "A negative embedding against malformed hands.", []),
    ("upscale_models", "crisp_2x.safetensors", "Crisp 2x", "", ["upscaler"], 0,
     "A small 2x upscaler.", []),
]
COLOURS = [(233, 120, 80), (80, 160, 220), (120, 200, 140), (200, 110, 200), (230, 200, 90)]


def demo_dir(config: Config) -> Path:
    return config.data_dir / "demo-models"


def prepare(config: Config) -> Config:
    """Write the demo model files (once) and return the config with their folders as roots."""
    root = demo_dir(config)
    kinds = dict(config.kinds)
    for index, (kind, relative, name, base, *_rest) in enumerate(MODELS):
        path = root / kind / relative
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_model(path, index, name, base)
        current = kinds.get(kind, Kind(kind, ()))
        if root / kind not in current.roots:
            kinds[kind] = dataclasses.replace(current, roots=(*current.roots, root / kind))
    return dataclasses.replace(config, kinds=dict(sorted(kinds.items())), demo=True)


async def seed(store: Store, gallery: Gallery, config: Config) -> None:
    """Add the demo models that are not yet in the library, with two previews each."""
    added = 0
    for index, (kind, relative, name, base, tags, nsfw, description, words) in enumerate(MODELS):
        path = demo_dir(config) / kind / relative
        sha = hashing.sha256_file(path)
        if await store.run(_known, sha):
            continue
        model = library.NewModel(
            sha256=sha, name=name, type=kind, size_bytes=path.stat().st_size,
            created_at=library.now_ms() - index * 86_400_000, base_model=base, tags=tuple(tags),
            paths=(str(path),),
            meta={"description": description, "trigger_words": words, "nsfw_level": nsfw,
                  "prompts": {"positive": ", ".join(words), "negative": "lowres, blurry"},
                  "source": {"provider": "demo"}},
        )
        await store.run(library.add_model, model)
        for variant in range(2):
            await gallery.upload(sha, _preview(name, index, variant),
                                 ImageFields(prompt=f"{name}, sample {variant + 1}", nsfw_level=nsfw,
                                             generation_params={"steps": 20, "cfg": 6.5,
                                                                "seed": index * 10 + variant},
                                             source="demo"), library.now_ms())
        added += 1
    if added:
        log.info("Demo library: added %d models from %s", added, demo_dir(config))


def _known(db, sha: str) -> bool:
    return db.execute("SELECT 1 FROM models WHERE sha256 = ?", [sha]).fetchone() is not None


def _write_model(path: Path, index: int, name: str, base: str) -> None:
    rng = random.Random(index)
    weights = struct.pack("<64f", *(rng.uniform(-1, 1) for _ in range(64)))
    safetensors.write(
        path,
        {"demo.weight": ("F32", [8, 8], weights), "demo.bias": ("F32", [8], weights[:32])},
        {"modelspec.title": name, "modelspec.architecture": base or "upscaler",
         "hikaze.demo": "true"},
    )


def _preview(name: str, index: int, variant: int) -> io.BytesIO:
    width, height = 512, 768
    top, bottom = COLOURS[index % len(COLOURS)], COLOURS[(index + variant + 2) % len(COLOURS)]
    picture = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(picture)
    for y in range(height):
        mix = y / height
        draw.line([(0, y), (width, y)], fill=tuple(round(a + (b - a) * mix) for a, b in zip(top, bottom)))
    draw.text((24, height - 64), f"{name}\nsample {variant + 1}", fill=(255, 255, 255))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    buffer.seek(0)
    return buffer
