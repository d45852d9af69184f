"""The one rule for whether a chat run may start (runner/chat_run.py: why_not), shared by the runner and
the transaction that queues a run and starts it at once (runner.submit)."""

from agentstead.runner.chat_run import why_not
from agentstead.store.agents import AgentVersion

VERSION = AgentVersion("a1", 1, "A", "", "local", "gpt-test", 0.7, (), 10, "2026-01-01T00:00:00Z")
PROVIDERS = {"local": {"name": "local"}}


def test_a_run_starts_when_nothing_stands_in_its_way():
    assert why_not(VERSION, PROVIDERS, (0, 10**9)) is None        # no budget set
    assert why_not(VERSION, PROVIDERS, (100, 99)) is None         # one token left


def test_each_reason_has_its_code():
    assert why_not(None, PROVIDERS, (0, 0)).code == "agent_missing"
    assert why_not(VERSION, {}, (0, 0)).code == "provider_not_configured"
    assert "AGENTSTEAD_LLM_PROVIDERS" in why_not(VERSION, {}, (0, 0)).message
    failure = why_not(VERSION, PROVIDERS, (100, 100))
    assert failure.code == "budget_exceeded" and "100 tokens" in failure.message
