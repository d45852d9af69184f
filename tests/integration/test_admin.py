"""Admin: users and roles, the last-admin guard, the audit log."""

from __future__ import annotations

from ..support.auth import token_user


async def test_members_cannot_use_admin_routes(client):
    member, headers = await token_user(client, "ada@example.org")
    assert (await client.get("/api/admin/users", headers=headers)).status == 403
    assert (await client.get("/api/admin/audit", headers=headers)).status == 403
    resp = await client.patch(f"/api/admin/users/{member.id}", json={"role": "admin"}, headers=headers)
    assert resp.status == 403
    _, root = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    users = (await (await client.get("/api/admin/users", headers=root)).json())["users"]
    assert {u["email"]: u["role"] for u in users}["ada@example.org"] == "member"  # unchanged


async def test_list_page_and_search_users(client):
    _, root = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    for i in range(5):
        await token_user(client, f"user{i}@example.org")
    page1 = await (await client.get("/api/admin/users?limit=3", headers=root)).json()
    assert len(page1["users"]) == 3 and page1["next"]
    page2 = await (await client.get(f"/api/admin/users?limit=3&after={page1['next']}", headers=root)).json()
    emails = [u["email"] for u in page1["users"] + page2["users"]]
    assert emails == sorted(emails) and len(set(emails)) == 6
    found = await (await client.get("/api/admin/users?q=user3", headers=root)).json()
    assert [u["email"] for u in found["users"]] == ["user3@example.org"]
    assert (await client.get("/api/admin/users?limit=0", headers=root)).status == 400


async def test_role_change_and_last_admin_guard(client):
    root, headers = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    ada, _ = await token_user(client, "ada@example.org")
    resp = await client.patch(f"/api/admin/users/{root.id}", json={"role": "member"}, headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "last_admin"
    resp = await client.patch(f"/api/admin/users/{root.id}", json={"disabled": True}, headers=headers)
    assert resp.status == 409
    resp = await client.patch(f"/api/admin/users/{ada.id}", json={"role": "admin"}, headers=headers)
    assert resp.status == 200 and (await resp.json())["role"] == "admin"
    for body in ({}, {"role": "owner"}, {"disabled": "yes"}, {"email": "x@y.z"}):
        resp = await client.patch(f"/api/admin/users/{ada.id}", json=body, headers=headers)
        assert resp.status == 422, body
    assert (await client.patch("/api/admin/users/nope", json={"role": "member"}, headers=headers)).status == 404


async def test_audit_log_records_actions_with_actor_ip_and_filters(client):
    root, headers = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    ada, _ = await token_user(client, "ada@example.org")
    await client.patch(f"/api/admin/users/{ada.id}", json={"disabled": True}, headers={**headers, "User-Agent": "tests/1"})
    body = await (await client.get("/api/admin/audit?action=user.updated", headers=headers)).json()
    entry = body["entries"][0]
    assert entry["actor_id"] == root.id and entry["target"] == ada.id and entry["user_agent"] == "tests/1"
    assert entry["ip"] == "127.0.0.1"
    assert entry["details"]["changes"] == {"disabled": {"from": False, "to": True}}
    assert entry["details"]["tokens_revoked"] == 1
    everything = await (await client.get("/api/admin/audit?limit=2", headers=headers)).json()
    assert len(everything["entries"]) == 2 and everything["next"]
    older = await (await client.get(f"/api/admin/audit?limit=50&before={everything['next']}", headers=headers)).json()
    assert all(e["id"] < everything["next"] for e in older["entries"])
    actions = {e["action"] for e in everything["entries"] + older["entries"]}
    assert {"user.created", "token.created", "user.updated"} <= actions
    assert (await client.get("/api/admin/audit?outcome=maybe", headers=headers)).status == 400


async def test_audit_retention(client, settings):
    import sqlite3

    from agentstead.keys import IDENTITY
    await token_user(client, "ada@example.org")
    with sqlite3.connect(settings.db_file) as conn:
        conn.execute("UPDATE audit_log SET at = '2001-01-01T00:00:00.000000Z' WHERE action = 'user.created'")
        total = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert await client.app[IDENTITY].users.purge_audit() == 1
    with sqlite3.connect(settings.db_file) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == total - 1
