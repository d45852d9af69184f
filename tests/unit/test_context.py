"""runner/context.py: the newest whole groups that fit, in order (pure, no I/O)."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agentstead.runner.context import budget_of, estimate, estimate_message, fit


def _call(i: int) -> AIMessage:
    return AIMessage("", tool_calls=[{"id": f"c{i}", "name": "calculator", "args": {"expression": "1"}}])


def test_the_estimate_is_bytes_over_three_plus_four_a_message():
    assert estimate("") == 4 and estimate("abc") == 5 and estimate("abcd") == 6
    assert estimate("é") == 5                                   # bytes, not characters
    assert estimate("", [{"name": "f", "args": {"x": 1}}]) == 4 + 3   # name + '{"x": 1}' = 9 bytes


def test_fit_keeps_the_newest_whole_groups_in_order():
    messages = [HumanMessage("old " * 30), _call(1), ToolMessage("2", tool_call_id="c1"), AIMessage("two"),
                HumanMessage("new?")]
    room = sum(estimate_message(m) for m in messages[1:])
    assert fit(messages, room) == messages[1:]
    # one token less: the call and its result go together, never the result alone
    assert fit(messages, room - 1) == messages[3:]


def test_the_newest_group_is_sent_even_alone_over_budget():
    big = HumanMessage("x" * 3000)
    assert fit([HumanMessage("a"), big], 10) == [big]


def test_a_result_whose_call_is_missing_never_leads():
    messages = [ToolMessage("orphan", tool_call_id="gone"), HumanMessage("q")]
    assert fit(messages, 10_000) == [messages[1]]


def test_a_budget_per_provider_or_per_model():
    assert budget_of({"context_tokens": None}, "m", 100) == 100
    assert budget_of({"context_tokens": 50}, "m", 100) == 50
    assert budget_of({"context_tokens": {"m": 70}}, "m", 100) == 70
    assert budget_of({"context_tokens": {"m": 70}}, "other", 100) == 100
