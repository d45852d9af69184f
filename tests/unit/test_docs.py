"""The documents stay true to the code: every setting is documented, exactly, in
docs/operations.md; every link of the README and docs/ leads somewhere."""

from __future__ import annotations

import pathlib
import re

from agentstead.settings import SETTINGS
from agentstead.settings_docs import README_BEGIN, README_END, env_example, reference_table

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_configuration_reference_is_current():
    manual = (ROOT / "docs" / "operations.md").read_text()
    block = manual[manual.index(README_BEGIN) + len(README_BEGIN):manual.index(README_END)].strip()
    assert block == reference_table().strip(), \
        "docs/operations.md is stale: regenerate its table with `agentstead config reference`"
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


def _links(path: pathlib.Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)   # not inside code blocks
    return re.findall(r"\]\(([^)\s]+)\)", text)


def _anchors(path: pathlib.Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_every_relative_link_of_the_readme_and_docs_resolves():
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for link in _links(doc):
            if re.match(r"^[a-z]+:", link):
                continue
            target, _, anchor = link.partition("#")
            path = (doc.parent / target).resolve() if target else doc
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {link}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{doc.relative_to(ROOT)}: {link} (no such heading)")
    assert broken == []


def test_the_readme_shows_what_a_newcomer_needs_first():
    readme = (ROOT / "README.md").read_text()
    assert ".venv/bin/agentstead admin create-token" in readme      # a token for scripts, from the host
    assert "[[llm_providers]]" in readme and "AGENTSTEAD_LLM_PROVIDERS='[" in readme   # TOML and JSON
    assert "SIGINT or SIGTERM" in readme                               # scripts/run in the background
    assert len(readme.splitlines()) < 250, "the manuals go in docs/"
