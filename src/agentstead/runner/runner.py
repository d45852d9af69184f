"""The run lifecycle, for every kind of run: queue, admit, start, supervise, end, cancel,
resume, recover.

Every run is a row before it is a task. A status change and the event that
announces it are one transaction (`Database.write`), and so is everything a run
stores with its event. A global limit and a per-user limit bound the tasks; the
queue is served round-robin across users, oldest first (admission.py). What a
kind of run does is its own (kinds.py: RunKind; chat_run.py, workflow_run.py);
services reach runs through three doors only: `submit`, `cancel`, `resume`.

Recovery: on startup, runs the rows say were running become `interrupted`; a
running row whose lease ran out (its task died without its end, or its process
vanished) is made interrupted by the watchdog (watchdog.py). The end of a run is
written whatever the database does meanwhile (endings.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from typing import Any, Callable

from ..agents.mcp_tools import McpTools
from ..bus import events as ev
from ..bus.bus import Bus
from ..errors import Refused
from ..settings import Settings
from ..store import runs as run_store
from ..store import steps as step_store
from ..store import checkpoints
from ..store import usage as usage_store
from ..store.runs import Run
from .admission import Admission
from .chat_run import ChatRuns
from .endings import Endings
from .failures import RunFailure
from .instances import LimitsReached, Siblings, check_limits
from .kinds import Prepared, RunKind, Toolkit, announce
from . import model_transport
from .stream import Deltas
from .traced import Traces
from .watchdog import Leases
from .workflow_run import WorkflowRuns

log = logging.getLogger("agentstead.runner")
Record = Callable[[sqlite3.Connection, Any], None]   # the request's Idempotency-Key, in the queueing transaction


def _recovery(settings: Settings, *, alone: bool) -> tuple:
    """The write that interrupts, at start, the runs this process's previous life left running:
    all of them when it is the only instance; with several, only its own (a dead sibling's are
    the watchdog's once their leases run out); none for an unnamed instance among several."""
    if alone:
        return (run_store.interrupt_running,)
    return (run_store.interrupt_running_of, f"{settings.instance}:") if settings.instance else ()


def _providers(settings: Settings) -> dict[str, dict]:
    """Each provider by name, with the prompt budget for its models that set none (context.py)."""
    return {p["name"]: {**p, "context_default": settings.llm_context_tokens} for p in settings.llm_providers}


def _handed(status: str, siblings: Siblings | None) -> RunFailure | None:
    """Stopping among several instances, a run is handed to the others (instances.py)."""
    return RunFailure(*run_store.HANDED_OVER) if status == "interrupted" and siblings is not None else None


def _unchanged(conn: sqlite3.Connection, run: Run) -> None:
    """In a resume transaction: the run is as it was read (not resumed or ended meanwhile, anywhere)."""
    if run_store.status_of(conn, run.id) != run.status:
        raise Refused(409, "not_resumable", "the run was resumed or ended meanwhile")


async def _cancelled(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class Runner:
    def __init__(self, bus: Bus, settings: Settings, mcp: McpTools | None = None, tracer=None):
        self.db = bus.db
        self.settings = settings
        self.tasks: dict[str, asyncio.Task] = {}
        self._wake = asyncio.Event()
        self.wake = self._wake.set   # the scheduler looks at the queue again
        self.endings = Endings()   # runs' last transactions, kept until written
        self.admission = Admission(settings.runs_max_concurrent, settings.runs_max_per_user)
        self.leases = Leases(self.db, self.endings, settings.run_lease_seconds,
                             lambda: set(self.tasks) | set(self.endings.pending), name=settings.instance)
        # Several instances on one database (instances.py): limits from the rows, remote cancels.
        self.siblings = Siblings(bus, self.tasks, self.wake, self.resume) if settings.nats_url else None
        self.limits = (settings.runs_max_concurrent, settings.runs_max_per_user) if self.siblings else None
        self.deltas = Deltas(bus)
        self.traces = Traces(tracer)   # tracing.py: None when tracing is off
        self.tools = Toolkit(self.db, settings, _providers(settings), self.deltas, self.leases.lease,
                             traces=self.traces, mcp=mcp)
        self.kinds: dict[str, RunKind] = {"chat": ChatRuns(self.tools), "workflow": WorkflowRuns(self.tools, self.endings)}
        self._scheduler: asyncio.Task | None = None

    # ---- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Recovery first: runs the rows say were running did not finish (interrupted)."""
        if self.siblings is not None:
            self.siblings.start()
        recover = _recovery(self.settings, alone=self.siblings is None)
        if recover:
            await self.db.write(*recover, events=lambda runs: [
                pair for run in runs for pair in announce(run, [ev.RunInterrupted(run.id, run.thread_id)])])
        for kind in self.kinds.values():
            await kind.start()
        self.endings.start()
        self.db.health.on_recovery(self.endings.wake)   # writes work again: kept endings go now
        self.leases.start()
        self._scheduler = asyncio.create_task(self._schedule_forever(), name="run-scheduler")
        self.wake()

    async def stop(self) -> None:
        """On shutdown running runs become `interrupted` (resumable), not cancelled."""
        self.admission.closed = True
        if self.siblings is not None:
            self.siblings.stop()
        for kind in self.kinds.values():
            kind.stop()
        await _cancelled([self._scheduler] if self._scheduler is not None else [])   # first: it launches no more
        await _cancelled(list(self.tasks.values()))
        await self.leases.stop()
        await self.endings.stop()   # endings still unwritten: their rows say running; the next start interrupts them
        for kind in self.kinds.values():
            await kind.drain()   # e.g. the finished runs' deltas (compaction.py)
        await model_transport.TRANSPORT.aclose()   # the model clients' pooled connections

    # ---- the doors: submit, cancel, resume ------------------------------------------

    async def submit(self, owner_id: str, create: Callable[[sqlite3.Connection], Run],
                     record: Record | None = None, before: Callable[[Run], list] | None = None) -> Run:
        """A new run: `create(conn)` writes its queued row, in one transaction with run.queued
        (and `record`). When a slot is free and nobody is queued before it, a kind that allows
        it starts in that same transaction (run.started); else the scheduler takes it in turn.
        `before(run)`: (topics, event) pairs of what `create` changed, announced first."""
        reserved = self.admission.reserve(owner_id)
        lease = self.leases.lease() if reserved else None

        def queue(conn: sqlite3.Connection) -> tuple[Run, Prepared | None]:
            run = create(conn)
            prepared = self._start_in(conn, run, lease) if reserved else None
            if prepared is not None:
                run = dataclasses.replace(run, status="running", started_at=run.created_at)
            if record is not None:
                record(conn, run)
            return run, prepared

        def events(result: tuple[Run, Prepared | None]) -> list:
            run, prepared = result
            first = list(before(run)) if before is not None else []
            return first + announce(run, [ev.RunQueued(run.id, run.thread_id, run.agent_id)]
                            + ([ev.RunStarted(run.id, run.thread_id, False)] if prepared is not None else []))
        try:
            run, prepared = await self.db.write(queue, events=events)
        finally:
            if reserved:
                self.admission.unreserve(owner_id)
        self.traces.submitted(run.id)   # its span is a child of this request's, whenever it starts
        if prepared is not None:
            self.launch(run, started=prepared)
        elif self.admission.may_start_now(run.owner_id) and run.id not in self.tasks:
            self.launch(run)   # no read of the queue: nobody waits before it
        else:
            self.wake()
        return run

    async def cancel(self, run: Run) -> Run:
        """Cancel a run in any state but a final one: queued, running (with its task here or
        not), waiting or interrupted. A run whose task ended but whose end is not written yet
        (endings.py) gets that end written now instead: it had finished."""
        if run.status not in run_store.ACTIVE + ("interrupted",):
            raise Refused(409, "run_finished", f"the run is already {run.status}")
        if not await self.endings.settle_now(run.id):   # raises while the database refuses it
            await self._cancel(run)
        if run.id in self.endings.pending:
            raise Refused(503, "database_unavailable", "the run has stopped; the database could not record it "
                          "yet and it will as soon as writes work again")
        return await self.db.read(run_store.get, run.id)

    async def _cancel(self, run: Run) -> None:
        task = self.tasks.get(run.id)
        if task is None:   # no task here: the status check and the change are one transaction
            await self.db.write(_cancel_idle, run.id, events=lambda ok: announce(
                run, [ev.RunCancelled(run.id, run.thread_id)]) if ok else [])
            task = self.tasks.get(run.id)   # the scheduler launched it meanwhile: stop that too
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def resume(self, run: Run, answer: Any) -> Run:
        """Resume an interrupted run, or a waiting one with the person's answer (a chat run's
        answer is durable, as its question's result, when this returns). Returns the run as
        its resume left it."""
        if run.status not in ("interrupted", "waiting_for_input"):
            raise Refused(409, "not_resumable", f"only interrupted or waiting runs resume (this one is {run.status})")
        task = self.tasks.get(run.id)
        if task is not None:
            # The task that recorded "waiting" may still be wrapping up; it ends on its own.
            try:
                async with asyncio.timeout(5):
                    await asyncio.shield(task)
            except Exception:   # TimeoutError among them
                raise Refused(409, "not_resumable", "the run is still running") from None
        kind = self.kinds[run.kind]

        def resuming(conn: sqlite3.Connection) -> list[ev.Event]:
            _unchanged(conn, run)
            run_store.set_status(conn, run.id, "running", started=True, lease=self.leases.lease())
            return kind.resuming(conn, run, answer)
        await self.tools.write(run, resuming, events=lambda announced: announced)
        fresh = await self.db.read(run_store.get, run.id)
        self.launch(fresh, resume=answer, resumed=True)
        return fresh

    # ---- scheduling -------------------------------------------------------------

    async def _schedule_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._schedule()
            except Exception:
                log.exception("scheduling failed")

    async def _schedule(self) -> None:
        admission = self.admission
        if admission.full() or (self.siblings is not None and self.siblings.paused()):
            admission.backlog = True
            return
        admission.backlog = True   # until this pass has seen the queue
        rows = await self.db.read(run_store.queued)
        waiting = [r for r in rows if r.id not in self.tasks]
        admission.serve(waiting, lambda r: r.owner_id, self.launch, len(rows) >= run_store.QUEUE_PAGE)

    def launch(self, run: Run, *, resume: Any = None, resumed: bool = False, started: Prepared = None) -> None:
        """A task for a run: what the scheduler does with a run it read as queued (a run that
        has started meanwhile, launched twice by a stale read, is not run again), and what
        submit and resume do. Services use submit, cancel and resume."""
        self.admission.started(run.owner_id)
        self.deltas.open(run)
        task = asyncio.create_task(self._supervise(run, resume=resume, resumed=resumed, started=started),
                                   name=f"run-{run.id}")
        self.tasks[run.id] = task

        def done(_: asyncio.Task) -> None:
            self.tasks.pop(run.id, None)
            self.deltas.close(run.id)
            self.kinds[run.kind].finished(run)
            self.admission.ended(run.owner_id)
            self.wake()
        task.add_done_callback(done)

    # ---- a run's task -----------------------------------------------------------

    def _start_in(self, conn: sqlite3.Connection, run: Run, lease) -> Prepared | None:
        """In the transaction that queues a run (a slot was reserved): start it there too when
        its kind allows and nothing stands in its way, and return what it read."""
        kind = self.kinds[run.kind]
        if not kind.eager:
            return None
        if self.limits is not None:
            try:
                check_limits(conn, run.owner_id, self.limits)
            except LimitsReached:
                return None   # left queued: an instance with room takes it
        prepared = kind.prepare(conn, run)
        if kind.refusal(run, prepared) is not None:
            return None   # left queued: its task fails it with the reason, as any other
        _begin(conn, run, kind, lease, resumed=False, answered=False)
        return prepared

    async def _supervise(self, run: Run, *, resume: Any, resumed: bool, started: Prepared) -> None:
        with self.traces.run(run, resumed=resumed) as span:   # its model and tool calls are its children
            await self._supervised(run, span, resume=resume, resumed=resumed, started=started)

    async def _supervised(self, run: Run, span, *, resume: Any, resumed: bool, started: Prepared) -> None:
        kind = self.kinds[run.kind]
        try:
            async with asyncio.timeout(self.settings.run_timeout_seconds):
                if started is None:
                    started = await self._start(run, kind, resume=resume, resumed=resumed)
                    if started is None:
                        span.ended("not_started")
                        return   # launched twice: the other launch runs it
                if await kind.execute(run, started, resume=resume, resumed=resumed):
                    span.ended("waiting_for_input")
                    return       # waiting for a person
            await self.endings.write(run.id, kind.ending(run, "succeeded", None))
            span.ended("succeeded")
        except asyncio.CancelledError:
            # The ending is written whatever the database does (endings.py): tried here, else
            # kept and written by the settler; a second cancel leaves it to the settler.
            status = "interrupted" if self.admission.closed else "cancelled"
            span.ended(status)
            await asyncio.shield(self.endings.write(run.id, kind.ending(run, status, _handed(status, self.siblings))))
            raise
        except BaseException as exc:  # every failure ends as a failed row with a reason
            failure = kind.failure_of(exc)
            span.ended("failed", failure)
            if failure.code == "internal_error":
                log.exception("run failed", extra={"run_id": run.id})
            else:
                log.warning("run failed", extra={"run_id": run.id, "code": failure.code})
            await asyncio.shield(self.endings.write(run.id, kind.ending(run, "failed", failure)))

    async def _start(self, run: Run, kind: RunKind, *, resume: Any, resumed: bool) -> Prepared | None:
        """What the run needs, read; then the start transaction (running, with this process's
        lease) and run.started. None when another launch started it."""
        prepared = await self.db.read(kind.prepare, run)
        failure = kind.refusal(run, prepared)
        if failure is not None:
            raise failure
        try:
            ok = await self.tools.write(run, _begin, run, kind, self.leases.lease(), resumed=resumed,
                                        answered=resume is not None, limits=self.limits,
                                        events=lambda ok: [ev.RunStarted(run.id, run.thread_id, resumed)] if ok else [])
        except LimitsReached:   # full on the instances together: it stays queued
            self.siblings.limits_reached()
            return None
        return prepared if ok else None


def _begin(conn: sqlite3.Connection, run: Run, kind: RunKind, lease, *, resumed: bool, answered: bool,
           limits: tuple[int, int] | None = None) -> bool:
    """The start transaction. A new run starts only while still queued, so a run launched
    twice by a stale read runs once; it counts towards its owner's day. With several
    instances, only within the limits counted from the rows (instances.py)."""
    if not resumed and run_store.status_of(conn, run.id) != "queued":
        return False
    if limits is not None and not resumed:
        check_limits(conn, run.owner_id, limits)
    run_store.set_status(conn, run.id, "running", started=True, lease=lease)
    if not resumed:
        usage_store.count_run(conn, run)
    kind.started(conn, run, resumed=resumed, answered=answered)
    return True


def _cancel_idle(conn: sqlite3.Connection, run_id: str) -> bool:
    """Cancel a run that has no task here: queued, waiting, interrupted, or running with its
    task gone (a row the watchdog would settle once its lease runs out). False when it
    has finished."""
    if run_store.status_of(conn, run_id) not in ("queued", "running", "waiting_for_input", "interrupted"):
        return False
    run_store.set_status(conn, run_id, "cancelled", finished=True)
    step_store.ended(conn, run_id, "cancelled")   # a workflow's waiting approval
    checkpoints.delete_thread(conn, f"run:{run_id}")
    return True
