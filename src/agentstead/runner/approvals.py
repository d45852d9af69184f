"""Approval steps that wait too long: each waiting approval with a timeout has a deadline
here; when it passes, the run fails (approval_timed_out), unless it was answered or
cancelled meanwhile. At startup the waiting approvals get their deadlines back."""

from __future__ import annotations

import asyncio
import sqlite3

from .. import timeutil
from ..bus import events as ev
from ..store import checkpoints
from ..store import runs as run_store
from ..store import steps as step_store
from ..store import workflows as workflow_store
from ..workflows.definition import ApprovalStep, Definition
from .endings import Endings
from .kinds import Toolkit, announce


class Approvals:
    def __init__(self, tools: Toolkit, endings: Endings):
        self.tools = tools
        self.endings = endings
        self._deadlines: dict[str, asyncio.TimerHandle] = {}  # run id -> its approval's timeout
        self._expiring: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Waiting approvals that have a timeout get their deadlines back."""
        for run_id, step, started_at, timeout in await self.tools.db.read(_waiting_with_timeouts):
            self.arm(run_id, step, started_at, timeout)

    def stop(self) -> None:
        for handle in self._deadlines.values():
            handle.cancel()
        self._deadlines.clear()

    def arm(self, run_id: str, step: str, started_at: str, timeout: float) -> None:
        waited = (timeutil.now() - timeutil.parse(started_at)).total_seconds()
        loop = asyncio.get_running_loop()

        def expire() -> None:
            self._deadlines.pop(run_id, None)
            task = loop.create_task(self._expire(run_id, step, started_at, timeout), name=f"approval-timeout-{run_id}")
            self._expiring.add(task)
            task.add_done_callback(self._expiring.discard)

        old = self._deadlines.pop(run_id, None)
        if old is not None:
            old.cancel()
        self._deadlines[run_id] = loop.call_later(max(0.0, timeout - waited), expire)

    async def _expire(self, run_id: str, step: str, started_at: str, timeout: float) -> None:
        """Nobody answered in time: the run fails (written whatever the database does meanwhile:
        endings.py)."""
        await self.endings.write(run_id, lambda: self._expire_once(run_id, step, started_at, timeout))

    async def _expire_once(self, run_id: str, step: str, started_at: str, timeout: float) -> None:
        error = f"no answer within {timeout:g} s"
        finished_at = timeutil.now_iso()
        duration = round((timeutil.parse(finished_at) - timeutil.parse(started_at)).total_seconds() * 1000, 3)
        reason = ("approval_timed_out", f"step '{step}': {error}")

        def events(run: run_store.Run | None) -> list:
            if run is None:
                return []
            return announce(run, [ev.StepFailed(run_id, step, "approval", 1, started_at, finished_at, duration, error),
                                  ev.RunFailed(run_id, None, *reason)])
        await self.tools.db.write(_expired, run_id, step, started_at, finished_at, error, reason, events=events)


def _waiting_with_timeouts(conn: sqlite3.Connection) -> list[tuple[str, str, str, float]]:
    out = []
    for run_id, step, started_at in step_store.waiting(conn):
        run = run_store.get(conn, run_id)
        version = workflow_store.version(conn, run.workflow_id, run.workflow_version) if run else None
        approval = Definition.from_dict(version.definition).steps.get(step) if version else None
        if isinstance(approval, ApprovalStep) and approval.timeout_seconds:
            out.append((run_id, step, started_at, approval.timeout_seconds))
    return out


def _expired(conn: sqlite3.Connection, run_id: str, step: str, started_at: str, finished_at: str, error: str,
             reason: tuple[str, str]) -> run_store.Run | None:
    """The approval's failure and the run's, unless it was answered or cancelled meanwhile."""
    run = run_store.get(conn, run_id)
    if run is None or run.status != "waiting_for_input" or \
            step_store.status_of(conn, run_id, step) != ("waiting", started_at):
        return None
    step_store.finished(conn, run_id, step, "approval", "failed", started_at=started_at, finished_at=finished_at,
                        error=error)
    run_store.set_status(conn, run_id, "failed", finished=True, error=reason)
    checkpoints.delete_thread(conn, f"run:{run_id}")
    return run
