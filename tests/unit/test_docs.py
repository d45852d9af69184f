"""The documents stay true to the code: every setting is documented, exactly."""

from __future__ import annotations

import pathlib

from agentstead.settings import SETTINGS
from agentstead.settings_docs import README_BEGIN, README_END, env_example, reference_table

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_readme_configuration_reference_is_current():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(README_BEGIN) + len(README_BEGIN):readme.index(README_END)].strip()
    assert block == reference_table().strip(), "README is stale: regenerate with `agentstead config reference`"
    for s in SETTINGS:
        assert f"`{s.env}`" in block


def test_env_production_example_is_current():
    text = (ROOT / ".env.production.example").read_text()
    assert text == env_example(), "stale: run `agentstead config example > .env.production.example`"
    for s in SETTINGS:
        assert (s.env + ("_FILE=" if s.secret else "=")) in text


def test_readme_starts_with_exactly_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["scripts/run", "scripts/test"]
