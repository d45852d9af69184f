"""A run's last transaction, written whatever the database does meanwhile.

The end of a run (succeeded, failed, cancelled, interrupted: the status, the final
reply and the events) is one transaction. When it fails (a disk I/O error, a full
disk, a locked file) it is tried again with backoff inside the run's task for a
moment; if the database stays unwritable, the ending stays here, in memory, and
the settler writes it as soon as writes work again (it is woken by the first
write that succeeds after failures, and tries on its own every few seconds). The
run's task ends either way, so its slot is free and nothing waits on it.

An ending must be safe to try twice: the runner's check the run's status in their
transaction and do nothing once it is final. If the process stops before an
ending is written, the row still says running and the next start (or another
instance's watchdog, once the lease runs out) makes it interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Awaitable, Callable

from ..store.write_health import is_write_failure

log = logging.getLogger("agentstead.runner")

Attempt = Callable[[], Awaitable[object]]

FIRST_DELAY = 0.05   # seconds before the second try; doubles
INLINE_TRIES = 6     # tries in the run's own task (~1.5 s of backoff) before the settler takes over
SETTLER_MAX_DELAY = 2.0


class Endings:
    def __init__(self) -> None:
        self.pending: dict[str, Attempt] = {}    # run id -> its ending, not yet written
        self._inline: set[str] = set()           # being tried by its run's task: the settler leaves it
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.written_late = 0                   # endings the settler wrote (for tests and logs)

    def start(self) -> None:
        self._task = asyncio.create_task(self._settler(), name="run-endings")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Writes work again (or a new ending waits): try the pending ones now."""
        if self.pending:
            self._wake.set()

    async def write(self, run_id: str, attempt: Attempt) -> bool:
        """Write a run's ending: now, again with backoff, else later (the settler). True when
        written here. A cancel of the caller leaves the ending to the settler."""
        self.pending[run_id] = attempt
        self._inline.add(run_id)
        try:
            delay = FIRST_DELAY
            for n in range(INLINE_TRIES):
                if self.pending.get(run_id) is not attempt:
                    return True           # written by settle_now (a cancel) meanwhile
                try:
                    await attempt()
                except Exception as exc:
                    error = exc
                    log.warning("writing the end of a run failed; trying again", exc_info=n == 0,
                                extra={"run_id": run_id, "attempt": n + 1})
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                self._done(run_id, attempt)
                return True
            if not is_write_failure(error):
                self._drop(run_id, attempt, error)
                return False
        finally:
            self._inline.discard(run_id)
            self.wake()                   # a cancel, or tries used up: the settler goes on
        log.error("the end of a run could not be written; it is kept and written when the database "
                  "takes writes again", extra={"run_id": run_id})
        return False

    def _drop(self, run_id: str, attempt: Attempt, error: BaseException) -> None:
        """Not the database's fault (a bug): trying again cannot help. The row keeps saying
        running until its lease runs out; then the watchdog makes it interrupted."""
        log.error("the end of a run failed for a reason other than the database; the watchdog will "
                  "settle the run", exc_info=error, extra={"run_id": run_id})
        self._done(run_id, attempt)

    async def settle_now(self, run_id: str) -> bool:
        """Write a pending ending now (a cancel of a run that has one); raises when the database
        still refuses it. False when none is pending."""
        attempt = self.pending.get(run_id)
        if attempt is None:
            return False
        await attempt()
        self._done(run_id, attempt)
        return True

    def _done(self, run_id: str, attempt: Attempt) -> None:
        if self.pending.get(run_id) is attempt:
            del self.pending[run_id]

    async def _settler(self) -> None:
        delay = FIRST_DELAY
        while True:
            if not self.pending:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
            self._wake.clear()
            failed = False
            for run_id, attempt in list(self.pending.items()):
                if run_id in self._inline:
                    continue
                try:
                    await attempt()
                except Exception as exc:
                    if not is_write_failure(exc):
                        self._drop(run_id, attempt, exc)
                        continue
                    failed = True
                    log.debug("a kept run ending still cannot be written", extra={"run_id": run_id,
                                                                                   "error": str(exc)})
                    break             # the database is still down: no point trying the others now
                self._done(run_id, attempt)
                self.written_late += 1
                log.warning("the end of a run was written late, from memory", extra={"run_id": run_id})
            delay = min(delay * 2, SETTLER_MAX_DELAY) if failed else FIRST_DELAY
