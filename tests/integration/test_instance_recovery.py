"""One of several instances restarting (runner/instances.py, runner.py: start): it interrupts
the runs its previous life left running at once (leases named by AGENTSTEAD_INSTANCE), and
leaves another instance's running runs alone (theirs, or their watchdog's). The app, the
runner and the store are real; the rows are what two instances' runs leave."""

from __future__ import annotations

import asyncio
import sqlite3

from agentstead.bus.bus import Bus
from agentstead.keys import RUNNER
from agentstead.runner.runner import Runner
from agentstead.store.db import Database

from .test_run_leases import finished_run, llm  # noqa: F401 (the fixture)


def _lease(settings, run_id: str, instance: str) -> None:
    with sqlite3.connect(settings.db_file) as conn:
        conn.execute("UPDATE runs SET status = 'running', finished_at = NULL, owner_instance = ?, "
                     "lease_until = '2999-01-01T00:00:00.000000Z' WHERE id = ?", (instance, run_id))


def _status(settings, run_id: str) -> str:
    with sqlite3.connect(settings.db_file) as conn:
        return conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]


async def test_a_restarted_instance_interrupts_only_its_previous_lifes_runs(make_client, settings, llm):  # noqa: F811
    client, headers, thread, first = await finished_run(make_client, settings, llm)
    second = await (await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "again"},
                                      headers=headers)).json()
    async with asyncio.timeout(20):   # finished, so that only the rows below say running
        while client.app[RUNNER].tasks or _status(settings, second["id"]) != "succeeded":
            await asyncio.sleep(0.05)
    _lease(settings, first["id"], "1:0123")     # instance 1's previous life
    _lease(settings, second["id"], "2:4567")    # instance 2, alive
    shared = settings.replace(nats_url="nats://127.0.0.1:1", instance="1", instances=2)
    db = Database(settings.db_file, readers=1)
    await db.open()
    runner = Runner(Bus(db), shared)
    try:
        await runner.start()
        assert runner.leases.instance.startswith("1:")
        assert _status(settings, first["id"]) == "interrupted"
        assert _status(settings, second["id"]) == "running"
    finally:
        await runner.stop()
        await db.close()
