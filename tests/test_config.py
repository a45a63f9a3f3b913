"""Config: defaults, file validation with clear messages, roots from every source."""
from pathlib import Path

import pytest

from server import config
from server.config import ConfigError


def test_zero_config_uses_defaults(tmp_path):
    loaded = config.load(data_dir=tmp_path)
    assert loaded.data_dir == tmp_path.resolve()
    assert (loaded.host, loaded.port) == ("127.0.0.1", config.DEFAULT_PORT)
    assert loaded.kinds == {}
    assert "http://127.0.0.1:8188" in loaded.cors_origins
    assert loaded.config_file is None


def test_hikaze_home_is_the_default_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HIKAZE_HOME", str(tmp_path / "home"))
    assert config.load().data_dir == (tmp_path / "home").resolve()


def test_config_file_in_data_dir_is_read(tmp_path):
    (tmp_path / "loras").mkdir()
    (tmp_path / "config.yaml").write_text(
        "port: 9000\nroots:\n  loras: [loras]\n  unet: [/abs/unet]\ncors_origins: ['http://nas:8188']\n")
    loaded = config.load(data_dir=tmp_path)
    assert loaded.port == 9000
    assert loaded.kinds["loras"].roots == ((tmp_path / "loras").resolve(),)
    assert loaded.kinds["diffusion_models"].roots == (Path("/abs/unet"),)  # legacy folder name
    assert "http://nas:8188" in loaded.cors_origins
    assert loaded.config_file == (tmp_path / "config.yaml").resolve()


def test_flags_win_over_the_file(tmp_path):
    (tmp_path / "config.yaml").write_text("port: 9000\nhost: 0.0.0.0\n")
    loaded = config.load(data_dir=tmp_path, port=9100, host="127.0.0.2")
    assert (loaded.host, loaded.port) == ("127.0.0.2", 9100)


@pytest.mark.parametrize("text, key", [
    ("prot: 9000\n", "(top level)"),
    ("port: eighty\n", "port"),
    ("port: 70000\n", "port"),
    ("roots:\n  loras: /not/a/list\n", "roots.loras"),
    ("roots:\n  'bad kind!': [x]\n", "roots"),
    ("extensions:\n  loras: [safetensors]\n", "extensions.loras.0"),
    ("cors_origins: ['not an origin']\n", "cors_origins.0"),
    ("log_level: LOUD\n", "log_level"),
    ("- just\n- a list\n", "(top level)"),
])
def test_bad_config_names_the_key(tmp_path, text, key):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        config.load(data_dir=tmp_path)
    assert f"key '{key}'" in str(caught.value)


def test_unparseable_yaml_is_a_clear_error(tmp_path):
    (tmp_path / "config.yaml").write_text("port: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read it as YAML"):
        config.load(data_dir=tmp_path)


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(data_dir=tmp_path, config_file=tmp_path / "nope.yaml")


def test_models_dir_gives_one_kind_per_folder(tmp_path, make_tree):
    tree = make_tree()
    (tree.root / "clip").mkdir()
    (tree.root / "custom_nodes").mkdir()
    loaded = config.load(data_dir=tmp_path / "data", models_dir=str(tree.root))
    assert sorted(loaded.kinds) == ["checkpoints", "loras", "text_encoders", "vae"]
    assert loaded.kinds["text_encoders"].roots == ((tree.root / "clip").resolve(),)
    assert ".safetensors" in loaded.kinds["loras"].extensions


def test_models_dir_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="models_dir: .* is not a folder"):
        config.load(data_dir=tmp_path, models_dir=str(tmp_path / "missing"))


def test_comfyui_dir_reads_models_and_extra_model_paths(tmp_path, make_tree):
    comfy = tmp_path / "ComfyUI"
    tree = make_tree("ComfyUI/models")
    shared = tmp_path / "shared"
    (shared / "my_loras").mkdir(parents=True)
    (comfy / "extra_model_paths.yaml").write_text(
        "a1111:\n"
        f"  base_path: {shared}\n"
        "  is_default: true\n"
        "  loras: |\n    my_loras\n    more_loras\n"
        "  unet: unets\n"
        "other:\n"
        "  checkpoints: relative/ckpts\n")
    loaded = config.load(data_dir=tmp_path / "data", comfyui_dir=str(comfy))
    assert loaded.kinds["loras"].roots == ((tree.root / "loras").resolve(), shared / "my_loras",
                                           shared / "more_loras")
    assert loaded.kinds["diffusion_models"].roots == (shared / "unets",)
    assert (comfy / "relative" / "ckpts").resolve() in loaded.kinds["checkpoints"].roots
    assert "configs" not in loaded.kinds


def test_comfyui_dir_without_models_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no models/ folder"):
        config.load(data_dir=tmp_path, comfyui_dir=str(tmp_path))


def test_per_kind_extensions(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "roots:\n  upscale_models: [u]\nextensions:\n  upscale_models: ['.PTH', '.onnx']\n")
    loaded = config.load(data_dir=tmp_path)
    assert loaded.kinds["upscale_models"].extensions == frozenset({".pth", ".onnx"})


def test_every_config_key_is_documented():
    reference = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    for key in config.schemas.CONFIG["properties"]:
        assert f"`{key}`" in reference, f"docs/config.md does not describe `{key}`"
