"""The bus across instances (bus/nats_bus.py): two Databases on one SQLite file (two
writers, as two processes have) and the real nats-server. An event committed by one
reaches the other's subscribers, in seq order, once; NATS down: from the log; a NATS
message that never comes (a lost one): the gap is filled from the log."""

from __future__ import annotations

import asyncio

import pytest

from agentstead.bus import events as ev
from agentstead.bus.nats_bus import NatsBus
from agentstead.store.db import Database
from agentstead.store.migrate import migrate

from ..support.nats import NatsServer


@pytest.fixture
def nats_server(tmp_path):
    with NatsServer(tmp_path / "nats") as server:
        yield server


async def _until(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
async def pair(tmp_path, nats_server):
    path = tmp_path / "shared.db"
    migrate(path)
    buses = []
    for _ in range(2):
        db = Database(path, readers=2)
        await db.open()
        bus = NatsBus(db, nats_server.url, "test.events")
        await bus.start()
        buses.append(bus)
    await _until(lambda: all(b.connected for b in buses))
    yield buses
    for bus in buses:
        await bus.stop()
        await bus.db.close()


def _collect(bus: NatsBus, topic: str) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    bus.subscribe(topic, lambda d: seen.append((d.seq, d.type)))
    return seen


async def test_an_event_committed_on_one_instance_reaches_the_other_in_order_once(pair):
    a, b = pair
    on_a, on_b = _collect(a, "runs/r"), _collect(b, "runs/r")
    writes = []
    for i in range(40):   # both instances write, interleaved: one line of seqs
        writes.append((a if i % 2 else b).publish("runs/r", ev.RunQueued(f"r{i}", None, None)))
    seqs = sorted(c.seq for c in await asyncio.gather(*writes))
    assert seqs == list(range(seqs[0], seqs[0] + 40))
    await _until(lambda: len(on_a) == 40 and len(on_b) == 40)
    assert [s for s, _ in on_a] == seqs and [s for s, _ in on_b] == seqs
    await asyncio.sleep(0.2)
    assert len(on_a) == len(on_b) == 40   # no duplicate later
    assert b.heard > 0 and a.heard > 0     # the fast path carried them


async def test_nats_down_events_come_from_the_log_and_the_fast_path_returns(pair, nats_server):
    a, b = pair
    on_b = _collect(b, "threads/t")
    nats_server.stop()
    await _until(lambda: not a.connected and not b.connected)
    assert b.check()["ok"] is False and "unreachable" in b.check()["error"]
    first = await a.publish("threads/t", ev.RunQueued("x", "t", None))
    await _until(lambda: [s for s, _ in on_b] == [first.seq])       # read from the log
    assert b.sequencer.filled >= 1
    nats_server.start()
    await _until(lambda: a.connected and b.connected, timeout=10)
    heard = b.heard
    second = await a.publish("threads/t", ev.RunStarted("x", "t", False))
    await _until(lambda: [s for s, _ in on_b] == [first.seq, second.seq])
    assert b.heard == heard + 1 and b.check()["ok"] is True


async def test_a_lost_nats_message_is_filled_from_the_log(pair):
    """A commit whose message never reaches the other instance (written to the shared file
    by a third writer that has no NATS at all) is found by the gap it leaves, or by the poll."""
    a, b = pair
    on_b = _collect(b, "runs/q")
    silent = Database(a.db.path, readers=1)
    await silent.open()
    try:
        lost = await silent.write(None, events=[("runs/q", ev.RunQueued("q", None, None))])
    finally:
        await silent.close()
    after = await a.publish("runs/q", ev.RunStarted("q", None, False))   # arrives over NATS, past the hole
    await _until(lambda: [s for s, _ in on_b] == [lost.seq, after.seq])
    assert b.sequencer.filled >= 1
