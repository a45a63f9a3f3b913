"""A finished generation job's outputs: each file fetched from ComfyUI is written atomically
under `<data dir>/queue/<job id>/`, and its pictures can become user images of a model."""
from __future__ import annotations

import asyncio
import io
import logging
import mimetypes
import os
import re
from pathlib import Path
from typing import Awaitable, Callable

from .comfy import Output
from .errors import ApiError
from .images import Gallery, ImageFields

log = logging.getLogger(__name__)


async def store(folder: Path, found: list[Output], fetch: Callable[[Output], Awaitable[bytes]]) -> list[dict]:
    """Fetch and keep every output; returns their records (`stored_as` is the file's name)."""
    stored = []
    for index, output in enumerate(found):
        content = await fetch(output)
        name = f"{index}-{safe_name(output.filename)}"
        await asyncio.to_thread(write_atomically, folder / name, content)
        stored.append({"index": index, "node_id": output.node_id, "kind": output.kind,
                       "filename": output.filename, "subfolder": output.subfolder,
                       "type": output.type, "size_bytes": len(content), "stored_as": name,
                       "content_type": mimetypes.guess_type(output.filename)[0]
                       or "application/octet-stream"})
    return stored


async def attach(gallery: Gallery, folder: Path, row: dict, outputs: list[dict], now_ms: int) -> list[dict]:
    """Each output picture becomes a user image of the job's attach_to model, carrying the
    generation parameters and the workflow."""
    params = row["params"]
    fields = ImageFields(
        prompt=str(params.get("positive_prompt", "")), source="generated",
        negative_prompt=str(params.get("negative_prompt", "")),
        generation_params={**params, "workflow": row["workflow"], "job_id": row["id"],
                           "server": row["server_alias"], "prompt_id": row["prompt_id"]})
    attached = []
    for output in outputs:
        if output["kind"] != "images" or not output["content_type"].startswith("image/"):
            continue
        try:
            content = io.BytesIO(await asyncio.to_thread((folder / output["stored_as"]).read_bytes))
            image = await gallery.upload(row["attach_to"], content, fields, now_ms)
        except ApiError as exc:  # an undecodable picture, or the model was deleted meanwhile
            log.warning("Job %s: output %s not attached: %s", row["id"], output["filename"], exc)
            continue
        attached.append({"output_index": output["index"], "sha256": row["attach_to"],
                         "seq": image["seq"], "id": image["id"], "url": image["url"]})
    return attached


def safe_name(filename: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", filename.replace("\\", "/").rsplit("/", 1)[-1])
    return name.lstrip(".")[:120] or "output"


def write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    os.replace(partial, path)
