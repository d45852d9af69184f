"""The WebSocket protocol: authentication, topics, replay without gap or duplicate,
limits, slow consumers, retention. Every server message is checked against asyncapi.yaml."""

from __future__ import annotations

import asyncio
import base64
import os
import random

import aiohttp
import pytest

from agentstead.bus import events as ev
from agentstead.keys import BUS

from ..support.auth import browser_session, token_user
from ..support.live import Live

ORIGIN = "http://localhost:47294"


async def connect(client, headers=None, path="/ws") -> Live:
    ws = await client.raw.ws_connect(path, headers=headers or {}, autoping=True)
    return Live(ws)


async def handshake_status(client, headers=None, path="/ws") -> int:
    try:
        ws = await client.raw.ws_connect(path, headers=headers or {})
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


async def test_handshake_requires_credentials_and_an_allowed_origin(client):
    assert await handshake_status(client) == 401
    user, bearer = await token_user(client, "ada@example.org")
    assert await handshake_status(client, bearer) == 101
    assert await handshake_status(client, {**bearer, "Origin": "https://evil.example"}) == 403
    await browser_session(client, "bob@example.org")
    assert await handshake_status(client, {"Origin": ORIGIN}) == 101          # cookie + our origin
    assert await handshake_status(client, {"Origin": "https://evil.example"}) == 403  # hijacking attempt
    assert await handshake_status(client) == 403                                # cookie, no Origin


async def test_ticket_is_single_use(client):
    _, bearer = await token_user(client, "ada@example.org")
    ticket = (await (await client.post("/auth/ws-ticket", headers=bearer)).json())["ticket"]
    client.raw.session.cookie_jar.clear()
    assert await handshake_status(client, path=f"/ws?ticket={ticket}") == 101
    assert await handshake_status(client, path=f"/ws?ticket={ticket}") == 401
    assert await handshake_status(client, path="/ws?ticket=made-up") == 401


async def test_own_events_arrive_live(client):
    user, bearer = await token_user(client, "ada@example.org")
    live = await connect(client, bearer)
    await live.send({"op": "subscribe", "topic": f"users/{user.id}", "id": 1})
    sub = await live.until("subscribed")
    assert sub["id"] == 1 and sub["topic"] == f"users/{user.id}"
    await client.post("/api/tokens", json={"name": "ci"}, headers=bearer)
    event = await live.until("event")
    assert event["type"] == "token.created" and event["data"]["name"] == "ci"
    assert event["seq"] > sub["seq"]
    await live.send({"op": "ping", "id": "p"})
    assert await live.until("pong") == {"op": "pong", "id": "p"}


@pytest.mark.parametrize("topic,code", [
    ("system", "forbidden"),
    ("users/someone-else", "forbidden"),
    ("users/*", "forbidden"),
    ("runs/abc", "forbidden"),              # not yours, or does not exist: the same answer
    ("widgets/abc", "invalid_topic"),
    ("../../etc", "invalid_topic"),
    (42, "invalid_topic"),
])
async def test_topics_a_member_may_not_read(client, topic, code):
    _, bearer = await token_user(client, "ada@example.org")
    live = await connect(client, bearer)
    await live.send({"op": "subscribe", "topic": topic}) if not isinstance(topic, int) else \
        await live.ws.send_json({"op": "subscribe", "topic": topic})
    reply = await live.until("error")
    assert reply["code"] == code


async def test_admins_read_system_and_any_user(client):
    ada, _ = await token_user(client, "ada@example.org")
    _, admin = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    live = await connect(client, admin)
    for topic in ("system", f"users/{ada.id}", "users/*"):
        await live.send({"op": "subscribe", "topic": topic})
        assert (await live.until("subscribed"))["topic"] == topic
    await token_user(client, "new@example.org")
    seen = {(e["topic"], e["type"]) for e in await live.events(2)}
    assert {t for _, t in seen} == {"system.user_created", "token.created"}  # system + users/*


async def test_replay_after_a_cursor_then_live(client):
    user, bearer = await token_user(client, "ada@example.org")
    bus = client.app[BUS]
    topic = f"users/{user.id}"
    published = [await bus.publish(topic, ev.TokenRevoked(f"t{i}")) for i in range(6)]
    live = await connect(client, bearer)
    await live.send({"op": "subscribe", "topic": topic, "after": published[2].seq})
    replayed = await live.events(3)
    assert [e["data"]["token_id"] for e in replayed] == ["t3", "t4", "t5"]
    assert (await live.until("subscribed"))["seq"] == published[-1].seq
    await bus.publish(topic, ev.TokenRevoked("t6"))
    assert (await live.events(1))[0]["data"]["token_id"] == "t6"


async def test_no_gap_no_duplicate_at_the_seam(client):
    """Subscribe with a cursor while events are being published, many times."""
    user, bearer = await token_user(client, "ada@example.org")
    bus = client.app[BUS]
    topic = f"users/{user.id}"
    for round_ in range(15):
        start = await bus.publish(topic, ev.TokenRevoked(f"r{round_}-start"))
        total = 120

        async def publisher():
            for i in range(total):
                await bus.publish(topic, ev.TokenRevoked(f"r{round_}-{i}"))
                if random.random() < 0.3:
                    await asyncio.sleep(0)

        task = asyncio.create_task(publisher())
        await asyncio.sleep(random.random() * 0.01)
        live = await connect(client, bearer)
        await live.send({"op": "subscribe", "topic": topic, "after": start.seq})
        got = await live.events(total, timeout=20)
        await task
        ids = [e["data"]["token_id"] for e in got]
        assert ids == [f"r{round_}-{i}" for i in range(total)], f"round {round_}"
        seqs = [e["seq"] for e in got]
        assert seqs == sorted(set(seqs))
        await live.ws.close()


async def test_bad_messages_get_errors_then_abuse_closes_1008(make_client, settings):
    client = await make_client(settings.replace(ws_max_errors=5))
    _, bearer = await token_user(client, "ada@example.org")
    bystander = await connect(client, bearer)
    live = await connect(client, bearer)
    await live.ws.send_str("{not json")
    assert (await live.until("error"))["code"] == "invalid_json"
    await live.ws.send_str('{"op": "dance"}')
    assert (await live.until("error"))["code"] == "unknown_op"
    await live.ws.send_str("[1, 2]")
    assert (await live.until("error"))["code"] == "invalid_message"
    await live.ws.send_bytes(b"\x00\x01")
    assert (await live.until("error"))["code"] == "invalid_message"
    await live.ws.send_str('{"op": "subscribe", "topic": "users/x", "after": -1}')
    assert (await live.until("error"))["code"] == "invalid_message"
    assert await live.closed() == 1008
    await bystander.send({"op": "ping"})
    assert (await bystander.until("pong"))["op"] == "pong"  # others unaffected


async def test_oversized_message_closes_1009(make_client, settings):
    client = await make_client(settings.replace(ws_max_message_size=1024))
    _, bearer = await token_user(client, "ada@example.org")
    live = await connect(client, bearer)
    await live.ws.send_str('{"op": "ping", "pad": "' + "x" * 2000 + '"}')
    assert await live.closed() == 1009


async def test_subscription_limit_with_1000_topics(make_client, settings):
    client = await make_client(settings.replace(ws_max_subscriptions=1000))
    _, admin = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    live = await connect(client, admin)
    for i in range(1000):
        await live.ws.send_json({"op": "subscribe", "topic": f"users/u{i}", "id": i})
    acks = [await live.until("subscribed") for _ in range(1000)]
    assert {a["id"] for a in acks} == set(range(1000))
    await live.send({"op": "subscribe", "topic": "users/one-too-many"})
    assert (await live.until("error"))["code"] == "too_many_subscriptions"
    await live.send({"op": "subscribe", "topic": "users/u5"})
    assert (await live.until("error"))["code"] == "already_subscribed"
    await live.send({"op": "unsubscribe", "topic": "users/u5"})
    assert (await live.until("unsubscribed"))["topic"] == "users/u5"
    await live.send({"op": "unsubscribe", "topic": "users/u5"})
    assert (await live.until("error"))["code"] == "not_subscribed"


async def _raw_ws_that_never_reads(client, headers):
    """A real client that completes the handshake and then stops reading."""
    import socket
    reader, writer = await asyncio.open_connection(client.raw.host, client.raw.port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /ws HTTP/1.1", f"Host: {client.raw.host}:{client.raw.port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    status = await reader.readline()
    assert b"101" in status
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    return reader, writer


def _client_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    length = len(payload)
    head = bytes([0x81]) + (bytes([0x80 | length]) if length < 126 else bytes([0x80 | 126]) + length.to_bytes(2, "big"))
    return head + mask + masked


async def test_slow_consumer_is_closed_others_unaffected_and_resume_is_complete(make_client, settings):
    client = await make_client(settings.replace(ws_send_queue=32))
    user, bearer = await token_user(client, "ada@example.org")
    topic = f"users/{user.id}"
    bus = client.app[BUS]
    start = await bus.publish(topic, ev.TokenRevoked("start"))
    reader, writer = await _raw_ws_that_never_reads(client, bearer)
    writer.write(_client_frame(f'{{"op":"subscribe","topic":"{topic}"}}'.encode()))
    await writer.drain()
    healthy = await connect(client, bearer)
    await healthy.send({"op": "subscribe", "topic": topic})
    await healthy.until("subscribed")
    await asyncio.sleep(0.1)
    big = "x" * 20000
    reading = asyncio.create_task(healthy.events(400, timeout=30))  # a consumer that keeps up
    published = []
    for i in range(400):
        published.append(await bus.publish(topic, ev.TokenRevoked(f"{i}-{big}")))
    got = await reading
    assert [e["seq"] for e in got] == [p.seq for p in published]
    # the stalled socket was cut off (its TCP connection is reset), without slowing anyone
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(10):
            while await reader.read(65536):
                pass
    writer.close()
    # it reconnects and resumes from its cursor: nothing lost
    again = await connect(client, bearer)
    await again.send({"op": "subscribe", "topic": topic, "after": start.seq})
    resumed = await again.events(400, timeout=30)
    assert [e["seq"] for e in resumed] == [p.seq for p in published]


async def test_cursor_older_than_retention_is_expired(make_client, settings):
    client = await make_client(settings.replace(event_retention_max=1000))
    user, bearer = await token_user(client, "ada@example.org")
    topic = f"users/{user.id}"
    bus = client.app[BUS]
    first = await bus.publish(topic, ev.TokenRevoked("old"))
    for i in range(1100):
        bus.publish(topic, ev.TokenRevoked(str(i)))
    await bus.publish(topic, ev.TokenRevoked("last"))
    from agentstead.bus.retention import purge_once
    from agentstead.keys import SETTINGS
    assert await purge_once(bus, client.app[SETTINGS]) > 0
    live = await connect(client, bearer)
    await live.send({"op": "subscribe", "topic": topic, "after": first.seq})
    expired = await live.until("error")
    assert expired["code"] == "cursor_expired" and expired["floor"] > first.seq
    # from the floor on, everything still in the log replays, ending with the last event
    await live.send({"op": "subscribe", "topic": topic, "after": expired["floor"]})
    replayed = []
    while (message := await live.recv())["op"] != "subscribed":
        replayed.append(message)
    assert replayed[0]["seq"] == expired["floor"] + 1
    assert [e["seq"] for e in replayed] == sorted(e["seq"] for e in replayed)
    assert replayed[-1]["data"] == {"token_id": "last"} and message["seq"] == replayed[-1]["seq"]


async def test_revoked_session_closes_its_socket_4001(client):
    headers = await browser_session(client, "ada@example.org")
    live = await connect(client, {"Origin": ORIGIN})
    await live.send({"op": "ping"})
    await live.until("pong")
    closed = asyncio.create_task(live.closed())   # a client reads all the time
    assert (await client.post("/auth/logout", headers=headers)).status == 204
    assert await closed == 4001


async def test_disabled_account_closes_its_sockets(client):
    ada, bearer = await token_user(client, "ada@example.org")
    _, admin = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    live = await connect(client, bearer)
    closed = asyncio.create_task(live.closed())
    await client.patch(f"/api/admin/users/{ada.id}", json={"disabled": True}, headers=admin)
    assert await closed == 4001


async def test_every_event_type_is_in_asyncapi():
    from ..support.live import spec
    documented = set()
    for branch in spec()["components"]["schemas"]["EventMessage"]["oneOf"]:
        documented.add(branch["properties"]["type"]["const"])
    assert documented == set(ev.REGISTRY)
