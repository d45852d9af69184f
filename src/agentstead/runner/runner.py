"""Runs as supervised asyncio tasks.

Every run is a row before it is a task: the row's status is written first,
then the event is published. A global limit and a per-user limit bound the
tasks; the queue is served round-robin across users, oldest first. On
startup, runs the rows say were running become `interrupted`; resume picks
them up from their LangGraph checkpoint, and a tool call that was in flight
is recorded as unverified instead of being run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections import Counter
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langgraph.config import get_config
from langgraph.types import Command, interrupt

from ..agents.tools import ASK_HUMAN, REGISTRY, ToolContext, run_tool
from ..bus import events as ev
from ..bus.bus import Bus
from ..settings import Settings
from ..store import agents as agent_store
from ..store import events as event_store
from ..store import runs as run_store
from ..store import threads as thread_store
from ..store.db import Database, checkpoint_saver, execute_statements
from . import graph as graphs
from .failures import RunFailure, failure_of
from .workflow_run import WorkflowRuns

log = logging.getLogger("agentstead.runner")
_NS = uuid.UUID("6f1c3f4e-7d0a-4c55-9a59-5d4d2b3c1a10")


def message_json(m: thread_store.Message) -> dict:
    return {"id": m.id, "seq": m.seq, "thread_id": m.thread_id, "run_id": m.run_id, "role": m.role,
            "content": m.content, "tool_calls": m.tool_calls, "tool_call_id": m.tool_call_id,
            "partial": m.partial, "created_at": m.created_at}


def _to_langchain(m: thread_store.Message) -> BaseMessage:
    if m.role == "user":
        return HumanMessage(m.content, id=m.id)
    if m.role == "tool":
        return ToolMessage(m.content, tool_call_id=m.tool_call_id or "", id=m.id)
    calls = [{"id": c["id"], "name": c["name"], "args": c["args"]} for c in (m.tool_calls or [])]
    return AIMessage(m.content, tool_calls=calls, id=m.id)


_text = graphs.content_text


@dataclasses.dataclass
class _Live:
    """What one running run has streamed so far (for partial output on cancel), and
    the text waiting to go out as one coalesced delta (see Runner._stream)."""
    run: run_store.Run
    partial: list[str] = dataclasses.field(default_factory=list)
    pending: list[str] = dataclasses.field(default_factory=list)
    inflight: asyncio.Future | None = None


_EXECUTE_TOOL = "__agentstead_execute_tool"  # "__": never copied into checkpoint metadata


def _execute_tool_of_run(call: dict):
    """The cached graphs are shared by runs; each run's tool executor rides in its config."""
    return get_config()["configurable"][_EXECUTE_TOOL](call)


class Runner:
    def __init__(self, db: Database, bus: Bus, settings: Settings):
        self.db = db
        self.bus = bus
        self.settings = settings
        self.providers = {p["name"]: p for p in settings.llm_providers}
        self.tasks: dict[str, asyncio.Task] = {}
        self.live: dict[str, _Live] = {}
        self.per_user: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._saver = None
        self._last_served: dict[str, float] = {}
        self._stopping = False
        self._graphs: dict[tuple, Any] = {}   # compiled agent graphs by version and provider
        self.workflows = WorkflowRuns(self)  # workflow runs: their own module, same lifecycle

    # ---- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._saver = checkpoint_saver(self.db)
        async with self.db.write() as conn:
            interrupted = await run_store.interrupt_running(conn)
        for run_id in interrupted:
            run = await run_store.get(self.db, run_id)
            if run is not None:
                await self.publish(run, ev.RunInterrupted(run.id, run.thread_id))
        await self.workflows.start()  # approvals waiting with a timeout get their deadlines back
        self._loop_task = asyncio.create_task(self._scheduler(), name="run-scheduler")
        self.wake()

    async def stop(self) -> None:
        """On shutdown running runs become `interrupted` (resumable), not cancelled."""
        self._stopping = True
        self.workflows.stop()
        if self._loop_task:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in list(self.tasks.values()):
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def wake(self) -> None:
        self._wake.set()

    async def publish(self, run: run_store.Run, event: ev.Event) -> None:
        """The one place that knows a run event's topics: runs/{id}, threads/{id} for chat
        runs, and the owner's users/{id} for run.* (the services announce run.queued here too).
        A failed append is logged by the bus; the awaited topic raises it to the caller."""
        self._flush_deltas(run)  # streamed text always precedes the run's next event
        if event.type.startswith("run."):  # the owner's one topic for all their runs' statuses
            self.bus.publish_nowait(f"users/{run.owner_id}", event)
        if run.thread_id is None:  # a workflow run has no thread
            await self.bus.publish(f"runs/{run.id}", event)
            return
        self.bus.publish_nowait(f"runs/{run.id}", event)
        await self.bus.publish(f"threads/{run.thread_id}", event)

    def _stream(self, run: run_store.Run, text: str) -> None:
        """Stream a piece of the reply. Adaptive coalescing: a piece goes out at once when
        the run's previous delta is already durable; otherwise it waits, joined with the
        others that arrive meanwhile, and goes out as one delta when that append lands.
        No added latency when tokens are slow; one event instead of hundreds when the
        provider sends faster than the event log commits."""
        live = self.live[run.id]
        live.partial.append(text)
        if live.inflight is not None and not live.inflight.done():
            live.pending.append(text)
            return
        self._send_delta(run, live, text)

    def _send_delta(self, run: run_store.Run, live: _Live, text: str) -> None:
        """Deltas are not awaited: the bus keeps their order and batches them, and the
        run's next awaited event is appended after them."""
        event = ev.MessageDelta(run.id, run.thread_id, text)
        self.bus.publish_nowait(f"runs/{run.id}", event)
        live.inflight = self.bus.publish_nowait(f"threads/{run.thread_id}", event)
        live.inflight.add_done_callback(lambda _: self._drain(run, live))

    def _drain(self, run: run_store.Run, live: _Live) -> None:
        if live.pending and self.live.get(run.id) is live:
            text = "".join(live.pending)
            live.pending.clear()
            self._send_delta(run, live, text)

    def _flush_deltas(self, run: run_store.Run) -> None:
        live = self.live.get(run.id)
        if live is not None and live.pending:
            text = "".join(live.pending)
            live.pending.clear()
            self._send_delta(run, live, text)

    # ---- scheduling -------------------------------------------------------------

    async def _scheduler(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._schedule()
            except Exception:
                log.exception("scheduling failed")

    async def _schedule(self) -> None:
        if len(self.tasks) >= self.settings.runs_max_concurrent:
            return
        waiting = [r for r in await run_store.queued(self.db) if r.id not in self.tasks]
        by_user: dict[str, list[run_store.Run]] = {}
        for run in waiting:
            by_user.setdefault(run.owner_id, []).append(run)
        # Round robin: the user served longest ago goes first; one run per user per pass.
        users = sorted(by_user, key=lambda u: self._last_served.get(u, 0.0))
        progress = True
        while progress and len(self.tasks) < self.settings.runs_max_concurrent:
            progress = False
            for user in users:
                queue = by_user[user]
                if not queue or self.per_user[user] >= self.settings.runs_max_per_user:
                    continue
                if len(self.tasks) >= self.settings.runs_max_concurrent:
                    break
                self._launch(queue.pop(0))
                self._last_served[user] = asyncio.get_running_loop().time()
                progress = True

    def _launch(self, run: run_store.Run, *, resume: Any = None, resumed: bool = False) -> None:
        self.per_user[run.owner_id] += 1
        self.live[run.id] = _Live(run)
        task = asyncio.create_task(self._supervise(run, resume=resume, resumed=resumed), name=f"run-{run.id}")
        self.tasks[run.id] = task

        def done(_: asyncio.Task) -> None:
            self.tasks.pop(run.id, None)
            self.live.pop(run.id, None)
            self.per_user[run.owner_id] -= 1
            self.wake()
        task.add_done_callback(done)

    # ---- control from the API ------------------------------------------------

    async def cancel(self, run: run_store.Run) -> bool:
        """Cancel a queued, running or waiting run. False when it already finished."""
        task = self.tasks.get(run.id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return True
        async with self.db.write() as conn:
            current = await run_store.get_in(conn, run.id)
            if current is None or current.status not in ("queued", "waiting_for_input", "interrupted"):
                return False
            await run_store.set_status(conn, run.id, "cancelled", finished=True)
            await run_store.steps_ended(conn, run.id, "cancelled")  # a workflow's waiting approval
            await run_store.drop_checkpoints(conn, f"run:{run.id}")
        await self.publish(run, ev.RunCancelled(run.id, run.thread_id))
        return True

    async def resume(self, run: run_store.Run, answer: str | None) -> None:
        """Resume an interrupted run, or a waiting one with the human's answer."""
        async with self.db.write() as conn:
            await run_store.set_status(conn, run.id, "running", started=True)
        fresh = await run_store.get(self.db, run.id)
        assert fresh is not None
        self._launch(fresh, resume=answer, resumed=True)

    # ---- executing a run -------------------------------------------------------

    async def _supervise(self, run: run_store.Run, *, resume: Any, resumed: bool) -> None:
        if run.kind == "workflow":  # the one dispatch: workflow runs live in workflow_run.py
            await self.workflows.supervise(run, resume=resume, resumed=resumed)
            return
        try:
            async with asyncio.timeout(self.settings.run_timeout_seconds):
                await self._execute(run, resume=resume, resumed=resumed)
        except asyncio.CancelledError:
            if self._stopping:
                await asyncio.shield(self._finish_interrupted(run))
            else:
                await asyncio.shield(self._finish_cancelled(run))
            raise
        except BaseException as exc:  # every failure ends as a failed row with a reason
            failure = failure_of(exc)
            if failure.code == "internal_error":
                log.exception("run failed", extra={"run_id": run.id})
            else:
                log.warning("run failed", extra={"run_id": run.id, "code": failure.code})
            await asyncio.shield(self._finish_failed(run, failure))

    async def _budget_left(self, run: run_store.Run) -> None:
        budget = await run_store.budget_of(self.db, run.owner_id)
        if budget is None:
            budget = self.settings.daily_token_budget
        if budget and await run_store.tokens_today(self.db, run.owner_id) >= budget:
            raise RunFailure("budget_exceeded", f"the daily budget of {budget} tokens is used up")

    async def _execute(self, run: run_store.Run, *, resume: Any, resumed: bool) -> None:
        version = await agent_store.version(self.db, run.agent_id, run.agent_version)
        if version is None:
            raise RunFailure("agent_missing", "the agent version this run uses no longer exists")
        provider = self.providers.get(version.provider)
        if provider is None:
            raise RunFailure("provider_not_configured",
                             f"no model provider named {version.provider!r} is configured; add it to "
                             "AGENTSTEAD_LLM_PROVIDERS (see README, Models)")
        await self._budget_left(run)
        # The hot path's transactions are single round trips (Database.transact).
        await self.db.transact(execute_statements, [run_store.status_statement(run.id, "running", started=True)]
                               + ([] if resumed else [run_store.count_run_statement(run)]))
        await self.publish(run, ev.RunStarted(run.id, run.thread_id, resumed))

        graph = self._graph(version, provider)
        ctx = ToolContext(allowed_hosts=self.settings.http_get_allowed_hosts)
        allowed = set(version.tools)
        config = {"configurable": {"thread_id": f"run:{run.id}",
                                   _EXECUTE_TOOL: lambda call: self._tool(run, call, ctx, allowed)},
                  "recursion_limit": version.max_steps * 2 + 1}

        history = await thread_store.messages(self.db, run.thread_id)
        known = {m.id for m in history}
        if resume is not None:
            graph_input: Any = Command(resume=resume)
        elif resumed and (await graph.aget_state(config)).values:
            await self._settle_unverified(run, graph, config)
            graph_input = None  # continue from the checkpoint
        else:
            upto = next((i for i, m in enumerate(history) if m.id == run.input_message_id), len(history) - 1)
            graph_input = {"messages": [_to_langchain(m) for m in history[: upto + 1]]}

        live = self.live[run.id]
        async for mode, chunk in graph.astream(graph_input, config, stream_mode=["messages", "updates"]):
            if mode == "messages":
                piece, meta = chunk
                if isinstance(piece, AIMessageChunk) and meta.get("langgraph_node") == "agent":
                    text = _text(piece.content)
                    if text:
                        self._stream(run, text)
            elif "__interrupt__" in chunk:
                question = str(chunk["__interrupt__"][0].value.get("question", ""))
                async with self.db.write() as conn:
                    await run_store.set_status(conn, run.id, "waiting_for_input", waiting_prompt=question)
                await self.publish(run, ev.RunWaiting(run.id, run.thread_id, question))
                return
            else:
                for update in chunk.values():
                    for message in (update or {}).get("messages", []):
                        await self._store(run, message, known)
                live.partial.clear()

        state = await graph.aget_state(config)
        for message in state.values.get("messages", []):  # reconcile: nothing streamed is lost
            await self._store(run, message, known)
        await self.db.transact(execute_statements, [
            run_store.status_statement(run.id, "succeeded", finished=True),
            *run_store.drop_checkpoints_statements(f"run:{run.id}"),
            self._compact_statement(run)])
        done = await run_store.get(self.db, run.id)
        await self.publish(run, ev.RunSucceeded(run.id, run.thread_id, done.prompt_tokens, done.completion_tokens))

    def _graph(self, version, provider: dict):
        """The compiled graph of an agent version on a provider, built once: compiling
        costs ~1 ms and the model client ~3.6 ms of CPU. Graphs hold no run state (the
        checkpointer keys it by run, the tool executor comes with each run's config)."""
        key = graphs.version_key(version, provider)
        graph = self._graphs.get(key)
        if graph is None:
            graph = graphs.for_version(version, provider, max_retries=self.settings.llm_max_retries,
                                       execute_tool=_execute_tool_of_run, checkpointer=self._saver)
            if len(self._graphs) >= 256:
                self._graphs.pop(next(iter(self._graphs)))
            self._graphs[key] = graph
        return graph

    async def _compact(self, conn, run: run_store.Run) -> None:
        """Deltas of a finished run are redundant once its messages are stored and announced;
        a client replaying later gets message.created with the complete text instead.
        Done in the transaction that finishes the run, so a finished run never has deltas."""
        await conn.execute(*self._compact_statement(run))

    @staticmethod
    def _compact_statement(run: run_store.Run):
        return event_store.compact_deltas_statement(run.id, (f"runs/{run.id}", f"threads/{run.thread_id}"))

    async def _store(self, run: run_store.Run, message: BaseMessage, known: set[str]) -> None:
        """Store a message of the run once (ids are stable across checkpoint and resume)."""
        message_id = str(uuid.uuid5(_NS, f"{run.id}/{message.id}")) if message.id else None
        if message.id in known or message_id in known or isinstance(message, HumanMessage):
            return
        known.add(message_id)
        if isinstance(message, AIMessage):
            calls = [{"id": c["id"], "name": c["name"], "args": c["args"]} for c in message.tool_calls] or None
            usage = message.usage_metadata or {}
            async with self.db.write() as conn:
                stored = await thread_store.add_run_message(conn, message_id, run.thread_id, run.id, "assistant", _text(message.content), tool_calls=calls)
                await run_store.add_usage(conn, run, usage.get("input_tokens", 0), usage.get("output_tokens", 0))
        elif isinstance(message, ToolMessage):
            async with self.db.write() as conn:
                stored = await thread_store.add_run_message(conn, message_id, run.thread_id, run.id, "tool", _text(message.content),
                                    tool_call_id=message.tool_call_id)
        else:
            return
        if stored is not None:
            await self.publish(run, ev.MessageCreated(run.id, run.thread_id, message_json(stored)))

    async def _tool(self, run: run_store.Run, call: dict, ctx: ToolContext, allowed: set[str]) -> ToolMessage:
        call_id, name, args = call["id"], call["name"], call.get("args") or {}
        previous = await run_store.tool_call(self.db, call_id)
        if previous is not None and previous["status"] in ("finished", "failed", "unverified"):
            # Re-entry after a resume: never run a tool twice.
            result = previous["result"] or ("unverified: the server stopped while this tool was running; "
                                             "it was not run again")
            return ToolMessage(result, tool_call_id=call_id, name=name)
        if name == ASK_HUMAN:
            question = str(args.get("question", "")) if isinstance(args, dict) else ""
            answer = interrupt({"question": question})
            async with self.db.write() as conn:
                await run_store.tool_started(conn, call_id, run.id, name, args)
                await run_store.tool_finished(conn, call_id, str(answer), True)
            await self.publish(run, ev.ToolResult(run.id, run.thread_id, call_id, name, True, str(answer)))
            return ToolMessage(str(answer), tool_call_id=call_id, name=name)
        tool = REGISTRY.get(name)
        async with self.db.write() as conn:
            await run_store.tool_started(conn, call_id, run.id, name, args if isinstance(args, dict) else {})
        await self.publish(run, ev.ToolCalled(run.id, run.thread_id, call_id, name,
                                               args if isinstance(args, dict) else {}))
        if tool is None or tool.name not in allowed:
            ok, output = False, f"error: no tool named {name!r} is available to this agent"
        else:
            ok, output = await run_tool(tool, args, ctx, self.settings.tool_timeout_seconds)
        async with self.db.write() as conn:
            await run_store.tool_finished(conn, call_id, output, ok)
        await self.publish(run, ev.ToolResult(run.id, run.thread_id, call_id, name, ok, output))
        return ToolMessage(output, tool_call_id=call_id, name=name, status="success" if ok else "error")

    async def _settle_unverified(self, run: run_store.Run, graph, config: dict) -> None:
        """A tool call in flight at the crash gets an 'unverified' result instead of running again."""
        unverified = await run_store.unverified_calls(self.db, run.id)
        state = await graph.aget_state(config)
        pending = state.values["messages"][-1] if state.values.get("messages") else None
        if not unverified or not isinstance(pending, AIMessage) or not pending.tool_calls:
            return
        by_id = {u["id"] for u in unverified}
        results = [ToolMessage("unverified: the server stopped while this tool was running; it was not run again",
                               tool_call_id=c["id"], name=c["name"], status="error")
                   for c in pending.tool_calls if c["id"] in by_id]
        if len(results) == len(pending.tool_calls):
            await graph.aupdate_state(config, {"messages": results}, as_node="tools")

    async def _finish_cancelled(self, run: run_store.Run) -> None:
        stored = None
        async with self.db.write() as conn:
            stored = await self._keep_partial(conn, run)
            await run_store.set_status(conn, run.id, "cancelled", finished=True)
            await run_store.drop_checkpoints(conn, f"run:{run.id}")
            await self._compact(conn, run)
        if stored is not None:
            await self.publish(run, ev.MessageCreated(run.id, run.thread_id, message_json(stored)))
        await self.publish(run, ev.RunCancelled(run.id, run.thread_id))

    async def _keep_partial(self, conn, run: run_store.Run) -> thread_store.Message | None:
        """What was streamed before a cancel or failure, stored and marked partial."""
        live = self.live.get(run.id)
        partial = "".join(live.partial) if live else ""
        if not partial:
            return None
        return await thread_store.add_run_message(conn, str(uuid.uuid4()), run.thread_id, run.id, "assistant",
                                                  partial, partial=True)

    async def _finish_interrupted(self, run: run_store.Run) -> None:
        async with self.db.write() as conn:
            await run_store.set_status(conn, run.id, "interrupted",
                                       error=("interrupted", "the server stopped while this run was running; resume it"))
        await self.publish(run, ev.RunInterrupted(run.id, run.thread_id))

    async def _finish_failed(self, run: run_store.Run, failure: RunFailure) -> None:
        async with self.db.write() as conn:
            stored = await self._keep_partial(conn, run)
            await run_store.set_status(conn, run.id, "failed", error=(failure.code, failure.message), finished=True)
            await self._compact(conn, run)
        if stored is not None:
            await self.publish(run, ev.MessageCreated(run.id, run.thread_id, message_json(stored)))
        await self.publish(run, ev.RunFailed(run.id, run.thread_id, failure.code, failure.message))
