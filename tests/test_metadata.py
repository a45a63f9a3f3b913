"""metadata.py: each on-disk format, which source wins, tolerance of bad files, previews, and
the merge rule that never overwrites the user."""
from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from server import library, metadata, schemas
from server.metadata import merge_into, read_local
from tests.factories import png_bytes, write_safetensors
from tests.fake_civitai import version_document

TAG_FREQUENCY = {"10_ink": {"ink": 12, " brush": 3, "paper": 1}, "5_extra": {"ink": 4, "moon": 7}}
KOHYA = {
    "ss_output_name": "ink_v3",
    "ss_base_model_version": "sdxl_base_v1-0",
    "ss_sd_model_name": "sd_xl_base_1.0.safetensors",
    "ss_network_dim": "32",
    "ss_network_alpha": "16.5",
    "ss_tag_frequency": json.dumps(TAG_FREQUENCY),
}


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "loras" / "ink.safetensors"
    write_safetensors(path, 1, KOHYA)
    return path


def sidecar(model: Path, suffix: str, content) -> Path:
    path = model.with_name(model.stem + suffix)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def storable(found: metadata.LocalMetadata) -> None:
    """What read_local gives can always be stored as a model's meta."""
    schemas.check(schemas.META, found.meta, "meta")


# --- the safetensors header --------------------------------------------------------------------


def test_kohya_header(model):
    found = read_local(model)
    assert (found.name, found.base_model) == ("ink_v3", "SDXL 1.0")
    assert found.meta["training_tags"] == [
        {"tag": "ink", "count": 16}, {"tag": "moon", "count": 7}, {"tag": "brush", "count": 3},
        {"tag": "paper", "count": 1}]
    assert found.meta["training"] == {"base_checkpoint": "sd_xl_base_1.0.safetensors",
                                      "network_dim": 32, "network_alpha": 16.5}
    assert found.meta["sources"] == dict.fromkeys(
        ["name", "base_model", "training_tags", "training"], "safetensors")
    assert "trigger_words" not in found.meta  # training tags are suggestions only
    assert (found.tags, found.preview, found.preview_bytes) == ((), None, None)
    storable(found)


def test_modelspec_header_with_thumbnail(tmp_path):
    thumbnail = png_bytes((16, 16))
    path = tmp_path / "glow.safetensors"
    write_safetensors(path, 2, {
        "ss_output_name": "glow_raw",
        "modelspec.title": "Glow",
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.trigger_phrase": "glowing, neon light ,",
        "modelspec.description": "Soft glow.",
        "modelspec.tags": "light, neon",
        "modelspec.thumbnail": "data:image/png;base64," + base64.b64encode(thumbnail).decode(),
    })
    found = read_local(path)
    assert (found.name, found.base_model) == ("Glow", "SD 1.5")
    assert found.meta["trigger_words"] == ["glowing", "neon light"]
    assert found.meta["description"] == "Soft glow."
    assert found.tags == ("light", "neon")
    assert found.preview_bytes == thumbnail
    storable(found)


def test_unknown_architecture_is_kept_as_written(tmp_path):
    path = tmp_path / "x.safetensors"
    write_safetensors(path, 3, {"modelspec.architecture": "hunyuan-video/lora"})
    assert read_local(path).base_model == "hunyuan-video"


def test_bad_header_values_are_skipped(tmp_path, caplog):
    path = tmp_path / "odd.safetensors"
    write_safetensors(path, 4, {"ss_tag_frequency": "{not json", "ss_network_dim": "None",
                                "modelspec.thumbnail": "data:image/png;base64,@@@"})
    with caplog.at_level(logging.WARNING):
        found = read_local(path)
    assert found.name == "odd" and found.meta.get("sources") == {"name": "file"}
    assert "ss_tag_frequency" in caplog.text


def test_no_header_read_for_other_formats_or_broken_files(tmp_path, caplog):
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"PK\x03\x04" + bytes(64))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with caplog.at_level(logging.WARNING):
        assert read_local(ckpt) == metadata.LocalMetadata(name="old",
                                                          meta={"sources": {"name": "file"}})
        assert read_local(broken).name == "broken"
    assert "broken.safetensors" in caplog.text


def test_a_header_over_the_cap_is_not_read(model, monkeypatch, caplog):
    monkeypatch.setattr(metadata, "MAX_HEADER_BYTES", 64)
    with caplog.at_level(logging.WARNING):
        assert read_local(model).name == "ink"
    assert "header over" in caplog.text


# --- sidecar files -----------------------------------------------------------------------------


def test_civitai_helper_info(model):
    sidecar(model, ".civitai.info", version_document("ab" * 32, nsfw_level=4 | 8))
    found = read_local(model)
    assert (found.name, found.base_model) == ("Ink Style", "SDXL 1.0")
    meta = found.meta
    assert meta["trigger_words"] == ["inkstyle", "sumi-e"]
    assert meta["description"] == "Ink wash style & brush strokes.\nUse at 0.8."
    link = "https://civitai.com/models/1234?modelVersionId=5678"
    assert meta["community_links"] == link
    assert meta["source"] == {"provider": "civitai", "model_id": 1234, "version_id": 5678,
                              "url": link}
    assert meta["nsfw_level"] == 8  # the highest of Civitai's level flags
    assert meta["sources"]["description"] == "civitai.info"
    assert meta["sources"]["training_tags"] == "safetensors"  # still there from the header
    storable(found)


def test_lora_manager_metadata_json(model):
    civitai = version_document("cd" * 32, model_id=9, version_id=10, trained_words=("lm",))
    civitai["model"]["tags"] = ["style", "ink"]
    sidecar(model, ".metadata.json", {
        "file_name": "ink", "model_name": "Ink (LM)", "base_model": "Illustrious",
        "preview_url": "/elsewhere/ink.webp", "notes": "my note", "tags": ["Ink", "favourite"],
        "modelDescription": "<p>From the model page</p>", "civitai": civitai,
        "usage_tips": json.dumps({"strength": 0.7, "clip_strength": 0.9}), "from_civitai": True})
    found = read_local(model)
    assert (found.name, found.base_model) == ("Ink (LM)", "Illustrious")
    assert found.meta["notes"] == "my note"
    assert found.meta["trigger_words"] == ["lm"]
    assert found.meta["description"] == "From the model page"
    assert found.meta["recommended"] == {"strength_model": 0.7, "strength_clip": 0.9}
    assert found.meta["source"]["model_id"] == 9
    assert found.tags == ("Ink", "favourite", "style")  # de-duplicated without regard to case
    assert found.meta["sources"]["name"] == "metadata.json"
    storable(found)


def test_stability_matrix_cm_info(model):
    sidecar(model, ".cm-info.json", {
        "ModelName": "Ink SM", "ModelDescription": "Desc", "Nsfw": True, "Tags": ["sm"],
        "ModelType": "LORA", "VersionName": "v2", "BaseModel": "Pony", "TrainedWords": ["smword"],
        "ModelId": 77, "VersionId": 88, "Hashes": {"SHA256": "EF" * 32}})
    found = read_local(model)
    assert (found.name, found.base_model) == ("Ink SM", "Pony")
    assert found.meta["trigger_words"] == ["smword"]
    assert found.meta["nsfw_level"] == metadata.NSFW_FLAGGED
    assert found.meta["source"]["version_id"] == 88
    assert found.meta["sources"]["name"] == "cm-info"
    assert found.tags == ("sm",)


def test_a1111_user_metadata(model):
    sidecar(model, ".json", {"description": "A1111 desc", "sd version": "SDXL",
                             "activation text": "ink style, wash", "preferred weight": 0.8,
                             "negative text": "blurry", "notes": "n"})
    found = read_local(model)
    assert found.meta["description"] == "A1111 desc"
    assert found.meta["trigger_words"] == ["ink style", "wash"]
    assert found.meta["prompts"] == {"negative": "blurry"}
    assert found.meta["recommended"] == {"strength_model": 0.8}
    assert found.base_model == "SDXL 1.0"
    assert found.meta["sources"]["base_model"] == "a1111.json"
    storable(found)


def test_an_unrelated_stem_json_is_ignored(model):
    sidecar(model, ".json", {"_class_name": "UNet2DConditionModel", "in_channels": 4})
    assert "a1111.json" not in read_local(model).meta["sources"].values()


# --- which source wins -------------------------------------------------------------------------


def test_precedence_between_sources(model):
    sidecar(model, ".json", {"description": "from a1111", "notes": "a1111 note",
                             "activation text": "a1111word"})
    sidecar(model, ".cm-info.json", {"ModelName": "SM name", "BaseModel": "SD 1.5",
                                     "TrainedWords": ["smword"]})
    sidecar(model, ".metadata.json", {"model_name": "LM name", "base_model": ""})
    sidecar(model, ".civitai.info", version_document("ab" * 32, name="Civitai name",
                                                     trained_words=()))
    found = read_local(model)
    sources = found.meta["sources"]
    assert (found.name, sources["name"]) == ("Civitai name", "civitai.info")
    assert (found.base_model, sources["base_model"]) == ("SDXL 1.0", "civitai.info")
    assert (found.meta["trigger_words"], sources["trigger_words"]) == (["smword"], "cm-info")
    assert (found.meta["notes"], sources["notes"]) == ("a1111 note", "a1111.json")
    assert sources["description"] == "civitai.info"
    assert sources["training"] == "safetensors"


def test_a1111_beats_the_header_and_the_file_name_comes_last(tmp_path):
    path = tmp_path / "plain.safetensors"
    write_safetensors(path, 5, {"modelspec.description": "header", "modelspec.title": ""})
    assert read_local(path).meta["description"] == "header"
    sidecar(path, ".json", {"description": "a1111"})
    found = read_local(path)
    assert (found.meta["description"], found.name) == ("a1111", "plain")
    assert found.meta["sources"]["name"] == "file"


# --- bad sidecars ------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [
    "{not json", "[1, 2, 3]", b"\xff\xfe\x00garbage", "", "null", '"a string"'])
def test_a_malformed_sidecar_is_skipped_with_a_warning(model, content, caplog):
    sidecar(model, ".metadata.json", content)
    sidecar(model, ".cm-info.json", {"ModelName": "Still read"})
    with caplog.at_level(logging.WARNING, logger="server.metadata"):
        found = read_local(model)
    assert found.name == "Still read"
    assert "ink.metadata.json" in caplog.text


def test_a_huge_sidecar_is_skipped(model, caplog):
    big = {"ModelName": "Too big", "ModelDescription": "x" * (metadata.MAX_SIDECAR_BYTES + 10)}
    sidecar(model, ".civitai.info", big)
    with caplog.at_level(logging.WARNING):
        assert read_local(model).name == "ink_v3"
    assert "skipped" in caplog.text


def test_a_sidecar_with_a_bom_is_read(model):
    sidecar(model, ".cm-info.json", "\ufeff" + json.dumps({"ModelName": "BOM"}))
    assert read_local(model).name == "BOM"


def test_oversized_values_are_cut_to_what_the_schema_stores(model):
    document = version_document("ab" * 32, trained_words=tuple(f"w{i}" for i in range(800)))
    document["description"] = "d" * 200_000
    sidecar(model, ".civitai.info", document)
    found = read_local(model)
    assert len(found.meta["trigger_words"]) == 500
    assert len(found.meta["description"]) == 100_000
    storable(found)


# --- previews ----------------------------------------------------------------------------------


def test_find_preview_order(model):
    assert metadata.find_preview(model) is None
    model.with_name("ink.png").mkdir()  # a folder is not a preview
    assert metadata.find_preview(model) is None
    model.with_name("ink.png").rmdir()
    for suffix in (".webp", ".jpeg", ".jpg", ".png", ".preview.png"):
        sidecar(model, suffix, png_bytes())
        assert metadata.find_preview(model) == model.with_name("ink" + suffix)
    assert read_local(model).preview == model.with_name("ink.preview.png")


def test_previews_of_other_models_do_not_count(model):
    sidecar(model, "_v2.png", png_bytes())
    model.with_name("other.preview.png").write_bytes(png_bytes())
    assert metadata.find_preview(model) is None


# --- merge_into --------------------------------------------------------------------------------


def test_merge_fills_fields_and_records_their_source():
    merged = merge_into({"notes": "mine", "sources": {"notes": "user"}},
                        {"description": "d", "trigger_words": ["a"], "notes": "theirs"}, "civitai")
    assert merged == {"notes": "mine", "description": "d", "trigger_words": ["a"],
                      "sources": {"notes": "user", "description": "civitai",
                                  "trigger_words": "civitai"}}


def test_merge_never_replaces_good_data_with_empty_data():
    existing = {"description": "d", "trigger_words": ["a"], "source": {"provider": "civitai"},
                "sources": {"description": "civitai", "trigger_words": "civitai",
                            "source": "civitai"}}
    assert merge_into(existing, {"description": "", "trigger_words": [], "source": {},
                                 "nsfw_level": None}, "civitai") == existing


def test_merge_keeps_values_of_unknown_origin_and_fills_blank_ones():
    merged = merge_into({"description": "written by hand", "notes": ""},
                        {"description": "d", "notes": "n"}, "civitai.info")
    assert merged["description"] == "written by hand"
    assert merged["notes"] == "n"
    assert merged["sources"] == {"notes": "civitai.info"}


def test_merge_a_weaker_source_never_replaces_a_stronger_one():
    existing = {"description": "online", "sources": {"description": "civitai"}}
    assert merge_into(existing, {"description": "header"}, "safetensors") == existing
    replaced = merge_into(existing, {"description": "fresh"}, "civitai")
    assert replaced["description"] == "fresh"


def test_merge_takes_per_field_sources_from_the_incoming_meta(model):
    sidecar(model, ".json", {"description": "a1111"})
    local = read_local(model)
    merged = merge_into({}, local.meta, "import")
    assert merged["sources"]["description"] == "a1111.json"
    assert merged["sources"]["training_tags"] == "safetensors"


def test_merge_does_not_change_its_input():
    existing = {"sources": {"notes": "civitai"}, "notes": "x"}
    merge_into(existing, {"notes": "y", "description": "z"}, "civitai")
    assert existing == {"sources": {"notes": "civitai"}, "notes": "x"}


# --- user edits through patch_model ------------------------------------------------------------


def add(db, sha: str, meta: dict | None = None) -> None:
    library.add_model(db, library.NewModel(sha256=sha, name="", type="loras", size_bytes=1,
                                           created_at=library.now_ms(), meta=meta or {}))


def test_patch_marks_user_fields_and_merge_leaves_them(db):
    sha = "ab" * 32
    add(db, sha, {"description": "from file", "sources": {"description": "civitai.info"}})
    model = library.patch_model(db, sha, {"name": "Mine", "meta_json": {"description": "mine"}})
    assert model["meta_json"]["sources"] == {"description": "user", "name": "user"}
    merged = merge_into({**model["meta_json"], "name": model["name"]},
                        {"name": "Civitai", "description": "online", "notes": "n"}, "civitai")
    assert (merged["name"], merged["description"], merged["notes"]) == ("Mine", "mine", "n")


def test_patch_can_release_a_field_back_to_imports(db):
    sha = "cd" * 32
    add(db, sha)
    library.patch_model(db, sha, {"meta_json": {"description": "mine"}})
    model = library.patch_model(db, sha, {"meta_json": {"description": None,
                                                        "sources": {"description": None}}})
    assert "description" not in model["meta_json"]
    assert "description" not in model["meta_json"].get("sources", {})
    assert merge_into(model["meta_json"], {"description": "d"}, "civitai")["description"] == "d"


def test_patch_of_tags_only_marks_nothing(db):
    sha = "ef" * 32
    add(db, sha, {"notes": "x"})
    assert library.patch_model(db, sha, {"tags": ["t"]})["meta_json"] == {"notes": "x"}
