"""The LangGraph API under /lg: runs (create, stream, wait, get, list, cancel, join,
join_stream). A run is one of Agentstead's chat runs; its stream is its events on
runs/{id} (bus/follow.py) in LangGraph's stream modes `values`, `updates` and
`messages-tuple`, each SSE event's `id` the log's seq, so `Last-Event-ID` resumes it."""

from __future__ import annotations

import contextlib
import json

from aiohttp import web

from ..auth.access import Principal, requires
from ..bus.bus import Delivery
from ..bus.follow import follow
from ..errors import Refused, invalid
from ..keys import BUS, LANGGRAPH
from ..store.runs import Run
from . import compat_langgraph_shapes as shapes
from .authn import principal_of
from .compat_langgraph import body_of, obj, unsupported
from .sse import cursor

MODES = ("values", "updates", "messages-tuple")
IGNORED = {"metadata", "durability", "checkpoint_during", "stream_resumable", "strict_resume", "langsmith_tracer",
           "feedback_keys"}
REFUSED = {"checkpoint", "checkpoint_id", "interrupt_before", "interrupt_after", "webhook", "after_seconds",
           "stream_subgraphs", "context"}
FIELDS = {"assistant_id", "input", "command", "stream_mode", "config", "multitask_strategy", "if_not_exists",
          "on_completion", "on_disconnect"} | IGNORED | REFUSED


def _text(message: object) -> str:
    if not isinstance(message, dict) or (message.get("role") or message.get("type")) not in ("user", "human"):
        raise invalid("/input/messages/0", "must be the user's message: {\"role\": \"user\", \"content\": …}")
    content = message.get("content")
    if isinstance(content, list):
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
            raise invalid("/input/messages/0/content", "only text parts are supported")
        content = "".join(p["text"] for p in content)
    if not isinstance(content, str) or not content.strip() or len(content) > 100_000:
        raise invalid("/input/messages/0/content", "must be text of 1 to 100000 characters")
    return content


def modes(raw: object) -> list[str]:
    wanted = [raw] if isinstance(raw, str) else (raw or ["values"])
    if not isinstance(wanted, list) or not all(isinstance(m, str) for m in wanted):
        raise invalid("/stream_mode", "must be a stream mode or a list of them")
    for mode in wanted:
        if mode not in MODES:
            raise unsupported(f"stream_mode {mode!r} (supported: {', '.join(MODES)})")
    return wanted


async def _start(request: web.Request, thread_id: str | None):
    """Parse a run's body and start it: (the Started run, its body)."""
    body = await body_of(request, FIELDS)
    for key in sorted(REFUSED):
        if body.get(key):
            raise unsupported(key)
    if body.get("on_completion") not in (None, "keep"):
        raise unsupported("on_completion delete (threads are kept)")
    if obj(body, "config").get("configurable") or set(obj(body, "config")) - {"configurable", "tags"}:
        raise unsupported("config (an agent's settings are its own)")
    assistant_id = body.get("assistant_id")
    if not isinstance(assistant_id, str) or not assistant_id:
        raise invalid("/assistant_id", "name an assistant (an agent's id)")
    command, raw_input = obj(body, "command"), body.get("input")
    if set(command) - {"resume"}:
        raise unsupported("Command goto/update (only resume)")
    resume = command.get("resume")
    if resume is not None and not isinstance(resume, str):
        raise invalid("/command/resume", "must be a string: the answer to the agent's question")
    text = None
    if resume is None:
        msgs = obj(body, "input").get("messages") if isinstance(raw_input, dict) else None
        if not isinstance(msgs, list) or len(msgs) != 1:
            raise invalid("/input", 'send {"messages": [one user message]} or a command with resume')
        text = _text(msgs[0])
    elif raw_input is not None:
        raise invalid("/input", "send input or command, not both")
    strategy = body.get("multitask_strategy") or "reject"
    if strategy not in ("reject", "interrupt", "enqueue"):
        raise unsupported(f"multitask_strategy {strategy!r} (supported: reject, interrupt, enqueue)")
    if_not_exists = body.get("if_not_exists") or "reject"
    if if_not_exists not in ("reject", "create"):
        raise invalid("/if_not_exists", "must be reject or create")
    started = await request.app[LANGGRAPH].start(principal_of(request), thread_id, assistant_id, text=text,
                                                 resume=resume, strategy=strategy, if_not_exists=if_not_exists)
    return started, body


def _location(run: Run) -> dict:
    return {"Content-Location": f"/lg/threads/{run.thread_id}/runs/{run.id}"}


@requires("write")
async def create_run(request: web.Request) -> web.Response:
    started, body = await _start(request, request.match_info.get("thread_id"))
    return web.json_response(shapes.run_json(started.run, body.get("multitask_strategy") or "reject"),
                             headers=_location(started.run))


class Frames:
    """A run's events as LangGraph stream parts, in the modes asked for."""

    def __init__(self, wanted: list[str], messages: list[dict], run: Run):
        self.wanted, self.messages, self.run = wanted, messages, run
        self.chunk = 0   # which of the run's replies the streamed text belongs to

    def initial(self) -> list[tuple[str, object]]:
        return [("values", {"messages": self.messages})] if "values" in self.wanted else []

    def of(self, d: Delivery) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        data = d.data
        if d.type == "message.delta" and "messages-tuple" in self.wanted:
            chunk = {"type": "AIMessageChunk", "content": data["text"], "id": f"run-{self.run.id}-{self.chunk}",
                     "additional_kwargs": {}, "response_metadata": {}, "tool_calls": [], "tool_call_chunks": [],
                     "invalid_tool_calls": [], "name": None, "example": False, "usage_metadata": None}
            out.append(("messages", [chunk, {"langgraph_node": "agent", "run_id": self.run.id,
                                             "thread_id": self.run.thread_id, "assistant_id": self.run.agent_id}]))
        elif d.type == "message.created" and data["message"]["role"] != "user":
            message = shapes.message_json(data["message"])
            self.messages = self.messages + [message]
            if data["message"]["role"] == "assistant":
                self.chunk += 1
            if "updates" in self.wanted:
                node = "agent" if message["type"] == "ai" else "tools"
                out.append(("updates", {node: {"messages": [message]}}))
            if "values" in self.wanted:
                out.append(("values", {"messages": self.messages}))
        elif d.type == "run.waiting":
            found = [{"value": {"question": data["question"]}, "id": self.run.id}]
            if "updates" in self.wanted:
                out.append(("updates", {"__interrupt__": found}))
            if "values" in self.wanted:
                out.append(("values", {"messages": self.messages, "__interrupt__": found}))
        elif d.type == "run.failed":
            out.append(("error", {"error": data["code"], "message": data["message"]}))
        return out


def _frame(event: str, data: object, seq: int | None = None) -> bytes:
    head = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n"
    return (head + (f"id: {seq}\n" if seq is not None else "") + "\n").encode()


async def _sse(request: web.Request, run: Run, after: int, wanted: list[str], *, fresh: bool,
               cancel_on_disconnect: bool, headers: dict) -> web.StreamResponse:
    """The run's stream after seq `after`; `fresh`: it starts with the metadata part and the
    thread's values (a new run), else with what follows the cursor (a join)."""
    p = principal_of(request)
    view = await request.app[LANGGRAPH].thread(p, run.thread_id)
    frames = Frames(wanted, shapes.values(view)["messages"], run)
    resp = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    events = follow(request.app[BUS], f"runs/{run.id}", after, idle=15.0)
    try:
        if fresh:
            await resp.write(_frame("metadata", {"run_id": run.id, "attempt": 1}))
            for event, data in frames.initial():
                await resp.write(_frame(event, data))
        if fresh or run.status in ("queued", "running"):
            async for d in events:
                if d is None:
                    await resp.write(b": keep-alive\n\n")
                    continue
                parts = frames.of(d)
                for i, (event, data) in enumerate(parts):
                    await resp.write(_frame(event, data, d.seq if i == len(parts) - 1 else None))
        await resp.write_eof()
    except ConnectionResetError:
        if cancel_on_disconnect:
            await _cancel_quietly(request, p, run)
    finally:
        await events.aclose()
    return resp


async def _cancel_quietly(request: web.Request, p: Principal, run: Run) -> None:
    with contextlib.suppress(Refused):
        await request.app[LANGGRAPH].cancel(p, run.thread_id, run.id)


@requires("write")
async def stream_run(request: web.Request) -> web.StreamResponse:
    started, body = await _start(request, request.match_info.get("thread_id"))
    wanted = modes(body.get("stream_mode"))
    return await _sse(request, started.run, started.after, wanted, fresh=True,
                      cancel_on_disconnect=body.get("on_disconnect") == "cancel", headers=_location(started.run))


@requires("read")
async def join_stream(request: web.Request) -> web.StreamResponse:
    lg, p = request.app[LANGGRAPH], principal_of(request)
    run = await lg.run(p, request.match_info["thread_id"], request.match_info["run_id"])
    wanted = modes([m for m in request.query.getall("stream_mode", []) if m] or None)
    after = cursor(request)
    if after is None:
        after = await request.app[BUS].head()
    cancel = request.query.get("cancel_on_disconnect", "false").lower() == "true"
    return await _sse(request, run, after, wanted, fresh=False, cancel_on_disconnect=cancel, headers={})


async def _values_at_end(request: web.Request, run: Run, after: int) -> dict:
    """Wait for the run to end (or wait for an answer); the thread's values then."""
    events = follow(request.app[BUS], f"runs/{run.id}", after, idle=15.0)
    failure = None
    try:
        if run.status in ("queued", "running"):
            async for d in events:
                if d is not None and d.type == "run.failed":
                    failure = {"error": d.data["code"], "message": d.data["message"]}
    finally:
        await events.aclose()
    view = await request.app[LANGGRAPH].thread(principal_of(request), run.thread_id)
    out = shapes.values(view)
    if failure is not None:
        out["__error__"] = failure
    return out


@requires("write")
async def wait_run(request: web.Request) -> web.Response:
    started, _ = await _start(request, request.match_info.get("thread_id"))
    return web.json_response(await _values_at_end(request, started.run, started.after),
                             headers=_location(started.run))


@requires("read")
async def join_run(request: web.Request) -> web.Response:
    lg, p = request.app[LANGGRAPH], principal_of(request)
    run = await lg.run(p, request.match_info["thread_id"], request.match_info["run_id"])
    after = await request.app[BUS].head()
    run = await lg.run(p, run.thread_id, run.id)   # read after the head: an end before it is seen here
    return web.json_response(await _values_at_end(request, run, after))


@requires("read")
async def get_run(request: web.Request) -> web.Response:
    run = await request.app[LANGGRAPH].run(principal_of(request), request.match_info["thread_id"],
                                           request.match_info["run_id"])
    return web.json_response(shapes.run_json(run))


@requires("read")
async def list_runs(request: web.Request) -> web.Response:
    q = request.query
    try:
        limit, offset = int(q.get("limit", "10")), int(q.get("offset", "0"))
    except ValueError:
        raise invalid("/limit", "limit and offset must be integers") from None
    if not 1 <= limit <= 200 or not 0 <= offset <= 10_000:
        raise invalid("/limit", "limit must be 1 to 200, offset 0 to 10000")
    status = q.get("status")
    if status is not None and status not in shapes.STATUS_FILTER:
        raise invalid("/status", f"must be one of {', '.join(shapes.STATUS_FILTER)}")
    runs = await request.app[LANGGRAPH].list_runs(principal_of(request), request.match_info["thread_id"], limit=limit,
                                                  offset=offset, status=shapes.STATUS_FILTER.get(status))
    return web.json_response([shapes.run_json(r) for r in runs[:limit]])


@requires("write")
async def cancel_run(request: web.Request) -> web.Response:
    action = request.query.get("action", "interrupt")
    if action != "interrupt":
        raise unsupported(f"cancel action {action!r} (only interrupt)")
    lg, p = request.app[LANGGRAPH], principal_of(request)
    await lg.cancel(p, request.match_info["thread_id"], request.match_info["run_id"])   # written when it returns
    return web.Response(status=204)
