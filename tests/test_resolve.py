"""nodes.resolve: sha256 through the read-only library, then the path hint, then ComfyUI's
folders; a missing model names itself, its hash and its last known path."""
import os
import sqlite3

import pytest

from nodes.host import Host
from nodes.payload import ModelRef
from nodes.resolve import Library, ModelNotFound, resolve
from tests.nodes_helpers import add_to_library, make_fake


@pytest.fixture
def fake(tmp_path):
    return make_fake(tmp_path / "comfy")


def _resolve(fake, ref, kind="loras"):
    host = Host(fake.import_module)
    return resolve(ref, kind, Library(host.data_dir()), host)


def test_the_hash_finds_a_moved_file(fake, tmp_path):
    old = fake.model("loras", "a.safetensors", b"lora-a")
    sha = add_to_library(fake, "loras", old)
    moved = tmp_path / "elsewhere" / "renamed.safetensors"
    moved.parent.mkdir()
    os.rename(old, moved)
    add_to_library_path(fake, moved, sha)
    found = _resolve(fake, ModelRef(path=str(old), sha256=sha))
    assert (found.path, found.via) == (str(moved), "library")


def add_to_library_path(fake, path, sha):
    db = sqlite3.connect(Host(fake.import_module).data_dir() / "library.db")
    st = path.stat()
    db.execute("INSERT INTO files(path, sha256, size_bytes, mtime_ns, kind, state, seen_at) "
               "VALUES (?, ?, ?, ?, 'loras', 'present', 1)", [str(path), sha, st.st_size, st.st_mtime_ns])
    db.commit()
    db.close()


def test_a_library_path_marked_missing_is_still_used_when_the_file_is_there(fake):
    path = fake.model("loras", "b.safetensors", b"lora-b")
    sha = add_to_library(fake, "loras", path, present=False)
    assert _resolve(fake, ModelRef(sha256=sha)).path == str(path)


def test_the_path_hint_when_the_hash_is_unknown_or_absent(fake):
    path = fake.model("checkpoints", "c.safetensors")
    assert _resolve(fake, ModelRef(path=str(path), sha256="cd" * 32), "checkpoints").via == "path"
    relative = _resolve(fake, ModelRef(path="c.safetensors"), "checkpoints")
    assert (relative.path, relative.via) == (str(path), "folders")


def test_relative_paths_use_every_folder_of_the_kind_and_legacy_names(fake, tmp_path):
    extra = tmp_path / "nas" / "unet"
    (extra / "sub").mkdir(parents=True)
    (extra / "sub" / "u.safetensors").write_bytes(b"u")
    fake.folder_paths.add_model_folder_path("unet", str(extra))
    assert _resolve(fake, ModelRef(path="sub\\u.safetensors"), "unet").path == str(extra / "sub" / "u.safetensors")
    with pytest.raises(ModelNotFound):  # ../ is neutralised by ComfyUI's folders
        _resolve(fake, ModelRef(path="../../nas/unet/sub/u.safetensors"), "diffusion_models")


def test_resolution_works_without_a_library(fake):
    path = fake.model("vae", "v.pt")
    assert not (Host(fake.import_module).data_dir() / "library.db").exists()
    assert _resolve(fake, ModelRef(path="v.pt", sha256="ef" * 32), "vae").path == str(path)


def test_a_missing_model_names_itself_its_hash_and_last_known_path(fake):
    path = fake.model("loras", "gone.safetensors", b"gone")
    sha = add_to_library(fake, "loras", path)
    path.unlink()
    with pytest.raises(ModelNotFound) as caught:
        _resolve(fake, ModelRef(path="old/place.safetensors", sha256=sha, name="Gone LoRA"))
    message = str(caught.value)
    assert "Gone LoRA" in message and sha in message and str(path) in message
    with pytest.raises(ModelNotFound, match="No checkpoints model chosen"):
        _resolve(fake, ModelRef(), "checkpoints")


def test_the_library_is_opened_read_only(fake):
    path = fake.model("loras", "r.safetensors", b"r")
    sha = add_to_library(fake, "loras", path)
    db_path = Host(fake.import_module).data_dir() / "library.db"
    os.chmod(db_path.parent, 0o555)
    os.chmod(db_path, 0o444)
    try:
        lib = Library(db_path.parent)
        assert lib.paths(sha) == [str(path)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            lib._connect().execute("DELETE FROM files")
    finally:
        os.chmod(db_path.parent, 0o755)
        os.chmod(db_path, 0o644)


def test_trigger_words_come_from_the_library_meta(fake):
    path = fake.model("loras", "t.safetensors", b"t")
    sha = add_to_library(fake, "loras", path, meta={"trigger_words": ["ink", "wash"]})
    lib = Library(Host(fake.import_module).data_dir())
    assert lib.trigger_words(sha) == ["ink", "wash"] and lib.trigger_words("00" * 32) == []
