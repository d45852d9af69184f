"""Runs as supervised asyncio tasks.

Every run is a row before it is a task. A status change and the event that
announces it are one transaction (`Bus.commit`, the outbox), and so are a
stored message and its `message.created`. A global limit and a per-user limit
bound the tasks; the queue is served round-robin across users, oldest first.

Durability: a chat run's graph runs with LangGraph durability "exit" on a
thread the saver holds in memory. What a run has done is journalled in the
store as it happens: each model reply (with its tool calls) is stored before
any tool runs, each tool call is recorded started/finished around its
execution. A run that waits for a human writes LangGraph's exit checkpoint in
the transaction that marks it waiting, and resumes from it with the answer.
On startup, runs the rows say were running become `interrupted`; resume
rebuilds their state from the stored messages (the thread's history up to
the run's input plus what the run stored) and goes on from there: to the
model, or to the tools when the last reply called some. A tool call that
was in flight at the crash is recorded as unverified and not run again; a
finished one returns its stored result.
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
from ..store.db import Database, Statement, checkpoint_saver, execute_statements
from . import context
from . import graph as graphs
from .endings import Endings
from .failures import RunFailure, failure_of
from .watchdog import Leases
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
    sent_at: float = float("-inf")                 # loop time of the last delta (or of the start)
    timer: asyncio.TimerHandle | None = None       # a delta due when DELTA_GAP has passed
    final: tuple | None = None   # the final reply, stored with the run's end (Runner._store)


DELTA_GAP = 0.05   # seconds: at most one streamed delta per run per 50 ms (20 a second)
_EXECUTE_TOOL = "__agentstead_execute_tool"  # "__": never copied into checkpoint metadata


HISTORY_PAGE = 100     # messages read at a time, newest first, until the prompt budget is covered
HISTORY_MAX = 5000     # and never more than this many (a thread of empty messages)


def _history(conn, run: run_store.Run, tokens: int) -> list[thread_store.Message]:
    """The part of the run's thread its model calls can use: the newest messages up to its
    input that cover `tokens` (context.py), then what the run stored since. Indexed range
    reads: the cost follows the budget, not the thread's length."""
    upto = thread_store.seq_of_sync(conn, run.input_message_id) if run.input_message_id else None
    own = thread_store.run_messages_after_sync(conn, run.thread_id, upto, run.id) if upto is not None else []
    used = sum(context.estimate(m.content, m.tool_calls) for m in own)
    window: list[thread_store.Message] = []
    before = upto + 1 if upto is not None else None
    while used < tokens and len(window) < HISTORY_MAX:
        page = thread_store.newest_sync(conn, run.thread_id, before_seq=before, limit=HISTORY_PAGE)
        window += page
        used += sum(context.estimate(m.content, m.tool_calls) for m in page)
        if len(page) < HISTORY_PAGE:
            break
        before = page[-1].seq
    return window[::-1] + own


def _starting(conn, run: run_store.Run, default_budget: int, providers: dict):
    """Everything a chat run reads before it starts, in one hop to a reader."""
    version = agent_store.version_sync(conn, run.agent_id, run.agent_version)
    provider = providers.get(version.provider) if version is not None else None
    tokens = context.budget_of(provider, version.model, provider["context_default"]) if provider else 0
    return version, run_store.budget_sync(conn, run.owner_id, default_budget), _history(conn, run, tokens)


def why_not(version, providers: dict, budget: tuple[int, int]) -> RunFailure | None:
    """Why a chat run cannot start (the one rule, for the runner and for `start_in`):
    its agent version is gone, its provider is not configured, or the owner's daily
    budget (`budget` = (tokens a day, 0 for none; used today)) is used up."""
    if version is None:
        return RunFailure("agent_missing", "the agent version this run uses no longer exists")
    if version.provider not in providers:
        return RunFailure("provider_not_configured",
                          f"no model provider named {version.provider!r} is configured; add it to "
                          "AGENTSTEAD_LLM_PROVIDERS (see README, Models)")
    return over_budget(budget)


def over_budget(budget: tuple[int, int]) -> RunFailure | None:
    """`budget_exceeded` when (tokens a day, 0 for none; used today) is used up."""
    if budget[0] and budget[1] >= budget[0]:
        return RunFailure("budget_exceeded", f"the daily budget of {budget[0]} tokens is used up")
    return None


def start_in(conn, run: run_store.Run, default_budget: int, providers: dict, lease: run_store.Lease):
    """In the transaction that queues a run (Runner.reserve gave it a slot): start it there
    too when nothing stands in its way, and return what it read; None leaves it queued
    (the runner then starts it, or fails it with the reason, as any other)."""
    version, budget, history = _starting(conn, run, default_budget, providers)
    if why_not(version, providers, budget) is not None:
        return None
    execute_statements(conn, [run_store.status_statement(run.id, "running", started=True, lease=lease),
                              run_store.count_run_statement(run)])
    return version, budget, history


def _begin(conn, statements: list[Statement], queued_only: str | None) -> bool:
    """The start transaction; with `queued_only` (a run id) only a run still queued
    starts, so a run launched twice by a stale read runs once."""
    if queued_only is not None:
        if conn.execute("SELECT status FROM runs WHERE id = ?", (queued_only,)).fetchone()[0] != "queued":
            return False
    execute_statements(conn, statements)
    return True


def _store_message(conn, run: run_store.Run, message_id: str, role: str, content: str, tool_calls: list | None,
                   tool_call_id: str | None, usage: tuple[int, int]):
    """A run's message under its stable id and, for a model reply, its tokens; nothing
    when it is stored already."""
    stored = thread_store.add_message_sync(conn, run.thread_id, role, content, message_id=message_id, run_id=run.id,
                                           tool_calls=tool_calls, tool_call_id=tool_call_id)
    if stored is not None and any(usage):
        execute_statements(conn, run_store.usage_statements(run, *usage))
    return stored


def _end(conn, run: run_store.Run, statements: list[Statement], final: tuple | None,
         partial: str) -> tuple[bool, thread_store.Message | None]:
    """A run's last transaction: its final reply if it has one (see Runner._store), else
    what was streamed of an unfinished reply (stored and marked partial); the status,
    and whatever else ends it. Nothing, (False, None), when the run has finished already
    (a cancel or a shutdown that caught its last transaction in flight)."""
    if conn.execute("SELECT status FROM runs WHERE id = ?", (run.id,)).fetchone()[0] in run_store.FINISHED:
        return False, None
    stored = None
    if final is not None:
        stored = _store_message(conn, run, *final)
    elif partial:
        stored = thread_store.add_message_sync(conn, run.thread_id, "assistant", partial, message_id=str(uuid.uuid4()),
                                               run_id=run.id, partial=True)
    execute_statements(conn, statements)
    return True, stored


def _succeeded(conn, run: run_store.Run, statements: list[Statement], final: tuple | None):
    """`_end` for a run that succeeded, with its token counts for run.succeeded."""
    ended, stored = _end(conn, run, statements, final, "")
    return ended, stored, run_store.tokens_of_sync(conn, run.id)


def _resuming(conn, run_id: str, answer: str | None, lease: run_store.Lease) -> str | None:
    """A run resumes: back to running and, with a human's answer, the run's open
    `ask_human` call recorded as answered in the same transaction (the run finds it
    there, so an answer once acknowledged survives a crash before the run gets to it).
    Returns that call's id, or None."""
    execute_statements(conn, [run_store.status_statement(run_id, "running", started=True, lease=lease)])
    call = run_store.open_call_sync(conn, run_id, ASK_HUMAN) if answer is not None else None
    if call is None:
        return None
    execute_statements(conn, [run_store.tool_started_statement(call[0], run_id, ASK_HUMAN, call[1]),
                              run_store.tool_finished_statement(call[0], answer, True)])
    return call[0]


def _cancel_idle(conn, run_id: str) -> bool:
    """Cancel a run that has no task here: queued, waiting, interrupted, or running with its
    task gone (a row the watchdog would settle once its lease runs out). False when it
    has finished."""
    row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None or row[0] not in ("queued", "running", "waiting_for_input", "interrupted"):
        return False
    execute_statements(conn, [run_store.status_statement(run_id, "cancelled", finished=True),
                              run_store.steps_ended_statement(run_id, "cancelled"),   # a workflow's waiting approval
                              *run_store.drop_checkpoints_statements(f"run:{run_id}")])
    return True


def journal(run: run_store.Run, history: list[thread_store.Message]) -> list[thread_store.Message]:
    """Where a chat run stands by its stored messages: the thread up to the run's input,
    then what the run itself stored since (partial text is not part of it)."""
    upto = next((i for i, m in enumerate(history) if m.id == run.input_message_id), len(history) - 1)
    return history[: upto + 1] + [m for m in history[upto + 1:] if m.run_id == run.id and not m.partial]


def _execute_tool_of_run(call: dict):
    """The cached graphs are shared by runs; each run's tool executor rides in its config."""
    return get_config()["configurable"][_EXECUTE_TOOL](call)


class Runner:
    def __init__(self, db: Database, bus: Bus, settings: Settings):
        self.db = db
        self.bus = bus
        self.settings = settings
        # Each provider with the prompt budget for its models that set none (context.py).
        self.providers = {p["name"]: {**p, "context_default": settings.llm_context_tokens}
                          for p in settings.llm_providers}
        self.tasks: dict[str, asyncio.Task] = {}
        self.live: dict[str, _Live] = {}
        self.per_user: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._saver = None
        self._last_served: dict[str, float] = {}
        self._stopping = False
        self._graphs: dict[tuple, Any] = {}   # compiled agent graphs by version and provider
        self._backlog = True   # runs may be queued that the scheduler has not launched
        self._reserved = 0     # slots held for runs being queued (reserve)
        self.workflows = WorkflowRuns(self)  # workflow runs: their own module, same lifecycle
        self.endings = Endings()     # runs' last transactions, kept until written (endings.py)
        self.leases = Leases(self, settings.run_lease_seconds)   # and the watchdog (watchdog.py)

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
        self.endings.start()
        self.db.health.on_recovery(self.endings.wake)   # writes work again: kept endings go now
        self.leases.start()
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
        await self.leases.stop()
        await self.endings.stop()   # endings still unwritten: their rows say running; the next start interrupts them

    def wake(self) -> None:
        self._wake.set()

    def announce(self, run: run_store.Run, events: list[ev.Event]) -> list[tuple[str, ev.Event]]:
        """The one place that knows a run event's topics: the owner's users/{id} for run.*
        (their one topic for all their runs' statuses), runs/{id}, and threads/{id} for
        chat runs."""
        out = []
        for event in events:
            if event.type.startswith("run."):
                out.append((f"users/{run.owner_id}", event))
            out.append((f"runs/{run.id}", event))
            if run.thread_id is not None:   # a workflow run has no thread
                out.append((f"threads/{run.thread_id}", event))
        return out

    async def commit(self, run: run_store.Run, fn, *args, events) -> Any:
        """`fn(conn, *args)` (or nothing, when fn is None) and the run's `events` (a list,
        or a function of fn's result) in one transaction, after the run's streamed text."""
        self._flush_deltas(run)  # streamed text always precedes the run's next event
        if callable(events):
            announced: Any = lambda result: self.announce(run, events(result))
        else:
            announced = self.announce(run, events)
        return await self.bus.commit(fn, *args, events=announced)

    async def queue(self, fn, *args) -> run_store.Run:
        """`fn(conn, *args)` writes a queued run and returns it; the run and its run.queued
        are one transaction (what a crash leaves is both or neither)."""
        return await self.bus.commit(fn, *args, events=lambda run: self.announce(
            run, [ev.RunQueued(run.id, run.thread_id, run.agent_id)]))

    async def publish(self, run: run_store.Run, event: ev.Event) -> None:
        """Announce a run event (durable once this returns). A failed append is logged by
        the bus and raised here."""
        await self.commit(run, None, events=[event])

    def _stream(self, run: run_store.Run, text: str) -> None:
        """Stream a piece of the reply. Coalescing: a piece goes out at once when the run's
        previous delta is durable and at least DELTA_GAP ago (the run's start counts as
        one); otherwise it waits, joined with the pieces that arrive meanwhile, and goes
        out when the gap has passed or with the run's next event. Tokens slower than one
        per DELTA_GAP go out one per delta with no added latency; a provider that sends
        hundreds a second costs a delta per DELTA_GAP, not hundreds of appends competing
        with the stream (measured: bench/RESULTS.md, Runs). A model that answers within
        DELTA_GAP of the start shows its first text at most DELTA_GAP late."""
        live = self.live[run.id]
        live.partial.append(text)
        live.pending.append(text)
        self._pump(run, live)

    def _pump(self, run: run_store.Run, live: _Live) -> None:
        if (not live.pending or live.timer is not None or self.live.get(run.id) is not live
                or (live.inflight is not None and not live.inflight.done())):
            return
        loop = asyncio.get_running_loop()
        wait = live.sent_at + DELTA_GAP - loop.time()
        if wait > 0:
            live.timer = loop.call_later(wait, self._tick, run, live)
            return
        self._send_delta(run, live)

    def _tick(self, run: run_store.Run, live: _Live) -> None:
        live.timer = None
        self._pump(run, live)

    def _send_delta(self, run: run_store.Run, live: _Live) -> None:
        """Deltas are not awaited: the bus keeps their order and batches them, and the
        run's next event is appended after them."""
        if live.timer is not None:
            live.timer.cancel()
            live.timer = None
        event = ev.MessageDelta(run.id, run.thread_id, "".join(live.pending))
        live.pending.clear()
        live.sent_at = asyncio.get_running_loop().time()
        live.inflight = self.bus.publish_nowait((f"runs/{run.id}", f"threads/{run.thread_id}"), event)
        live.inflight.add_done_callback(lambda _: self._pump(run, live))

    def _flush_deltas(self, run: run_store.Run) -> None:
        live = self.live.get(run.id)
        if live is not None and live.pending:
            self._send_delta(run, live)

    # ---- scheduling -------------------------------------------------------------

    async def _scheduler(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._schedule()
            except Exception:
                log.exception("scheduling failed")

    def _room(self, owner_id: str) -> bool:
        """A slot is free for this owner: under the global limit, counting the slots held
        for runs being queued, and under the per-user one (which counts them too)."""
        return (len(self.tasks) + self._reserved < self.settings.runs_max_concurrent
                and self.per_user[owner_id] < self.settings.runs_max_per_user)

    def reserve(self, owner_id: str) -> bool:
        """A slot for a run about to be queued, so that the transaction that queues it can
        start it as well (`start_in`); give it back with `unreserve` if it does not."""
        if self._backlog or self._stopping or not self._room(owner_id):
            return False
        self._reserved += 1
        self.per_user[owner_id] += 1
        return True

    def unreserve(self, owner_id: str) -> None:
        self._reserved -= 1
        self.per_user[owner_id] -= 1

    def launch_started(self, run: run_store.Run, started) -> None:
        """A run its queuing transaction started (`start_in`), on its reserved slot."""
        self.unreserve(run.owner_id)
        self._launch(run, started=started)

    def submit(self, run: run_store.Run) -> None:
        """A run just queued: it starts now when no queued run is waiting before it and the
        limits allow (no read of the queue); otherwise the scheduler takes it in turn."""
        if not self._backlog and not self._stopping and run.id not in self.tasks and self._room(run.owner_id):
            self._launch(run)
            return
        self.wake()

    async def _schedule(self) -> None:
        if len(self.tasks) + self._reserved >= self.settings.runs_max_concurrent:
            self._backlog = True
            return
        self._backlog = True   # until this pass has seen the queue
        rows = await run_store.queued(self.db)
        waiting = [r for r in rows if r.id not in self.tasks]
        by_user: dict[str, list[run_store.Run]] = {}
        for run in waiting:
            by_user.setdefault(run.owner_id, []).append(run)
        # Round robin: the user served longest ago goes first; one run per user per pass.
        users = sorted(by_user, key=lambda u: self._last_served.get(u, 0.0))
        progress = True
        while progress:
            progress = False
            for user in users:
                queue = by_user[user]
                if queue and self._room(user):
                    self._launch(queue.pop(0))
                    progress = True
        self._backlog = any(by_user.values()) or len(rows) >= run_store.QUEUE_PAGE

    def _launch(self, run: run_store.Run, *, resume: Any = None, resumed: bool = False, started=None) -> None:
        self.per_user[run.owner_id] += 1
        self._last_served[run.owner_id] = asyncio.get_running_loop().time()   # the round robin's order
        self.live[run.id] = _Live(run, sent_at=asyncio.get_running_loop().time())
        task = asyncio.create_task(self._supervise(run, resume=resume, resumed=resumed, started=started),
                                   name=f"run-{run.id}")
        self.tasks[run.id] = task

        def done(_: asyncio.Task) -> None:
            self.tasks.pop(run.id, None)
            live = self.live.pop(run.id, None)
            if live is not None and live.timer is not None:
                live.timer.cancel()
            self.per_user[run.owner_id] -= 1
            self.wake()
        task.add_done_callback(done)

    # ---- control from the API ------------------------------------------------

    async def cancel(self, run: run_store.Run) -> bool:
        """Cancel a run in any state but a final one: queued, running (with its task here or
        not), waiting or interrupted. False when it had finished. A run whose task ended
        but whose end is not written yet (endings.py) gets that end written now instead:
        it had finished; a database that still refuses it raises."""
        if await self.endings.settle_now(run.id):
            return True
        task = self.tasks.get(run.id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return True
        # No task: the status check and the change are one transaction (_cancel_idle).
        cancelled = await self.commit(run, _cancel_idle, run.id,
                                      events=lambda ok: [ev.RunCancelled(run.id, run.thread_id)] if ok else [])
        task = self.tasks.get(run.id)
        if cancelled and task is not None:   # the scheduler launched it meanwhile: stop that too
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return cancelled

    async def resume(self, run: run_store.Run, answer: Any) -> run_store.Run:
        """Resume an interrupted run, or a waiting one with the human's answer (a chat
        run's answer is durable, as its question's result, when this returns). Returns
        the run as its resume left it."""
        text = answer if run.kind != "workflow" and isinstance(answer, str) else None
        await self.commit(run, _resuming, run.id, text, self.leases.lease(),
                          events=lambda call: [ev.ToolResult(run.id, run.thread_id, call, ASK_HUMAN, True, text)]
                          if call else [])
        fresh = await run_store.get(self.db, run.id)
        assert fresh is not None
        self._launch(fresh, resume=answer, resumed=True)
        return fresh

    # ---- executing a run -------------------------------------------------------

    async def _supervise(self, run: run_store.Run, *, resume: Any, resumed: bool, started=None) -> None:
        if run.kind == "workflow":  # the one dispatch: workflow runs live in workflow_run.py
            await self.workflows.supervise(run, resume=resume, resumed=resumed)
            return
        try:
            async with asyncio.timeout(self.settings.run_timeout_seconds):
                await self._execute(run, resume=resume, resumed=resumed, started=started)
        except asyncio.CancelledError:
            # The endings are written whatever the database does (endings.py): tried here,
            # else kept and written by the settler; a second cancel leaves them to it.
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

    async def check_budget(self, run: run_store.Run) -> None:
        """Raise `budget_exceeded` when the run's owner has used up today's tokens (workflow
        runs check before each agent step; a chat run's start checks with why_not)."""
        failure = over_budget(await self.db.read_sync(run_store.budget_sync, run.owner_id,
                                                      self.settings.daily_token_budget))
        if failure is not None:
            raise failure

    async def _execute(self, run: run_store.Run, *, resume: Any, resumed: bool, started=None) -> None:
        """`started`: what the run's queuing transaction read when it also started the run."""
        version, budget, history = started or await self.db.read_sync(_starting, run, self.settings.daily_token_budget,
                                                                      self.providers)
        failure = why_not(version, self.providers, budget)
        if failure is not None:
            raise failure
        provider = self.providers[version.provider]
        thread = f"run:{run.id}"
        if resume is not None:   # a waiting run: on from its checkpoint with the human's answer
            graph_input: Any = Command(resume=resume)
            known = {m.id for m in history}
        else:                    # a new run, or one cut off: from its stored messages
            messages = journal(run, history)
            known = {m.id for m in messages}
            graph_input = {"messages": [_to_langchain(m) for m in messages]}
            last = messages[-1] if messages else None
            if resumed and last is not None and last.run_id == run.id and last.role == "assistant" \
                    and not last.tool_calls:   # the reply was stored; only the run's end was cut off
                graph_input = None
        if started is None:      # not started by its queuing transaction: start it here
            statements = [run_store.status_statement(run.id, "running", started=True, lease=self.leases.lease())]
            if not resumed:
                statements.append(run_store.count_run_statement(run))
            elif resume is None:  # rebuilt from its messages: an older checkpoint must not be read
                statements += run_store.drop_checkpoints_statements(thread)
            if not await self.commit(run, _begin, statements, None if resumed else run.id,
                                     events=lambda ok: [ev.RunStarted(run.id, run.thread_id, resumed)] if ok else []):
                return   # launched twice: the other launch runs it
        if graph_input is not None and await self._run_graph(run, version, provider, thread, graph_input,
                                                             fresh=resume is None, known=known):
            return       # waiting for a human
        live = self.live[run.id]
        final, live.final = live.final, None
        statements = [run_store.status_statement(run.id, "succeeded", finished=True),
                      *run_store.drop_checkpoints_statements(thread), self._compact_statement(run)]
        await self.endings.write(run.id, lambda: self.commit(
            run, _succeeded, run, statements, final,
            events=lambda result: self._created(run, result[1])
            + [ev.RunSucceeded(run.id, run.thread_id, *result[2])] if result[0] else []))

    async def _run_graph(self, run: run_store.Run, version, provider: dict, thread: str, graph_input: Any, *,
                         fresh: bool, known: set[str]) -> bool:
        """The agent's graph, streamed: text as deltas, each finished message stored (with
        its event) before the graph goes on. True when it ended with the run waiting for
        a human (its question asked, its checkpoint written)."""
        graph = self._graph(version, provider)
        ctx = ToolContext(allowed_hosts=self.settings.http_get_allowed_hosts)
        allowed = set(version.tools)
        config = {"configurable": {"thread_id": thread,
                                   _EXECUTE_TOOL: lambda call: self._tool(run, call, ctx, allowed)},
                  "recursion_limit": version.max_steps * 2 + 1}
        live = self.live[run.id]
        question = None
        checkpointed = graph.checkpointer is not None
        if checkpointed:
            self._saver.hold(thread, fresh=fresh)
        try:
            async for mode, chunk in graph.astream(graph_input, config, stream_mode=["messages", "updates"],
                                                   durability="exit" if checkpointed else None):
                if mode == "messages":
                    piece, meta = chunk
                    if isinstance(piece, AIMessageChunk) and meta.get("langgraph_node") == "agent":
                        text = _text(piece.content)
                        if text:
                            self._stream(run, text)
                elif "__interrupt__" in chunk:
                    question = str(chunk["__interrupt__"][0].value.get("question", ""))
                else:
                    for update in chunk.values():
                        for message in (update or {}).get("messages", []):
                            await self._store(run, message, known)
                    live.partial.clear()
            if question is not None:   # the graph has exited: its checkpoint is held, and written now
                await self.commit(run, execute_statements,
                                  [run_store.status_statement(run.id, "waiting_for_input", waiting_prompt=question),
                                   *self._saver.release(thread)],
                                  events=[ev.RunWaiting(run.id, run.thread_id, question)])
            return question is not None
        finally:
            self._saver.drop(thread)

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
            graph = graphs.for_version(version, provider, max_retries=self.settings.llm_max_retries,
                                       timeout=self.settings.llm_timeout_seconds,
                                       execute_tool=_execute_tool_of_run,
                                       checkpointer=self._saver if ASK_HUMAN in version.tools else None,
                                       context_tokens=context.budget_of(provider, version.model,
                                                                        provider["context_default"]))
            if len(self._graphs) >= 256:
                self._graphs.pop(next(iter(self._graphs)))
            self._graphs[key] = graph
        return graph

    @staticmethod
    def _compact_statement(run: run_store.Run):
        return event_store.compact_deltas_statement(run.id)

    async def _store(self, run: run_store.Run, message: BaseMessage, known: set[str]) -> None:
        """Store a message of the run once (ids are stable across resume), with its event."""
        message_id = str(uuid.uuid5(_NS, f"{run.id}/{message.id}")) if message.id else None
        if message.id in known or message_id in known or isinstance(message, HumanMessage):
            return
        known.add(message_id)
        if isinstance(message, AIMessage):
            calls = [{"id": c["id"], "name": c["name"], "args": c["args"]} for c in message.tool_calls] or None
            usage = message.usage_metadata or {}
            row = ("assistant", _text(message.content), calls, None,
                   (usage.get("input_tokens", 0), usage.get("output_tokens", 0)))
        elif isinstance(message, ToolMessage):
            row = ("tool", _text(message.content), None, message.tool_call_id, (0, 0))
        else:
            return
        final = (message_id or str(uuid.uuid4()), *row)
        if row[0] == "assistant" and not row[2] and self.live[run.id].final is None:
            # A reply without tool calls ends the graph: it is stored with the run's end,
            # one transaction instead of two (and if the run fails first, then still).
            self.live[run.id].final = final
            return
        await self.commit(run, _store_message, run, *final, events=lambda stored: self._created(run, stored))

    async def _tool(self, run: run_store.Run, call: dict, ctx: ToolContext, allowed: set[str]) -> ToolMessage:
        call_id, name, args = call["id"], call["name"], call.get("args") or {}
        previous = await run_store.tool_call(self.db, call_id)
        if previous is not None and previous["status"] in ("finished", "failed", "unverified"):
            # Re-entry after a resume: never run a tool twice. A question the human answered
            # is here too: the resume's transaction recorded the answer (_resuming).
            result = previous["result"] or ("unverified: the server stopped while this tool was running; "
                                             "it was not run again")
            return ToolMessage(result, tool_call_id=call_id, name=name,
                               status="success" if previous["status"] == "finished" else "error")
        arguments = args if isinstance(args, dict) else {}
        if name == ASK_HUMAN:
            question = str(args.get("question", "")) if isinstance(args, dict) else ""
            answer = str(interrupt({"question": question}))
            await self.commit(run, execute_statements, [run_store.tool_started_statement(call_id, run.id, name, arguments),
                                                        run_store.tool_finished_statement(call_id, answer, True)],
                              events=[ev.ToolResult(run.id, run.thread_id, call_id, name, True, answer)])
            return ToolMessage(answer, tool_call_id=call_id, name=name)
        tool = REGISTRY.get(name)
        await self.commit(run, execute_statements, [run_store.tool_started_statement(call_id, run.id, name, arguments)],
                          events=[ev.ToolCalled(run.id, run.thread_id, call_id, name, arguments)])
        if tool is None or tool.name not in allowed:
            ok, output = False, f"error: no tool named {name!r} is available to this agent"
        else:
            ok, output = await run_tool(tool, args, ctx, self.settings.tool_timeout_seconds)
        await self.commit(run, execute_statements, [run_store.tool_finished_statement(call_id, output, ok)],
                          events=[ev.ToolResult(run.id, run.thread_id, call_id, name, ok, output)])
        return ToolMessage(output, tool_call_id=call_id, name=name, status="success" if ok else "error")

    async def _finish(self, run: run_store.Run, statements: list[Statement], event: ev.Event, *,
                      keep_partial: bool) -> None:
        """End a run that did not succeed: keep what was streamed (marked partial), set the
        status, announce both, in one transaction."""
        live = self.live.get(run.id)
        final = live.final if live else None
        partial = "".join(live.partial) if live and keep_partial else ""
        await self.endings.write(run.id, lambda: self.commit(
            run, _end, run, statements, final, partial,
            events=lambda ended: self._created(run, ended[1]) + [event] if ended[0] else []))

    @staticmethod
    def _created(run: run_store.Run, stored: thread_store.Message | None) -> list[ev.Event]:
        return [ev.MessageCreated(run.id, run.thread_id, message_json(stored))] if stored is not None else []

    async def _finish_cancelled(self, run: run_store.Run) -> None:
        await self._finish(run, [run_store.status_statement(run.id, "cancelled", finished=True),
                                 *run_store.drop_checkpoints_statements(f"run:{run.id}"),
                                 self._compact_statement(run)],
                           ev.RunCancelled(run.id, run.thread_id), keep_partial=True)

    async def _finish_interrupted(self, run: run_store.Run) -> None:
        await self._finish(run, [run_store.status_statement(
                               run.id, "interrupted",
                               error=("interrupted", "the server stopped while this run was running; resume it"))],
                           ev.RunInterrupted(run.id, run.thread_id), keep_partial=False)

    async def _finish_failed(self, run: run_store.Run, failure: RunFailure) -> None:
        await self._finish(run, [run_store.status_statement(run.id, "failed", error=(failure.code, failure.message),
                                                            finished=True),
                                 self._compact_statement(run)],
                           ev.RunFailed(run.id, run.thread_id, failure.code, failure.message), keep_partial=True)
