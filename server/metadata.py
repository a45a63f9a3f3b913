"""Metadata already on disk beside a model (safetensors header, other tools' sidecar files,
previews) and the merge rule that remembers each field's source and never overwrites the user.

Reads are bounded: only the safetensors header (capped), sidecar files up to a few MB, never
the weights. A malformed or oversized sidecar is skipped with a warning, never raised.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import safetensors

log = logging.getLogger(__name__)

MAX_SIDECAR_BYTES = 4 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_TRAINING_TAGS = 100
MAX_TAGS = 50
SAFETENSORS_SUFFIXES = frozenset({".safetensors", ".sft"})
PREVIEW_SUFFIXES = (".preview.png", ".preview.jpg", ".preview.jpeg", ".preview.webp",
                    ".png", ".jpg", ".jpeg", ".webp")
CIVITAI_SITE = "https://civitai.com"
USER = "user"
# Model columns whose source meta["sources"] records too, beside the meta fields.
COLUMNS = ("name", "base_model")
# Where a field came from, weakest first. A merge never lets a weaker source replace a value from
# a stronger one; a source not listed here (or a value with no recorded source) counts as the
# user's, because we cannot tell it was not an edit.
SOURCE_RANK = {"file": 0, "safetensors": 1, "a1111.json": 2, "cm-info": 3, "metadata.json": 3,
               "civitai.info": 3, "civitai": 4, USER: 5}
# Civitai's NSFW levels are bit flags: 1 PG, 2 PG-13, 4 R, 8 X, 16 XXX, 32 blocked.
NSFW_FLAGGED = 4  # a bare "nsfw: true" means at least R

# Base-model names as Civitai spells them, for the identifiers training tools write.
BASE_MODELS = {
    "sd_v1": "SD 1.5", "sd_v2": "SD 2.1", "sd_v2_v": "SD 2.1 768", "sdxl_base_v1-0": "SDXL 1.0",
    "sd3": "SD 3", "flux1": "Flux.1 D",
    "stable-diffusion-v1": "SD 1.5", "stable-diffusion-v2-512": "SD 2.1",
    "stable-diffusion-v2-768-v": "SD 2.1 768", "stable-diffusion-xl-v1-base": "SDXL 1.0",
    "stable-diffusion-xl-v1-refiner": "SDXL 1.0", "stable-diffusion-v3-medium": "SD 3",
    "flux-1-dev": "Flux.1 D", "flux-1-schnell": "Flux.1 S",
    "SD1": "SD 1.5", "SD2": "SD 2.1", "SDXL": "SDXL 1.0",
}

# The META schema's limits (schemas.META), so whatever is read here can always be stored.
_TEXT_MAX, _SHORT_MAX, _LINKS_MAX, _WORDS_MAX = 100_000, 1000, 4000, 500


@dataclass(frozen=True)
class LocalMetadata:
    """What the files beside a model say about it. `meta` holds META fields plus
    `training_tags` (suggestions) and `sources` (field → where it came from)."""

    name: str = ""
    base_model: str = ""
    meta: dict = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    preview: Path | None = None
    preview_bytes: bytes | None = None


def read_local(path: Path) -> LocalMetadata:
    """Everything other tools left beside `path`; stronger sources win field by field:
    civitai.info / metadata.json / cm-info, then an A1111 `<stem>.json`, then the safetensors
    header, then the file name."""
    header, thumbnail = _from_safetensors(path)
    layers: list[tuple[str, dict]] = [("file", {"name": path.stem}), ("safetensors", header)]
    for suffix, source, parse in _SIDECARS:
        data = _read_sidecar(path.with_name(path.stem + suffix))
        if data is not None:
            layers.append((source, parse(data)))
    fields, sources, tags = _layer(layers)
    name, base_model = fields.pop("name", path.stem), fields.pop("base_model", "")
    meta = _fit(fields)
    if sources:
        meta["sources"] = sources
    return LocalMetadata(name=name, base_model=base_model, meta=meta, tags=tags,
                         preview=find_preview(path), preview_bytes=thumbnail)


def find_preview(path: Path) -> Path | None:
    """The first sibling preview picture: `<stem>.preview.png`, `<stem>.png`, .jpg, .jpeg, .webp."""
    for suffix in PREVIEW_SUFFIXES:
        candidate = path.with_name(path.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def merge_into(existing_meta: dict, incoming: dict, source: str) -> dict:
    """`existing_meta` with the non-empty fields of `incoming` filled in, each recorded in
    `sources` (a per-field `incoming["sources"]` entry wins over `source`). A field the user set,
    one of unknown origin, or one from a stronger source is kept; empty data never replaces
    good data."""
    merged = dict(existing_meta)
    sources = _sources_of(existing_meta)
    given = _sources_of(incoming)
    for key, value in incoming.items():
        if key == "sources" or _empty(value):
            continue
        origin = given.get(key, source)
        current = sources.get(key)
        if current is None and not _empty(merged.get(key)):
            continue  # a value we cannot trace (an earlier edit or import): keep it
        if current is not None and _rank(current) > _rank(origin):
            continue
        merged[key], sources[key] = value, origin
    if sources:
        merged["sources"] = sources
    return merged


def mark_user_edits(meta: dict, patch: dict) -> dict:
    """`meta` with every field a model PATCH sets recorded as the user's. A field the patch names
    in `meta_json.sources` itself is left as the patch says (null releases it to imports)."""
    meta_patch = patch.get("meta_json") or {}
    explicit = meta_patch.get("sources")
    explicit = explicit if isinstance(explicit, dict) else {}
    edited = [k for k in COLUMNS if k in patch] + [k for k in meta_patch if k != "sources"]
    edited = [k for k in edited if k not in explicit]
    if not edited:
        return meta
    return {**meta, "sources": {**_sources_of(meta), **{k: USER for k in edited}}}


def civitai_fields(version: dict, site: str = CIVITAI_SITE) -> dict:
    """The fields a Civitai model-version document (API answer or `.civitai.info`) gives."""
    model = version.get("model") if isinstance(version.get("model"), dict) else {}
    model_id, version_id = version.get("modelId"), version.get("id")
    fields: dict[str, Any] = {
        "name": _text(model.get("name")),
        "base_model": _text(version.get("baseModel")),
        "trigger_words": _words(version.get("trainedWords")),
        "description": _plain(version.get("description")) or _plain(model.get("description")),
        "nsfw_level": _nsfw(version.get("nsfwLevel"), model.get("nsfw")),
        "tags": _words(model.get("tags")),
    }
    if _is_id(model_id) and _is_id(version_id):
        url = f"{site.rstrip('/')}/models/{model_id}?modelVersionId={version_id}"
        fields["community_links"] = url
        fields["source"] = {"provider": "civitai", "model_id": model_id,
                            "version_id": version_id, "url": url}
    return fields


# --- the formats -------------------------------------------------------------------------------

def _from_safetensors(path: Path) -> tuple[dict, bytes | None]:
    """Fields from kohya `ss_*` and ModelSpec `modelspec.*` keys, and the ModelSpec thumbnail."""
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        return {}, None
    try:
        with open(path, "rb") as source:
            prefix = source.read(8)
        if len(prefix) == 8 and struct.unpack("<Q", prefix)[0] > MAX_HEADER_BYTES:
            log.warning("%s: safetensors header over %d MB; its metadata is not read",
                        path, MAX_HEADER_BYTES >> 20)
            return {}, None
        header = safetensors.read_header(path)
    except (OSError, safetensors.NotSafetensors) as exc:
        log.warning("%s: cannot read its safetensors header (%s)", path, exc)
        return {}, None
    raw = header.get("__metadata__")
    md = {k: v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, dict) else {}
    architecture = md.get("modelspec.architecture", "").split("/")[0]
    kohya_base = md.get("ss_base_model_version", "")
    fields = {
        "name": _text(md.get("modelspec.title")) or _text(md.get("ss_output_name")),
        "base_model": _base_model(architecture) or _base_model(kohya_base),
        "description": _text(md.get("modelspec.description")),
        "trigger_words": _split(md.get("modelspec.trigger_phrase")),
        "tags": _split(md.get("modelspec.tags")),
        "training_tags": _training_tags(md.get("ss_tag_frequency"), path),
        "training": _training(md),
    }
    return fields, _data_uri(md.get("modelspec.thumbnail"), path)


def _from_lora_manager(data: dict) -> dict:
    """LoRA Manager's `<stem>.metadata.json`: its own fields over its copy of Civitai's answer."""
    civitai = data.get("civitai")
    fields = civitai_fields(civitai) if isinstance(civitai, dict) else {}
    fields.update({
        "name": _text(data.get("model_name")),
        "base_model": _text(data.get("base_model")),
        "description": _plain(data.get("modelDescription")),
        "notes": _text(data.get("notes"), _TEXT_MAX),
        "tags": _words(data.get("tags")) + fields.get("tags", []),
        "recommended": _usage_tips(data.get("usage_tips")),
    })
    return fields


def _from_stability_matrix(data: dict) -> dict:
    """Stability Matrix's `<stem>.cm-info.json` (its ConnectedModelInfo)."""
    version = {"id": data.get("VersionId"), "modelId": data.get("ModelId"),
               "baseModel": data.get("BaseModel"), "trainedWords": data.get("TrainedWords"),
               "description": data.get("ModelDescription") or data.get("VersionDescription"),
               "model": {"name": data.get("ModelName"), "nsfw": data.get("Nsfw"),
                         "tags": data.get("Tags")}}
    return civitai_fields(version)


def _from_a1111(data: dict) -> dict:
    """A1111's user metadata `<stem>.json` (the extra-networks editor)."""
    weight = data.get("preferred weight")
    fields = {
        "description": _text(data.get("description"), _TEXT_MAX),
        "trigger_words": _split(data.get("activation text")),
        "notes": _text(data.get("notes"), _TEXT_MAX),
        "base_model": _base_model(_text(data.get("sd version"))),
        "prompts": {"negative": n} if (n := _text(data.get("negative text"), _TEXT_MAX)) else {},
        "recommended": {"strength_model": weight} if _is_number(weight) and weight else {},
    }
    return fields if set(data) & _A1111_KEYS else {}


_A1111_KEYS = {"description", "activation text", "notes", "sd version", "negative text",
               "preferred weight"}
# Weakest first: a later layer wins each field it gives.
_SIDECARS: tuple[tuple[str, str, Callable[[dict], dict]], ...] = (
    (".json", "a1111.json", _from_a1111),
    (".cm-info.json", "cm-info", _from_stability_matrix),
    (".metadata.json", "metadata.json", _from_lora_manager),
    (".civitai.info", "civitai.info", civitai_fields),
)


def _read_sidecar(path: Path) -> dict | None:
    """The JSON object in `path`, or None (absent, too large, or malformed: logged)."""
    try:
        with open(path, "rb") as source:
            raw = source.read(MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("%s: cannot read it (%s); skipped", path, exc)
        return None
    if len(raw) > MAX_SIDECAR_BYTES:
        log.warning("%s is over %d MB; skipped", path, MAX_SIDECAR_BYTES >> 20)
        return None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        log.warning("%s is not valid JSON (%s); skipped", path, exc)
        return None
    if not isinstance(data, dict):
        log.warning("%s does not hold a JSON object; skipped", path)
        return None
    return data


# --- layering and merging ----------------------------------------------------------------------

def _layer(layers: list[tuple[str, dict]]) -> tuple[dict, dict, tuple[str, ...]]:
    """Combine per-source fields, weakest first: (fields, their sources, all tags)."""
    fields: dict[str, Any] = {}
    sources: dict[str, str] = {}
    tags: dict[str, str] = {}
    for source, values in reversed(layers):  # tags in order of the strongest source first
        for tag in values.get("tags", []):
            tags.setdefault(tag.lower(), tag)
    for source, values in layers:
        for key, value in values.items():
            if key != "tags" and not _empty(value):
                fields[key], sources[key] = value, source
    return fields, sources, tuple(list(tags.values())[:MAX_TAGS])


def _fit(fields: dict) -> dict:
    """Cut strings and lists to the META schema's limits."""
    fitted = dict(fields)
    for key in ("description", "notes"):
        if key in fitted:
            fitted[key] = fitted[key][:_TEXT_MAX]
    if "community_links" in fitted:
        fitted["community_links"] = fitted["community_links"][:_LINKS_MAX]
    if "trigger_words" in fitted:
        fitted["trigger_words"] = [w[:_SHORT_MAX] for w in fitted["trigger_words"][:_WORDS_MAX]]
    return fitted


def _sources_of(meta: dict) -> dict[str, str]:
    sources = meta.get("sources")
    if not isinstance(sources, dict):
        return {}
    return {k: v for k, v in sources.items() if isinstance(v, str)}


def _rank(source: str) -> int:
    return SOURCE_RANK.get(source, SOURCE_RANK[USER])


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


# --- value helpers -----------------------------------------------------------------------------

def _text(value: Any, limit: int = _SHORT_MAX) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _words(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    words = (_text(v) for v in value)
    return list(dict.fromkeys(w for w in words if w))[:_WORDS_MAX]


def _split(value: Any) -> list[str]:
    return _words(value.split(",")) if isinstance(value, str) else []


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _is_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value > 0) or (
        isinstance(value, str) and value.isdigit())


def _base_model(identifier: str) -> str:
    if not identifier or identifier.lower() == "unknown":
        return ""
    return BASE_MODELS.get(identifier, identifier)[:_SHORT_MAX]


def _nsfw(level: Any, flagged: Any) -> int | None:
    """Civitai's level flags → the highest one set (0–32); a bare NSFW flag → R."""
    if isinstance(level, int) and not isinstance(level, bool) and level > 0:
        return min(32, 1 << (level.bit_length() - 1))
    return NSFW_FLAGGED if flagged is True else None


def _usage_tips(value: Any) -> dict:
    """LoRA Manager's usage tips (a JSON string) → recommended strengths."""
    try:
        tips = json.loads(value) if isinstance(value, str) and value else {}
    except ValueError:
        return {}
    if not isinstance(tips, dict):
        return {}
    pairs = (("strength_model", tips.get("strength")), ("strength_clip", tips.get("clip_strength")))
    return {key: v for key, v in pairs if _is_number(v)}


def _training_tags(value: str | None, path: Path) -> list[dict]:
    """kohya's `ss_tag_frequency` ({dataset: {tag: count}}) → the most used tags, summed."""
    if not value:
        return []
    try:
        datasets = json.loads(value)
    except ValueError:
        log.warning("%s: ss_tag_frequency is not JSON; training tags skipped", path)
        return []
    counts: dict[str, int] = {}
    for tags in (datasets.values() if isinstance(datasets, dict) else []):
        for tag, count in (tags.items() if isinstance(tags, dict) else []):
            if isinstance(tag, str) and tag.strip() and _is_number(count):
                counts[tag.strip()] = counts.get(tag.strip(), 0) + int(count)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_TRAINING_TAGS]
    return [{"tag": tag[:_SHORT_MAX], "count": count} for tag, count in ranked]


def _training(md: dict[str, str]) -> dict:
    """How a self-trained model was made: the checkpoint it was trained on, network dim/alpha."""
    found: dict[str, Any] = {}
    if md.get("ss_sd_model_name"):
        found["base_checkpoint"] = md["ss_sd_model_name"][:_SHORT_MAX]
    for key, name in (("ss_network_dim", "network_dim"), ("ss_network_alpha", "network_alpha")):
        try:
            number = float(md.get(key, ""))
        except ValueError:
            continue
        if number == number and abs(number) != float("inf"):
            found[name] = int(number) if number.is_integer() else number
    return found


def _data_uri(value: str | None, path: Path) -> bytes | None:
    """The picture in a `data:image/...;base64,` URI (ModelSpec's thumbnail)."""
    match = re.fullmatch(r"data:image/[\w.+-]+;base64,(.*)", value or "", re.DOTALL)
    if not match:
        return None
    try:
        return base64.b64decode(match[1], validate=False) or None
    except ValueError:  # binascii.Error included
        log.warning("%s: modelspec.thumbnail is not valid base64; skipped", path)
        return None


_BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|div|li|h[1-6]|tr)\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def _plain(value: Any) -> str:
    """Civitai descriptions are HTML; the library keeps plain text, one line per block."""
    if not isinstance(value, str):
        return ""
    text = html.unescape(_TAG.sub("", _BLOCK_END.sub("\n", value)))
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()[:_TEXT_MAX]
