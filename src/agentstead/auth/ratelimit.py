"""Token buckets, in process (one VPS). One interface: allow(key) -> wait seconds or 0."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable


@dataclasses.dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`rate` tokens per `per` seconds, bursts up to `burst`. Old buckets are swept."""

    def __init__(self, rate: float, per: float = 60.0, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.refill = rate / per
        self.burst = burst if burst is not None else rate
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key: str, cost: float = 1.0) -> float:
        """0 when allowed (and the cost is taken); otherwise the seconds to wait."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._sweep(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.refill)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.refill

    def _sweep(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.refill >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # still full: drop the oldest half
            for key in sorted(self._buckets, key=lambda k: self._buckets[k].updated)[: self.max_keys // 2]:
                del self._buckets[key]
