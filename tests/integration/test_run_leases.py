"""Running rows without a task: cancel works on them, and the watchdog settles the ones whose
lease ran out. The state is what a task that died without writing its end leaves (a
`running` row, written here with plain SQL); the app, the runner and the watchdog are real."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from agentstead.keys import RUNNER

from ..support.auth import token_user
from ..support.live import Live
from ..support.llm_server import Turn


@pytest.fixture
def llm(llm):
    llm.script = lambda body: Turn("Done.")
    return llm


async def finished_run(make_client, settings, llm, **overrides):
    providers = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": "sk-test",
                  "models": ("gpt-test",), "default_model": "gpt-test"},)
    client = await make_client(settings.replace(llm_providers=providers, **overrides))
    _, headers = await token_user(client, "ada@example.org")
    agent = await (await client.post("/api/agents", json={"name": "A"}, headers=headers)).json()
    thread = await (await client.post("/api/threads", json={"agent_id": agent["id"]}, headers=headers)).json()
    run = await (await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "hi"},
                                   headers=headers)).json()
    async with asyncio.timeout(20):
        while client.app[RUNNER].tasks or (await (await client.get(f"/api/runs/{run['id']}", headers=headers))
                                           .json())["status"] != "succeeded":
            await asyncio.sleep(0.05)
    return client, headers, thread, run


def orphan(settings, run_id: str, lease_until: str | None) -> None:
    """The row of a run whose task is gone without its end: running, lease as given."""
    with sqlite3.connect(settings.db_file) as conn:
        conn.execute("UPDATE runs SET status = 'running', finished_at = NULL, lease_until = ? WHERE id = ?",
                     (lease_until, run_id))


async def test_cancel_works_on_a_running_row_whose_task_is_gone(make_client, settings, llm):
    client, headers, thread, run = await finished_run(make_client, settings, llm)
    orphan(settings, run["id"], "2999-01-01T00:00:00.000000Z")   # a lease that has not run out
    blocked = await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "more"}, headers=headers)
    assert blocked.status == 409 and (await blocked.json())["error"]["code"] == "run_in_progress"
    resp = await client.post(f"/api/runs/{run['id']}/cancel", headers=headers)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    resp = await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "more"}, headers=headers)
    assert resp.status == 202                                    # the thread takes messages again


async def test_the_watchdog_interrupts_a_running_row_whose_lease_ran_out(make_client, settings, llm):
    client, headers, thread, run = await finished_run(make_client, settings, llm, run_lease_seconds=3)
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"runs/{run['id']}"})
    await live.until("subscribed")
    orphan(settings, run["id"], "2000-01-01T00:00:00.000000Z")   # nobody vouches for it
    event = await live.until("event", timeout=10)                # one watchdog pass: every lease / 3
    assert event["type"] == "run.interrupted"
    done = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    assert done["status"] == "interrupted" and "lease" in done["error"]["message"]
    assert client.app[RUNNER].leases.settled == 1


async def test_the_watchdog_leaves_a_run_it_runs_alone(make_client, settings, llm):
    """A live run's lease is renewed while it runs, longer than the lease itself."""
    llm.tokens_per_second = 10
    client, headers, thread, _ = await finished_run(make_client, settings, llm, run_lease_seconds=3)
    llm.script = lambda body: Turn(" ".join(f"w{i}" for i in range(60)))   # about 6 s of streaming
    run = await (await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "long"},
                                   headers=headers)).json()
    async with asyncio.timeout(30):
        while (status := (await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json())["status"]) \
                in ("queued", "running"):
            await asyncio.sleep(0.1)
    assert status == "succeeded" and client.app[RUNNER].leases.settled == 0
