"""GET /api/admin/health: the /readyz report for administrators (Caddy keeps /readyz private)."""

from __future__ import annotations

import pytest

from ..support.auth import token_user


async def test_admins_get_the_readiness_report(client):
    _, admin = await token_user(client, "root@example.org", "admin", scopes=("read", "write", "admin"))
    resp = await client.get("/api/admin/health", headers=admin)
    assert resp.status == 200
    body = await resp.json()
    ready = await (await client.get("/readyz")).json()
    assert body["status"] == ready["status"] == "ok" and body["failing"] == [] and body["degraded"] == []
    assert set(body["checks"]) == set(ready["checks"]) == {"database", "writes", "schema", "disk"}
    assert body["checks"]["database"]["ok"] and body["checks"]["schema"]["version"] == ready["checks"]["schema"]["version"]


async def test_a_failing_check_is_reported_with_200(make_client, settings):
    # a free-disk floor no disk meets: /readyz answers 503, the admin page still gets the report
    client = await make_client(settings.replace(min_free_disk=2**62))
    _, admin = await token_user(client, "root@example.org", "admin", scopes=("read", "write", "admin"))
    assert (await client.get("/readyz")).status == 503
    resp = await client.get("/api/admin/health", headers=admin)
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "fail" and body["failing"] == ["disk"] and "bytes free" in body["checks"]["disk"]["error"]


@pytest.mark.parametrize("who,status,code", [
    ("member", 403, "forbidden"), ("admin-without-admin-scope", 403, "insufficient_scope"),
    ("anonymous", 401, "unauthorized"),
])
async def test_everyone_else_is_refused(client, who, status, code):
    headers = {}
    if who == "member":
        _, headers = await token_user(client, "ada@example.org")
    elif who == "admin-without-admin-scope":
        _, headers = await token_user(client, "root@example.org", "admin", scopes=("read",))
    resp = await client.get("/api/admin/health", headers=headers)
    assert resp.status == status
    assert (await resp.json())["error"]["code"] == code
