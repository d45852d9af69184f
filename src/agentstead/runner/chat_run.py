"""Chat runs: an agent version's LangGraph graph on a thread (runner/kinds.py: RunKind).

Durability: the graph runs with LangGraph durability "exit" on a thread the
saver holds in memory. What a run has done is journalled in the store as it
happens: each model reply (with its tool calls) is stored before any tool runs,
each tool call is recorded started/finished around its execution. A run that
waits for a human writes LangGraph's exit checkpoint in the transaction that
marks it waiting, and resumes from it with the answer. A run cut off (a crash,
a shutdown) resumes from its stored messages: the thread's history up to the
run's input plus what the run stored, then on to the model, or to the tools
when the last reply called some. A tool call that was in flight at the crash is
recorded as unverified and not run again; a finished one returns its stored
result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import uuid
from typing import Any, Callable

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.config import get_config
from langgraph.types import Command, interrupt

from ..agents.mcp_tools import is_mcp, wire_name
from ..agents.tools import ASK_HUMAN, REGISTRY, ToolContext, run_tool
from ..bus import events as ev
from ..store import agents as agent_store
from ..store import checkpoints
from ..store import runs as run_store
from ..store import threads as thread_store
from ..store import tool_calls
from ..store import usage as usage_store
from ..store import users as user_store
from ..store.checkpoints import Saver
from ..store.runs import Run
from ..store.threads import Message, message_json
from . import context
from . import graph as graphs
from .compaction import Compactor
from .failures import RunFailure, failure_of
from .kinds import Toolkit, end_event, over_budget

log = logging.getLogger("agentstead.runner")
_NS = uuid.UUID("6f1c3f4e-7d0a-4c55-9a59-5d4d2b3c1a10")
_EXECUTE_TOOL = "__agentstead_execute_tool"  # "__": never copied into checkpoint metadata
HISTORY_PAGE = 100     # messages read at a time, newest first, until the prompt budget is covered
HISTORY_MAX = 5000     # and never more than this many (a thread of empty messages)
GRAPH_CACHE = 256      # compiled agent graphs kept


def _to_langchain(m: Message) -> BaseMessage:
    if m.role == "user":
        return HumanMessage(m.content, id=m.id)
    if m.role == "tool":
        return ToolMessage(m.content, tool_call_id=m.tool_call_id or "", id=m.id)
    calls = [{"id": c["id"], "name": c["name"], "args": c["args"]} for c in (m.tool_calls or [])]
    return AIMessage(m.content, tool_calls=calls, id=m.id)


def _history(conn: sqlite3.Connection, run: Run, tokens: int) -> list[Message]:
    """The part of the run's thread its model calls can use: the newest messages up to its
    input that cover `tokens` (context.py), then what the run stored since. Indexed range
    reads: the cost follows the budget, not the thread's length."""
    upto = thread_store.seq_of(conn, run.input_message_id) if run.input_message_id else None
    own = thread_store.run_messages_after(conn, run.thread_id, upto, run.id) if upto is not None else []
    used = sum(context.estimate(m.content, m.tool_calls) for m in own)
    window: list[Message] = []
    before = upto + 1 if upto is not None else None
    while used < tokens and len(window) < HISTORY_MAX:
        page = thread_store.newest(conn, run.thread_id, before_seq=before, limit=HISTORY_PAGE)
        window += page
        used += sum(context.estimate(m.content, m.tool_calls) for m in page)
        if len(page) < HISTORY_PAGE:
            break
        before = page[-1].seq
    return window[::-1] + own


def journal(run: Run, history: list[Message]) -> list[Message]:
    """Where a chat run stands by its stored messages: the thread up to the run's input,
    then what the run itself stored since (partial text is not part of it)."""
    upto = next((i for i, m in enumerate(history) if m.id == run.input_message_id), len(history) - 1)
    return history[: upto + 1] + [m for m in history[upto + 1:] if m.run_id == run.id and not m.partial]


def why_not(version, providers: dict, budget: tuple[int, int]) -> RunFailure | None:
    """Why a chat run cannot start: its agent version is gone, its provider is not configured,
    or the owner's daily budget (`budget` = (tokens a day, 0 for none; used today)) is used up."""
    if version is None:
        return RunFailure("agent_missing", "the agent version this run uses no longer exists")
    if version.provider not in providers:
        return RunFailure("provider_not_configured",
                          f"no model provider named {version.provider!r} is configured; add it to "
                          "AGENTSTEAD_LLM_PROVIDERS (see docs/operations.md, Models)")
    return over_budget(budget)


@dataclasses.dataclass(frozen=True)
class _Prepared:
    version: agent_store.AgentVersion | None
    budget: tuple[int, int]
    history: list[Message]
    owner: tuple[str, str] = ("", "")   # role and email, for MCP servers' access rules


def _store_message(conn: sqlite3.Connection, run: Run, message_id: str, role: str, content: str,
                   tool_calls_: list | None, tool_call_id: str | None, usage: tuple[int, int]) -> Message | None:
    """A run's message under its stable id and, for a model reply, its tokens; nothing
    when it is stored already."""
    stored = thread_store.add_message(conn, run.thread_id, role, content, message_id=message_id, run_id=run.id,
                                      tool_calls=tool_calls_, tool_call_id=tool_call_id)
    if stored is not None and any(usage):
        usage_store.add(conn, run, *usage)
    return stored


def _end(conn: sqlite3.Connection, run: Run, status: str, failure: RunFailure | None, final: tuple | None,
         partial: str) -> tuple[bool, Message | None, tuple[int, int]]:
    """A run's last transaction: its final reply if it has one, else what was streamed of an
    unfinished reply (stored and marked partial); the status, and whatever else ends it.
    Nothing, (False, None, …), when the run has finished already (a cancel or a shutdown
    that caught its last transaction in flight)."""
    if run_store.status_of(conn, run.id) in run_store.FINISHED:
        return False, None, (0, 0)
    stored = None
    if final is not None:
        stored = _store_message(conn, run, *final)
    elif partial:
        stored = thread_store.add_message(conn, run.thread_id, "assistant", partial, message_id=str(uuid.uuid4()),
                                          run_id=run.id, partial=True)
    if status == "interrupted":
        run_store.set_status(conn, run.id, status, error=(failure.code, failure.message) if failure
                             else run_store.INTERRUPTED)
        return True, stored, (0, 0)
    run_store.set_status(conn, run.id, status, finished=True,
                         error=(failure.code, failure.message) if failure is not None else None)
    if status != "failed":
        checkpoints.delete_thread(conn, f"run:{run.id}")
    return True, stored, usage_store.tokens_of(conn, run.id)   # its deltas: compaction.py, after this


def _execute_tool_of_run(call: dict):
    """The cached graphs are shared by runs; each run's tool executor rides in its config."""
    return get_config()["configurable"][_EXECUTE_TOOL](call)


class ChatRuns:
    """The chat kind of run."""
    eager = True   # the transaction that queues a chat run may start it at once

    def __init__(self, tools: Toolkit):
        self.tools = tools
        self.saver = Saver(tools.db)
        self._final: dict[str, tuple] = {}   # run id -> its final reply, stored with the run's end
        self._graphs: dict[tuple, Any] = {}  # compiled agent graphs by version and provider
        self.compactor = Compactor(tools.db)  # finished runs' deltas, dropped in batches

    # ---- the protocol ------------------------------------------------------------

    def prepare(self, conn: sqlite3.Connection, run: Run) -> _Prepared:
        """Everything a chat run reads before it starts, in one hop."""
        version = agent_store.version(conn, run.agent_id, run.agent_version)
        if version is not None and run.model and run.model != version.model:
            version = dataclasses.replace(version, model=run.model)   # the turn chose another model
        provider = self.tools.providers.get(version.provider) if version is not None else None
        tokens = context.budget_of(provider, version.model, provider["context_default"]) if provider else 0
        owner = user_store.get(conn, run.owner_id) if version is not None and any(map(is_mcp, version.tools)) \
            else None
        return _Prepared(version, usage_store.budget(conn, run.owner_id, self.tools.settings.daily_token_budget),
                         _history(conn, run, tokens), (owner.role, owner.email) if owner is not None else ("", ""))

    def refusal(self, run: Run, prepared: _Prepared) -> RunFailure | None:
        return why_not(prepared.version, self.tools.providers, prepared.budget)

    def started(self, conn: sqlite3.Connection, run: Run, *, resumed: bool, answered: bool) -> None:
        if resumed and not answered:   # rebuilt from its messages: an older checkpoint must not be read
            checkpoints.delete_thread(conn, f"run:{run.id}")

    def resuming(self, conn: sqlite3.Connection, run: Run, answer: Any) -> list[ev.Event]:
        """With a human's answer, the run's open `ask_human` call is recorded as answered in the
        resume transaction (the run finds it there, so an answer once acknowledged survives a
        crash before the run gets to it)."""
        call = tool_calls.open_call(conn, run.id, ASK_HUMAN) if isinstance(answer, str) else None
        if call is None:
            return []
        tool_calls.started(conn, call[0], run.id, ASK_HUMAN, call[1])
        tool_calls.finished(conn, call[0], answer, True)
        return [ev.ToolResult(run.id, run.thread_id, call[0], ASK_HUMAN, True, answer)]

    def failure_of(self, exc: BaseException) -> RunFailure:
        return failure_of(exc)

    def finished(self, run: Run) -> None:
        self._final.pop(run.id, None)

    async def execute(self, run: Run, prepared: _Prepared, *, resume: Any, resumed: bool) -> bool:
        if resume is not None:   # a waiting run: on from its checkpoint with the human's answer
            return await self._run_graph(run, prepared, Command(resume=resume), fresh=False,
                                         known={m.id for m in prepared.history})
        messages = journal(run, prepared.history)   # a new run, or one cut off: from its stored messages
        last = messages[-1] if messages else None
        if resumed and last is not None and last.run_id == run.id and last.role == "assistant" \
                and not last.tool_calls:   # the reply was stored; only the run's end was cut off
            return False
        return await self._run_graph(run, prepared, {"messages": [_to_langchain(m) for m in messages]},
                                     fresh=True, known={m.id for m in messages})

    def ending(self, run: Run, status: str, failure: RunFailure | None) -> Callable[[], asyncio.Future]:
        final = self._final.get(run.id)
        partial = self.tools.deltas.partial(run.id) if status in ("cancelled", "failed") else ""

        def events(result) -> list[ev.Event]:
            ended, stored, tokens = result
            if not ended:
                return []
            created = [ev.MessageCreated(run.id, run.thread_id, message_json(stored))] if stored else []
            return created + [end_event(run, status, failure, tokens)]
        def compact(written: asyncio.Future) -> None:
            if not written.cancelled() and written.exception() is None and written.result()[0]:
                self.compactor.ended(run.id)

        def write() -> asyncio.Future:
            written = self.tools.write(run, _end, run, status, failure, final, partial, events=events)
            if status != "interrupted":      # an interrupted run goes on later: its deltas stay
                written.add_done_callback(compact)
            return written
        return write

    async def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    async def drain(self) -> None:
        await self.compactor.stop(self.tools.settings.shutdown_grace_seconds)

    # ---- executing -------------------------------------------------------------

    async def _run_graph(self, run: Run, prepared: _Prepared, graph_input: Any, *, fresh: bool,
                         known: set[str]) -> bool:
        """The agent's graph, streamed: text as deltas, each finished message stored (with
        its event) before the graph goes on. True when it ended with the run waiting for
        a human (its question asked, its checkpoint written)."""
        version = prepared.version
        graph = self._graph(version, self.tools.providers[version.provider])
        ctx = ToolContext(allowed_hosts=self.tools.settings.http_get_allowed_hosts)
        allowed = {wire_name(n): n for n in version.tools}   # the name the model calls -> the tool's
        thread = f"run:{run.id}"
        config = {"configurable": {"thread_id": thread, _EXECUTE_TOOL: lambda call: self._tool(
                      run, call, ctx, allowed, prepared.owner)},
                  "recursion_limit": version.max_steps * 2 + 1}
        # a span per model call (runner/traced.py) with tracing on; the reply's text to the run's
        # deltas from the model client itself (model_client.REPLY: no callback per token)
        config["callbacks"] = list(self.tools.traces.callbacks)
        reply = graphs.REPLY.set(lambda text: self.tools.deltas.text(run, text))
        question = None
        checkpointed = graph.checkpointer is not None
        if checkpointed:
            self.saver.hold(thread, fresh=fresh)
        try:
            async for chunk in graph.astream(graph_input, config, stream_mode="updates",
                                             durability="exit" if checkpointed else None):
                if "__interrupt__" in chunk:
                    question = str(chunk["__interrupt__"][0].value.get("question", ""))
                else:
                    for update in chunk.values():
                        for message in (update or {}).get("messages", []):
                            await self._store(run, message, known)
                    self.tools.deltas.stored(run)
            if question is not None:   # the graph has exited: its checkpoint is held, and written now
                held = self.saver.release(thread)
                await self.tools.write(run, _waiting, run.id, question, held,
                                       events=[ev.RunWaiting(run.id, run.thread_id, question)])
            return question is not None
        finally:
            graphs.REPLY.reset(reply)
            self.saver.drop(thread)

    def _graph(self, version, provider: dict):
        """The compiled graph of an agent version on a provider, built once: compiling
        costs ~1 ms and the model client ~3.6 ms of CPU. Graphs hold no run state (the
        checkpointer keys it by run, the tool executor comes with each run's config).
        Only an agent that can ask a human gets the checkpointer: LangGraph needs one to
        interrupt, and the exit checkpoint is what a waiting run resumes from. Every
        other run resumes from its stored messages, and without a checkpointer LangGraph
        does per step only what the same graph called directly does."""
        key = graphs.version_key(version, provider)
        graph = self._graphs.get(key)
        if graph is None:
            settings = self.tools.settings
            graph = graphs.for_version(version, provider, max_retries=settings.llm_max_retries,
                                       timeout=settings.llm_timeout_seconds, execute_tool=_execute_tool_of_run,
                                       checkpointer=self.saver if ASK_HUMAN in version.tools else None,
                                       context_tokens=context.budget_of(provider, version.model,
                                                                        provider["context_default"]))
            if len(self._graphs) >= GRAPH_CACHE:
                self._graphs.pop(next(iter(self._graphs)))
            self._graphs[key] = graph
        return graph

    async def _store(self, run: Run, message: BaseMessage, known: set[str]) -> None:
        """Store a message of the run once (ids are stable across resume), with its event."""
        message_id = str(uuid.uuid5(_NS, f"{run.id}/{message.id}")) if message.id else None
        if message.id in known or message_id in known or isinstance(message, HumanMessage):
            return
        known.add(message_id)
        if isinstance(message, AIMessage):
            calls = [{"id": c["id"], "name": c["name"], "args": c["args"]} for c in message.tool_calls] or None
            usage = message.usage_metadata or {}
            row = ("assistant", graphs.content_text(message.content), calls, None,
                   (usage.get("input_tokens", 0), usage.get("output_tokens", 0)))
        elif isinstance(message, ToolMessage):
            row = ("tool", graphs.content_text(message.content), None, message.tool_call_id, (0, 0))
        else:
            return
        final = (message_id or str(uuid.uuid4()), *row)
        if row[0] == "assistant" and not row[2] and run.id not in self._final:
            # A reply without tool calls ends the graph: it is stored with the run's end,
            # one transaction instead of two (and if the run fails first, then still).
            self._final[run.id] = final
            return
        await self.tools.write(run, _store_message, run, *final, events=lambda stored: (
            [ev.MessageCreated(run.id, run.thread_id, message_json(stored))] if stored is not None else []))

    async def _tool(self, run: Run, call: dict, ctx: ToolContext, allowed: dict[str, str],
                    owner: tuple[str, str]) -> ToolMessage:
        call_id, args = call["id"], call.get("args") or {}
        name = allowed.get(call["name"], call["name"])
        previous = await self.tools.db.read(tool_calls.get, call_id)
        if previous is not None and previous["status"] in ("finished", "failed", "unverified"):
            # Re-entry after a resume: never run a tool twice. A question the human answered
            # is here too: the resume's transaction recorded the answer (resuming).
            result = previous["result"] or ("unverified: the server stopped while this tool was running; "
                                             "it was not run again")
            return ToolMessage(result, tool_call_id=call_id, name=name,
                               status="success" if previous["status"] == "finished" else "error")
        arguments = args if isinstance(args, dict) else {}
        if name == ASK_HUMAN:
            question = str(args.get("question", "")) if isinstance(args, dict) else ""
            answer = str(interrupt({"question": question}))
            await self.tools.write(run, _tool_done, call_id, run.id, name, arguments, answer, True,
                                   events=[ev.ToolResult(run.id, run.thread_id, call_id, name, True, answer)])
            return ToolMessage(answer, tool_call_id=call_id, name=name)
        tool = REGISTRY.get(name)
        await self.tools.write(run, tool_calls.started, call_id, run.id, name, arguments,
                               events=[ev.ToolCalled(run.id, run.thread_id, call_id, name, arguments)])
        with self.tools.traces.tool(name, call_id) as span:
            if name not in allowed.values() or (tool is None and not (is_mcp(name) and self.tools.mcp)):
                ok, output = False, f"error: no tool named {name!r} is available to this agent"
            elif tool is None:   # an MCP tool: the server's errors, time limit and output cap are its own
                ok, output = await self.tools.mcp.call(name, arguments, self.tools.settings.tool_timeout_seconds,
                                                       *owner)
            else:
                ok, output = await run_tool(tool, args, ctx, self.tools.settings.tool_timeout_seconds)
            span.outcome(ok)
        await self.tools.write(run, tool_calls.finished, call_id, output, ok,
                               events=[ev.ToolResult(run.id, run.thread_id, call_id, name, ok, output)])
        return ToolMessage(output, tool_call_id=call_id, name=name, status="success" if ok else "error")


def _waiting(conn: sqlite3.Connection, run_id: str, question: str, checkpoint) -> None:
    run_store.set_status(conn, run_id, "waiting_for_input", waiting_prompt=question)
    checkpoint(conn)


def _tool_done(conn: sqlite3.Connection, call_id: str, run_id: str, name: str, arguments: dict, result: str,
               ok: bool) -> None:
    tool_calls.started(conn, call_id, run_id, name, arguments)
    tool_calls.finished(conn, call_id, result, ok)
