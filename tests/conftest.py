"""Shared fixtures: settings on a temp state dir, the in-process app client
whose every response is checked against openapi.yaml, and real subprocesses."""

from __future__ import annotations

import pathlib

import pytest

from agentstead.settings import Settings

from .support.contract import ContractClient
from .support.procs import free_port  # noqa: F401  (re-exported for tests)

ROOT = pathlib.Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    # The folder decides the group marker: tests/unit -> unit, and so on.
    for item in items:
        parts = pathlib.Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in ("unit", "integration", "system", "e2e"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=str(tmp_path / "state"), secret_key="k" * 48, log_format="text",
                    db_readers=2)


@pytest.fixture
async def make_client(aiohttp_client):
    """make_client(settings, extra_routes=None) -> ContractClient on a fresh app."""
    from agentstead.app import create_app

    async def make(settings: Settings, extra_routes=None) -> ContractClient:
        app = create_app(settings)
        if extra_routes:
            extra_routes(app)
        return ContractClient(await aiohttp_client(app), app)
    return make


@pytest.fixture
async def client(make_client, settings) -> ContractClient:
    return await make_client(settings)
