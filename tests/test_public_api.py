"""public_api without HTTP: the hasMetadata rule and its index, upload field conversion, the
download file choice (symlinks, roots) and the Content-Disposition header."""
from __future__ import annotations

import os
from urllib.parse import quote, unquote

import pytest

from server import library, public_api
from server.errors import Forbidden, Invalid, NotFound

SHA = "a" * 64


def add(db, sha: str, meta: dict, base_model: str = "") -> None:
    library.add_model(db, library.NewModel(sha256=sha, name=sha[:4], type="loras", size_bytes=1,
                                           created_at=1, meta=meta, base_model=base_model))


@pytest.mark.parametrize("meta, expected", [
    ({}, False),
    ({"description": ""}, False),
    ({"trigger_words": []}, False),
    ({"source": {}}, False),
    ({"source": {"provider": "civitai"}}, False),
    ({"notes": "mine", "nsfw_level": 2, "prompts": {"positive": "x"}}, False),
    ({"description": "about it"}, True),
    ({"trigger_words": ["w"]}, True),
    ({"source": {"model_id": 5}}, True),
    ({"source": {"version_id": "7"}}, True),
    ({"source": {"url": "https://civitai.com/models/5"}}, True),
])
def test_has_metadata_rule(db, meta, expected):
    add(db, SHA, meta)
    assert library.has_metadata_of(db, [SHA]) == {SHA: expected}
    query = library.ListQuery(has_metadata=expected)
    assert [m["sha256"] for m in library.list_models(db, query, ["loras"])["models"]] == [SHA]
    other = library.ListQuery(has_metadata=not expected)
    assert library.list_models(db, other, ["loras"])["total"] == 0


@pytest.mark.parametrize("clause, params, index", [
    (f"{library.HAS_METADATA} = ?", [1], "models_has_metadata"),
    ("m.base_model = ? COLLATE NOCASE", ["SDXL"], "models_base_model"),
])
def test_v1_filters_count_from_an_index(db, clause, params, index):
    plan = db.execute(f"EXPLAIN QUERY PLAN SELECT count(*) FROM models m WHERE {clause}",
                      params).fetchall()
    assert any(index in row[-1] for row in plan), plan


def test_newest_page_with_has_metadata_is_read_in_index_order(db):
    sql = (f"EXPLAIN QUERY PLAN SELECT m.sha256 FROM models m WHERE {library.HAS_METADATA} = ? "
           f"ORDER BY {library.SORTS['newest']} LIMIT 40")
    plan = [row[-1] for row in db.execute(sql, [1]).fetchall()]
    assert any("models_has_metadata" in step for step in plan), plan
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan  # at most the sha256 tie-break


def test_list_pages(db):
    for index in range(5):
        add(db, f"{index:064x}", {}, base_model="SDXL")
    query = lambda offset: library.ListQuery(sort="oldest", offset=offset, limit=2)  # noqa: E731
    pages = [public_api.list_models(db, query(offset), ["loras"]) for offset in (0, 2, 4, 6)]
    assert [(p["page"], len(p["items"]), p["hasMore"]) for p in pages] == [
        (1, 2, True), (2, 2, True), (3, 1, False), (4, 0, False)]
    assert {p["total"] for p in pages} == {5}


# --- upload fields ---------------------------------------------------------------------------

def test_upload_fields_convert_and_keep_generation_params():
    fields = public_api.upload_fields({
        "prompt": "p", "negativePrompt": "n", "seed": " 42 ", "steps": "20", "cfgScale": "7",
        "sampler": "euler", "scheduler": "normal", "nsfwLevel": "1",
        "loras": '[{"name": "a", "strength": 0.5}]', "comfyWorkflow": '{"1": {}}'})
    assert (fields.prompt, fields.negative_prompt, fields.nsfw_level) == ("p", "n", 1)
    assert fields.generation_params == {
        "seed": 42, "steps": 20, "cfgScale": 7.0, "sampler": "euler", "scheduler": "normal",
        "loras": [{"name": "a", "strength": 0.5}], "comfyWorkflow": {"1": {}}}
    assert isinstance(fields.generation_params["cfgScale"], float)


@pytest.mark.parametrize("form, field", [
    ({"seed": "0x10"}, "seed"), ({"steps": "1e3"}, "steps"), ({"cfgScale": "inf"}, "cfgScale"),
    ({"cfgScale": "-"}, "cfgScale"), ({"loras": "[Infinity]"}, "loras"),
    ({"comfyWorkflow": "[" * 100_000}, "comfyWorkflow"), ({"extra": "x"}, "extra"),
])
def test_upload_fields_refuse_naming_the_field(form, field):
    with pytest.raises(Invalid) as caught:
        public_api.upload_fields(form)
    assert caught.value.details["field"] == field


# --- download --------------------------------------------------------------------------------

@pytest.fixture
def roots(tmp_path):
    models = tmp_path / "models"
    (models / "loras").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return models


def test_pick_download_prefers_a_file_inside_the_roots(roots, tmp_path):
    outside = tmp_path / "outside" / "a.safetensors"
    outside.write_bytes(b"x")
    inside = roots / "loras" / "b.safetensors"
    inside.write_bytes(b"y")
    gone = roots / "loras" / "0.safetensors"
    found = public_api.pick_download([str(gone), str(outside), str(inside)], [roots / "loras"])
    assert found == public_api.Download(inside, "b.safetensors")


def test_pick_download_refuses_symlinks_and_dot_dot_out_of_the_roots(roots, tmp_path):
    secret = tmp_path / "outside" / "secret.bin"
    secret.write_bytes(b"s")
    link = roots / "loras" / "link.safetensors"
    os.symlink(secret, link)
    for path in (str(link), str(roots / "loras" / ".." / ".." / "outside" / "secret.bin")):
        with pytest.raises(Forbidden):
            public_api.pick_download([path], [roots / "loras"])
    # a sibling folder whose name starts like the root is not inside it
    sibling = tmp_path / "models" / "loras2"
    sibling.mkdir()
    (sibling / "x.bin").write_bytes(b"x")
    with pytest.raises(Forbidden):
        public_api.pick_download([str(sibling / "x.bin")], [roots / "loras"])


def test_pick_download_resolves_a_symlinked_root(roots, tmp_path):
    real = tmp_path / "nas" / "loras"
    real.mkdir(parents=True)
    (real / "m.safetensors").write_bytes(b"m")
    linked_root = tmp_path / "linked"
    os.symlink(real, linked_root)
    found = public_api.pick_download([str(linked_root / "m.safetensors")], [linked_root])
    assert found.path == real / "m.safetensors"


def test_pick_download_not_found(roots):
    with pytest.raises(NotFound):
        public_api.pick_download([], [roots])
    (roots / "loras" / "folder.safetensors").mkdir()
    with pytest.raises(NotFound):  # a folder is not a file
        public_api.pick_download([str(roots / "loras" / "folder.safetensors")], [roots])


@pytest.mark.parametrize("name, plain, full", [
    ("model.safetensors", "model.safetensors", None),
    ('a "quoted"; name.ckpt', "a quoted; name.ckpt", None),
    ("line\r\nbreak\\x.pt", "linebreakx.pt", None),
    ("模型 v2.safetensors", "__ v2.safetensors", "模型 v2.safetensors"),
    ("\x00\x01", "model", None),
])
def test_content_disposition(name, plain, full):
    header = public_api.content_disposition(name)
    assert header.startswith(f'attachment; filename="{plain}"')
    if full is None:
        assert "filename*" not in header
    else:
        encoded = header.split("filename*=UTF-8''", 1)[1]
        assert unquote(encoded) == full and encoded == quote(full, safe="")
    assert header.isascii() and "\r" not in header and "\n" not in header
