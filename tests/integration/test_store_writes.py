"""The store's one door (`Database.read`, `Database.write`): group-committed writes, each
under its own savepoint, reads on read-only connections (inline for point lookups, with a
fallback), and LangGraph's checkpointer on the same door: on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from agentstead.store.checkpoints import Saver
from agentstead.store.db import Database, inline


def _table(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE t (x INTEGER NOT NULL)")


@pytest.fixture
async def db(tmp_path):
    database = Database(tmp_path / "t.db", readers=2)
    await database.open()
    await database.write(_table)
    yield database
    await database.close()


def _insert(conn: sqlite3.Connection, *values) -> int:
    conn.executemany("INSERT INTO t (x) VALUES (?)", [(v,) for v in values])
    return conn.execute("SELECT count(*) FROM t").fetchone()[0]


def _insert_then_fail(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t (x) VALUES (1)")
    conn.execute("INSERT INTO t (x) VALUES (NULL)")  # NOT NULL: IntegrityError


@inline
def _count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM t").fetchone()[0]


def _values(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT x FROM t ORDER BY rowid")]


async def test_a_write_commits_and_returns_the_result(db):
    assert await db.write(_insert, 1, 2, 3) == 3
    assert await db.read(_count) == 3


async def test_a_write_rolls_back_everything_when_its_function_fails(db):
    with pytest.raises(sqlite3.IntegrityError):
        await db.write(_insert_then_fail)
    assert await db.read(_count) == 0
    assert await db.write(_insert, 7) == 1  # the writer is usable afterwards
    assert db.health.report().failures == 0   # a refused row is the caller's error, not the database's


async def test_a_failing_write_in_a_batch_is_undone_alone(db):
    """Writes queued together commit in one transaction, each under its own savepoint."""
    results = await asyncio.gather(db.write(_insert, 1), db.write(_insert_then_fail), db.write(_insert, 2),
                                   return_exceptions=True)
    assert results[0] == 1 and isinstance(results[1], sqlite3.IntegrityError) and results[2] == 2
    assert await db.read(_values) == [1, 2]


async def test_a_cancelled_caller_neither_loses_the_commit_nor_breaks_the_next_writer(db):
    task = asyncio.ensure_future(db.write(_insert, *range(10_000)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The write was queued when it was called: it completes whole.
    assert await db.write(_insert, 1) in (1, 10_001)
    assert await db.read(_count) in (1, 10_001)


async def test_writes_commit_in_call_order(db):
    """Queued when called, committed in that order (fire-and-forget writes keep their order)."""
    writes = [db.write(_insert, i) for i in range(50)]
    assert await asyncio.gather(*writes) == list(range(1, 51))
    assert await db.read(_values) == list(range(50))


async def test_reads_see_committed_rows_only(db):
    await db.write(_insert, 5)
    assert await db.read(_values) == [5]


@inline
def _slow(conn: sqlite3.Connection) -> int:
    return conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
                        "SELECT count(*) FROM n").fetchone()[0]


async def test_an_inline_read_that_takes_too_long_moves_to_a_reader(db):
    """A point lookup runs on the event loop; one that overruns its budget is abandoned there
    and run on a reader, with the same answer."""
    assert await db.read(_slow) == 3_000_000
    assert db.inline_fallbacks == 1
    assert await db.read(_count) == 0 and db.inline_fallbacks == 1


async def test_checkpoints_round_trip_through_the_single_writer(tmp_path):
    """The saver's put, put_writes, get and delete on the migrated schema, with a
    concurrent writer: no 'database is locked', and reads see every commit."""
    from langgraph.checkpoint.base import empty_checkpoint

    from agentstead.store.migrate import migrate

    path = tmp_path / "a.db"
    migrate(path)
    database = Database(path, readers=2)
    await database.open()
    try:
        saver = Saver(database)
        config = {"configurable": {"thread_id": "run:1", "checkpoint_ns": ""}}
        assert await saver.aget_tuple(config) is None
        stored = []
        for i in range(5):
            cp = empty_checkpoint()
            cp["channel_values"] = {"messages": [f"m{i}"]}
            config = await saver.aput(config, cp, {"step": i}, {})
            await saver.aput_writes(config, [("messages", f"w{i}")], task_id=f"task{i}")
            stored.append(cp["id"])
        latest = await saver.aget_tuple({"configurable": {"thread_id": "run:1", "checkpoint_ns": ""}})
        assert latest.checkpoint["id"] == stored[-1]
        assert latest.checkpoint["channel_values"] == {"messages": ["m4"]}
        assert latest.metadata["step"] == 4
        assert latest.parent_config["configurable"]["checkpoint_id"] == stored[-2]
        assert latest.pending_writes == [("task4", "messages", "w4")]
        older = await saver.aget_tuple({"configurable": {"thread_id": "run:1", "checkpoint_ns": "",
                                                         "checkpoint_id": stored[1]}})
        assert older.checkpoint["channel_values"] == {"messages": ["m1"]}
        await saver.adelete_thread("run:1")
        assert await saver.aget_tuple({"configurable": {"thread_id": "run:1", "checkpoint_ns": ""}}) is None
    finally:
        await database.close()


async def test_a_held_thread_writes_nothing_until_released_and_forgets_on_drop(tmp_path):
    """Held threads (chat runs that may wait): the saver keeps LangGraph's writes in memory;
    `release` hands them to the caller's transaction, `drop` forgets them; a read of a held
    thread stores what is held first, and a fresh held thread is read without a query."""
    from langgraph.checkpoint.base import empty_checkpoint

    from agentstead.store.migrate import migrate

    path = tmp_path / "h.db"
    migrate(path)
    database = Database(path, readers=2)
    await database.open()

    def rows() -> int:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT (SELECT count(*) FROM checkpoints) + (SELECT count(*) FROM writes)").fetchone()[0]
    try:
        saver = Saver(database)
        base = {"configurable": {"thread_id": "run:h", "checkpoint_ns": ""}}
        saver.hold("run:h", fresh=True)
        assert await saver.aget_tuple(base) is None
        cp = empty_checkpoint()
        cp["channel_values"] = {"messages": ["m"]}
        config = await saver.aput(base, cp, {"step": 1}, {})
        await saver.aput_writes(config, [("messages", "w")], task_id="t")
        assert rows() == 0                                    # held: nothing written
        await database.write(saver.release("run:h"))
        assert rows() == 2                                    # released into the caller's transaction
        await database.write(saver.release("run:h"))
        assert rows() == 2                                    # released once
        got = await saver.aget_tuple(base)
        assert got.checkpoint["channel_values"] == {"messages": ["m"]} and got.pending_writes == [("t", "messages", "w")]

        cp2 = empty_checkpoint()
        await saver.aput(config, cp2, {"step": 2}, {})        # still held: a read stores it first
        assert (await saver.aget_tuple(base)).checkpoint["id"] == cp2["id"]
        assert rows() == 3

        saver.hold("run:d", fresh=True)
        await saver.aput({"configurable": {"thread_id": "run:d", "checkpoint_ns": ""}}, empty_checkpoint(), {}, {})
        saver.drop("run:d")                                   # forgotten, never written
        assert rows() == 3
        await saver.aput({"configurable": {"thread_id": "run:d", "checkpoint_ns": ""}}, empty_checkpoint(), {}, {})
        assert rows() == 4                                    # not held any more: written at once
    finally:
        await database.close()
