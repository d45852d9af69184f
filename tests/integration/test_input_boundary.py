"""One input boundary (http/storable.py): what the store cannot hold gets a clear 4xx and
changes nothing. Headers whose bytes are not UTF-8, JSON beyond 64 bits, non-finite numbers,
lone surrogates, nesting past the limit, numbers in queries and headers read with the wrong
rules, WebSocket cursors past SQLite's integers. Each case answered 500 before."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from ..support.auth import browser_session, token_user
from .test_ws import ORIGIN, connect


async def raw_request(client, head: bytes, body: bytes = b"") -> tuple[int, dict]:
    """Send bytes no HTTP client library would, and read the JSON answer."""
    reader, writer = await asyncio.open_connection(client.raw.host, client.raw.port)
    length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
    writer.write(head + b"Host: x\r\nConnection: close\r\n" + length + b"\r\n" + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    payload = data.split(b"\r\n\r\n", 1)[1]
    return status, json.loads(payload) if payload.startswith(b"{") else {}


def counts(settings) -> tuple[int, ...]:
    with sqlite3.connect(settings.db_file) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("agents", "threads", "workflows", "api_tokens", "audit_log", "session_families"))


@pytest.mark.parametrize("header", [
    b"User-Agent: \xff\xfe",                 # reaches the audit log and the session row
    b"Authorization: Bearer ast_\xff",       # digested
    b"Cookie: as_access=\xff\xfe",           # digested
    b"X-CSRF-Token: \xc3",                   # compared
    b"Origin: http://\xffevil",
])
async def test_header_bytes_that_are_not_utf8_are_refused(client, settings, header):
    _, bearer = await token_user(client, "ada@example.org")
    before = counts(settings)
    auth = b"" if header.startswith((b"Authorization", b"Cookie")) else \
        f"Authorization: {bearer['Authorization']}\r\n".encode()
    status, body = await raw_request(client, b"POST /api/tokens HTTP/1.1\r\nContent-Type: application/json\r\n"
                                     + auth + header + b"\r\n", b'{"name": "x"}')
    assert status == 400 and body["error"]["code"] == "bad_header", body
    assert counts(settings) == before


BAD_BODIES = [
    ("[" * 100_000 + "]" * 100_000, 422, ""),                      # the parser's recursion limit
    ('{"name": "a", "instructions": ' + "[" * 70 + "]" * 70 + "}", 422,      # past 64 levels: where
     "/instructions" + "/0" * 63),
    ('{"name": "a", "max_steps": ' + "9" * 5000 + "}", 422, "/max_steps"),   # int() refuses > 4300 digits
    ('{"name": "a", "max_steps": 9223372036854775808}', 422, "/max_steps"),  # 2^63: beyond SQLite
    ('{"name": "a", "temperature": 1e400}', 422, "/temperature"),            # parses as infinity
    ('{"name": "a", "temperature": NaN}', 422, "/temperature"),              # not JSON at all
    ('{"name": "a", "temperature": -Infinity}', 422, "/temperature"),
    ('{"name": "\\ud800"}', 422, "/name"),                                  # a lone surrogate
    ('{"name": "ok", "instructions": "x\\udfff"}', 422, "/instructions"),
    ('{"\\udc80": 1}', 422, "/\\udc80"),                                     # in a name
]


@pytest.mark.parametrize("raw,status,pointer", BAD_BODIES)
async def test_json_the_store_cannot_hold_is_refused_with_a_pointer(client, settings, raw, status, pointer):
    _, bearer = await token_user(client, "ada@example.org")
    before = counts(settings)
    resp = await client.post("/api/agents", data=raw.encode(), headers={**bearer, "Content-Type": "application/json"})
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "validation_failed"
    assert error["details"]["errors"][0]["pointer"] == pointer
    assert counts(settings) == before


@pytest.mark.parametrize("path,body", [
    ("/api/threads", '{"agent_id": "a", "title": "\\ud83d"}'),
    ("/api/workflows", '{"definition": {"name": "\\udc00", "start": "a", "steps": {}}}'),
    ("/api/tokens", '{"name": "t", "expires_in_days": 1e999}'),
])
async def test_every_json_route_shares_the_boundary(client, settings, path, body):
    _, bearer = await token_user(client, "ada@example.org")
    before = counts(settings)
    resp = await client.post(path, data=body.encode(), headers={**bearer, "Content-Type": "application/json"})
    assert resp.status == 422, await resp.text()
    assert counts(settings) == before


async def test_only_utf8_json_is_read(client):
    _, bearer = await token_user(client, "ada@example.org")
    for charset in ("latin-1", "utf-16", "idna", "rot13"):
        resp = await client.post("/api/agents", data=b'{"name": "x"}',
                                 headers={**bearer, "Content-Type": f"application/json; charset={charset}"})
        assert resp.status == 415, (charset, await resp.text())


@pytest.mark.parametrize("value", ["١٢", "1_0", " 5", "+5", "5.0", "0x10", "99999999999999999999", "9" * 5000])
async def test_query_numbers_are_ascii_decimal_within_range(client, value):
    _, bearer = await token_user(client, "ada@example.org")
    resp = await client.get(f"/api/agents?limit={value}", headers=bearer)
    assert resp.status == 400, (value, resp.status)
    resp = await client.get(f"/api/admin/audit?before={value}", headers=bearer)
    assert resp.status in (400, 403)


async def test_a_websocket_cursor_or_number_beyond_64_bits_gets_an_error_and_the_socket_stays(client):
    user, bearer = await token_user(client, "ada@example.org")
    live = await connect(client, bearer)
    topic = f"users/{user.id}"
    for text in ('{"op": "subscribe", "topic": "%s", "after": 9223372036854775808}' % topic,
                 '{"op": "subscribe", "topic": "%s", "after": %s}' % (topic, "9" * 5000),
                 '{"op": "ping", "id": %s}' % ("1" * 5000),
                 '{"op": "subscribe", "topic": "users/\\ud800"}',
                 '{"op": "ping", "x": 1e400}',
                 '{"op": "ping", "x": NaN}',
                 '{"op": "ping", "x": ' + "[" * 70 + "]" * 70 + "}",
                 "[" * 50_000):
        await live.ws.send_str(text)
        reply = await live.until("error")
        assert reply["code"] in ("invalid_message", "invalid_json", "invalid_topic"), (text[:60], reply)
    await live.send({"op": "subscribe", "topic": topic, "after": 2**63 - 1})
    assert (await live.until("subscribed"))["topic"] == topic   # the largest cursor SQLite holds is fine
    await live.send({"op": "ping", "id": "still-here"})
    assert (await live.until("pong"))["id"] == "still-here"


async def test_a_cookie_socket_with_unreadable_origin_bytes_is_refused(client):
    await browser_session(client, "ada@example.org")
    status, body = await raw_request(client, b"GET /ws HTTP/1.1\r\nOrigin: " + ORIGIN.encode() + b"\xff\r\n"
                                     b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
    assert status == 400 and body["error"]["code"] == "bad_header"
