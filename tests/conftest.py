"""Fixtures that build a real temporary model library and a real app over a real SQLite file."""
from __future__ import annotations

import dataclasses

import pytest

from server import config as config_module, store
from server.app import create_app
from server.app_keys import STORE
from tests.factories import ModelTree, add_tree_to_library, build_tree


@pytest.fixture
def make_tree(tmp_path):
    """make_tree(name="models") → a ModelTree under tmp_path (see factories.build_tree)."""
    return lambda name="models": build_tree(tmp_path / name)


@pytest.fixture
def make_config(tmp_path):
    """make_config(**overrides) → a Config with its data dir in tmp_path."""

    def make(**overrides) -> config_module.Config:
        base = config_module.load(data_dir=tmp_path / "data")
        return dataclasses.replace(base, **overrides)

    return make


@pytest.fixture
def db(tmp_path):
    database = store.connect(tmp_path / "service.db")
    yield database
    database.conn.close()


@pytest.fixture
async def make_client(aiohttp_client, make_config):
    """make_client(tree=None, **config overrides) → a test client over a real app."""

    async def make(tree: ModelTree | None = None, **overrides):
        if tree is not None:
            overrides.setdefault("kinds", {
                kind: config_module.Kind(kind, (tree.root / kind,))
                for kind in ("checkpoints", "loras", "vae")})
        app = create_app(make_config(**overrides))
        client = await aiohttp_client(app)
        if tree is not None:
            await app[STORE].run(add_tree_to_library, tree)
        return client

    return make


@pytest.fixture
async def client(make_client, make_tree):
    """A test client whose library holds make_tree()'s models."""
    return await make_client(make_tree())


@pytest.fixture
async def sha(client) -> str:
    """The sha256 of a model in `client`'s library."""
    return await client.app[STORE].run(
        lambda db: db.execute("SELECT sha256 FROM models ORDER BY sha256").fetchone()[0])
