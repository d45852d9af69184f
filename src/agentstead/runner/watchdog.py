"""Leases of running runs, and the watchdog that settles rows whose task is gone.

A run that starts running here writes this process's instance id and a lease
(until when the process vouches for it) into its row, in its start transaction.
Every third of the lease the process renews the leases of the runs it has a
task, or an unwritten ending (endings.py), for: one UPDATE. A running row whose
lease has run out is not being run by anyone (a task that died without its end,
a bug, a process that vanished): the watchdog makes it `interrupted`, with
`run.interrupted`, in one transaction that checks the lease is still out, so
the owner of the thread can resume or cancel it.

Several app processes on one file (scale-out) share these columns: each renews
its own runs' leases, and any of them settles a row whose lease ran out. (At
startup a single process still interrupts every running row at once, as before;
one of several interrupts only its previous life's, by instance name: runner.py.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Callable

from ..bus import events as ev
from ..store import runs as run_store
from ..store.db import Database
from ..timeutil import iso, now
from .endings import Endings
from .kinds import announce

log = logging.getLogger("agentstead.runner")


class Leases:
    def __init__(self, db: Database, endings: Endings, seconds: float, vouched: Callable[[], set[str]],
                 name: str = ""):
        self.db = db
        self.endings = endings
        self.seconds = seconds
        self._vouched = vouched   # the runs this process has a task (or an unwritten ending) for
        # This process; a restart is a new instance. With several, prefixed with the instance's
        # name: a restarted instance knows its previous life's runs (runner.start).
        self.instance = f"{name}:{uuid.uuid4().hex}" if name else uuid.uuid4().hex
        self._task: asyncio.Task | None = None
        self.settled = 0                    # rows the watchdog interrupted (for tests and logs)

    def lease(self) -> run_store.Lease:
        """This process's lease on a run, from now."""
        return self.instance, iso(now() + dt.timedelta(seconds=self.seconds))

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="run-leases")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                await self.renew()
            except Exception as exc:   # the database may be down: the next pass tries again
                log.warning("renewing run leases failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            try:
                await self.sweep()
            except Exception:
                log.exception("the run watchdog failed")

    async def renew(self) -> None:
        ids = sorted(self._vouched())
        if ids:
            await self.db.write(run_store.renew_leases, ids, self.lease())

    async def sweep(self) -> int:
        """Settle running rows whose lease ran out (never one this process runs). Returns how many."""
        stamp = iso(now())
        count = 0
        for run in await self.db.read(run_store.unleased, stamp):
            if run.id in self._vouched():
                continue   # ours and alive: its renewal failed while the database was down
            log.warning("settling a running run nobody runs (its lease ran out)", extra={"run_id": run.id})

            def attempt(run=run):
                return self.db.write(run_store.interrupt_unleased, run.id, stamp, events=lambda ok: announce(
                    run, [ev.RunInterrupted(run.id, run.thread_id)]) if ok else [])
            if await self.endings.write(run.id, attempt):
                count += 1
        self.settled += count
        return count
