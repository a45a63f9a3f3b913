"""A pytest plugin (loaded by `-p` in pyproject.toml): collect the repository root as a plain
folder, not as a Python package.

The root `__init__.py` is ComfyUI's entry point and a package only when ComfyUI imports the
folder. pytest would import it on its own for package set-up, which fails whenever the clone's
folder name is no Python identifier (`hikaze-model-manager`); nothing there is a test anyway.
"""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if path == parent.config.rootpath:
        return pytest.Dir.from_parent(parent, path=path)
    return None
