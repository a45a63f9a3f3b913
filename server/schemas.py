"""JSON Schemas (Draft 2020-12) for the config file, request bodies and the meta column.

Compiled once; `check(schema, value)` raises `Invalid` naming the failing field.
"""
from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from .errors import Invalid

SHA256_PATTERN = "^[0-9a-fA-F]{64}$"
KIND_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"

_path_list = {"type": "array", "items": {"type": "string", "minLength": 1}}

CONFIG = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "config.yaml",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "host": {"type": "string", "minLength": 1},
        "port": {"type": "integer", "minimum": 0, "maximum": 65535},
        "models_dir": {"type": "string", "minLength": 1},
        "comfyui_dir": {"type": "string", "minLength": 1},
        "roots": {
            "type": "object",
            "propertyNames": {"pattern": KIND_PATTERN},
            "additionalProperties": _path_list,
        },
        "extensions": {
            "type": "object",
            "propertyNames": {"pattern": KIND_PATTERN},
            "additionalProperties": {
                "type": "array",
                "items": {"type": "string", "pattern": "^\\.[A-Za-z0-9]+$"},
            },
        },
        "cors_origins": {
            "type": "array",
            "items": {"type": "string", "pattern": "^https?://[^/\\s]+$"},
        },
        "allowed_hosts": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "max_upload_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
        "scan_interval_minutes": {"type": "number", "minimum": 0},
        "auto_import": {"type": "boolean"},
        "hash_workers": {"type": "integer", "minimum": 1, "maximum": 64},
        "civitai_lookup": {"type": "boolean"},
        "civitai_api_key": {"type": "string"},
        "civitai_url": {"type": "string", "pattern": "^https?://[^\\s]+$"},
        "log_level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
    },
}

_text = {"type": "string", "maxLength": 100_000}
_short = {"type": "string", "maxLength": 1000}

META = {
    "type": "object",
    "properties": {
        "description": _text,
        "community_links": {"type": "string", "maxLength": 4000},
        "prompts": {
            "type": "object",
            "properties": {"positive": _text, "negative": _text},
        },
        "trigger_words": {"type": "array", "items": _short, "maxItems": 500},
        "notes": _text,
        "nsfw_level": {"type": "integer", "minimum": 0, "maximum": 32},
        "source": {
            "type": "object",
            "properties": {"provider": _short, "model_id": {"type": ["string", "integer"]},
                           "version_id": {"type": ["string", "integer"]}, "url": _short},
        },
        "recommended": {
            "type": "object",
            "properties": {"strength_model": {"type": "number"},
                           "strength_clip": {"type": "number"}},
        },
    },
}


def _nullable(schema: dict) -> dict:
    """`schema` as a merge patch sees it: null (= remove) allowed here and in nested fields."""
    if "properties" in schema:
        schema = {**schema, "properties": {k: _nullable(v) for k, v in schema["properties"].items()}}
    return {"anyOf": [schema, {"type": "null"}]}


# A JSON Merge Patch of META: the same fields, any of them (nested ones too) may be null.
META_PATCH = {
    "type": "object",
    "properties": {key: _nullable(value) for key, value in META["properties"].items()},
}

# Ids and sequence numbers are SQLite integers: a larger number could not even be looked up.
_MAX_ID = 2**63 - 1

_tag_ref = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": _MAX_ID},
        {"type": "string", "minLength": 1, "maxLength": 100},
        {"type": "object", "required": ["id"],
         "properties": {"id": {"type": "integer", "minimum": 1, "maximum": _MAX_ID}}},
        {"type": "object", "required": ["name"], "not": {"required": ["id"]},
         "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}}},
    ]
}

MODEL_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "name": {"type": "string", "maxLength": 500},
        "type": {"type": "string", "maxLength": 64},
        "base_model": {"type": "string", "maxLength": 200},
        "meta_json": META_PATCH,
        "tags": {"type": "array", "items": _tag_ref, "maxItems": 1000},
    },
}

TAGS_ADD = {
    "type": "object",
    "required": ["newtags"],
    "properties": {"newtags": {"type": "array", "maxItems": 1000}},
}

TAG_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S"},
        "merge": {"type": "boolean"},
    },
}

IMAGE_ORDER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["order"],
    "properties": {"order": {"type": "array", "maxItems": 10_000,
                             "items": {"type": "integer", "minimum": 0, "maximum": _MAX_ID}}},
}

IMAGE_COVER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["seq"],
    "properties": {"seq": {"type": "integer", "minimum": 0, "maximum": _MAX_ID}},
}

GENERATION_PARAMS = {"type": "object", "maxProperties": 200}


_VALIDATORS = {id(s): Draft202012Validator(s)
               for s in (CONFIG, META, MODEL_PATCH, TAGS_ADD, TAG_PATCH, IMAGE_ORDER,
                         IMAGE_COVER, GENERATION_PARAMS)}


def errors(schema: dict, value: Any) -> list[tuple[str, str]]:
    """All violations as (field path, message), the most specific first."""
    found = sorted(_VALIDATORS[id(schema)].iter_errors(value), key=lambda e: -len(e.absolute_path))
    return [(_field(e), e.message) for e in found]


def check(schema: dict, value: Any, what: str = "body") -> Any:
    """Return `value` if it matches `schema`, else raise Invalid naming the first bad field."""
    problems = errors(schema, value)
    if problems:
        field, message = problems[0]
        raise Invalid(f"Invalid {what}: {field or what}: {message}", code="VALIDATION",
                      field=field, problems=[{"field": f, "message": m} for f, m in problems[:20]])
    return value


def _field(error) -> str:
    return ".".join(str(part) for part in error.absolute_path)


# --- appended for the metadata refresh (server/civitai.py, routes/metadata.py) ---
MAX_REFRESH_BATCH = 100

REFRESH_METADATA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sha256"],
    "properties": {"sha256": {"type": "array", "minItems": 1, "maxItems": MAX_REFRESH_BATCH,
                              "items": {"type": "string", "pattern": SHA256_PATTERN}}},
}
_VALIDATORS[id(REFRESH_METADATA)] = Draft202012Validator(REFRESH_METADATA)


LEGACY_MIGRATION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["legacy_db_path"],
    "properties": {
        "legacy_db_path": {"type": "string", "minLength": 1, "maxLength": 4096},
        "legacy_images_dir": {"type": "string", "maxLength": 4096},
        "dry_run": {"type": "boolean"},
    },
}
_VALIDATORS[id(LEGACY_MIGRATION)] = Draft202012Validator(LEGACY_MIGRATION)


# POST /api/migration/import_models. Ids that are not integers are reported per item (failed,
# INVALID_ID) rather than refusing the batch, as the v1 contract does.
IMPORT_MODELS = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "array", "minItems": 1, "maxItems": 100_000,
               "items": {"type": ["integer", "string"], "maxLength": 40}},
        "conflict_strategy": {"enum": [None, "null", "override", "merge", "ignore", "delete"]},
    },
}
_VALIDATORS[id(IMPORT_MODELS)] = Draft202012Validator(IMPORT_MODELS)


# --- appended for the public API v1 user images (server/public_api.py, routes/v1_images.py) ---
# The fields of an uploaded image, after the multipart text fields were converted to numbers
# and JSON; seed .. comfyWorkflow are kept in the image's generation_params.
_V1_GENERATION = {
    "seed": {"type": "integer", "minimum": -1, "maximum": 2**64 - 1},
    "steps": {"type": "integer", "minimum": 1, "maximum": 10_000},
    "cfgScale": {"type": "number", "minimum": 0, "maximum": 100},
    "sampler": {"type": "string", "maxLength": 200},
    "scheduler": {"type": "string", "maxLength": 200},
    "loras": {"type": "array", "maxItems": 200, "items": {
        "type": "object", "required": ["name"], "maxProperties": 20,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 1000},
                       "strength": {"type": "number", "minimum": -100, "maximum": 100}}}},
    "comfyWorkflow": {"type": "object"},
}
V1_GENERATION_KEYS = tuple(_V1_GENERATION)

V1_IMAGE_FIELDS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "prompt": _text,
        "negativePrompt": _text,
        "nsfwLevel": {"type": "integer", "minimum": 0, "maximum": 32},
        **_V1_GENERATION,
    },
}

# PATCH: any of the same fields; a generation field set to null is removed.
V1_IMAGE_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "prompt": _text,
        "negativePrompt": _text,
        "nsfwLevel": {"type": "integer", "minimum": 0, "maximum": 32},
        **{key: {"anyOf": [value, {"type": "null"}]} for key, value in _V1_GENERATION.items()},
    },
}
_VALIDATORS[id(V1_IMAGE_FIELDS)] = Draft202012Validator(V1_IMAGE_FIELDS)
_VALIDATORS[id(V1_IMAGE_PATCH)] = Draft202012Validator(V1_IMAGE_PATCH)
# --- the generation queue (server/servers.py, server/queue.py, server/templates.py) ---
SERVER_ALIAS_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_server_url = {"type": "string", "maxLength": 2000, "pattern": "^https?://[^\\s/?#]+(/[^\\s?#]*)?$"}

SERVER_NEW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["alias", "url"],
    "properties": {"alias": {"type": "string", "pattern": SERVER_ALIAS_PATTERN}, "url": _server_url},
}
SERVER_UPDATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {"url": _server_url},
}

# An API-format workflow: node id → {class_type, inputs}.
WORKFLOW = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 2000,
    "additionalProperties": {
        "type": "object",
        "required": ["class_type", "inputs"],
        "properties": {"class_type": {"type": "string", "minLength": 1, "maxLength": 200},
                       "inputs": {"type": "object"}},
    },
}

QUEUE_JOB = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "target_server_alias": {"type": "string", "pattern": SERVER_ALIAS_PATTERN},
        "workflow": WORKFLOW,
        "template": {"enum": ["txt2img"]},
        "params": {"type": "object", "maxProperties": 200},
        "attach_to": {"type": "string", "pattern": SHA256_PATTERN},
    },
}

_prompt = {"type": "string", "maxLength": 20_000}
TXT2IMG = {
    "type": "object",
    "additionalProperties": False,
    "required": ["checkpoint"],
    "properties": {
        "checkpoint": {"type": "string", "pattern": SHA256_PATTERN},
        "loras": {"type": "array", "maxItems": 50, "items": {
            "type": "object", "additionalProperties": False, "required": ["sha256"],
            "properties": {"sha256": {"type": "string", "pattern": SHA256_PATTERN},
                           "strength_model": {"type": "number", "minimum": -100, "maximum": 100},
                           "strength_clip": {"type": "number", "minimum": -100, "maximum": 100}}}},
        "positive_prompt": _prompt,
        "negative_prompt": _prompt,
        "seed": {"type": "integer", "minimum": -1, "maximum": 2**64 - 1},
        "steps": {"type": "integer", "minimum": 1, "maximum": 10_000},
        "cfg_scale": {"type": "number", "minimum": 0, "maximum": 100},
        "sampler_name": {"type": "string", "minLength": 1, "maxLength": 100},
        "scheduler": {"type": "string", "minLength": 1, "maxLength": 100},
        "width": {"type": "integer", "minimum": 16, "maximum": 16384, "multipleOf": 8},
        "height": {"type": "integer", "minimum": 16, "maximum": 16384, "multipleOf": 8},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 64},
    },
}
_VALIDATORS.update({id(s): Draft202012Validator(s)
                    for s in (SERVER_NEW, SERVER_UPDATE, QUEUE_JOB, TXT2IMG)})



# PATCH /api/settings (server/settings.py): only what changes, at least one setting.
SETTINGS = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "nsfw_default": {"enum": ["hide", "blur", "show"]},
        "auto_import": {"type": "boolean"},
    },
}
_VALIDATORS[id(SETTINGS)] = Draft202012Validator(SETTINGS)


# --- the export document (server/user_data.py); `format` and a newer schema_version are
# refused before this runs, with their own messages ---
_epoch_ms = {"type": "integer", "minimum": 0}
_tag_name = {"type": "string", "minLength": 1, "maxLength": 100}
_EXPORTED_IMAGE = {
    "type": "object",
    "required": ["image_sha256", "width", "height"],
    "properties": {
        "image_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "width": {"type": "integer", "minimum": 1},
        "height": {"type": "integer", "minimum": 1},
        "seq": {"type": "integer", "minimum": 0},
        "nsfw_level": {"type": "integer", "minimum": 0, "maximum": 32},
        "prompt": _text,
        "negative_prompt": _text,
        "generation_params": GENERATION_PARAMS,
        "source": {"type": "string", "maxLength": 100},
        "created_at": _epoch_ms,
    },
}
USER_DATA = {
    "type": "object",
    "required": ["format", "schema_version", "exported_at", "models"],
    "properties": {
        "format": {"const": "hikaze-user-data"},
        "schema_version": {"type": "integer", "minimum": 1},
        "exported_at": {"type": "string"},
        "app_version": {"type": "string"},
        "models": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["sha256"],
            "properties": {
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "name": {"type": "string", "maxLength": 500},
                "type": {"type": "string", "maxLength": 64},
                "base_model": {"type": "string", "maxLength": 200},
                "size_bytes": {"type": "integer", "minimum": 0},
                "created_at": _epoch_ms,
                "updated_at": _epoch_ms,
                "meta": META,
                "tags": {"type": "array", "items": _tag_name},
                "images": {"type": "array", "items": _EXPORTED_IMAGE},
            },
        }},
        "tags": {"type": "array", "items": _tag_name},
        "settings": {"type": "object"},
        "servers": {"type": "array", "items": {
            "type": "object",
            "required": ["alias", "url"],
            "properties": {"alias": {"type": "string", "pattern": SERVER_ALIAS_PATTERN},
                           "url": _server_url, "created_at": _epoch_ms, "updated_at": _epoch_ms},
        }},
    },
}
_VALIDATORS[id(USER_DATA)] = Draft202012Validator(USER_DATA)
