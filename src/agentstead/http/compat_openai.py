"""The OpenAI-compatible endpoint: GET /v1/models and POST /v1/chat/completions, a thin
layer over the same services (services/compat_openai.py): each completion is a run of
the agent the `model` names, in the thread of its conversation, so usage, budgets,
audit and cancel apply as to any run. A client that goes away cancels its run.
Errors keep the app's shape and add OpenAI's `type` and `param` (http/compat_errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time

from aiohttp import web

from ..auth.access import Principal, requires
from ..bus.bus import Delivery
from ..bus.follow import follow
from ..errors import Refused
from ..keys import BUS, OPENAI, RUNS
from .authn import principal_of
from .bodies import json_body
from .compat_openai_body import Completion, completion

KEEPALIVE = 15   # idle seconds between SSE comments
# A run's failure code -> the HTTP status it answers with (others: 502).
FAILURE_STATUS = {"budget_exceeded": 429, "run_timeout": 504, "provider_not_configured": 503}


@requires("read")
async def models(request: web.Request) -> web.Response:
    agents = await request.app[OPENAI].models(principal_of(request))
    names = [a.current.name for a in agents]
    return web.json_response({"object": "list", "data": [
        {"id": a.current.name if names.count(a.current.name) == 1 else a.id, "object": "model",
         "created": _epoch(a.created_at), "owned_by": "agentstead", "agent_id": a.id, "name": a.current.name}
        for a in agents]})


def _epoch(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


class Reply:
    """A run's events as the text of one assistant reply: its messages' texts, "\\n\\n"
    between them, and its question when it waits on ask_human."""

    def __init__(self):
        self.text = ""
        self._current = ""        # streamed text of the message being written
        self._gap = False         # a message with text ended: the next text starts after "\n\n"
        self.usage = (0, 0)
        self.failure: Refused | None = None

    def _piece(self, text: str) -> str:
        if not text:
            return ""
        if self._gap and self.text:
            text = "\n\n" + text
        self._gap = False
        self.text += text
        return text

    def feed(self, d: Delivery) -> str:
        """The text this event adds to the reply."""
        data = d.data
        if d.type == "message.delta":
            self._current += data["text"]
            return self._piece(data["text"])
        if d.type == "message.created" and data["message"]["role"] == "assistant":
            content, streamed = data["message"]["content"], self._current
            self._current = ""
            rest = self._piece(content[len(streamed):] if content.startswith(streamed) else "")
            self._gap = self._gap or bool(content.strip())
            return rest
        if d.type == "run.waiting":
            self._gap = bool(self.text)
            return self._piece(data["question"])
        if d.type == "run.succeeded":
            self.usage = (data["prompt_tokens"], data["completion_tokens"])
        elif d.type == "run.failed":
            self.failure = Refused(FAILURE_STATUS.get(data["code"], 502), data["code"], data["message"])
        elif d.type == "run.cancelled":
            self.failure = Refused(409, "run_cancelled", "the run was cancelled")
        elif d.type == "run.interrupted":
            self.failure = Refused(503, "run_interrupted", "the server stopped during the run; send the request again")
        return ""


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _cancel(request: web.Request, p: Principal, run_id: str) -> None:
    """The client went away: its run is cancelled (unless it has finished meanwhile)."""
    with contextlib.suppress(Refused):
        await request.app[RUNS].cancel(p, run_id)


def _head(c: Completion, run_id: str, created: int, kind: str) -> dict:
    return {"id": f"chatcmpl-{run_id}", "object": kind, "created": created, "model": c.model,
            "system_fingerprint": None}


def _usage(reply: Reply) -> dict:
    return {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
            "total_tokens": sum(reply.usage)}


@requires("write")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    c = completion(await json_body(request))
    p = principal_of(request)
    started = await request.app[OPENAI].start(p, c.model, c.messages)
    run = started.run
    headers = {"X-Agentstead-Run-Id": run.id, "X-Agentstead-Thread-Id": run.thread_id}
    created, reply = int(time.time()), Reply()
    events = follow(request.app[BUS], f"runs/{run.id}", started.after, idle=1.0)
    try:
        if c.stream:
            return await _stream(request, c, run.id, created, reply, events, headers)
        async for d in events:
            if d is None:
                if _gone(request):
                    await _cancel(request, p, run.id)
                    return web.Response(status=499)
                continue
            reply.feed(d)
    except asyncio.CancelledError:
        await asyncio.shield(_cancel(request, p, run.id))
        raise
    finally:
        await events.aclose()
    if reply.failure is not None:
        raise reply.failure
    body = {**_head(c, run.id, created, "chat.completion"), "choices": [{
        "index": 0, "message": {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []},
        "finish_reason": "stop", "logprobs": None}], "usage": _usage(reply)}
    return web.json_response(body, headers=headers)


def _chunk(c: Completion, run_id: str, created: int, delta: dict, finish: str | None) -> bytes:
    body = {**_head(c, run_id, created, "chat.completion.chunk"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


async def _stream(request: web.Request, c: Completion, run_id: str, created: int, reply: Reply, events,
                  headers: dict) -> web.StreamResponse:
    """chat.completion.chunk events, then `data: [DONE]`. The response starts with the first
    text, so a run refused at once (a budget) is answered with its error status instead."""
    resp = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    p, idle = principal_of(request), 0

    async def send(data: bytes) -> None:
        if not resp.prepared:
            await resp.prepare(request)
            await resp.write(_chunk(c, run_id, created, {"role": "assistant", "content": ""}, None))
        await resp.write(data)
    try:
        async for d in events:
            if d is None:
                idle += 1
                if _gone(request):
                    raise ConnectionResetError
                if resp.prepared and idle % KEEPALIVE == 0:
                    await resp.write(b": keep-alive\n\n")
                continue
            text = reply.feed(d)
            if text:
                await send(_chunk(c, run_id, created, {"content": text}, None))
        if reply.failure is not None:
            if not resp.prepared:
                raise reply.failure
            f = reply.failure
            error = {"message": f.message, "type": "api_error", "param": None, "code": f.code}
            await resp.write(b"data: " + json.dumps({"error": error}).encode() + b"\n\n")
        else:
            await send(_chunk(c, run_id, created, {}, "stop"))
            if c.include_usage:
                usage = {**_head(c, run_id, created, "chat.completion.chunk"), "choices": [], "usage": _usage(reply)}
                await resp.write(b"data: " + json.dumps(usage).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
    except ConnectionResetError:
        await _cancel(request, p, run_id)
    return resp
