"""What the monitoring counters cost on the fan-out path (issue 23).

Two additions sit on the path of every live event: the bus calls one more subscriber
(`runs/*`, which counts how runs end) and so looks up pattern subscribers for every
topic, and each WebSocket delivery adds one to a plain int (events sent). This times
`Bus._fanout` of one event to N subscribed WebSocket connections, in process, with and
without them (alternating, medians), so the difference is not lost in the noise of the
full fan-out benchmark (bench/ws/run.py: ~7 µs of server CPU per delivery).

The sockets' transports are stand-ins that accept every frame (the kernel's work is not
what changed); the Bus, its Subscription index, `_Topic.deliver` and
`Connection.send_event` are the app's own. The baseline is `send_event` as it was before
(`_Before` below: the same method without the count) and no `runs/*` subscriber.

    .venv/bin/python bench/ws/counters.py [--sockets 1000] [--events 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "ws"))

import benchkit  # noqa: E402

from agentstead.bus.bus import Bus, Delivery  # noqa: E402
from agentstead.http.ws import DIRECT_WRITE_LIMIT, Connection, _Topic  # noqa: E402
from agentstead.metrics import Metrics  # noqa: E402
from agentstead.settings import Settings  # noqa: E402


class _Transport:
    """Accepts every frame, as an idle socket with room in its buffer does."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class _Before(Connection):
    """Connection.send_event as it was before the events-sent count (ablation baseline)."""

    def send_event(self, delivery: Delivery) -> None:
        transport = self.transport
        if (self.close_code is None and self.queue.empty() and transport is not None
                and not transport.is_closing() and transport.get_write_buffer_size() < DIRECT_WRITE_LIMIT):
            transport.write(delivery.frame)
            return
        self.send_text(delivery.wire)


class _Principal:
    user_id, role = "u1", "member"


def setup(sockets: int, monitored: bool) -> tuple[Bus, str]:
    bus = Bus(db=None)
    settings = Settings(secret_key="k" * 48)
    metrics = Metrics().monitoring
    topic = "threads/t1"
    for _ in range(sockets):
        kind = Connection if monitored else _Before
        conn = kind(None, _Principal(), bus, None, settings, None, _Transport(), metrics)
        state = _Topic(conn, topic)
        state.replaying = False
        state.sub = bus.subscribe(topic, state.deliver)
    if monitored:   # what observe.watching adds
        bus.subscribe("runs/*", lambda d: metrics.run_ended(d.type, d.data))
    return bus, topic


def time_fanout(bus: Bus, topic: str, events: int) -> float:
    """Seconds per delivered event (all subscribers), over `events` events."""
    deliveries = [Delivery(seq, topic, "message.delta", {"text": "x" * 40}, "2026-01-01T00:00:00Z")
                  for seq in range(1, events + 1)]
    for d in deliveries:
        d.frame   # built once per event either way (cached): not what is measured
    # CPU time of this thread: other processes on a shared machine take turns, not this time.
    start = time.thread_time()
    for d in deliveries:
        bus._fanout(d)
    return (time.thread_time() - start) / events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sockets", type=int, default=1000)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "ws-counters.md")
    args = ap.parse_args()

    async def run() -> dict[str, list[float]]:
        results: dict[str, list[float]] = {"without": [], "with": []}
        for order in benchkit.alternating(["without", "with"], args.rounds):
            for variant in order:
                bus, topic = setup(args.sockets, variant == "with")
                time_fanout(bus, topic, 100)   # warm up
                results[variant].append(time_fanout(bus, topic, args.events))
        return results

    results = asyncio.run(run())
    base, new = statistics.median(results["without"]), statistics.median(results["with"])
    # Paired: each round measured both, back to back.
    ratios = sorted(w / b for w, b in zip(results["with"], results["without"]))
    q1, q3 = ratios[len(ratios) // 4], ratios[3 * len(ratios) // 4]
    facts = benchkit.machine_facts()
    lines = [f"{k}: {v}" for k, v in facts.items()]
    text = "\n".join([
        "# Monitoring counters on the fan-out path (bench/ws/counters.py)", "", *lines, "",
        f"{args.sockets} subscribed WebSocket connections, {args.events} events a round, "
        f"{args.rounds} rounds alternating, medians.", "",
        "| code | µs per event | µs per delivery | ratio |", "|---|---:|---:|---:|",
        f"| without the counters (baseline) | {base * 1e6:.1f} | {base * 1e6 / args.sockets:.3f} | 1.000 |",
        f"| with them | {new * 1e6:.1f} | {new * 1e6 / args.sockets:.3f} | {new / base:.3f} |", "",
        f"Median of the per-round ratios: {statistics.median(ratios):.3f} (quartiles {q1:.3f}–{q3:.3f}). "
        "Times are CPU time of the benchmark's thread.", "",
    ])
    benchkit.write_report(args.out, text + "\n")


if __name__ == "__main__":
    main()
