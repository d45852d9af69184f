"""A 5,000-message thread: the model gets the newest question, the newest history that fits
its budget, in order, tool calls with their results; the thread pages both ways. Through
the real runner, langchain-openai and the tests' LLM server (which records what it got)."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from agentstead.keys import DB
from agentstead.store import threads as thread_store

from ..support.auth import token_user
from ..support.llm_server import Turn

BUDGET = 3000
N = 5000


@pytest.fixture
def llm(llm):
    llm.script = lambda body: Turn("Noted.")
    return llm


@pytest.fixture
async def long_thread(make_client, settings, llm):
    providers = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": "sk-test",
                  "models": ("gpt-test",), "default_model": "gpt-test", "context_tokens": BUDGET},)
    client = await make_client(settings.replace(llm_providers=providers))
    _, headers = await token_user(client, "ada@example.org")
    agent = await (await client.post("/api/agents", json={"name": "A", "instructions": "Answer the newest question.",
                                                          "tools": ["calculator"]}, headers=headers)).json()
    thread = await (await client.post("/api/threads", json={"agent_id": agent["id"]}, headers=headers)).json()

    def fill(conn):
        """N messages: user/assistant turns, and every 10th turn a tool call and its result."""
        i = 0
        while i < N:
            add = lambda role, text, **kw: thread_store.add_message(conn, thread["id"], role, text, **kw)
            add("user", f"q{i:05d} " + "words " * 20)
            if i % 20 == 10:
                call = {"id": f"call{i}", "name": "calculator", "args": {"expression": f"{i} + 1"}}
                add("assistant", "", tool_calls=[call])
                add("tool", str(i + 1), tool_call_id=f"call{i}")
                i += 2
            add("assistant", f"a{i + 1:05d} " + "reply " * 20)
            i += 2
    await client.app[DB].write(fill)
    return client, headers, thread


def estimate(text: str) -> int:
    """The documented estimate (runner/context.py): 4 a message + ceil(UTF-8 bytes / 3)."""
    return math.ceil(len(text.encode()) / 3)


async def test_the_model_gets_the_newest_question_and_the_newest_history_that_fits(long_thread, llm):
    client, headers, thread = long_thread
    resp = await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "NEWEST question?"},
                             headers=headers)
    assert resp.status == 202
    run = await resp.json()
    async with asyncio.timeout(20):
        while (await (await client.get(f"/api/runs/{run['id']}", headers=headers,
                                       validate_contract=False)).json())["status"] != "succeeded":
            await asyncio.sleep(0.05)
    sent = llm.requests[-1]
    messages = sent["messages"]
    assert messages[0] == {"role": "system", "content": "Answer the newest question."}
    assert messages[-1] == {"role": "user", "content": "NEWEST question?"}         # never cut at the new end
    history = messages[1:-1]
    assert 20 < len(history) < 200, len(history)                                   # old end cut, to the budget
    numbers = [int(m["content"][1:6]) for m in history if m["role"] in ("user", "assistant") and m["content"]]
    assert numbers == sorted(numbers) and numbers[-1] == N - 1                      # in order, the newest ones
    # within budget, by the documented estimate
    used = estimate(json.dumps(sent["tools"])) + sum(
        4 + estimate(m["content"] or "") + sum(estimate(c["function"]["name"] + c["function"]["arguments"])
                                               for c in m.get("tool_calls") or ()) for m in messages)
    assert used <= BUDGET, used
    assert used > BUDGET * 0.8, used                                                # and the budget is used
    # tool calls travel with their results: each result right after its call, never alone
    assert history[0]["role"] != "tool"
    calls = [m for m in history if m.get("tool_calls")]
    assert calls
    for i, m in enumerate(history):
        if m["role"] == "tool":
            caller = next(p for p in reversed(history[:i]) if p["role"] == "assistant")
            assert m["tool_call_id"] in {c["id"] for c in caller["tool_calls"]}


async def test_the_thread_reads_newest_first_and_pages_both_ways(long_thread):
    client, headers, thread = long_thread
    url = f"/api/threads/{thread['id']}"
    newest = await (await client.get(f"{url}?limit=100", headers=headers)).json()
    assert len(newest["messages"]) == 100 and newest["next"] is None and newest["prev"] is not None
    assert newest["messages"][-1]["content"].startswith(f"a{N - 1:05d}")
    seqs = [m["seq"] for m in newest["messages"]]
    assert seqs == sorted(seqs)
    older = await (await client.get(f"{url}?limit=100&before={newest['prev']}", headers=headers)).json()
    assert [m["seq"] for m in older["messages"]][-1] < seqs[0] and older["next"] == older["messages"][-1]["seq"]
    # paging back to the start and forward from it see the same messages
    back, prev = [], None
    while True:
        page = await (await client.get(f"{url}?limit=1000" + (f"&before={prev}" if prev else ""), headers=headers,
                                       validate_contract=False)).json()
        back = page["messages"] + back
        prev = page["prev"]
        if prev is None:
            break
    forward, after = [], 0
    while after is not None:
        page = await (await client.get(f"{url}?limit=1000&after={after}", headers=headers,
                                       validate_contract=False)).json()
        forward += page["messages"]
        after = page["next"]
    assert [m["seq"] for m in back] == [m["seq"] for m in forward] and len(back) == N
    # both bounds: the window between them, oldest first, paged forward with next
    lo, hi = forward[10]["seq"], forward[60]["seq"]
    window = await (await client.get(f"{url}?after={lo}&before={hi}&limit=30", headers=headers)).json()
    assert [m["seq"] for m in window["messages"]] == [m["seq"] for m in forward[11:41]]
    assert window["next"] == forward[40]["seq"]
    rest = await (await client.get(f"{url}?after={window['next']}&before={hi}&limit=30", headers=headers)).json()
    assert [m["seq"] for m in rest["messages"]] == [m["seq"] for m in forward[41:60]] and rest["next"] is None
