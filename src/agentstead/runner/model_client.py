"""The runner's model client: langchain-openai's ChatOpenAI with a lean stream parser.

ChatOpenAI streams a reply through the openai SDK, which turns every SSE chunk into a
pydantic `ChatCompletionChunk`; langchain-openai then dumps that back into a dict and
validates an `AIMessageChunk` and a `ChatGenerationChunk` from it. At a token per chunk that
was most of a streamed reply's CPU (≈130 µs per token here; bench/RESULTS.md, Chat, "50
concurrent chats"). `LeanChatOpenAI` keeps everything else of ChatOpenAI — the request (the
same payload, tools, stream_options for usage), the SDK's retries with backoff and
Retry-After, its timeouts and error classes, closing the HTTP response on cancel — and
reads the response's bytes itself: one `json.loads` per chunk, and for a plain text
delta (most chunks) the message and generation chunks built without validation, with the
fields validation would have given them. Any other chunk (tool-call fragments, the
finish reason, usage, logprobs, an unknown shape) goes through langchain-openai's own
conversion, so what the graph receives is the same.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from typing import Any, AsyncIterator, Callable

import openai
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables.config import ensure_config
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models import base as lc_openai
from openai._httpx2 import request_exceptions, timeout_exceptions   # the SDK's own stream maps these

# A response's extension a transport may set (model_transport.py): a callable giving the body's
# blocks straight from the socket's reader, its errors already httpx2's.
BLOCKS = "agentstead.blocks"

_PLAIN_DELTA = frozenset(("content",)), frozenset(("content", "role"))


def plain_text(chunk: dict) -> str | None:
    """The text of a chunk that carries nothing but text for choice 0; else None."""
    choices = chunk.get("choices")
    if not choices or len(choices) != 1 or chunk.get("usage"):
        return None
    choice = choices[0]
    delta = choice.get("delta")
    if (not isinstance(delta, dict) or choice.get("finish_reason") or choice.get("logprobs")
            or delta.keys() not in _PLAIN_DELTA or delta.get("role", "assistant") != "assistant"):
        return None
    content = delta["content"]
    return content if isinstance(content, str) else None


# Templates copied per chunk (pydantic's own __copy__): 4 µs a chunk here against 9 µs validated
# and 11 µs for model_construct, which looks up every field's default.
_MESSAGE = AIMessageChunk.model_construct(content="", additional_kwargs={}, response_metadata={}, id=None,
                                          tool_calls=[], invalid_tool_calls=[], tool_call_chunks=[])
_GENERATION = ChatGenerationChunk.model_construct(message=_MESSAGE, text="", generation_info=None)


def text_chunk(text: str) -> ChatGenerationChunk:
    """What langchain-openai builds for a plain text delta (equal to it), without validation.
    Every mutable field is a new object: LangChain assigns some of them later."""
    message = _MESSAGE.__copy__()
    fields = message.__dict__
    fields["content"] = text
    fields["additional_kwargs"] = {}
    fields["response_metadata"] = {"model_provider": "openai"}
    fields["tool_calls"], fields["invalid_tool_calls"], fields["tool_call_chunks"] = [], [], []
    generation = _GENERATION.__copy__()
    generation.__dict__["message"] = message
    generation.__dict__["text"] = text
    return generation


async def sse_data(response) -> AsyncIterator[dict]:
    """The JSON objects of a Chat Completions SSE stream, until `[DONE]`, as the openai SDK's
    stream reads them: an event's `data:` lines joined (one line each, from every provider
    seen), an `error` object raises openai.APIError, a timeout or a broken connection
    APITimeoutError or APIConnectionError. The body's rest is read after `[DONE]` so that
    the connection goes back to the pool. Over model_transport the blocks come from aiohttp
    directly (`BLOCKS`), not through httpx2's byte-stream layers."""
    blocks = response.http_response.extensions.get(BLOCKS)
    body = blocks() if blocks is not None else response.http_response.aiter_bytes()
    try:
        tail, data = b"", []
        async for block in body:
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if line.startswith(b"data:"):
                    data.append(line[5:].strip())
                    continue
                if line.strip() or not data:
                    continue      # comments, `event:`/`id:` fields; a blank line ends an event
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                data = []
                if payload == b"[DONE]":
                    async for _ in body:
                        pass
                    return
                yield _parsed(payload, response)
    except timeout_exceptions() as err:
        raise openai.APITimeoutError(request=response.http_response.request) from err
    except request_exceptions() as err:
        raise openai.APIConnectionError(request=response.http_response.request) from err


def _parsed(payload: bytes, response) -> dict:
    obj = json.loads(payload)
    if isinstance(obj, dict) and obj.get("error"):
        error = obj["error"]
        message = error.get("message") if isinstance(error, dict) else None
        raise openai.APIError(message if isinstance(message, str) and message else "An error occurred during streaming",
                              request=response.http_response.request, body=error)
    return obj


# The run's reply: set by the runner around its graph (chat_run.py), called with each piece of text
# the agent node's model streams. LeanChatOpenAI hands the text over itself: as a LangChain
# callback (on_llm_new_token) each token went through the callback manager's dispatch, 15 % of the
# loop's time with 50 chats streaming (bench/RESULTS.md, Chat), and with no handler left LangChain
# skips that dispatch. A tool's own model calls are not the reply: only the "agent" node's count.
REPLY: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("agentstead_reply", default=None)


def content_text(content: Any) -> str:
    """A message's content as plain text (content may be a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def reply_to() -> Callable[[str], None] | None:
    """Where this model call's text goes: REPLY's when the call is the agent node's (the node's
    config is the context's: LangChain passes no run manager to a streaming `_astream`), else nowhere."""
    on_text = REPLY.get()
    if on_text is None or ensure_config().get("metadata", {}).get("langgraph_node") != "agent":
        return None
    return on_text


class YieldWhileStreaming(AsyncCallbackHandler):
    """Gives the event loop a turn when a model's stream has kept it for YIELD_EVERY.

    A reply that arrives faster than it is parsed sits in the socket's buffer, and the
    client then parses token after token without ever waiting: one task step can run
    for tens of milliseconds, and timers (the runner's delta pacing), the bus's writer
    and every other request wait behind it (bench/RESULTS.md, Runs, Session 5). Asked once
    per token by LeanChatOpenAI's stream, in the model's task (as a LangChain callback on
    another client: run_inline, awaited in the same place). It starts a clock and asks
    the loop to note its next turn (call_soon); a token that finds the loop has not had
    that turn for YIELD_EVERY gives it one (`sleep(0)`). A stream slower than its
    parsing waits for the socket anyway and never sleeps here (yielding on a timer
    instead raised the loop lag of 50 streams at 30 tokens/s: 19.5, 20.8 ms against
    12.8, 14.8). One instance serves every stream: the loop's turn is everyone's."""

    run_inline = True
    YIELD_EVERY = 0.002

    def __init__(self) -> None:
        super().__init__()
        self.turned = True     # the loop has run its ready callbacks since the clock started
        self.since = 0.0
        self.yields = 0

    def _turn(self) -> None:
        self.turned = True

    def due(self) -> bool:
        """Once per token: True when the stream should give the loop its turn now."""
        now = time.perf_counter()
        if self.turned:
            self.turned = False
            self.since = now
            asyncio.get_running_loop().call_soon(self._turn)
        elif now - self.since >= self.YIELD_EVERY:
            self.yields += 1
            return True     # _turn runs in that turn, and the next token restarts the clock
        return False

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        """As a callback, for a model client other than LeanChatOpenAI (which asks `due` itself)."""
        if self.due():
            await asyncio.sleep(0)


YIELD = YieldWhileStreaming()


class LeanChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose Chat Completions stream skips the SDK's and langchain-openai's
    per-chunk models (see the module's docstring). Other paths (the Responses API,
    structured output, response headers) are ChatOpenAI's own. Gives the event loop its
    turns as YieldWhileStreaming says, and hands the agent node's text to REPLY, without a
    callback per token."""

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager=None, *, stream_usage: bool | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        reply = reply_to()
        if (self._use_responses_api({**kwargs, **self.model_kwargs}) or self.include_response_headers
                or self._uses_gateway or "response_format" in kwargs):
            async for chunk in super()._astream(messages, stop, run_manager, stream_usage=stream_usage, **kwargs):
                if reply is not None and (text := content_text(chunk.message.content)):
                    reply(text)
                yield chunk
            return
        kwargs["stream"] = True
        if self._should_stream_usage(stream_usage, **kwargs):
            kwargs["stream_options"] = {"include_usage": True}
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
        chunk_class: type = AIMessageChunk
        try:
            async with self.async_client.with_streaming_response.create(**payload) as response:
                async for data in sse_data(response):
                    if YIELD.due():
                        await asyncio.sleep(0)
                    text = plain_text(data) if chunk_class is AIMessageChunk else None
                    if text is not None:
                        if reply is not None and text:
                            reply(text)
                        yield text_chunk(text)
                        continue
                    generation = self._convert_chunk_to_generation_chunk(data, chunk_class, {})
                    if generation is not None:
                        chunk_class = generation.message.__class__
                        if reply is not None and (text := content_text(generation.message.content)):
                            reply(text)
                        yield generation
        except openai.BadRequestError as e:
            lc_openai._handle_openai_bad_request(e)
        except openai.APIError as e:
            lc_openai._handle_openai_api_error(e)
