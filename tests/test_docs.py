"""Docs and code check each other: README commands, CI, and the routes in docs/api.md."""
import re
from pathlib import Path

from server.app import create_app
from server.config import Config

ROOT = Path(__file__).resolve().parents[1]
TEST_COMMAND = 'python -m pip install ".[test]" && python -m pytest'
RUN_COMMAND = "python -m pip install . && python -m server --demo"


def test_readme_has_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert RUN_COMMAND in readme and TEST_COMMAND in readme
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text()


def test_every_route_is_documented(tmp_path):
    app = create_app(Config(data_dir=tmp_path))
    documented = (ROOT / "docs" / "api.md").read_text()
    for resource in app.router.resources():
        path = resource.canonical
        if path == "/":
            continue
        pattern = re.escape(path).replace(r"\{sha256\}", r"\{sha256\}").replace(r"\{name\}", ".*")
        assert re.search(pattern, documented), f"docs/api.md does not mention {path}"
