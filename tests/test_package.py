"""Packaging: the extension imports without ComfyUI; metadata files agree with each other."""
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_root_package_imports_without_comfyui():
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('hikaze_ext', {str(ROOT / '__init__.py')!r},"
            f" submodule_search_locations=[{str(ROOT)!r}])\n"
            "module = importlib.util.module_from_spec(spec); sys.modules['hikaze_ext'] = module\n"
            "spec.loader.exec_module(module)\n"
            "assert 'HikazeCheckpointLoader' in module.NODE_CLASS_MAPPINGS\n"
            "assert module.WEB_DIRECTORY == './web'\n"
            "assert 'folder_paths' not in sys.modules and 'comfy' not in sys.modules\n"
            "assert 'server' not in sys.modules and 'aiohttp' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


def test_requirements_are_a_subset_of_the_project_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~ ]", d)[0].lower() for d in project["dependencies"]}
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    required = {re.split(r"[<>=!~ ]", l)[0].lower() for l in lines if l and not l.startswith("#")}
    assert required and required <= declared
    assert all(re.search(r">=", d) for d in project["dependencies"]), "lower bounds on every dependency"


def test_comfy_registry_section():
    comfy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["comfy"]
    assert {"PublisherId", "DisplayName"} <= set(comfy)
    assert "web" not in comfy  # WEB_DIRECTORY already registers it; both would load it twice


def test_install_script_uses_this_interpreter_and_requirements():
    text = (ROOT / "install.py").read_text()
    assert "sys.executable" in text and "requirements.txt" in text


def test_web_directory_holds_only_comfyui_entry_modules():
    spec = importlib.util.spec_from_file_location("ext_init", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["ext_init"] = module  # relative imports need the package registered
    try:
        spec.loader.exec_module(module)
    finally:
        for name in [n for n in sys.modules if n == "ext_init" or n.startswith("ext_init.")]:
            del sys.modules[name]
    web_dir = (ROOT / module.WEB_DIRECTORY).resolve()
    assert web_dir == (ROOT / "web").resolve()
    # ComfyUI imports every .js under its web directory: only the entry modules may be .js.
    scripts = {p.relative_to(web_dir).as_posix() for p in web_dir.rglob("*.js")}
    assert scripts <= {"comfyui/hikaze.js"}, f"name these .mjs: {sorted(scripts - {'comfyui/hikaze.js'})}"
    assert any(web_dir.rglob("*.mjs"))
