"""The small protocol a kind of run implements, and what the runner lends it.

The runner (runner.py) owns the lifecycle of every run: queueing, admission,
the start transaction, supervision (time limit, cancel, failure), the endings
(retried until written: endings.py), leases, cancel, resume and recovery. A kind
of run (chat_run.py, workflow_run.py) says only what differs: what it reads
before it starts, what its start and its resume add to their transactions, how
it executes, how it ends. It gets the runner's services through a `Toolkit` and
never imports runner.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from typing import Any, Awaitable, Callable, Protocol

from ..agents.mcp_tools import McpTools
from ..bus import events as ev
from ..settings import Settings
from ..store import usage as usage_store
from ..store.db import Database
from ..store.runs import Lease, Run
from .failures import RunFailure
from .stream import Deltas
from .traced import Traces

Prepared = Any   # what a kind read before its start, handed to its execute


class RunKind(Protocol):
    eager: bool   # the transaction that queues a run of this kind may start it at once

    def prepare(self, conn: sqlite3.Connection, run: Run) -> Prepared:
        """Runs in a reader (or in the queueing transaction): what the run needs to start."""

    def refusal(self, run: Run, prepared: Prepared) -> RunFailure | None:
        """Why the run cannot start (it then fails with that reason), or None."""

    def started(self, conn: sqlite3.Connection, run: Run, *, resumed: bool, answered: bool) -> None:
        """What the kind adds to the start transaction (the runner sets it running)."""

    def resuming(self, conn: sqlite3.Connection, run: Run, answer: Any) -> list[ev.Event]:
        """What the kind adds to the resume transaction; the events that announce it."""

    async def start(self) -> None:
        """At the runner's start, after recovery (e.g. deadlines of waiting approvals)."""

    def stop(self) -> None:
        """At the runner's stop, first: take on nothing new (e.g. timers)."""

    async def drain(self) -> None:
        """At the runner's stop, once the runs' endings are written: what the kind put off
        (bounded by the shutdown grace)."""

    async def execute(self, run: Run, prepared: Prepared, *, resume: Any, resumed: bool) -> bool:
        """The run's work, after its start is written. True when it ended waiting for a person
        (its waiting state written); False when it is done (the runner writes its success)."""

    def ending(self, run: Run, status: str, failure: RunFailure | None) -> Callable[[], Awaitable[Any]]:
        """The write of the run's end (succeeded, failed, cancelled or interrupted) with its
        events, as a function endings.py tries until the database takes it: what the run kept
        in memory (its final reply, its journal) is captured now, so a late try still has it.
        Each try checks the run has not finished already."""

    def failure_of(self, exc: BaseException) -> RunFailure:
        """A clear reason for a failure of this kind of run."""

    def finished(self, run: Run) -> None:
        """The run's task is over: forget what was kept for it."""


def announce(run: Run, events: list[ev.Event]) -> list[tuple[tuple[str, ...], ev.Event]]:
    """The one place that knows a run event's topics: runs/{id}; threads/{id} for chat runs;
    and the owner's users/{id} for run.* (their one topic for all their runs' statuses)."""
    topics = (f"runs/{run.id}",) + ((f"threads/{run.thread_id}",) if run.thread_id is not None else ())
    return [((f"users/{run.owner_id}",) + topics if e.type.startswith("run.") else topics, e) for e in events]


@dataclasses.dataclass
class Toolkit:
    """What the runner lends the kinds of run."""
    db: Database
    settings: Settings
    providers: dict[str, dict]     # by name, each with its prompt budget default (context.py)
    deltas: Deltas
    lease: Callable[[], Lease]
    traces: Traces = dataclasses.field(default_factory=Traces)   # spans of runs, model and tool calls (tracing.py)
    mcp: McpTools | None = None    # MCP servers as a tool source (agents/mcp_tools.py)

    def write(self, run: Run, fn: Callable[..., Any] | None, *args,
              events: list[ev.Event] | Callable[[Any], list[ev.Event]] = (), **kwargs) -> asyncio.Future:
        """`fn(conn, *args, **kwargs)` and the run's `events` (or a function of fn's result giving
        them) in one transaction, after the run's streamed text."""
        self.deltas.flush(run)
        announced = (lambda result: announce(run, events(result))) if callable(events) else announce(run, events)
        return self.db.write(fn, *args, events=announced, **kwargs)

    async def check_budget(self, run: Run) -> None:
        """Raise `budget_exceeded` when the run's owner has used up today's tokens."""
        failure = over_budget(await self.db.read(usage_store.budget, run.owner_id,
                                                 self.settings.daily_token_budget))
        if failure is not None:
            raise failure


def end_event(run: Run, status: str, failure: RunFailure | None, tokens: tuple[int, int]) -> ev.Event:
    """The run.* event of a run's end."""
    if status == "succeeded":
        return ev.RunSucceeded(run.id, run.thread_id, *tokens)
    if status == "failed":
        return ev.RunFailed(run.id, run.thread_id, failure.code, failure.message)
    if status == "cancelled":
        return ev.RunCancelled(run.id, run.thread_id)
    return ev.RunInterrupted(run.id, run.thread_id)


def over_budget(budget: tuple[int, int]) -> RunFailure | None:
    """`budget_exceeded` when (tokens a day, 0 for none; used today) is used up."""
    if budget[0] and budget[1] >= budget[0]:
        return RunFailure("budget_exceeded", f"the daily budget of {budget[0]} tokens is used up")
    return None
