"""Delivery in `seq` order, whoever committed the event: the part of the NATS bus that
makes NATS a fast path and the event log the truth.

Several processes append to one log; SQLite serialises their write transactions
and AUTOINCREMENT numbers events in commit order, so the log's seqs are one
contiguous line (a rolled-back transaction gives its numbers back). Each
instance hears its own commits at once and the others' over NATS. `Sequencer`
hands events to the local fan-out strictly in seq order, once each:

- an event at or below the last delivered seq is a duplicate (a NATS message
  sent again after a reconnect, or an event already read from the log): dropped;
- an event past a hole waits; the hole is filled from the log (`fill`) when
  NATS has not filled it within `gap_wait` (a lost message, NATS down);
- an event that was committed and then deleted before this instance read it
  (a finished run's compacted deltas, retention) is passed over: the log read
  that finds a hole below a committed seq proves the hole can never be filled;
- `catch_up(head)` (polled) fills what nobody announced at all: the newest
  events when NATS is down or their message was lost and nothing followed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from ..store.writer import Committed

log = logging.getLogger("agentstead.bus")
Fill = Callable[[int, int], Awaitable[list[Committed]]]   # committed events first..last from the log


class Sequencer:
    def __init__(self, deliver: Callable[[Committed], None], fill: Fill, *, start: int,
                 gap_wait: float = 0.025, held_max: int = 100_000):
        self.deliver = deliver
        self._fill = fill
        self.next = start + 1              # the seq the fan-out waits for
        self.gap_wait = gap_wait
        self.held_max = held_max
        self._held: dict[int, Committed] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._filling: asyncio.Task | None = None
        self.filled = 0                    # events read from the log instead of heard (/metrics, tests)
        self.skipped = 0                   # seqs deleted before this instance read them

    @property
    def delivered(self) -> int:
        """The newest seq handed to the fan-out (every one below it was too, or was deleted)."""
        return self.next - 1

    def offer(self, events: list[Committed]) -> None:
        """Events committed here, heard over NATS, or read from the log; any order, any repeats."""
        for c in events:
            if c.seq >= self.next:
                self._held[c.seq] = c
        self._drain()
        if self._held and self._timer is None and self._filling is None:
            if len(self._held) >= self.held_max:
                self._start_fill(max(self._held) - 1)
            else:
                self._timer = asyncio.get_running_loop().call_later(self.gap_wait, self._gap_expired)

    def catch_up(self, head: int) -> None:
        """The log's head is `head`: fill from the log whatever of it has not arrived."""
        if head >= self.next and self._filling is None:
            self._start_fill(head)

    async def settle(self) -> None:
        """Wait for a fill under way (tests, shutdown)."""
        if self._filling is not None:
            await asyncio.gather(self._filling, return_exceptions=True)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._filling is not None:
            self._filling.cancel()

    def _drain(self) -> None:
        held = self._held
        while self.next in held:
            c = held.pop(self.next)
            self.next += 1
            if c is None:   # committed, then deleted before it could be read
                self.skipped += 1
            else:
                self.deliver(c)

    def _gap_expired(self) -> None:
        self._timer = None
        if self._held and self._filling is None:
            self._start_fill(min(self._held) - 1)

    def _start_fill(self, last: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._filling = asyncio.get_running_loop().create_task(self._fill_to(last), name="bus-gap-fill")

    async def _fill_to(self, last: int) -> None:
        """Read seqs next..last from the log (each is committed: something above it was),
        deliver them, and pass over those the log no longer has."""
        try:
            while self.next <= last:
                first = self.next
                rows = await self._fill(first, last)
                self.filled += sum(1 for c in rows if c.seq >= self.next)
                upto = rows[-1].seq if rows and len(rows) >= 5000 else last   # a page, or the rest
                for c in rows:
                    if c.seq >= self.next:
                        self._held[c.seq] = c
                for seq in range(self.next, upto + 1):   # committed, then deleted: never coming
                    self._held.setdefault(seq, None)
                self._drain()
                if self.next == first:   # nothing moved (should not happen): stop, the poll retries
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:   # the database may be busy or down: the next poll tries again
            log.warning("filling a gap in the event stream from the log failed",
                        extra={"error": f"{type(exc).__name__}: {exc}", "from_seq": self.next})
        finally:
            self._filling = None
        if self._held:
            self.offer([])   # what arrived meanwhile, past a new hole: wait or fill again
