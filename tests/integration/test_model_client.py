"""runner/model_client.py's LeanChatOpenAI against the tests' OpenAI-compatible server over
HTTP: what it gives the graph equals what langchain-openai's ChatOpenAI gives (text, tool
calls, usage, metadata), errors are the same classes, a cancel closes the stream, and an
`error` object inside a stream is raised as the openai SDK raises it."""

from __future__ import annotations

import asyncio

import openai
import pytest
from aiohttp import web
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_openai import ChatOpenAI

from agentstead.runner.model_client import LeanChatOpenAI, text_chunk
from agentstead.runner.model_transport import http_client

from ..support.llm_server import Fault, LLMServer, ToolCall, Turn

TOOL = {"type": "function", "function": {"name": "calculator", "description": "Evaluates arithmetic.",
                                         "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                                                        "required": ["expression"]}}}


def clients(base_url: str, **settings) -> tuple[LeanChatOpenAI, ChatOpenAI]:
    common = dict(base_url=base_url, api_key="sk-test", model="gpt-test", streaming=True, stream_usage=True,
                  stream_chunk_timeout=None, max_retries=settings.pop("max_retries", 0),
                  timeout=settings.pop("timeout", 10.0))
    return LeanChatOpenAI(**common, http_async_client=http_client()), ChatOpenAI(**common)   # as graph.chat_model


@pytest.fixture
async def llm():
    server = LLMServer("sk-test", ["gpt-test"], tokens_per_second=0)
    await server.start()
    yield server
    await server.stop()


def comparable(message) -> dict:
    """A reply as the runner and the checkpointer see it (its run-specific id left out)."""
    return {"content": message.content, "tool_calls": message.tool_calls,
            "invalid_tool_calls": message.invalid_tool_calls, "usage": message.usage_metadata,
            "metadata": {k: v for k, v in message.response_metadata.items() if k != "id"}}


async def test_a_streamed_reply_is_the_one_chatopenai_gives(llm):
    results = []
    for client in clients(llm.base_url):
        llm.script = [Turn("Hello there, how are you today?")]
        results.append(await client.ainvoke([HumanMessage("hello")]))
    lean, reference = results
    assert comparable(lean) == comparable(reference)
    assert lean.content == "Hello there, how are you today?"
    assert lean.usage_metadata["input_tokens"] == 1 and lean.usage_metadata["output_tokens"] == 6
    assert lean.response_metadata["finish_reason"] == "stop"


async def test_its_chunks_are_the_ones_chatopenai_streams(llm):
    streams = []
    for client in clients(llm.base_url):
        llm.script = [Turn("one two three")]
        streams.append([c async for c in client.astream([HumanMessage("hello")])])
    lean, reference = streams
    assert [c.content for c in lean] == [c.content for c in reference]
    assert all(isinstance(c, AIMessageChunk) for c in lean)
    assert [comparable(c) for c in lean] == [comparable(c) for c in reference]


def test_a_plain_text_chunk_equals_a_validated_one():
    built = text_chunk(" word")
    validated = AIMessageChunk(content=" word", response_metadata={"model_provider": "openai"})
    assert built.message == validated and built.text == " word"
    assert built.message.additional_kwargs is not text_chunk("x").message.additional_kwargs   # not shared


async def test_tool_calls_arrive_whole_as_chatopenai_parses_them(llm):
    turn = Turn("Let me compute.", tool_calls=[ToolCall("calculator", {"expression": "6 * 7"}, id="call_1")])
    results = []
    for client in clients(llm.base_url):
        llm.script = [turn]
        results.append(await client.bind_tools([TOOL]).ainvoke([HumanMessage("what is 6 * 7?")]))
    lean, reference = results
    assert comparable(lean) == comparable(reference)
    assert lean.tool_calls == [{"name": "calculator", "args": {"expression": "6 * 7"}, "id": "call_1",
                                "type": "tool_call"}]
    assert llm.requests[-1]["tools"] == llm.requests[-2]["tools"]       # the same request, tools included
    assert llm.requests[-1]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("fault,error", [
    (Fault("status", status=401), openai.AuthenticationError),
    (Fault("status", status=404), openai.NotFoundError),
    (Fault("status", status=500), openai.InternalServerError),
    (Fault("drop", after_tokens=2), openai.APIConnectionError),
])
async def test_errors_are_the_classes_chatopenai_raises(llm, fault, error):
    raised = []
    for client in clients(llm.base_url):
        llm.script = [Turn("w0 w1 w2 w3 w4")]
        llm.faults = [fault]
        with pytest.raises(error) as info:
            await client.ainvoke([HumanMessage("hello")])
        raised.append(type(info.value))
    assert raised[0] is raised[1]


async def test_a_429_is_retried_honouring_retry_after(llm):
    lean, _ = clients(llm.base_url, max_retries=2)
    llm.script = [Turn("after the wait")]
    llm.faults = [Fault("status", status=429, retry_after=0.3)]
    started = asyncio.get_running_loop().time()
    reply = await lean.ainvoke([HumanMessage("hello")])
    assert reply.content == "after the wait" and asyncio.get_running_loop().time() - started >= 0.3


async def test_a_stall_between_tokens_times_out(llm):
    lean, _ = clients(llm.base_url, timeout=0.5)
    llm.script = [Turn("w0 w1 w2 w3")]
    llm.faults = [Fault("stall", after_tokens=2, seconds=3.0)]
    with pytest.raises(openai.APITimeoutError):
        await lean.ainvoke([HumanMessage("hello")])


async def _provider(aiohttp_server, chat) -> str:
    """A provider on loopback whose /v1/chat/completions is `chat`; its base URL."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return str((await aiohttp_server(app)).make_url("/v1"))


async def test_a_cancel_closes_the_stream_to_the_provider(llm):
    llm.tokens_per_second = 20
    lean, _ = clients(llm.base_url)
    llm.script = [Turn(" ".join(f"w{i}" for i in range(200)))]
    seen = []

    async def consume():
        async for chunk in lean.astream([HumanMessage("hello")]):
            seen.append(chunk)
    task = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        while len(seen) < 3:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await llm.wait_cancelled(1, timeout=1.0)


async def test_an_error_object_inside_the_stream_is_raised(aiohttp_server):
    """Some providers report a failure mid-stream as `data: {"error": …}` after a 200."""
    async def chat(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":'
                         b'[{"index":0,"delta":{"role":"assistant","content":"partial"},"finish_reason":null}]}\n\n')
        await resp.write(b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n')
        return resp
    base_url = await _provider(aiohttp_server, chat)
    lean, reference = clients(base_url)
    for client in (lean, reference):
        with pytest.raises(openai.APIError, match="overloaded"):
            await client.ainvoke([HumanMessage("hello")])


async def test_an_event_whose_data_spans_lines_is_one_object(aiohttp_server):
    """SSE: an event's `data:` lines are joined with newlines; a blank line ends the event."""
    async def chat(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b': a comment\r\nevent: message\r\ndata: {"id":"c1","object":"chat.completion.chunk",\r\n'
                         b'data: "model":"m","choices":[{"index":0,"delta":{"content":"two"},"finish_reason":null}]}\r\n\r\n')
        await resp.write(b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":'
                         b'[{"index":0,"delta":{"content":" lines"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
        return resp
    base_url = await _provider(aiohttp_server, chat)
    for client in clients(base_url):
        reply = await client.ainvoke([HumanMessage("hello")])
        assert reply.content == "two lines" and reply.response_metadata["finish_reason"] == "stop"


# ---- the transport (runner/model_transport.py): aiohttp under the SDK, the SDK's semantics kept

async def test_the_request_is_the_one_chatopenai_sends(aiohttp_server):
    """Body and headers as the openai SDK builds them (aiohttp sets only the framing and the
    encodings it can decode)."""
    seen = []

    async def chat(request):
        seen.append(({k.lower(): v for k, v in request.headers.items()}, await request.json()))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":'
                         b'[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
        return resp
    base_url = await _provider(aiohttp_server, chat)
    for client in clients(base_url):
        await client.bind_tools([TOOL]).ainvoke([HumanMessage("hello")])
    (lean_headers, lean_body), (ref_headers, ref_body) = seen
    assert lean_body == ref_body and lean_body["tools"] == [TOOL] and lean_body["stream"] is True
    # framing, and the SDK's note that the body is read raw (with_streaming_response, as before the transport)
    framing = {"accept-encoding", "connection", "host", "content-length", "x-stainless-async", "x-stainless-raw-response"}
    assert {k: v for k, v in lean_headers.items() if k not in framing} == \
        {k: v for k, v in ref_headers.items() if k not in framing}
    assert lean_headers["authorization"] == "Bearer sk-test"


async def test_a_500_is_retried_with_backoff_and_a_401_is_not(llm):
    lean, _ = clients(llm.base_url, max_retries=2)
    llm.script = [Turn("second time lucky")]
    llm.faults = [Fault("status", status=500)]
    reply = await lean.ainvoke([HumanMessage("hello")])
    assert reply.content == "second time lucky" and len(llm.requests) == 2
    llm.script = [Turn("never")]
    llm.faults = [Fault("status", status=401)]
    with pytest.raises(openai.AuthenticationError):
        await lean.ainvoke([HumanMessage("hello")])
    assert len(llm.requests) == 3          # one more request: a 401 is not retried


async def test_retries_end_in_the_status_error_with_its_body(llm):
    lean, _ = clients(llm.base_url, max_retries=1)
    llm.script = [Turn("never")]
    llm.faults = [Fault("status", status=503, message="busy now", retry_after=0.1),
                  Fault("status", status=503, message="busy now", retry_after=0.1)]
    with pytest.raises(openai.InternalServerError, match="busy now") as info:
        await lean.ainvoke([HumanMessage("hello")])
    assert len(llm.requests) == 2 and info.value.status_code == 503
    assert info.value.response.headers["retry-after"] == "0.1"


async def test_a_stall_before_the_first_byte_times_out_as_the_sdk_does(llm):
    """No response headers within the read timeout: retried, then APITimeoutError."""
    lean, _ = clients(llm.base_url, timeout=0.4, max_retries=1)
    llm.script = [Turn("late"), Turn("late")]
    llm.faults = [Fault("stall", after_tokens=0, seconds=2.0), Fault("stall", after_tokens=0, seconds=2.0)]
    with pytest.raises(openai.APITimeoutError):
        await lean.ainvoke([HumanMessage("hello")])


async def test_a_refused_connection_is_the_sdks_connection_error():
    for client in clients("http://127.0.0.1:9/v1", max_retries=1):       # discard: nothing listens
        with pytest.raises(openai.APIConnectionError):
            await client.ainvoke([HumanMessage("hello")])


async def test_a_reply_not_streamed_is_the_one_chatopenai_gives(llm):
    results = []
    for client in clients(llm.base_url):
        llm.script = [Turn("Not streamed at all.")]
        results.append(await client.model_copy(update={"streaming": False}).ainvoke([HumanMessage("hi")]))
    assert comparable(results[0]) == comparable(results[1]) and results[0].content == "Not streamed at all."
    assert "stream" not in llm.requests[-2] or llm.requests[-2]["stream"] is False


async def test_streams_after_a_finished_one_and_after_a_cancelled_one_still_work(llm):
    """A finished body gives its connection back; a cancelled one is closed, not reused half-read."""
    lean, _ = clients(llm.base_url)
    for _ in range(3):
        llm.script = [Turn("one two three")]
        assert (await lean.ainvoke([HumanMessage("hello")])).content == "one two three"
    llm.tokens_per_second = 50
    llm.script = [Turn(" ".join(f"w{i}" for i in range(100))), Turn("after the cancel")]
    stream = lean.astream([HumanMessage("hello")])
    await anext(stream)
    await stream.aclose()
    await llm.wait_cancelled(1, timeout=2.0)
    llm.tokens_per_second = 0
    assert (await lean.ainvoke([HumanMessage("hello")])).content == "after the cancel"
