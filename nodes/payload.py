"""Read and write the `hikaze_payload` JSON our nodes keep in a workflow (DESIGN §7).

The reader is lenient: it accepts every shape the original Hikaze nodes wrote (a bare LoRA
array, `LoRAs`, `path`, `MStrength`, `CStrength`, `toggleOn`, numeric strings), because saved
workflows must keep loading. What it cannot understand raises PayloadError with the reason:
a LoRA list that cannot be read fails the prompt instead of silently loading nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PAYLOAD_INPUT = "hikaze_payload"
LORA_LIST_VERSION = 2
_LIST_KEYS = ("loras", "LoRAs", "LoRAList", "loRAList")


class PayloadError(ValueError):
    """The payload cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class ModelRef:
    """One model as a node names it: its hash (the identity) and a path hint."""

    path: str = ""
    sha256: str = ""
    name: str = ""

    @property
    def label(self) -> str:
        """How to name the model to a person: its display name, else its file name."""
        return self.name or self.path.replace("\\", "/").rsplit("/", 1)[-1] or self.sha256[:12]

    @property
    def empty(self) -> bool:
        return not (self.path or self.sha256)


@dataclass(frozen=True)
class LoraEntry:
    ref: ModelRef
    strength_model: float = 1.0
    strength_clip: float = 1.0
    enabled: bool = True


def _load_json(text: str | None, what: str) -> Any:
    if text is None or not str(text).strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"{what} payload is not valid JSON ({exc.msg} at position {exc.pos})") from exc


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"'{field}' must be a string, not {type(value).__name__}")
    return value.strip()


def _sha256(value: Any) -> str:
    return _text(value, "sha256").lower()


def read_model(text: str | None) -> ModelRef:
    """A single-model payload: `{"ckpt_path"|"path"|"full_path", "sha256", "name"}`."""
    data = _load_json(text, "model")
    if data is None:
        return ModelRef()
    if not isinstance(data, dict):
        raise PayloadError(f"model payload must be a JSON object, not {type(data).__name__}")
    path_key = next((k for k in ("ckpt_path", "path", "full_path") if data.get(k)), "ckpt_path")
    return ModelRef(path=_text(data.get(path_key), path_key), sha256=_sha256(data.get("sha256")),
                    name=_text(data.get("name"), "name"))


def read_loras(text: str | None) -> list[LoraEntry]:
    """A LoRA list document (version 1 or 2), or any of the reference's older shapes."""
    data = _load_json(text, "LoRA list")
    if data is None:
        return []
    if isinstance(data, dict):
        _check_version(data.get("version", LORA_LIST_VERSION))
        key = next((k for k in _LIST_KEYS if k in data), None)
        items = data[key] if key else []
    else:
        items = data
    if not isinstance(items, list):
        raise PayloadError("LoRA list payload must hold a list of LoRAs under 'loras'")
    return [_read_entry(item, index) for index, item in enumerate(items)]


def _check_version(value: Any) -> None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or value not in (1, 2):
        raise PayloadError(f"LoRA list version {value!r} is not supported (expected 1 or 2)")


def _read_entry(item: Any, index: int) -> LoraEntry:
    where = f"LoRA #{index + 1}"
    if not isinstance(item, dict):
        raise PayloadError(f"{where} must be a JSON object")
    try:
        ref = ModelRef(path=_text(_first(item, "full_path", "path"), "full_path"),
                       sha256=_sha256(item.get("sha256")), name=_text(item.get("name"), "name"))
        entry = LoraEntry(ref=ref,
                          strength_model=_number(_first(item, "strength_model", "MStrength"), 1.0),
                          strength_clip=_number(_first(item, "strength_clip", "CStrength"), 1.0),
                          enabled=_flag(_first(item, "enabled", "toggleOn"), True))
    except PayloadError as exc:
        raise PayloadError(f"{where}: {exc}") from exc
    if ref.empty and not ref.name:
        raise PayloadError(f"{where} names no file: it has neither 'sha256' nor 'full_path'")
    return entry


def _first(item: dict, *keys: str) -> Any:
    return next((item[k] for k in keys if item.get(k) is not None), None)


def _number(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool):
        raise PayloadError(f"strength {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"strength {value!r} is not a number") from exc


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise PayloadError(f"'enabled' must be true or false, not {value!r}")
    return value


def dump_model(ref: ModelRef, path_key: str = "ckpt_path") -> str:
    """The canonical single-model payload (`ckpt_path` for checkpoints, `path` otherwise)."""
    return json.dumps({path_key: ref.path, "sha256": ref.sha256, "name": ref.name},
                      ensure_ascii=False)


def dump_loras(entries: list[LoraEntry]) -> str:
    """The canonical LoRA list document, as the web UI writes it."""
    loras = [{"name": e.ref.name, "full_path": e.ref.path, "sha256": e.ref.sha256,
              "strength_model": e.strength_model, "strength_clip": e.strength_clip,
              "enabled": e.enabled} for e in entries]
    return json.dumps({"version": LORA_LIST_VERSION, "loras": loras}, indent=2, ensure_ascii=False)
