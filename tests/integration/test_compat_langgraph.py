"""The LangGraph API (/lg) driven by the real `langgraph_sdk` client over HTTP, against
the real app and the tests' OpenAI-compatible LLM server; what it streams is compared
with what Agentstead's own API stored."""

from __future__ import annotations

import asyncio

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from ..support.auth import token_user
from ..support.live import Live
from ..support.llm_server import ToolCall, Turn


@pytest.fixture
async def lg(make_client, settings, llm, checks):
    """make() -> (app client, API headers, langgraph_sdk client, agent) for a member with an agent."""
    async def make(email="ada@example.org", client=None):
        if client is None:
            providers = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": "sk-test",
                          "models": ("gpt-test",), "default_model": "gpt-test"},)
            client = await make_client(settings.replace(llm_providers=providers, llm_max_retries=0))
        _, headers = await token_user(client, email)
        sdk = get_client(url=str(client.raw.make_url("/lg")), api_key=headers["Authorization"].split(" ", 1)[1])
        sdk.http.client.event_hooks = {"response": [checks]}
        resp = await client.post("/api/agents", headers=headers, json={
            "name": "Helper", "instructions": "Be brief.", "tools": ["calculator", "ask_human"]})
        assert resp.status == 201, await resp.text()
        return client, headers, sdk, await resp.json()
    return make


def user(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def stored(client, headers, thread_id) -> list[dict]:
    return (await (await client.get(f"/api/threads/{thread_id}", headers=headers)).json())["messages"]


async def test_assistants_are_the_callers_agents(lg):
    client, headers, sdk, agent = await lg()
    assert (await sdk.http.get("/info"))["flags"]["assistants"] is True
    found = await sdk.assistants.search()
    assert [a["assistant_id"] for a in found] == [agent["id"]]
    got = await sdk.assistants.get(agent["id"])
    assert (got["name"], got["graph_id"], got["version"]) == ("Helper", "agent", 1)
    graph = await sdk.assistants.get_graph(agent["id"])
    assert {n["id"] for n in graph["nodes"]} == {"__start__", "agent", "tools", "__end__"}
    schemas = await sdk.assistants.get_schemas(agent["id"])
    assert schemas["input_schema"]["properties"]["messages"]["type"] == "array"
    with pytest.raises(NotFoundError):
        await sdk.assistants.get("no-such-agent")
    with pytest.raises(UnprocessableEntityError):
        await sdk.assistants.create(graph_id="agent")


async def test_a_streamed_run_in_each_mode_is_what_agentstead_stored(lg, llm):
    client, headers, sdk, agent = await lg()
    thread = await sdk.threads.create(metadata={"topic": "maths"})
    assert thread["status"] == "idle" and thread["values"] == {}
    llm.tokens_per_second = 100.0
    llm.script = [Turn("Let me see.", tool_calls=[ToolCall("calculator", {"expression": "6*7"})]),
                  Turn("It is forty two.")]
    parts = [p async for p in sdk.runs.stream(thread["thread_id"], agent["id"], input=user("What is 6*7?"),
                                             stream_mode=["values", "updates", "messages-tuple"])]
    events = [p.event for p in parts]
    assert events[0] == "metadata" and "error" not in events
    run_id = parts[0].data["run_id"]
    messages = await stored(client, headers, thread["thread_id"])
    final = [p.data for p in parts if p.event == "values"][-1]
    assert [(m["type"], m["content"], m["id"]) for m in final["messages"]] == \
        [({"user": "human", "assistant": "ai", "tool": "tool"}[m["role"]], m["content"], m["id"]) for m in messages]
    updates = [p.data for p in parts if p.event == "updates"]
    assert [list(u) for u in updates] == [["agent"], ["tools"], ["agent"]]
    assert updates[0]["agent"]["messages"][0]["tool_calls"][0]["name"] == "calculator"
    assert updates[1]["tools"]["messages"][0]["content"] == "42"
    streamed = "".join(p.data[0]["content"] for p in parts if p.event == "messages")
    assert streamed == "Let me see.It is forty two."
    assert all(p.data[1]["langgraph_node"] == "agent" for p in parts if p.event == "messages")
    run = await sdk.runs.get(thread["thread_id"], run_id)
    assert run["status"] == "success" and run["assistant_id"] == agent["id"]
    assert [r["run_id"] for r in await sdk.runs.list(thread["thread_id"])] == [run_id]
    got = await sdk.threads.get(thread["thread_id"])
    assert got["metadata"]["topic"] == "maths" and got["metadata"]["assistant_id"] == agent["id"]
    assert got["status"] == "idle" and len(got["values"]["messages"]) == len(messages)
    state = await sdk.threads.get_state(thread["thread_id"])
    assert state["values"] == final and state["next"] == [] and state["checkpoint"]["checkpoint_id"] == messages[-1]["id"]
    history = await sdk.threads.get_history(thread["thread_id"], limit=2)
    assert [len(h["values"]["messages"]) for h in history] == [len(messages), len(messages) - 1]
    assert [t["thread_id"] for t in await sdk.threads.search(metadata={"topic": "maths"})] == [thread["thread_id"]]


async def test_ask_human_interrupts_and_command_resume_goes_on(lg, llm):
    client, headers, sdk, agent = await lg()
    thread = await sdk.threads.create()
    llm.script = [Turn(tool_calls=[ToolCall("ask_human", {"question": "Which city?"})]), Turn("Paris it is.")]
    waited = await sdk.runs.wait(thread["thread_id"], "Helper", input=user("Book a trip"))   # by name
    assert waited["__interrupt__"][0]["value"] == {"question": "Which city?"}
    got = await sdk.threads.get(thread["thread_id"])
    assert got["status"] == "interrupted"
    state = await sdk.threads.get_state(thread["thread_id"])
    assert state["next"] == ["tools"] and state["interrupts"][0]["value"]["question"] == "Which city?"
    with pytest.raises(ConflictError):   # a new message while it waits: reject
        await sdk.runs.create(thread["thread_id"], agent["id"], input=user("Hello?"))
    parts = [p async for p in sdk.runs.stream(thread["thread_id"], "Helper", command={"resume": "Paris"},
                                             stream_mode="updates")]
    assert [p.event for p in parts][0] == "metadata"
    assert parts[-1].data["agent"]["messages"][0]["content"] == "Paris it is."
    runs = await sdk.runs.list(thread["thread_id"])
    assert len(runs) == 1 and runs[0]["status"] == "success"   # the same run, resumed
    with pytest.raises(ConflictError):
        await sdk.runs.create(thread["thread_id"], agent["id"], command={"resume": "again"})


async def test_cancel_join_and_multitask_strategies(lg, llm):
    client, headers, sdk, agent = await lg()
    thread = await sdk.threads.create()
    tid = thread["thread_id"]
    llm.tokens_per_second = 5.0
    llm.script = [Turn("a slow reply " * 30), Turn("Quick."), Turn("Done quickly.")]
    run = await sdk.runs.create(tid, agent["id"], input=user("Talk"))
    assert run["status"] in ("pending", "running")
    with pytest.raises(ConflictError):   # reject (the default)
        await sdk.runs.create(tid, agent["id"], input=user("More"))
    with pytest.raises(ConflictError):   # enqueue behind a running run is not honoured
        await sdk.runs.create(tid, agent["id"], input=user("More"), multitask_strategy="enqueue")
    await sdk.runs.cancel(tid, run["run_id"])
    assert (await sdk.runs.get(tid, run["run_id"]))["status"] == "interrupted"
    joined = await sdk.runs.join(tid, run["run_id"])   # a finished run joins at once with the values
    assert joined["messages"][0]["content"] == "Talk" and "__interrupt__" not in joined
    llm.tokens_per_second = 0
    second = await sdk.runs.create(tid, agent["id"], input=user("Again"), multitask_strategy="enqueue")
    joined = await sdk.runs.join(tid, second["run_id"])
    assert joined["messages"][-1]["content"] == "Quick."
    llm.tokens_per_second = 5.0
    llm.script = [Turn("slow " * 40), Turn("Interrupted you.")]
    slow = await sdk.runs.create(tid, agent["id"], input=user("Slow"))
    # The pace stays slow until the interrupting run is in: the server reads it for every token,
    # so a faster pace set here could let the slow reply finish first (seen once in CI).
    fast = await sdk.runs.create(tid, agent["id"], input=user("Now"), multitask_strategy="interrupt")
    await sdk.runs.join(tid, fast["run_id"])
    llm.tokens_per_second = 0
    assert (await sdk.runs.get(tid, slow["run_id"]))["status"] == "interrupted"
    assert (await sdk.runs.get(tid, fast["run_id"]))["status"] == "success"
    with pytest.raises(UnprocessableEntityError):
        await sdk.runs.create(tid, agent["id"], input=user("x"), multitask_strategy="rollback")
    with pytest.raises(UnprocessableEntityError):
        await sdk.runs.create(tid, agent["id"], input=user("x"), interrupt_before=["tools"])
    with pytest.raises(UnprocessableEntityError):
        [p async for p in sdk.runs.stream(tid, agent["id"], input=user("x"), stream_mode="debug")]


async def test_a_stream_resumes_after_its_last_event_id(lg, llm):
    """A stream cut off after some parts, joined again with the last part's id, gives the
    rest: together the whole reply, no gap and no duplicate."""
    client, headers, sdk, agent = await lg()
    thread = await sdk.threads.create()
    words = "one two three four five six seven eight nine ten"
    llm.tokens_per_second = 10.0
    llm.script = [Turn(words)]
    parts = []
    async for part in sdk.runs.stream(thread["thread_id"], agent["id"], input=user("Count"),
                                      stream_mode="messages-tuple"):
        parts.append(part)
        if part.event == "messages" and len([p for p in parts if p.event == "messages"]) == 3:
            break   # the client goes away (on_disconnect defaults to continue: the run goes on)
    run_id = parts[0].data["run_id"]
    first = [p for p in parts if p.event == "messages"]
    assert all(p.id for p in first)
    rest = [p async for p in sdk.runs.join_stream(thread["thread_id"], run_id, stream_mode="messages-tuple",
                                                  last_event_id=first[-1].id)]
    assert rest and all(int(p.id) > int(first[-1].id) for p in rest)
    assert "".join(p.data[0]["content"] for p in first + rest) == words
    assert (await sdk.runs.get(thread["thread_id"], run_id))["status"] == "success"
    # joined after the end with no cursor: nothing more comes, the stream just ends
    assert [p async for p in sdk.runs.join_stream(thread["thread_id"], run_id)] == []


async def test_a_second_user_sees_nothing_of_the_first(lg, llm):
    client, headers, sdk, agent = await lg()
    llm.script = [Turn("Hi.")]
    thread = await sdk.threads.create(metadata={"secret": "yes"})
    run = await sdk.runs.wait(thread["thread_id"], agent["id"], input=user("Hello"))
    assert run["messages"][-1]["content"] == "Hi."
    _, _, other, _ = await lg("bob@example.org", client=client)
    assert await other.threads.search() == []
    assert [a["assistant_id"] for a in await other.assistants.search()] != [agent["id"]]
    for call in (other.threads.get(thread["thread_id"]), other.threads.get_state(thread["thread_id"]),
                 other.runs.list(thread["thread_id"]), other.assistants.get(agent["id"]),
                 other.runs.create(thread["thread_id"], agent["id"], input=user("mine now"))):
        with pytest.raises(NotFoundError):
            await call
    with pytest.raises(NotFoundError):
        await other.threads.delete(thread["thread_id"])
    await sdk.threads.delete(thread["thread_id"])
    with pytest.raises(NotFoundError):
        await sdk.threads.get(thread["thread_id"])
    resp = await client.get(f"/api/threads/{thread['thread_id']}", headers=headers)
    assert resp.status == 404


async def test_threads_are_titled_and_announced_as_api_titles_them(lg, llm):
    """A thread a run creates takes its first message's first line as its title and is
    announced (thread.created); an untitled /api thread is named by its first message
    through /lg as through /api (thread.renamed): services/threads.py, title_from."""
    client, headers, sdk, agent = await lg()
    llm.script = [Turn("Sure."), Turn("Fine.")]
    me = (await (await client.get("/api/me", headers=headers)).json())["user"]["id"]
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"users/{me}"})
    await live.until("subscribed")
    first = "How do I   plan a week-long trip through the Alps by train with two children?\nDetails follow."
    title = "How do I plan a week-long trip through the Alps by train…"
    thread = await sdk.threads.create()
    await sdk.runs.wait(thread["thread_id"], agent["id"], input=user(first))
    event = await live.until("event", type="thread.created")
    assert event["data"]["thread_id"] == thread["thread_id"] and event["data"]["title"] == title
    untitled = await (await client.post("/api/threads", json={"agent_id": agent["id"]}, headers=headers)).json()
    assert untitled["title"] == "New conversation"
    await sdk.runs.wait(untitled["id"], agent["id"], input=user("Pack light\nplease"))
    event = await live.until("event", type="thread.renamed")
    assert event["data"] == {"thread_id": untitled["id"], "title": "Pack light"}
    for thread_id, named in ((thread["thread_id"], title), (untitled["id"], "Pack light")):
        assert (await (await client.get(f"/api/threads/{thread_id}", headers=headers)).json())["title"] == named
