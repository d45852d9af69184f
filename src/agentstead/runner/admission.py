"""Who may run now: the global and per-user limits, slots reserved for runs being queued,
and the queue's round robin across users (the user served longest ago goes first).

Pure bookkeeping (no I/O): the runner asks and tells it; `tests` and the runner's
scheduler see the same rules. Issue "Scale out" counts these across instances.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Sequence, TypeVar

R = TypeVar("R")


class Admission:
    def __init__(self, max_concurrent: int, max_per_user: int):
        self.max_concurrent = max_concurrent
        self.max_per_user = max_per_user
        self.running = 0            # runs with a task here
        self.reserved = 0           # slots held for runs being queued (reserve)
        self.per_user: Counter[str] = Counter()   # counts both
        self.backlog = True         # runs may be queued that the scheduler has not launched
        self.closed = False         # shutting down: nothing new starts
        self._last_served: dict[str, float] = {}

    def room(self, owner_id: str) -> bool:
        """A slot is free for this owner: under the global limit, counting the slots held
        for runs being queued, and under the per-user one (which counts them too)."""
        return (self.running + self.reserved < self.max_concurrent
                and self.per_user[owner_id] < self.max_per_user)

    def full(self) -> bool:
        return self.running + self.reserved >= self.max_concurrent

    def reserve(self, owner_id: str) -> bool:
        """A slot for a run about to be queued, so that the transaction that queues it can
        start it too; False when a queued run waits before it or the limits say no."""
        if self.backlog or self.closed or not self.room(owner_id):
            return False
        self.reserved += 1
        self.per_user[owner_id] += 1
        return True

    def unreserve(self, owner_id: str) -> None:
        self.reserved -= 1
        self.per_user[owner_id] -= 1

    def may_start_now(self, owner_id: str) -> bool:
        """A run just queued may start at once: nobody queued before it, and room."""
        return not self.backlog and not self.closed and self.room(owner_id)

    def started(self, owner_id: str) -> None:
        self.running += 1
        self.per_user[owner_id] += 1
        self._last_served[owner_id] = time.monotonic()   # the round robin's order

    def ended(self, owner_id: str) -> None:
        self.running -= 1
        self.per_user[owner_id] -= 1

    def serve(self, queued: Sequence[R], owner_of: Callable[[R], str], launch: Callable[[R], None],
              page_full: bool) -> None:
        """Launch from the queue's oldest runs: one per user per pass, the user served longest
        ago first, while the limits allow (`launch` counts each through `started`). Leaves
        `backlog` set when runs are left."""
        by_user: dict[str, list[R]] = {}
        for run in queued:
            by_user.setdefault(owner_of(run), []).append(run)
        users = sorted(by_user, key=lambda u: self._last_served.get(u, 0.0))
        progress = True
        while progress:
            progress = False
            for user in users:
                queue = by_user[user]
                if queue and self.room(user):
                    launch(queue.pop(0))
                    progress = True
        self.backlog = any(by_user.values()) or page_full
