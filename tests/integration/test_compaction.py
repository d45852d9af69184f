"""runner/compaction.py at a stop: a graceful stop writes the pending batch (the finished
runs' deltas go at once, not to the event log's retention), and a stuck write does not hold
the stop past its grace. The app, the runner and the SQLite file are real."""

from __future__ import annotations

import logging
import sqlite3
import time

from agentstead.runner import compaction
from agentstead.runner.compaction import Compactor

from ..support.llm_server import Turn
from .test_runs import agent_and_thread, chat, llm, send, settle  # noqa: F401 (the fixtures)
from .test_stream_deltas import bus  # noqa: F401 (the fixture)


def _deltas(db_file, run_id: str) -> int:
    with sqlite3.connect(db_file) as conn:
        return conn.execute(
            "SELECT count(*) FROM events e JOIN event_topics et ON et.seq = e.seq JOIN topics t ON t.id = et.topic "
            "WHERE e.type = 'message.delta' AND t.name = ?", (f"runs/{run_id}",)).fetchone()[0]


async def test_a_graceful_stop_compacts_the_runs_that_ended_in_the_window(chat, llm, settings, monkeypatch):  # noqa: F811
    # The window is made long so the stop surely falls inside it (it is 2 s; a slow machine
    # could otherwise let the batch go on its own before the stop, and the test prove nothing).
    monkeypatch.setattr(compaction, "QUIET", 600.0)
    client, headers = await chat()
    llm.tokens_per_second = 40
    llm.script = [Turn("one two three four five six")]
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "count"))["id"])
    assert run["status"] == "succeeded"
    assert _deltas(settings.db_file, run["id"]) > 0      # streamed, not compacted yet: the window is open
    await client.raw.close()                             # the app's graceful stop (shutdown, cleanup)
    assert _deltas(settings.db_file, run["id"]) == 0
    with sqlite3.connect(settings.db_file) as conn:      # the stored message carries the text
        content = conn.execute("SELECT content FROM messages WHERE thread_id = ? AND role = 'assistant'",
                               (thread["id"],)).fetchone()[0]
    assert content == "one two three four five six"


async def test_a_stuck_write_does_not_hold_the_stop_past_its_grace(bus, caplog):  # noqa: F811
    compactor = Compactor(bus.db)
    held = bus.db.write(lambda conn: time.sleep(1))      # the writer is stuck behind this
    compactor.ended("r1")
    with caplog.at_level(logging.WARNING, logger=compaction.__name__):
        await compactor.stop(0.2)
    assert not held.done()                              # the stop gave up before the write came
    assert "did not finish in time" in caplog.text
    await held
