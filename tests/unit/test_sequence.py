"""bus/sequence.py: delivery in seq order, once, whatever order and repeats events come in;
holes filled from a log (here a dict standing for it); seqs the log no longer has passed over."""

from __future__ import annotations

import asyncio

from agentstead.bus.sequence import Sequencer
from agentstead.store.writer import Committed


def ev(seq: int) -> Committed:
    return Committed(seq, ("runs/r",), "run.queued", {"n": seq}, "t")


def make(log: dict[int, Committed], start: int = 0, gap_wait: float = 0.01):
    seen: list[int] = []
    reads: list[tuple[int, int]] = []

    async def fill(first: int, last: int) -> list[Committed]:
        reads.append((first, last))
        return [log[s] for s in range(first, last + 1) if s in log]
    return Sequencer(lambda c: seen.append(c.seq), fill, start=start, gap_wait=gap_wait), seen, reads


async def test_in_order_once_whatever_the_arrival():
    seq, seen, reads = make({})
    seq.offer([ev(2), ev(1)])
    seq.offer([ev(1), ev(3), ev(2)])   # repeats (a NATS message sent again, a log read) dropped
    assert seen == [1, 2, 3] and seq.delivered == 3 and reads == []


async def test_a_hole_nats_never_fills_is_read_from_the_log():
    log = {i: ev(i) for i in range(1, 6)}
    seq, seen, reads = make(log)
    seq.offer([ev(1), ev(4), ev(5)])   # 2 and 3 lost on the way
    assert seen == [1]
    await asyncio.sleep(0.05)
    await seq.settle()
    assert seen == [1, 2, 3, 4, 5] and reads == [(2, 3)] and seq.filled == 2


async def test_a_hole_filled_in_time_reads_nothing():
    seq, seen, reads = make({}, gap_wait=0.05)
    seq.offer([ev(2)])
    seq.offer([ev(1)])
    await asyncio.sleep(0.08)
    assert seen == [1, 2] and reads == []


async def test_seqs_deleted_before_they_were_read_are_passed_over():
    log = {1: ev(1), 4: ev(4)}          # 2 and 3 committed, then compacted away
    seq, seen, _ = make(log)
    seq.catch_up(4)                     # the log's head says 4: nothing was heard at all
    await seq.settle()
    assert seen == [1, 4] and seq.skipped == 2 and seq.delivered == 4
    seq.offer([ev(3), ev(5)])           # late: 3 is behind, 5 is next
    assert seen == [1, 4, 5]
