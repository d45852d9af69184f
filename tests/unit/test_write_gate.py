"""store/write_gate.py: two Database objects on one file, as two instances would be, take turns
at the write gate; a write waits while the other holds it, and the wait is counted."""

from __future__ import annotations

import asyncio

from agentstead.store.db import Database


def _create(conn):
    conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")


def _insert(conn, x):
    conn.execute("INSERT INTO t VALUES (?)", (x,))


def _count(conn):
    return conn.execute("SELECT count(*) FROM t").fetchone()[0]


async def test_two_writers_on_one_file_take_turns_and_every_write_lands(tmp_path):
    a, b = (Database(tmp_path / "db.sqlite", readers=1, shared=True) for _ in range(2))
    await a.open()
    await b.open()
    try:
        await a.write(_create)
        await asyncio.gather(*((a if i % 2 else b).write(_insert, i) for i in range(400)))
        assert await a.read(_count) == 400
        assert a.health.lock_waits.count >= 1 and b.health.lock_waits.count >= 1
        assert a.health.total_failed == b.health.total_failed == 0

        # While A holds the gate, B's write waits (and is counted as waiting) until A lets go.
        a._gate.take()
        waited_before = b.health.lock_waits.sum
        pending = b.write(_insert, -1)
        await asyncio.sleep(0.3)
        assert not pending.done()
        a._gate.leave()
        await asyncio.wait_for(pending, 5)
        assert b.health.lock_waits.sum - waited_before >= 0.25
    finally:
        await a.close()
        await b.close()


async def test_one_instance_takes_no_gate(tmp_path):
    db = Database(tmp_path / "db.sqlite", readers=1)
    await db.open()
    try:
        await db.write(_create)
        assert db._gate is None and not (tmp_path / "db.sqlite.write-lock").exists()
        assert db.health.lock_waits.count == 1
    finally:
        await db.close()
