"""What /metrics exports for the alert rules and the dashboard (monitoring/), from real
runs against the test LLM server, real WebSockets and a real event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

from prometheus_client.parser import text_string_to_metric_families

from agentstead.bus import events as ev
from agentstead.keys import BUS

from ..support.auth import token_user
from ..support.llm_server import Fault, ToolCall, Turn
from .test_runs import agent_and_thread, chat, llm, send, settle  # noqa: F401  (fixtures)
from .test_ws import _client_frame, _raw_ws_that_never_reads, connect


async def scrape(client) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one GET /metrics."""
    text = await (await client.get("/metrics")).text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_runs_are_counted_by_how_they_end_and_tokens_by_model(chat, llm):  # noqa: F811
    client, headers = await chat()
    before = await scrape(client)
    assert value(before, "agentstead_runs_finished_total", status="succeeded", code="") == 0
    assert value(before, "agentstead_runs_active", status="running") == 0
    _, thread = await agent_and_thread(client, headers, tools=[])

    llm.script = [Turn("All good here.")]
    ok = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    assert ok["status"] == "succeeded"
    llm.faults = [Fault("status", status=400)]   # not retried
    failed = await settle(client, headers, (await send(client, headers, thread["id"], "again"))["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "provider_error", failed

    after = await scrape(client)
    assert value(after, "agentstead_runs_finished_total", status="succeeded", code="") == 1
    assert value(after, "agentstead_runs_finished_total", status="failed", code="provider_error") == 1
    assert value(after, "agentstead_runs_active", status="running") == 0
    # Tokens by model: the usage table's totals, which the run reports too.
    assert value(after, "agentstead_model_runs_total", model="gpt-test") == 2
    assert value(after, "agentstead_model_tokens_total", model="gpt-test", kind="prompt") == ok["prompt_tokens"] > 0
    assert value(after, "agentstead_model_tokens_total", model="gpt-test", kind="completion") == \
        ok["completion_tokens"] > 0


async def test_a_run_waiting_for_an_answer_is_active(chat, llm):  # noqa: F811
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers, tools=["ask_human"])
    llm.script = [Turn(tool_calls=[ToolCall("ask_human", {"question": "Which one?"})])]
    run = await settle(client, headers, (await send(client, headers, thread["id"], "pick"))["id"],
                       until={"waiting_for_input", "failed"})
    assert run["status"] == "waiting_for_input", run
    assert value(await scrape(client), "agentstead_runs_active", status="waiting_for_input") == 1


async def test_websockets_open_events_sent_and_closes_by_reason(make_client, settings):
    client = await make_client(settings.replace(ws_send_queue=32))
    user, bearer = await token_user(client, "ada@example.org")
    topic = f"users/{user.id}"
    bus = client.app[BUS]
    live = await connect(client, bearer)
    await live.send({"op": "subscribe", "topic": topic})
    await live.until("subscribed")
    for i in range(3):
        await bus.publish(topic, ev.TokenRevoked(str(i)))
    await live.events(3)
    samples = await scrape(client)
    assert value(samples, "agentstead_websockets_open") == 1
    assert value(samples, "agentstead_websocket_events_sent_total") == 3
    appended = value(samples, "agentstead_events_appended_total")
    assert appended is not None and appended >= 3

    await live.ws.close()   # the client leaves: "peer"

    # A socket that stops reading is closed as a slow consumer.
    async def closes(reason: str) -> float:
        return value(await scrape(client), "agentstead_websocket_closes_total", reason=reason)

    reader, writer = await _raw_ws_that_never_reads(client, bearer)
    try:
        writer.write(_client_frame(f'{{"op":"subscribe","topic":"{topic}"}}'.encode()))
        await writer.drain()
        await asyncio.sleep(0.1)
        big = "x" * 20000
        for i in range(400):   # more than the socket's buffers and its send queue (32) hold
            await bus.publish(topic, ev.TokenRevoked(f"{i}-{big}"))
        async with asyncio.timeout(10):
            while await closes("slow_consumer") < 1 or await closes("peer") < 1:
                await asyncio.sleep(0.05)
        async with asyncio.timeout(15):   # the server ends the stalled socket on its own
            while value(await scrape(client), "agentstead_websockets_open") != 0:
                await asyncio.sleep(0.05)
    finally:
        writer.close()
    samples = await scrape(client)
    assert value(samples, "agentstead_websocket_closes_total", reason="slow_consumer") == 1
    assert value(samples, "agentstead_websocket_closes_total", reason="peer") == 1
    assert value(samples, "agentstead_websockets_open") == 0


async def test_the_event_loop_lag_shows_a_blocked_loop(client):
    await asyncio.sleep(0.6)   # a couple of on-time ticks
    before = await scrape(client)
    late = "agentstead_event_loop_lag_seconds_bucket"
    ticks = value(before, "agentstead_event_loop_lag_seconds_count")
    assert ticks >= 1 and value(before, late, le="0.25") == ticks   # nothing held the loop
    time.sleep(0.4)   # holds the loop the app runs on (the test's), like a blocking call would
    await asyncio.sleep(0.3)
    after = await scrape(client)
    over = (value(after, "agentstead_event_loop_lag_seconds_count") - value(after, late, le="0.25"))
    assert over >= 1, "a tick that waited 0.4 s for the loop is not counted as late"


async def test_disk_and_database_files(client, settings):
    samples = await scrape(client)
    assert value(samples, "agentstead_disk_min_free_bytes") == settings.min_free_disk
    assert value(samples, "agentstead_disk_free_bytes") > 0
    assert value(samples, "agentstead_db_size_bytes") == settings.db_file.stat().st_size > 0
    wal = settings.db_file.with_name(settings.db_file.name + "-wal")
    assert value(samples, "agentstead_db_wal_size_bytes") == (wal.stat().st_size if wal.exists() else 0)
    assert value(samples, "process_start_time_seconds") > 0


async def test_a_write_that_waited_for_another_process_s_write_lock_shows_its_wait(client, settings):
    """Another process (here a plain sqlite3 connection) holds the write lock for 0.4 s: the app's
    next write waits for it under the busy timeout, succeeds, and the wait is in the histogram."""
    _, headers = await token_user(client, "ada@example.org")
    before = await scrape(client)
    other = sqlite3.connect(settings.db_file, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.4, other.execute, ("COMMIT",))
    released.start()
    try:
        resp = await client.post("/api/agents", json={"name": "waited"}, headers=headers)
        assert resp.status == 201, await resp.text()
    finally:
        released.join()
        other.close()
    after = await scrape(client)
    name = "agentstead_db_lock_wait_seconds_bucket"
    long_waits = [value(s, "agentstead_db_lock_wait_seconds_count") - value(s, name, le="0.25")
                  for s in (before, after)]
    assert long_waits[1] - long_waits[0] >= 1, "a write that waited 0.4 s is not counted as a long wait"
    assert value(after, "agentstead_db_lock_wait_seconds_sum") >= 0.3
    assert value(after, "agentstead_db_lock_wait_seconds_count") > value(before, "agentstead_db_lock_wait_seconds_count")
