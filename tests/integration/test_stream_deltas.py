"""runner/stream.py: the run's first piece of text goes out at once, alone; later pieces are
paced (one delta per DELTA_GAP) and joined. A real Bus on a migrated SQLite file."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentstead.bus.bus import Bus
from agentstead.runner.stream import Deltas
from agentstead.store.db import Database
from agentstead.store.migrate import migrate
from agentstead.store.runs import Run


@pytest.fixture
async def bus(tmp_path):
    path = tmp_path / "d.db"
    migrate(path)
    database = Database(path, readers=1)
    await database.open()
    yield Bus(database)
    await database.close()


async def test_first_piece_goes_out_alone_at_once_then_pieces_are_joined(bus):
    run = Run(id="r1", owner_id="u1", status="running", created_at="2026-01-01T00:00:00Z", thread_id="t1")
    seen: list[str] = []
    bus.subscribe("runs/r1", lambda d: seen.append(d.data["text"]))
    deltas = Deltas(bus)
    deltas.open(run)
    for piece in ("one", " two", " three"):      # all within one turn of the loop: well inside DELTA_GAP
        deltas.text(run, piece)
    async with asyncio.timeout(10):
        while "".join(seen) != "one two three":
            await asyncio.sleep(0.005)
    deltas.close(run.id)
    assert seen == ["one", " two three"]


async def test_pieces_a_gap_apart_go_out_apart_while_the_writer_is_busy(bus):
    """A delta does not wait for the one before it to be durable: with the writer held for
    0.5 s, pieces 60 ms apart are three deltas (all sent when it is free), not one then two
    joined behind the first's commit."""
    run = Run(id="r2", owner_id="u1", status="running", created_at="2026-01-01T00:00:00Z", thread_id="t2")
    seen: list[str] = []
    bus.subscribe("runs/r2", lambda d: seen.append(d.data["text"]))
    deltas = Deltas(bus)
    deltas.open(run)
    held = bus.db.write(lambda conn: time.sleep(0.5))     # a long transaction ahead of the deltas
    for piece in ("one", " two", " three"):
        deltas.text(run, piece)
        await asyncio.sleep(0.06)
    assert seen == [] and not held.done()                 # nothing is sent before it is durable
    async with asyncio.timeout(10):
        while "".join(seen) != "one two three":
            await asyncio.sleep(0.005)
    deltas.close(run.id)
    assert seen == ["one", " two", " three"]
