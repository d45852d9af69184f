"""docs/protocols.md stays true to the adapters: every parameter they ignore or refuse,
and every stream mode they serve, is named there."""

from __future__ import annotations

import pathlib

from agentstead.http import compat_langgraph_runs, compat_openai_body

DOC = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "protocols.md").read_text()


def test_every_openai_parameter_the_endpoint_ignores_or_refuses_is_documented():
    names = compat_openai_body.IGNORED | set(compat_openai_body.NEUTRAL) | {"response_format"}
    missing = sorted(n for n in names if f"`{n}`" not in DOC)
    assert not missing, f"docs/protocols.md does not name: {missing}"


def test_every_langgraph_run_field_ignored_or_refused_and_every_mode_is_documented():
    names = compat_langgraph_runs.IGNORED | compat_langgraph_runs.REFUSED | set(compat_langgraph_runs.MODES)
    missing = sorted(n for n in names if f"`{n}`" not in DOC)
    assert not missing, f"docs/protocols.md does not name: {missing}"
