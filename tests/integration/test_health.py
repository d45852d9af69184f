"""Liveness, readiness on real faults, metrics for loopback only."""

from __future__ import annotations

import sqlite3

from agentstead.keys import DB
from agentstead.store.migrate import latest_version

from ..support.auth import token_user


async def test_healthz_reports_the_build_and_touches_no_database(client):
    await client.app[DB].close()  # liveness must not care
    for path in ("/", "/healthz"):
        resp = await client.get(path)
        assert resp.status == 200
        body = await resp.json()
        assert body["status"] == "ok" and body["version"] and body["python"].startswith("3.")
        assert body["uptime_seconds"] >= 0


async def test_readyz_ok_with_probe_latency(client):
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    assert body["checks"]["database"]["latency_ms"] > 0
    assert body["checks"]["schema"] == {"ok": True, "version": latest_version(), "expected": latest_version()}
    assert body["checks"]["disk"]["free_bytes"] > 0


async def test_readyz_503_when_the_database_file_is_corrupted(client, settings):
    assert (await client.get("/readyz")).status == 200
    # Overwrite the live file in place (same inode the connections hold).
    with open(settings.db_file, "r+b") as fh:
        fh.write(b"\x00garbage" * 4096)
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503, body
    assert "database" in body["failing"] and body["status"] == "fail"
    assert body["checks"]["database"]["error"]


async def test_readyz_503_when_disk_is_below_the_minimum(make_client, settings):
    c = await make_client(settings.replace(min_free_disk=2**62))
    resp = await c.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body["failing"] == ["disk"]
    assert "bytes free" in body["checks"]["disk"]["error"]


async def test_readyz_503_when_schema_is_behind(client, settings):
    with sqlite3.connect(settings.db_file) as conn:
        conn.execute("PRAGMA user_version = 0")
    body = await (await client.get("/readyz")).json()
    assert body["failing"] == ["schema"]
    assert "agentstead migrate" in body["checks"]["schema"]["error"]


async def test_metrics_for_loopback_with_route_labels(client):
    await client.get("/healthz")
    await client.get("/readyz")
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    assert 'agentstead_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert "agentstead_http_request_duration_seconds_bucket" in text
    assert "agentstead_db_probe_duration_seconds_count 1.0" in text
    assert "agentstead_db_probe_success 1.0" in text


async def test_metrics_refused_when_relayed_by_a_proxy(client):
    resp = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    resp = await client.get("/metrics", headers={"Forwarded": "for=203.0.113.9"})
    assert resp.status == 403


async def test_unknown_routes_share_one_metrics_label(client):
    for i in range(3):
        await client.get(f"/api/random-{i}")
    text = await (await client.get("/metrics")).text()
    assert 'route="unmatched",status="404"} 3.0' in text
    assert "random-1" not in text


async def test_schema_endpoint_lists_applied_migrations_to_admins(client):
    _, member = await token_user(client, "m@example.org")
    assert (await client.get("/api/system/schema", headers=member)).status == 403
    assert (await client.get("/api/system/schema")).status == 401
    _, admin = await token_user(client, "a@example.org", "admin", scopes=("admin",))
    body = await (await client.get("/api/system/schema", headers=admin)).json()
    assert body["version"] == body["latest"] == latest_version()
    assert [m["version"] for m in body["migrations"]] == list(range(1, latest_version() + 1))
