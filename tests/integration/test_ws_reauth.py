"""Permissions on open sockets: tickets and subscriptions follow who the caller is now.

A ticket is resolved again when it is redeemed (and dropped by a logout, revocation,
disable or role change); every subscribe re-checks the caller; an open socket is
re-checked at once when its user changes: 4001 when the caller is gone, 4003 when it
lost a topic it reads (asyncapi.yaml, docs/security.md V4.4.4 and 8.3.2)."""

from __future__ import annotations

import asyncio

from agentstead.bus import events as ev
from agentstead.keys import BUS

from ..support.auth import browser_session, token_user
from .test_ws import ORIGIN, connect, handshake_status


async def _ticket(client, headers) -> str:
    resp = await client.post("/auth/ws-ticket", headers=headers)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["ticket"]


async def test_a_ticket_issued_before_logout_opens_nothing(client):
    headers = await browser_session(client, "ada@example.org")
    ticket = await _ticket(client, headers)
    assert (await client.post("/auth/logout", headers=headers)).status == 204
    client.raw.session.cookie_jar.clear()
    assert await handshake_status(client, path=f"/ws?ticket={ticket}") == 401


async def test_a_ticket_issued_before_its_token_is_revoked_or_the_user_disabled_opens_nothing(client):
    ada, ada_bearer = await token_user(client, "ada@example.org")
    _, admin = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    token_id = (await (await client.get("/api/me", headers=ada_bearer)).json())["auth"]["token_id"]
    revoked = await _ticket(client, ada_bearer)
    assert (await client.delete(f"/api/tokens/{token_id}", headers=ada_bearer)).status == 204
    assert await handshake_status(client, path=f"/ws?ticket={revoked}") == 401

    bob, bob_bearer = await token_user(client, "bob@example.org")
    disabled = await _ticket(client, bob_bearer)
    assert (await client.patch(f"/api/admin/users/{bob.id}", json={"disabled": True}, headers=admin)).status == 200
    assert await handshake_status(client, path=f"/ws?ticket={disabled}") == 401


async def test_a_ticket_issued_before_a_demotion_carries_no_admin_rights(client):
    _, root = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    ex, ex_bearer = await token_user(client, "ex@example.org", "admin", scopes=("admin",))
    ticket = await _ticket(client, ex_bearer)
    assert (await client.patch(f"/api/admin/users/{ex.id}", json={"role": "member"}, headers=root)).status == 200
    # Invalidation dropped the ticket; a new one is a member's.
    assert await handshake_status(client, path=f"/ws?ticket={ticket}") == 401
    live = await connect(client, path=f"/ws?ticket={await _ticket(client, ex_bearer)}")
    await live.send({"op": "subscribe", "topic": "users/*"})
    assert (await live.until("error"))["code"] == "forbidden"
    await live.send({"op": "subscribe", "topic": f"users/{ex.id}"})
    assert (await live.until("subscribed"))["topic"] == f"users/{ex.id}"


async def test_a_demoted_administrators_socket_closes_4003_before_anothers_event_reaches_it(client):
    _, root = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    ex, ex_bearer = await token_user(client, "ex@example.org", "admin", scopes=("admin",))
    ada, _ = await token_user(client, "ada@example.org")
    live = await connect(client, ex_bearer)
    for topic in ("users/*", "system"):
        await live.send({"op": "subscribe", "topic": topic})
        await live.until("subscribed", topic=topic)
    seen: list[dict] = []

    async def read_until_closed() -> int:
        while True:
            msg = await live.ws.receive()
            if msg.type.name == "TEXT":
                seen.append(msg.json())
            else:
                return live.ws.close_code

    closed = asyncio.create_task(read_until_closed())
    bus = client.app[BUS]
    before = await bus.publish(f"users/{ada.id}", ev.TokenRevoked("before"))
    assert (await client.patch(f"/api/admin/users/{ex.id}", json={"role": "member"}, headers=root)).status == 200
    await bus.publish(f"users/{ada.id}", ev.TokenRevoked("after"))   # another user's event
    assert await asyncio.wait_for(closed, 10) == 4003
    got = [m["data"].get("token_id") for m in seen if m.get("op") == "event" and m["topic"] == f"users/{ada.id}"]
    assert got == ["before"] and before.seq > 0
    # Reconnecting gives the member's rights.
    again = await connect(client, ex_bearer)
    await again.send({"op": "subscribe", "topic": "users/*"})
    assert (await again.until("error"))["code"] == "forbidden"


async def test_a_subscription_is_authorised_as_the_caller_is_now(client):
    """Between the handshake and a subscribe the caller may lose rights; the subscribe sees it."""
    _, root = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    ex, ex_bearer = await token_user(client, "ex@example.org", "admin", scopes=("admin",))
    live = await connect(client, ex_bearer)
    await live.send({"op": "ping"})
    await live.until("pong")
    assert (await client.patch(f"/api/admin/users/{ex.id}", json={"role": "member"}, headers=root)).status == 200
    await live.send({"op": "subscribe", "topic": "system"})
    assert (await live.until("error"))["code"] == "forbidden"


async def test_a_promotion_or_an_unrelated_change_keeps_the_socket_and_its_events(client):
    _, root = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    _, bob_bearer = await token_user(client, "bob@example.org")
    await browser_session(client, "ada@example.org")
    ada = (await (await client.get("/api/me")).json())["user"]
    live = await connect(client, {"Origin": ORIGIN})   # ada's browser session
    await live.send({"op": "subscribe", "topic": f"users/{ada['id']}"})
    await live.until("subscribed")
    assert (await client.patch(f"/api/admin/users/{ada['id']}", json={"role": "admin"}, headers=root)).status == 200
    assert (await live.until("event", type="account.updated"))["data"] == {"role": "admin", "disabled": False}
    # The promoted session now reads what an administrator reads, on the same socket.
    await live.send({"op": "subscribe", "topic": "system"})
    assert (await live.until("subscribed"))["topic"] == "system"
    # Another user's token revocation does not disturb this socket.
    bob_token = (await (await client.get("/api/me", headers=bob_bearer)).json())["auth"]["token_id"]
    assert (await client.delete(f"/api/tokens/{bob_token}", headers=bob_bearer)).status == 204
    await live.send({"op": "ping", "id": 7})
    assert (await live.until("pong"))["id"] == 7


async def test_a_token_that_expires_closes_its_socket_4001(client):
    from agentstead.keys import IDENTITY
    from agentstead.store import api_tokens as token_store
    from agentstead.timeutil import later_iso

    ada, ada_bearer = await token_user(client, "ada@example.org")
    live = await connect(client, ada_bearer)
    await live.send({"op": "subscribe", "topic": f"users/{ada.id}"})
    await live.until("subscribed")
    closed = asyncio.create_task(live.closed())
    # The token runs out a second from now (as if it had been created with that expiry).
    token_id = (await (await client.get("/api/me", headers=ada_bearer)).json())["auth"]["token_id"]
    await client.app[IDENTITY].db.write(lambda conn: conn.execute(
        "UPDATE api_tokens SET expires_at = ? WHERE id = ?", (later_iso(1), token_id)))
    assert (await client.app[IDENTITY].db.read(token_store.by_id, token_id)).expires_at is not None
    await live.send({"op": "subscribe", "topic": "users/not-mine"})   # any re-check learns the new expiry
    assert await asyncio.wait_for(closed, 10) == 4001
