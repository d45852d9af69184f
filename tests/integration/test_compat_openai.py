"""The OpenAI-compatible endpoint (/v1) driven by the official `openai` Python SDK over
HTTP, against the real app and the tests' OpenAI-compatible LLM server behind it."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from ..support.auth import token_user
from ..support.live import Live
from ..support.llm_server import ToolCall, Turn


@pytest.fixture
async def v1(make_client, settings, llm, checks):
    """make(**settings) -> (app client, API headers, openai.AsyncOpenAI of a member)."""
    async def make(**overrides):
        providers = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": "sk-test",
                      "models": ("gpt-test",), "default_model": "gpt-test"},)
        client = await make_client(settings.replace(llm_providers=providers, llm_max_retries=0, **overrides))
        _, headers = await token_user(client, "ada@example.org")
        sdk = openai.AsyncOpenAI(base_url=str(client.raw.make_url("/v1")),
                                 api_key=headers["Authorization"].split(" ", 1)[1], max_retries=0,
                                 http_client=openai.DefaultAsyncHttpxClient(event_hooks={"response": [checks]}))
        return client, headers, sdk
    return make


async def new_agent(client, headers, name="Helper", tools=("calculator", "ask_human")) -> dict:
    resp = await client.post("/api/agents", json={"name": name, "instructions": "Be brief.", "tools": list(tools)},
                             headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def messages_of(client, headers, thread_id) -> list[dict]:
    return (await (await client.get(f"/api/threads/{thread_id}", headers=headers)).json())["messages"]


async def test_models_are_the_callers_agents_by_name_and_id(v1, make_client):
    client, headers, sdk = await v1()
    a = await new_agent(client, headers, "Helper")
    b1 = await new_agent(client, headers, "Twin")
    b2 = await new_agent(client, headers, "Twin")
    models = {m.id: m for m in (await sdk.models.list()).data}
    # a unique name is the model's id; names two agents share give way to the ids
    assert set(models) == {"Helper", b1["id"], b2["id"]}
    assert models["Helper"].owned_by == "agentstead" and models["Helper"].model_extra["agent_id"] == a["id"]
    _, other = await token_user(client, "bob@example.org")
    theirs = openai.AsyncOpenAI(base_url=sdk.base_url, api_key=other["Authorization"].split(" ", 1)[1])
    assert (await theirs.models.list()).data == []
    with pytest.raises(openai.NotFoundError) as info:   # Bob cannot use Ada's agent, by name or id
        await theirs.chat.completions.create(model=a["id"], messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_not_found" and info.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.chat.completions.create(model="Twin", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_ambiguous"


async def test_a_completion_is_a_run_in_a_thread_and_the_conversation_goes_on_in_it(v1, llm):
    client, headers, sdk = await v1()
    agent = await new_agent(client, headers)
    llm.script = [Turn("Hello, Ada."), Turn("Still here.")]
    first = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi, I am Ada."}]
    raw = await sdk.chat.completions.with_raw_response.create(model="Helper", messages=first)
    done = raw.parse()
    assert done.object == "chat.completion" and done.choices[0].message.content == "Hello, Ada."
    assert done.choices[0].finish_reason == "stop" and done.model == "Helper"
    assert done.usage.completion_tokens > 0 and done.usage.total_tokens == \
        done.usage.prompt_tokens + done.usage.completion_tokens
    thread_id, run_id = raw.headers["x-agentstead-thread-id"], raw.headers["x-agentstead-run-id"]
    assert done.id == f"chatcmpl-{run_id}"
    run = await (await client.get(f"/api/runs/{run_id}", headers=headers)).json()
    assert (run["status"], run["agent_id"], run["completion_tokens"]) == \
        ("succeeded", agent["id"], done.usage.completion_tokens)
    # the next request repeats the conversation with the reply: the same thread
    second = first + [{"role": "assistant", "content": "Hello, Ada."}, {"role": "user", "content": "Still there?"}]
    raw2 = await sdk.chat.completions.with_raw_response.create(model=agent["id"], messages=second)
    assert raw2.parse().choices[0].message.content == "Still here."
    assert raw2.headers["x-agentstead-thread-id"] == thread_id
    stored = [(m["role"], m["content"]) for m in await messages_of(client, headers, thread_id)]
    assert stored == [("user", "Hi, I am Ada."), ("assistant", "Hello, Ada."), ("user", "Still there?"),
                      ("assistant", "Still here.")]
    # the agent's instructions, not the client's system message, reach the model
    assert llm.requests[-1]["messages"][0] == {"role": "system", "content": "Be brief."}
    usage = (await (await client.get("/api/usage", headers=headers)).json())["usage"]
    assert sum(u["runs"] for u in usage) == 2


async def test_an_edited_conversation_starts_a_new_thread_with_its_history(v1, llm):
    client, headers, sdk = await v1()
    await new_agent(client, headers)
    llm.script = [Turn("Hello, Ada."), Turn("Noted.")]
    first = [{"role": "user", "content": "Hi, I am Ada."}]
    raw = await sdk.chat.completions.with_raw_response.create(model="Helper", messages=first)
    edited = first + [{"role": "assistant", "content": "Something I never said."},
                      {"role": "user", "content": "Go on."}]
    raw2 = await sdk.chat.completions.with_raw_response.create(model="Helper", messages=edited)
    assert raw2.headers["x-agentstead-thread-id"] != raw.headers["x-agentstead-thread-id"]
    sent = [(m["role"], m["content"]) for m in llm.requests[-1]["messages"][1:]]
    assert sent == [("user", "Hi, I am Ada."), ("assistant", "Something I never said."), ("user", "Go on.")]


async def test_a_streamed_completion_is_the_stored_reply_and_ends_with_done(v1, llm):
    client, headers, sdk = await v1()
    await new_agent(client, headers)
    llm.tokens_per_second = 50.0
    llm.script = [Turn("one two three four")]
    stream = await sdk.chat.completions.create(model="Helper", stream=True,
                                               stream_options={"include_usage": True},
                                               messages=[{"role": "user", "content": "Count"}])
    chunks = [c async for c in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2   # streamed, not one piece
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    runs = (await (await client.get("/api/runs", headers=headers)).json())["runs"]
    stored = await messages_of(client, headers, runs[0]["thread_id"])
    assert stored[-1]["content"] == text


async def test_a_tool_using_agent_answers_with_its_reply_not_tool_calls(v1, llm):
    client, headers, sdk = await v1()
    await new_agent(client, headers)
    for stream in (False, True):
        llm.script = [Turn("Let me work it out.", tool_calls=[ToolCall("calculator", {"expression": "6*7"})]),
                      Turn("It is 42.")]
        messages = [{"role": "user", "content": "What is 6*7?"}]
        if stream:
            chunks = [c async for c in await sdk.chat.completions.create(model="Helper", messages=messages,
                                                                         stream=True)]
            assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            done = await sdk.chat.completions.create(model="Helper", messages=messages)
            assert done.choices[0].message.tool_calls is None
            text = done.choices[0].message.content
        assert text == "Let me work it out.\n\nIt is 42."
    assert llm.requests[-1]["messages"][-1]["role"] == "tool" and llm.requests[-1]["messages"][-1]["content"] == "42"


async def test_ask_human_is_the_reply_and_the_next_message_answers_it(v1, llm):
    client, headers, sdk = await v1()
    await new_agent(client, headers)
    llm.script = [Turn(tool_calls=[ToolCall("ask_human", {"question": "Which city?"})]), Turn("Paris it is.")]
    first = [{"role": "user", "content": "Book a trip."}]
    raw = await sdk.chat.completions.with_raw_response.create(model="Helper", messages=first)
    assert raw.parse().choices[0].message.content == "Which city?"
    run_id = raw.headers["x-agentstead-run-id"]
    assert (await (await client.get(f"/api/runs/{run_id}", headers=headers)).json())["status"] == "waiting_for_input"
    stream = await sdk.chat.completions.create(model="Helper", stream=True, messages=first + [
        {"role": "assistant", "content": "Which city?"}, {"role": "user", "content": "Paris"}])
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Paris it is."
    run = await (await client.get(f"/api/runs/{run_id}", headers=headers)).json()
    assert run["status"] == "succeeded"   # the same run, resumed with the answer
    assert llm.requests[-1]["messages"][-1] == {"role": "tool", "content": "Paris",
                                                "tool_call_id": llm.requests[-1]["messages"][-2]["tool_calls"][0]["id"]}


async def test_a_budget_refusal_is_an_openai_error(v1, llm):
    client, headers, sdk = await v1(daily_token_budget=1)
    await new_agent(client, headers)
    llm.script = [Turn("Spent.")]
    await sdk.chat.completions.create(model="Helper", messages=[{"role": "user", "content": "Spend"}])
    for stream in (False, True):
        with pytest.raises(openai.RateLimitError) as info:
            await sdk.chat.completions.create(model="Helper", stream=stream,
                                              messages=[{"role": "user", "content": "More"}])
        assert info.value.status_code == 429 and info.value.code == "budget_exceeded"
        assert info.value.type == "insufficient_quota" and "budget" in info.value.message


async def test_bad_tokens_and_bad_requests_get_openai_errors(v1, llm):
    client, headers, sdk = await v1()
    await new_agent(client, headers)
    bad = openai.AsyncOpenAI(base_url=sdk.base_url, api_key="ast_not-a-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await bad.models.list()
    assert info.value.status_code == 401 and info.value.type == "authentication_error"
    hi = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as info:
        await sdk.chat.completions.create(model="nobody", messages=hi)
    assert info.value.code == "model_not_found"
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    cases = [({"tools": [tool]}, "tools", "unsupported_parameter"), ({"n": 2}, "n", "unsupported_parameter"),
             ({"bogus": 1}, "bogus", "unknown_parameter")]
    for extra, param, code in cases:
        with pytest.raises(openai.BadRequestError) as info:
            await sdk.chat.completions.create(model="Helper", messages=hi, extra_body=extra)
        assert (info.value.code, info.value.param) == (code, param)
    for messages, param in [([], "messages"), ([{"role": "assistant", "content": "x"}], "messages[0]"),
                            ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
                             "messages[0].content[0]"),
                            ([{"role": "tool", "content": "x", "tool_call_id": "1"}], "messages[0]")]:
        with pytest.raises(openai.BadRequestError) as info:
            await sdk.chat.completions.create(model="Helper", messages=messages)
        assert info.value.param == param, info.value.body
    token = headers["Authorization"].split(" ", 1)[1]
    for data, status in [(b"{not json", 400), (json.dumps({"model": "Helper", "messages": hi,
                                                            "pad": "x" * 2_000_000}).encode(), 413)]:
        resp = await client.raw.post("/v1/chat/completions", data=data, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        error = (await resp.json())["error"]
        assert resp.status == status and error["type"] == "invalid_request_error" and error["message"]
        assert {"code", "param", "request_id"} <= set(error)
    resp = await client.raw.get("/v1/models", headers={"x-api-key": token})   # the LangGraph SDK's header
    assert resp.status == 200
    assert (await (await client.raw.get("/api/runs", headers=headers)).json())["runs"] == []   # nothing ran


async def test_a_client_that_goes_away_cancels_its_run(v1, llm):
    client, headers, sdk = await v1()
    await new_agent(client, headers)
    llm.tokens_per_second = 5.0
    for stream in (True, False):
        llm.script = [Turn("a slow reply " * 20)]
        messages = [{"role": "user", "content": f"Talk slowly {stream}"}]
        if stream:
            chunks = await sdk.chat.completions.create(model="Helper", messages=messages, stream=True)
            async for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    break
            await chunks.close()
        else:
            task = asyncio.create_task(sdk.chat.completions.create(model="Helper", messages=messages))
            await asyncio.sleep(1.0)
            task.cancel()
        async with asyncio.timeout(10):
            while True:
                runs = (await (await client.get("/api/runs", headers=headers)).json())["runs"]
                if runs and runs[0]["status"] == "cancelled":
                    break
                await asyncio.sleep(0.1)
        assert runs[0]["status"] == "cancelled"


async def test_a_conversations_thread_is_titled_and_announced_as_api_titles_it(v1, llm):
    """A new conversation's thread takes its first user message's first line as its title
    (services/threads.py: title_from, as /api names an untitled thread) and is announced
    with thread.created on the owner's users/{id}, like a thread made through /api."""
    client, headers, sdk = await v1()
    await new_agent(client, headers)
    llm.script = [Turn("Sure.")]
    me = (await (await client.get("/api/me", headers=headers)).json())["user"]["id"]
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"users/{me}"})
    await live.until("subscribed")
    first = "How do I   plan a week-long trip through the Alps by train with two children?\nDetails follow."
    raw = await sdk.chat.completions.with_raw_response.create(
        model="Helper", messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": first},
                                  {"role": "assistant", "content": "Tell me more."},
                                  {"role": "user", "content": "Two weeks."}])
    thread_id = raw.headers["x-agentstead-thread-id"]
    title = "How do I plan a week-long trip through the Alps by train…"
    event = await live.until("event", type="thread.created")
    assert event["data"]["thread_id"] == thread_id and event["data"]["title"] == title
    assert (await (await client.get(f"/api/threads/{thread_id}", headers=headers)).json())["title"] == title
