"""Runs when several instances share one database (docs/scale-out.md).

A run executes on the instance that started it; every instance hears every
run's events on the bus (NATS, backed by the log). From them this instance:

- cancels its task of a run that another instance cancelled (`Runner.cancel`
  there writes the row `cancelled` in one transaction with run.cancelled, as for
  any run without a task of its own; the task here stops as soon as it hears);
- wakes its scheduler when a run is queued or ends anywhere (a queued run is
  taken by whichever instance has room first: `_begin` starts it only while it
  is still queued);
- counts the limits from the rows: the start transaction refuses a start while
  AGENTSTEAD_RUNS_MAX_CONCURRENT (or the owner's limit) runs are `running` on all
  instances together (`check_limits`, under BEGIN IMMEDIATE, so two instances
  never both take the last slot); the refused run stays queued and this
  instance's scheduler pauses until a run ends somewhere.

Crash recovery is the leases' (watchdog.py): an instance that dies stops renewing
its runs' leases and another instance's watchdog makes them `interrupted`. An instance
stopped gracefully (SIGTERM) hands its runs over instead: they end `interrupted` with
the code `handed_over`, and an instance that hears it resumes the run at once (the
resume transaction checks the row is still interrupted, so one instance takes it).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any, Awaitable, Callable

from ..bus.bus import Bus, Delivery
from ..errors import Refused
from ..store import runs as run_store

log = logging.getLogger("agentstead.runner")
ENDED = frozenset({"run.succeeded", "run.failed", "run.cancelled", "run.interrupted", "run.waiting"})
PAUSE = 1.0   # seconds the scheduler rests after the shared limits refused a start (unless a run ends)


class LimitsReached(Exception):
    """The start transaction found the shared limits reached (the run stays queued)."""


def check_limits(conn: sqlite3.Connection, owner_id: str, limits: tuple[int, int]) -> None:
    """In a start transaction: raise LimitsReached when the global or the owner's limit is
    reached by the runs running on every instance."""
    total, mine = run_store.running_counts(conn, owner_id)
    if total >= limits[0] or mine >= limits[1]:
        raise LimitsReached()


class Siblings:
    """What this instance does with the other instances' run events."""

    def __init__(self, bus: Bus, tasks: dict[str, asyncio.Task], wake: Callable[[], None],
                 resume: Callable[[run_store.Run, Any], Awaitable[Any]]):
        self.bus = bus
        self.tasks = tasks
        self.wake = wake
        self.resume = resume   # Runner.resume
        self._taking: set[asyncio.Task] = set()
        self.paused_until = 0.0
        self.cancelled_here = 0   # tasks stopped because another instance cancelled their run
        self._sub = None

    def start(self) -> None:
        self._sub = self.bus.subscribe("runs/*", self._heard)

    def stop(self) -> None:
        if self._sub is not None:
            self.bus.unsubscribe(self._sub)
            self._sub = None

    def paused(self) -> bool:
        return time.monotonic() < self.paused_until

    def limits_reached(self) -> None:
        """The rows said no: rest until a run ends somewhere, or PAUSE at most."""
        self.paused_until = time.monotonic() + PAUSE
        asyncio.get_running_loop().call_later(PAUSE, self.wake)

    async def _take_over(self, run_id: str) -> None:
        """A run another instance handed over as it stopped (interrupted, handed_over): resumed
        here, unless this instance is stopping too or another one was quicker."""
        run = await self.bus.db.read(run_store.get, run_id)
        if run is None or run.status != "interrupted" or run.error_code != run_store.HANDED_OVER[0] \
                or self._sub is None:
            return
        try:
            await self.resume(run, None)
        except Refused:
            return
        log.info("resumed a run another instance handed over", extra={"run_id": run_id})

    def _heard(self, delivery: Delivery) -> None:
        if delivery.type == "run.cancelled":
            task = self.tasks.get(delivery.topic.split("/", 1)[1])
            # A task that is cancelling already was cancelled here (its own ending announced it).
            if task is not None and not task.done() and not task.cancelling():
                self.cancelled_here += 1
                task.cancel()
        if delivery.type == "run.interrupted" and delivery.topic.split("/", 1)[1] not in self.tasks:
            # Maybe handed over by an instance that is stopping: the row says (Runner._take_over).
            task = asyncio.get_running_loop().create_task(self._take_over(delivery.data["run_id"]),
                                                          name="run-take-over")
            self._taking.add(task)
            task.add_done_callback(self._taking.discard)
        if delivery.type in ENDED:
            self.paused_until = 0.0
            self.wake()
        elif delivery.type == "run.queued":
            self.wake()
