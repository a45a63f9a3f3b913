"""Configuration: defaults, `config.yaml` and command-line flags merged into one frozen Config.

The file is validated against `schemas.CONFIG`; any problem raises ConfigError with one message
naming the key, so a bad config stops the start instead of half-working.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import schemas

DEFAULT_PORT = 8189  # ComfyUI's default port + 1
DEFAULT_CORS_ORIGINS = ("http://127.0.0.1:8188", "http://localhost:8188")
MODEL_EXTENSIONS = frozenset({".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl"})
# ComfyUI folder keys that hold no model files.
NON_MODEL_KINDS = frozenset({"configs", "custom_nodes"})
# Folder names ComfyUI files under another key (its folder_paths legacy names).
FOLDER_ALIASES = {"clip": "text_encoders", "unet": "diffusion_models", "t2i_adapter": "controlnet"}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and what is wrong."""


@dataclass(frozen=True)
class Kind:
    """One model kind (a ComfyUI folder key) with the folders it is read from."""

    name: str
    roots: tuple[Path, ...]
    extensions: frozenset[str] = MODEL_EXTENSIONS


@dataclass(frozen=True)
class Config:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    kinds: Mapping[str, Kind] = field(default_factory=dict)
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    allowed_hosts: tuple[str, ...] = ()
    max_upload_bytes: int = 50 * 1024 * 1024
    log_level: str = "INFO"
    scan_interval_minutes: float = 0
    auto_import: bool = False
    hash_workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    civitai_lookup: bool = False
    civitai_api_key: str = ""
    civitai_url: str = "https://civitai.com"
    demo: bool = False
    config_file: Path | None = None
    comfyui_url: str = ""  # the host ComfyUI (the queue's `local` server); empty standalone

    @property
    def db_path(self) -> Path:
        return self.data_dir / "library.db"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def pending_dir(self) -> Path:
        """Previews of pending items (copied from legacy databases), served as they are."""
        return self.data_dir / "pending"

    @property
    def model_roots(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(root for kind in self.kinds.values() for root in kind.roots))


def default_data_dir() -> Path:
    return Path(os.environ.get("HIKAZE_HOME") or Path.home() / ".hikaze")


def load(*, data_dir: str | Path | None = None, config_file: str | Path | None = None,
         host: str | None = None, port: int | None = None, models_dir: str | None = None,
         comfyui_dir: str | None = None, demo: bool = False,
         snapshot: str | Path | None = None) -> Config:
    """Build the Config: defaults < ComfyUI's snapshot < config file < flags. Raises ConfigError."""
    host_view = read_snapshot(Path(snapshot)) if snapshot else {}
    data_dir = data_dir or host_view.get("data_dir")
    data = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir().resolve()
    file = Path(config_file).expanduser().resolve() if config_file else data / "config.yaml"
    if config_file and not file.is_file():
        raise ConfigError(f"--config: {file} does not exist")
    values = read_file(file) if file.is_file() else {}
    base = file.parent

    kinds: dict[str, list[Path]] = {}
    extensions = _snapshot_kinds(host_view, kinds)
    for kind, paths in values.get("roots", {}).items():
        _add_roots(kinds, kind, [_absolute(p, base) for p in paths])
    for source in (values.get("models_dir") and _absolute(values["models_dir"], base), models_dir):
        if source:
            _add_models_dir(kinds, Path(source).expanduser().resolve(), "models_dir")
    for source in (values.get("comfyui_dir") and _absolute(values["comfyui_dir"], base), comfyui_dir):
        if source:
            _add_comfyui(kinds, Path(source).expanduser().resolve())

    extensions.update(values.get("extensions", {}))
    comfyui = host_view.get("comfyui", {})
    return Config(
        data_dir=data,
        host=host or values.get("host", comfyui.get("listen", "127.0.0.1")),
        port=port if port is not None else values.get("port", comfyui.get("port", DEFAULT_PORT - 1) + 1),
        kinds={name: Kind(name, tuple(dict.fromkeys(roots)),
                          frozenset(e.lower() for e in extensions.get(name, MODEL_EXTENSIONS)))
               for name, roots in sorted(kinds.items())},
        cors_origins=tuple(dict.fromkeys([*DEFAULT_CORS_ORIGINS, *comfyui.get("origins", []),
                                          *values.get("cors_origins", [])])),
        allowed_hosts=tuple(values.get("allowed_hosts", [])),
        max_upload_bytes=int(values.get("max_upload_mb", 50) * 1024 * 1024),
        log_level=values.get("log_level", "INFO"),
        scan_interval_minutes=values.get("scan_interval_minutes", 0),
        auto_import=values.get("auto_import", False),
        hash_workers=values.get("hash_workers", os.cpu_count() or 2),
        civitai_lookup=values.get("civitai_lookup", False),
        civitai_api_key=values.get("civitai_api_key", ""),
        civitai_url=values.get("civitai_url", "https://civitai.com").rstrip("/"),
        demo=demo,
        config_file=file if file.is_file() else None,
        comfyui_url=host_url(comfyui),
    )


def host_url(comfyui: Mapping[str, Any]) -> str:
    """ComfyUI's own address from the snapshot, reachable from this machine (a wildcard listen
    address is reached on loopback)."""
    if not comfyui.get("port"):
        return ""
    address = str(comfyui.get("listen") or "127.0.0.1")
    address = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address, address)
    host = f"[{address}]" if ":" in address else address
    return f"{comfyui.get('scheme', 'http')}://{host}:{int(comfyui['port'])}"


def read_file(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it as YAML ({exc})") from exc
    if values is None:
        return {}
    problems = schemas.errors(schemas.CONFIG, values)
    if problems:
        key, message = problems[0]
        raise ConfigError(f"{path}: key '{key or '(top level)'}': {message}")
    return values


def read_snapshot(path: Path) -> dict[str, Any]:
    """The host snapshot ComfyUI's side writes (nodes/sidecar.py): its model folders, listen
    address, port, origins and our data dir inside its user dir."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"--snapshot: cannot read {path} ({exc})") from exc
    if not isinstance(values, dict) or not isinstance(values.get("kinds", {}), dict):
        raise ConfigError(f"--snapshot: {path} is not a ComfyUI host snapshot")
    return values


def _snapshot_kinds(snapshot: dict[str, Any], kinds: dict[str, list[Path]]) -> dict[str, list[str]]:
    """Add ComfyUI's folders per kind; return ComfyUI's extensions per kind."""
    extensions: dict[str, list[str]] = {}
    for name, kind in snapshot.get("kinds", {}).items():
        _add_roots(kinds, name, [Path(p).expanduser().resolve() for p in kind.get("folders", [])])
        exts = [e for e in kind.get("extensions", []) if e]
        if exts and FOLDER_ALIASES.get(name, name) not in NON_MODEL_KINDS:
            extensions.setdefault(FOLDER_ALIASES.get(name, name), []).extend(exts)
    return extensions


def _absolute(value: str, base: Path) -> Path:
    path = Path(os.path.expandvars(value)).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _add_roots(kinds: dict[str, list[Path]], name: str, paths: list[Path]) -> None:
    name = FOLDER_ALIASES.get(name, name)
    if name not in NON_MODEL_KINDS:
        kinds.setdefault(name, []).extend(paths)


def _add_models_dir(kinds: dict[str, list[Path]], models_dir: Path, flag: str) -> None:
    """A ComfyUI-style models folder: each sub-folder is a kind."""
    if not models_dir.is_dir():
        raise ConfigError(f"{flag}: {models_dir} is not a folder")
    for child in sorted(models_dir.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            _add_roots(kinds, child.name, [child.resolve()])


def _add_comfyui(kinds: dict[str, list[Path]], comfyui: Path) -> None:
    """A ComfyUI install: its models/ folder and its extra_model_paths.yaml."""
    if not (comfyui / "models").is_dir():
        raise ConfigError(f"comfyui_dir: {comfyui} has no models/ folder; is it a ComfyUI folder?")
    _add_models_dir(kinds, comfyui / "models", "comfyui_dir")
    extra = comfyui / "extra_model_paths.yaml"
    if extra.is_file():
        for name, paths in read_extra_model_paths(extra).items():
            _add_roots(kinds, name, paths)


def read_extra_model_paths(path: Path) -> dict[str, list[Path]]:
    """Folders per kind from ComfyUI's extra_model_paths.yaml (same rules as ComfyUI's loader)."""
    try:
        sections = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it as YAML ({exc})") from exc
    if not isinstance(sections, dict):
        raise ConfigError(f"{path}: expected sections of folder keys")
    found: dict[str, list[Path]] = {}
    for section in sections.values():
        if not isinstance(section, dict):
            continue
        base = section.get("base_path")
        base = _absolute(str(base), path.parent) if base else path.parent
        for key, value in section.items():
            if key in ("base_path", "is_default") or not isinstance(value, str):
                continue
            for line in value.splitlines():
                if line.strip():
                    found.setdefault(key, []).append(_absolute(line.strip(), base))
    return found
