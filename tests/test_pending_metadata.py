"""Scanned pending items take the metadata and preview found beside their files, and keep
them through the import."""
from __future__ import annotations

import functools
import json

from server import library
from server.app_keys import CONFIG
from server.importer import import_pending
from tests.factories import build_tree, write_safetensors
from tests.test_scanner import age, make_lab  # noqa: F401  (make_lab is a fixture)


def civitai_info(path, **fields):
    info = {"id": 222, "modelId": 111, "name": "v2.0", "baseModel": "SDXL 1.0",
            "trainedWords": ["inkwash", "sumi"], "description": "<p>Ink wash style</p>",
            "model": {"name": "Ink Wash", "type": "LORA", "nsfw": False}, **fields}
    path.with_name(path.stem + ".civitai.info").write_text(json.dumps(info))


async def test_scanned_item_is_described_and_imports_with_its_metadata(tmp_path, make_lab):
    tree = build_tree(tmp_path / "models")
    ink = tree.by_name("ink.safetensors")  # has ink.preview.png beside it
    civitai_info(ink.path)
    age(tree.root)
    lab = await make_lab(tree.root)
    await lab.scan()

    config = lab.app[CONFIG]
    item_id, *_ = (await lab.pending())[str(ink.path)]
    pending = await (await lab.client.get(f"/api/migration/pending_model?id={item_id}")).json()
    assert pending["name"] == "Ink Wash"
    assert pending["meta_json"]["trigger_words"] == ["inkwash", "sumi"]
    assert pending["meta_json"]["base_model"] == "SDXL 1.0"
    assert pending["image"].startswith("scan-")
    preview = await lab.client.get(f"/api/images/pending/{item_id}")
    assert preview.status == 200 and preview.content_type == "image/png"

    report = await lab.store.run(functools.partial(import_pending, pending_dir=config.pending_dir),
                                 config.images_dir, [item_id], None, library.now_ms())
    assert report["success"] == [item_id]
    model = await lab.store.run(library.get_model, ink.sha256)
    assert (model["name"], model["base_model"]) == ("Ink Wash", "SDXL 1.0")
    assert model["meta_json"]["trigger_words"] == ["inkwash", "sumi"]
    assert "base_model" not in model["meta_json"]
    assert model["images_count"] == 1  # the sibling preview became the cover


async def test_file_without_metadata_keeps_its_file_name(tmp_path, make_lab):
    tree = build_tree(tmp_path / "models")
    plain = tree.root / "loras" / "plain.safetensors"
    write_safetensors(plain, 9, {"format": "pt"})  # a header that names nothing
    glow = tree.by_name("glow.safetensors")  # its header has kohya's ss_output_name
    age(tree.root)
    lab = await make_lab(tree.root)
    await lab.scan()
    pending = await lab.pending()
    assert pending[str(plain)][2] == "plain.safetensors"
    assert pending[str(glow.path)][2] == "glow.safetensors"  # not its header's ss_output_name
    rows = await lab.query("SELECT json_extract(meta, '$.sources') FROM pending_import")
    assert all(row[0] is not None for row in rows)  # every hashed item was looked at once


async def test_an_unreadable_sidecar_is_skipped(tmp_path, make_lab):
    tree = build_tree(tmp_path / "models")
    ink = tree.by_name("ink.safetensors")
    ink.path.with_name("ink.civitai.info").write_text("{not json")
    ink.path.with_name("ink.preview.png").write_bytes(b"not a picture")
    age(tree.root)
    lab = await make_lab(tree.root)
    await lab.scan()
    item_id, _sha, name, *_ = (await lab.pending())[str(ink.path)]
    assert name == "ink.safetensors"
    assert (await lab.query("SELECT image FROM pending_import WHERE id = ?", item_id)) == [("",)]
