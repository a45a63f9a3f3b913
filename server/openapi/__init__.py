"""The OpenAPI 3.1 document: `base.yaml` plus one YAML file per route module, assembled with the
JSON Schemas of `server.schemas` as its request schemas."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import yaml

from .. import __version__, schemas

FOLDER = Path(__file__).resolve().parent
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ERROR = {"$ref": "#/components/responses/Error"}
# Every route under this prefix needs `Authorization: Bearer <key>` (docs/api.md, DESIGN §9).
KEYED_PREFIX = "/api/v1/"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when it is there: 10x faster


class DocumentError(Exception):
    """Two fragments define the same path, operation or component."""


def document() -> dict[str, Any]:
    """The whole document, read afresh from the YAML files (a few milliseconds)."""
    return assemble([load(path) for path in fragment_files()], shared_schemas())


def load(path: Path) -> dict[str, Any]:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    except yaml.YAMLError as exc:
        raise DocumentError(f"{path.name}: {exc}") from exc


def fragment_files() -> list[Path]:
    """base.yaml first, then the route modules' files by name."""
    base = FOLDER / "base.yaml"
    return [base, *sorted(p for p in FOLDER.glob("*.yaml") if p != base)]


def shared_schemas() -> dict[str, dict]:
    """The public JSON Schemas of server.schemas (the ones handlers validate with), under
    component names: MODEL_PATCH becomes ModelPatch."""
    return {component_name(name): value for name, value in vars(schemas).items()
            if name.isupper() and not name.startswith("_") and isinstance(value, dict)}


def component_name(constant: str) -> str:
    return "".join(part.capitalize() for part in constant.split("_"))


def assemble(fragments: Iterable[dict], shared: dict[str, dict]) -> dict[str, Any]:
    """Merge the fragments (paths and components; a name defined twice is an error), add the
    shared schemas, and give every operation the error envelope for 4XX/5XX (and the key
    requirement under /api/v1) where it does not say otherwise."""
    doc: dict[str, Any] = {"paths": {}, "components": {}}
    for fragment in fragments:
        for key, value in fragment.items():
            if key == "paths":
                _merge_paths(doc["paths"], value)
            elif key == "components":
                for section, entries in value.items():
                    _merge_names(doc["components"].setdefault(section, {}), entries, section)
            elif key == "tags":
                doc.setdefault("tags", []).extend(value)
            elif key in doc:
                raise DocumentError(f"'{key}' is given twice")
            else:
                doc[key] = value
    _merge_names(doc["components"].setdefault("schemas", {}), copy.deepcopy(shared), "schemas")
    doc.setdefault("info", {})["version"] = __version__
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                _complete(path, item[method])
    return doc


def operations(doc: dict[str, Any]) -> Iterable[tuple[str, str, dict]]:
    """(path, method, operation) for every operation of the document."""
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _merge_paths(paths: dict, new: dict) -> None:
    for path, item in new.items():
        current = paths.setdefault(path, {})
        clash = set(current) & set(item) & set(METHODS)
        if clash:
            raise DocumentError(f"{sorted(clash)} {path} is documented twice")
        current.update(item)


def _merge_names(section: dict, new: dict, what: str) -> None:
    clash = set(section) & set(new)
    if clash:
        raise DocumentError(f"components/{what}: {sorted(clash)} defined twice")
    section.update(new)


def _complete(path: str, operation: dict) -> None:
    responses = operation.setdefault("responses", {})
    responses.setdefault("4XX", dict(ERROR))
    responses.setdefault("5XX", dict(ERROR))
    if path.startswith(KEYED_PREFIX):
        operation.setdefault("security", [{"bearerAuth": []}])
        if operation["security"]:
            responses.setdefault("401", dict(ERROR))
