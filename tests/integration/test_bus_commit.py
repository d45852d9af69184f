"""A write and the events announcing it (`Database.write(fn, events=…)`) in one transaction,
in call order with plain publishes (`Bus.publish`); a failing write is undone alone with its
events; subscribers get the events once they are durable. On a real SQLite file with the
migrated schema."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from agentstead.bus import events as ev
from agentstead.bus.bus import Bus
from agentstead.store.db import Database
from agentstead.store.migrate import migrate


@pytest.fixture
async def bus(tmp_path):
    path = tmp_path / "b.db"
    migrate(path)
    database = Database(path, readers=2)
    await database.open()
    await database.write(lambda conn: conn.execute("CREATE TABLE t (x INTEGER NOT NULL)"))
    yield Bus(database)
    await database.close()


def _insert(conn: sqlite3.Connection, x) -> int:
    conn.execute("INSERT INTO t (x) VALUES (?)", (x,))
    return conn.execute("SELECT count(*) FROM t").fetchone()[0]


def _rows(bus: Bus) -> list:
    with sqlite3.connect(bus.db.path) as conn:
        return [r[0] for r in conn.execute("SELECT x FROM t ORDER BY rowid")]


def _events(bus: Bus) -> list[tuple]:
    with sqlite3.connect(bus.db.path) as conn:
        return conn.execute("SELECT seq, topic, type FROM topic_events ORDER BY seq").fetchall()


async def test_a_write_and_its_events_commit_together_in_queue_order(bus):
    seen = []
    bus.subscribe("runs/r", lambda d: seen.append((d.seq, d.type)))
    first = bus.publish("runs/r", ev.RunQueued("r", None, None))        # queued before the write
    result = await bus.db.write(_insert, 7, events=lambda n: [("runs/r", ev.RunStarted("r", None, n > 1)),
                                                            ("runs/r", ev.RunSucceeded("r", None, n, 0))])
    assert result == 1 and _rows(bus) == [7]
    stored = _events(bus)
    assert [t for _, _, t in stored] == ["run.queued", "run.started", "run.succeeded"]
    assert [s for s, _, _ in stored] == list(range(stored[0][0], stored[0][0] + 3))   # queue order, contiguous
    assert seen == [(s, t) for s, _, t in stored]                               # fanned out once durable
    assert (await first).seq == stored[0][0]
    assert bus.appended == 3                                                    # events counted, not queue items


async def test_a_failing_write_is_undone_alone_and_raised_to_its_caller(bus):
    ok = bus.publish("runs/r", ev.RunQueued("r", None, None))
    good = asyncio.ensure_future(bus.db.write(_insert, 1, events=[("runs/r", ev.RunStarted("r", None, False))]))
    bad = asyncio.ensure_future(bus.db.write(_insert, None, events=[("runs/r", ev.RunCancelled("r", None))]))
    await asyncio.sleep(0)   # both are queued (the tasks have started)
    after = bus.publish("runs/r", ev.RunSucceeded("r", None, 0, 0))
    with pytest.raises(sqlite3.IntegrityError):
        await bad
    assert await good == 1
    await ok, await after
    assert _rows(bus) == [1]                                                    # the failing insert left nothing
    assert [t for _, _, t in _events(bus)] == ["run.queued", "run.started", "run.succeeded"]   # nor its event


async def test_a_write_that_announces_nothing(bus):
    assert await bus.db.write(_insert, 3) == 1
    assert await bus.db.write(_insert, 4, events=lambda n: []) == 2
    assert _rows(bus) == [3, 4] and _events(bus) == []


async def test_an_event_on_several_topics_is_stored_once_and_replayed_on_each(bus):
    """One row per event, its topics linked: one seq, delivered and replayed under each topic."""
    seen = []
    for topic in ("runs/r", "threads/t"):
        bus.subscribe(topic, lambda d: seen.append((d.seq, d.topic)))
    event = ev.RunQueued("r", "t", None)
    await bus.db.write(None, events=[("runs/r", event), ("threads/t", event), ("users/u", event)])
    await bus.publish(("runs/r", "threads/t"), ev.MessageDelta("r", "t", "hi"))
    delivery = (await bus.replay("runs/r", 0, limit=10))[-1]
    with sqlite3.connect(bus.db.path) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM event_topics").fetchone()[0] == 5
    first = delivery.seq - 1
    assert seen == [(first, "runs/r"), (first, "threads/t"), (delivery.seq, "runs/r"), (delivery.seq, "threads/t")]
    assert [(d.seq, d.type) for d in await bus.replay("threads/t", 0, limit=10)] == [
        (first, "run.queued"), (delivery.seq, "message.delta")]
    assert [(d.seq, d.topic) for d in await bus.replay("users/*", 0, limit=10)] == [(first, "users/u")]
    assert [d.seq for d in await bus.replay("runs/r", first, limit=10)] == [delivery.seq]
