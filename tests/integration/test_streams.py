"""Server-sent events: a finished run's stream ends, with or without a cursor; cursors are
seq numbers and nothing else; a stream ends with the caller's session; a client that leaves
is neither an error in the log nor a 5xx in the metrics."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from agentstead.keys import ACCESS_LOG, METRICS

from ..support.llm_server import Turn
from .test_runs import agent_and_thread, chat, llm, send, settle  # noqa: F401  (fixtures)


def _ids(text: str) -> list[int]:
    return [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]


async def test_a_finished_runs_stream_ends_without_and_after_a_cursor(chat, llm):
    client, headers = await chat()
    llm.script = [Turn("done")]
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "hi")
    await settle(client, headers, run["id"])
    everything = await client.get(f"/api/runs/{run['id']}/stream", headers={**headers, "Last-Event-ID": "0"},
                                  validate_contract=False)
    last = _ids(await everything.text())[-1]
    for cursor in (None, str(last), str(last + 1000)):
        sent = {**headers, **({"Last-Event-ID": cursor} if cursor is not None else {})}
        async with asyncio.timeout(5):   # it used to stay open for ever
            resp = await client.get(f"/api/runs/{run['id']}/stream", headers=sent, validate_contract=False)
            assert resp.status == 200 and _ids(await resp.text()) == [], cursor


async def test_last_event_id_is_digits_within_what_sqlite_holds(chat, llm):
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers)
    for bad in ("abc", "", "-1", "1.5", "²", "١٢", "99999999999999999999", "9" * 5000, " 7x"):
        resp = await client.get(f"/api/threads/{thread['id']}/stream", headers={**headers, "Last-Event-ID": bad})
        assert resp.status == 400, (bad, resp.status, await resp.text())
        assert (await resp.json())["error"]["code"] == "bad_request"


async def test_a_stream_ends_when_its_token_is_revoked(chat, llm):
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers)
    token_id = (await (await client.get("/api/me", headers=headers)).json())["auth"]["token_id"]
    resp = await client.raw.get(f"/api/threads/{thread['id']}/stream", headers=headers)
    assert resp.status == 200
    reading = asyncio.create_task(resp.read())
    await asyncio.sleep(0.1)
    assert not reading.done()
    assert (await client.delete(f"/api/tokens/{token_id}", headers=headers)).status == 204
    async with asyncio.timeout(5):
        await reading   # the server ended it


async def _raw(client, data: bytes, *, read: bool = True) -> None:
    reader, writer = await asyncio.open_connection(client.raw.host, client.raw.port)
    writer.write(data)
    await writer.drain()
    if read:
        await reader.readuntil(b"\r\n\r\n")   # the response has started
    writer.close()


async def test_a_client_that_leaves_is_no_server_error(chat, llm, caplog):
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers)
    log = client.app[ACCESS_LOG]
    log.flush()
    log.fmt, log.stream = "json", io.StringIO()
    auth = f"Authorization: {headers['Authorization']}\r\n".encode()
    # 1. an upload cut off half way
    await _raw(client, b"POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 5000\r\n" + auth + b"\r\n" + b'{"name": "' + b"x" * 100, read=False)
    # 2. an event stream the client closes
    await _raw(client, f"GET /api/threads/{thread['id']}/stream HTTP/1.1\r\nHost: x\r\n".encode() + auth + b"\r\n")
    wanted = {("POST", "/api/agents"), ("GET", "/api/threads/{id}/stream")}
    async with asyncio.timeout(10):   # each is logged when its handler has ended
        while True:
            log.flush()
            lines = [json.loads(line) for line in log.stream.getvalue().splitlines()]
            statuses = {(e["method"], e["route"]): e["status"] for e in lines}
            if wanted <= set(statuses):
                break
            await asyncio.sleep(0.05)
    assert statuses[("POST", "/api/agents")] == 499
    assert statuses[("GET", "/api/threads/{id}/stream")] in (200, 499)
    assert all(e["status"] < 500 for e in lines), lines
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    rendered = client.app[METRICS].render().decode()
    assert 'status="500"' not in rendered and 'status="499"' in rendered
