"""Finished runs' streamed deltas dropped in batches, a moment after the runs end.

A run's deltas were deleted in its last transaction. They lie interleaved with the deltas of
every run that streamed beside it, so deleting one run's 300 dirties a page per delta or so:
9–28 ms of writer time (fsync'd) per run here, and with 50 chats ending within a second every
other chat's deltas waited behind those transactions (the slowest 1 % of gaps fell at the
chats' ends: bench/RESULTS.md, Chat, "the last steps"). Deleted together, runs that streamed
side by side share those pages. So a run's end is written without its compaction, and the
runs that ended are compacted once no other has ended for QUIET seconds (at most LONGEST
after the first), PER_WRITE runs a transaction. Until then a replay of a finished run has its
deltas and then its stored message, as a replay during the run has. A graceful stop writes
the pending batch at once, after the runs' endings (bounded by the shutdown grace: a write
still unfinished then is given up); a crash in the window leaves those deltas to the event
log's retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..store import events as event_store

log = logging.getLogger(__name__)

QUIET = 2.0        # seconds without a run ending before the batch is compacted
LONGEST = 30.0     # a batch waits at most this long after its first run ended
PER_WRITE = 20     # runs per transaction: bounds how long one holds the writer


class Compactor:
    def __init__(self, db) -> None:
        self.db = db
        self.pending: list[str] = []
        self._last = 0.0
        self._task: asyncio.Task | None = None
        self._now = asyncio.Event()   # stopping: the batch goes without waiting out the window

    def ended(self, run_id: str) -> None:
        """A run's end is written: its deltas go with the next batch."""
        loop = asyncio.get_running_loop()
        self.pending.append(run_id)
        self._last = loop.time()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._batch(), name="delta-compaction")

    async def _batch(self) -> None:
        loop = asyncio.get_running_loop()
        first = loop.time()
        while not self._now.is_set() and (wait := min(self._last + QUIET, first + LONGEST) - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._now.wait()
        batch, self.pending = self.pending, []
        for i in range(0, len(batch), PER_WRITE):
            try:
                await self.db.write(event_store.compact_deltas, *batch[i:i + PER_WRITE])
            except Exception:   # the database refused (full disk, unhealthy): retention deletes them later
                log.warning("compacting the deltas of finished runs failed", exc_info=True,
                            extra={"runs": len(batch[i:i + PER_WRITE])})
        if self.pending:        # runs that ended while this batch was written
            self._task = loop.create_task(self._batch(), name="delta-compaction")

    async def stop(self, timeout: float) -> None:
        """A graceful stop, once the runs' endings are written: the pending batch is written now
        rather than left to retention; after `timeout` seconds whatever is unwritten is given up."""
        self._now.set()
        try:
            async with asyncio.timeout(timeout):
                while self._task is not None and not self._task.done():
                    await self._task   # a batch may start the next one (runs that ended meanwhile)
        except TimeoutError:
            log.warning("compacting the deltas of finished runs did not finish in time at the stop; "
                        "retention deletes them later")
