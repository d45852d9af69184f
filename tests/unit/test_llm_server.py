"""The test OpenAI-compatible chat server speaks the wire protocol well enough
for the real ``openai`` SDK, driven through ``langchain_openai.ChatOpenAI``:
streaming, tool calls, usage, error mapping, dropped and cancelled streams."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import openai
import pytest
from langchain_openai import ChatOpenAI

from tests.support.llm_server import Fault, LLMServer, Script, ToolCall, Turn, split_tokens

KEY = "sk-test"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
async def llm():
    server = LLMServer(api_key=KEY, models=["gpt-test", "gpt-other"])
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def chat(llm: LLMServer, **kw) -> ChatOpenAI:
    args = dict(base_url=llm.base_url, api_key=KEY, model="gpt-test",
                streaming=True, stream_usage=True, max_retries=0, timeout=5)
    args.update(kw)
    return ChatOpenAI(**args)


async def collect(model, prompt):
    chunks = []
    async for c in model.astream(prompt):
        chunks.append(c)
    agg = chunks[0]
    for c in chunks[1:]:
        agg = agg + c
    return chunks, agg


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


# -- happy paths -------------------------------------------------------------------

async def test_streamed_text_arrives_in_chunks_with_usage(llm):
    text = "The quick brown fox jumps over the lazy dog."
    llm.script = Script([Turn(text)])
    chunks, agg = await collect(chat(llm), "tell me a story please")

    pieces = [c.content for c in chunks if c.content]
    assert len(pieces) == len(split_tokens(text)) == 9
    assert "".join(pieces) == agg.content == text
    assert agg.usage_metadata["input_tokens"] == 5          # whitespace words of the prompt
    assert agg.usage_metadata["output_tokens"] == 9
    assert agg.usage_metadata["total_tokens"] == agg.usage_metadata["input_tokens"] + 9
    assert agg.response_metadata["finish_reason"] == "stop"

    body = llm.requests[-1]
    assert body["stream"] is True and body["model"] == "gpt-test"
    assert body["stream_options"] == {"include_usage": True}


async def test_prompt_tokens_override_and_echo_after_script_runs_out(llm):
    llm.script = Script([Turn("first", prompt_tokens=1234)])
    model = chat(llm)
    _, a = await collect(model, "one two three")
    _, b = await collect(model, "say this back")
    assert a.content == "first" and a.usage_metadata["input_tokens"] == 1234
    assert b.content == "echo: say this back"
    assert b.usage_metadata["input_tokens"] == 3
    assert llm.script.remaining == 0


async def test_tool_call_is_streamed_and_parsed(llm):
    llm.script = Script([Turn(tool_calls=[ToolCall("get_weather", {"city": "Paris", "unit": "c"}, id="call_1")])])
    model = chat(llm).bind_tools([WEATHER_TOOL])
    chunks, agg = await collect(model, "weather in Paris?")

    assert agg.tool_calls == [{"name": "get_weather", "args": {"city": "Paris", "unit": "c"},
                               "id": "call_1", "type": "tool_call"}]
    assert agg.response_metadata["finish_reason"] == "tool_calls"
    arg_chunks = [c for c in chunks if c.tool_call_chunks]
    assert len(arg_chunks) > 3                                   # arguments arrive in fragments
    assert agg.usage_metadata["output_tokens"] == len(arg_chunks)
    sent = llm.requests[-1]
    assert sent["tools"][0]["function"]["name"] == "get_weather"


async def test_callable_script_sees_tool_results(llm):
    def decide(body):
        last = body["messages"][-1]
        if last["role"] == "tool":
            return Turn(f"It is {last['content']}.")
        return Turn("Checking.", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})])

    llm.script = Script(decide)
    model = chat(llm).bind_tools([WEATHER_TOOL])
    _, first = await collect(model, "weather in Oslo?")
    assert first.content == "Checking."
    call = first.tool_calls[0]
    assert call["args"] == {"city": "Oslo"} and call["id"].startswith("call_")

    from langchain_core.messages import HumanMessage, ToolMessage
    _, second = await collect(model, [HumanMessage("weather in Oslo?"), first,
                                      ToolMessage("sunny", tool_call_id=call["id"])])
    assert second.content == "It is sunny."
    assert llm.requests[-1]["messages"][1]["tool_calls"][0]["id"] == call["id"]


async def test_non_streaming_completion(llm):
    llm.script = Script(["plain answer here", Turn(tool_calls=[ToolCall("get_weather", {"city": "Rome"})])])
    model = chat(llm, streaming=False)
    msg = await model.ainvoke("hi")
    assert msg.content == "plain answer here"
    assert msg.usage_metadata["output_tokens"] == 3
    assert msg.response_metadata["finish_reason"] == "stop"
    msg = await model.bind_tools([WEATHER_TOOL]).ainvoke("hi")
    assert msg.tool_calls[0]["name"] == "get_weather" and msg.tool_calls[0]["args"] == {"city": "Rome"}
    assert msg.response_metadata["finish_reason"] == "tool_calls"
    assert "stream" not in llm.requests[-1] or llm.requests[-1]["stream"] is False


async def test_models_are_listed_and_require_auth(llm):
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{llm.base_url}/models", headers=auth()) as r:
            assert r.status == 200
            body = await r.json()
        assert body["object"] == "list"
        assert [m["id"] for m in body["data"]] == ["gpt-test", "gpt-other"]
        assert all(m["object"] == "model" and m["owned_by"] and isinstance(m["created"], int)
                   for m in body["data"])
        async with s.get(f"{llm.base_url}/models") as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "invalid_api_key"

    client = openai.AsyncOpenAI(base_url=llm.base_url, api_key=KEY, max_retries=0)
    try:
        page = await client.models.list()
        assert [m.id for m in page.data] == ["gpt-test", "gpt-other"]
    finally:
        await client.close()


# -- errors --------------------------------------------------------------------------

async def test_wrong_key_is_authentication_error(llm):
    with pytest.raises(openai.AuthenticationError) as exc:
        await collect(chat(llm, api_key="sk-wrong"), "hi")
    assert exc.value.status_code == 401
    assert exc.value.code == "invalid_api_key"


async def test_unknown_model_is_not_found(llm):
    with pytest.raises(openai.NotFoundError) as exc:
        await collect(chat(llm, model="gpt-nope"), "hi")
    assert exc.value.code == "model_not_found"


async def test_rate_limit_fault_with_retry_after(llm):
    llm.faults = [Fault("status", status=429, retry_after=2)]
    with pytest.raises(openai.RateLimitError) as exc:
        await collect(chat(llm), "hi")
    assert exc.value.code == "rate_limit_exceeded"
    assert exc.value.response.headers["retry-after"] == "2"

    llm.faults = [Fault("status", status=429, retry_after=0.5)]
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{llm.base_url}/chat/completions", headers=auth(),
                          json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 429
            assert r.headers["Retry-After"] == "0.5"
            err = (await r.json())["error"]
            assert set(err) >= {"message", "type", "code"} and err["code"] == "rate_limit_exceeded"
        # The fault was one-shot: the next request succeeds.
        async with s.post(f"{llm.base_url}/chat/completions", headers=auth(),
                          json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 200
            assert (await r.json())["choices"][0]["message"]["content"] == "echo: x"


async def test_server_error_fault(llm):
    llm.script = Script(["kept for the retry"])
    llm.faults = [Fault("status", status=500)]
    with pytest.raises(openai.InternalServerError) as exc:
        await collect(chat(llm), "hi")
    assert exc.value.status_code == 500
    assert exc.value.code == "server_error"
    # A status fault consumes no turn.
    _, agg = await collect(chat(llm), "hi")
    assert agg.content == "kept for the retry"


async def test_drop_mid_stream_raises_connection_error(llm):
    llm.script = Script([Turn("one two three four five six seven eight")])
    llm.faults = [Fault("drop", after_tokens=3)]
    got = []
    with pytest.raises(openai.APIConnectionError):
        async for c in chat(llm).astream("hi"):
            got.append(c.content)
    assert "".join(got) == "one two three"
    assert llm.cancelled == 0                       # the server's own drop is not a client abort


async def test_stall_pauses_the_stream_then_continues(llm):
    llm.tokens_per_second = 0
    llm.script = Script([Turn("a b c d")])
    llm.faults = [Fault("stall", after_tokens=2, seconds=0.3)]
    stamps = []
    async for c in chat(llm).astream("hi"):
        if c.content:
            stamps.append((time.monotonic(), c.content))
    assert "".join(t for _, t in stamps) == "a b c d"
    gaps = [b[0] - a[0] for a, b in zip(stamps, stamps[1:])]
    assert gaps[1] >= 0.25 and gaps[0] < 0.2 and gaps[2] < 0.2


async def test_cancelling_the_client_mid_stream_is_noticed(llm):
    llm.tokens_per_second = 50.0
    llm.script = Script([Turn(" ".join(f"w{i}" for i in range(200)))])
    first = asyncio.Event()

    async def consume():
        async for c in chat(llm).astream("hi"):
            if c.content:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await llm.wait_cancelled(1, timeout=2)
    assert llm.cancelled == 1 and llm.active == 0 and llm.completed == 0


async def test_rate_is_honoured(llm):
    llm.tokens_per_second = 100.0
    llm.script = Script([Turn(" ".join(["tok"] * 21))])
    t0 = time.monotonic()
    await collect(chat(llm), "hi")
    assert time.monotonic() - t0 >= 0.18   # 20 gaps of 10 ms
