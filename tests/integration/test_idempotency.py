"""Idempotency-Key on every creating POST: a retry gets the first result, never a second
resource; the same key with another request is refused; a failure stores nothing. On
the real app, a real SQLite file and the tests' LLM server."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import pytest

from ..support.auth import token_user
from ..support.llm_server import Turn


@pytest.fixture
def llm(llm):
    llm.script = lambda body: Turn("Fine.")
    return llm


@pytest.fixture
async def api(make_client, settings, llm):
    providers = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": "sk-test",
                  "models": ("gpt-test",), "default_model": "gpt-test"},)
    client = await make_client(settings.replace(llm_providers=providers))
    _, headers = await token_user(client, "ada@example.org")
    return client, headers


def keyed(headers: dict, key: str | None = None) -> dict:
    return {**headers, "Idempotency-Key": key or str(uuid.uuid4())}


def count(settings, sql: str, *args) -> int:
    with sqlite3.connect(settings.db_file) as conn:
        return conn.execute(sql, args).fetchone()[0]


async def settled(client, headers, run_id: str) -> dict:
    async with asyncio.timeout(20):
        while True:
            run = await (await client.get(f"/api/runs/{run_id}", headers=headers, validate_contract=False)).json()
            if run["status"] not in ("queued", "running"):
                return run
            await asyncio.sleep(0.05)


async def test_every_creating_post_answers_a_retry_with_its_first_result(api, settings):
    client, headers = api
    agent = await (await client.post("/api/agents", json={"name": "A"}, headers=headers)).json()
    thread = await (await client.post("/api/threads", json={"agent_id": agent["id"]}, headers=headers)).json()
    workflow = await (await client.post("/api/workflows", json={"definition": {
        "name": "W", "inputs": {"n": {"type": "string"}}, "start": "count", "steps": {
            "count": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "{{ input.n }} + 1"}}}}},
        headers=headers)).json()
    cases = [  # (path, body, table that must hold exactly one new row, status)
        ("/api/agents", {"name": "B"}, "agents", 201),
        ("/api/threads", {"agent_id": agent["id"], "title": "T"}, "threads", 201),
        (f"/api/threads/{thread['id']}/messages", {"content": "hi"}, "runs", 202),
        ("/api/workflows", {"definition": {"name": "W2", "start": "c", "steps": {
            "c": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "2"}}}}}, "workflows", 201),
        (f"/api/workflows/{workflow['id']}/runs", {"input": {"n": "41"}}, "runs", 202),
        ("/api/tokens", {"name": "ci", "scopes": ["read"]}, "api_tokens", 201),
    ]
    for path, body, table, status in cases:
        key = str(uuid.uuid4())
        before = count(settings, f"SELECT count(*) FROM {table}")
        first = await client.post(path, json=body, headers=keyed(headers, key))
        assert first.status == status, (path, await first.text())
        again = await client.post(path, json=body, headers=keyed(headers, key))
        assert again.status == status and again.headers["Idempotent-Replayed"] == "true", path
        assert await again.json() == await first.json(), path
        assert again.headers.get("Location") == first.headers.get("Location"), path
        assert "Idempotent-Replayed" not in first.headers
        assert count(settings, f"SELECT count(*) FROM {table}") == before + 1, path   # one resource, not two
        if status == 202:
            await settled(client, headers, (await first.json())["id"])


async def test_the_same_key_with_another_request_is_refused_and_changes_nothing(api, settings):
    client, headers = api
    key = str(uuid.uuid4())
    assert (await client.post("/api/agents", json={"name": "A"}, headers=keyed(headers, key))).status == 201
    # the same JSON in another order and spacing is the same request
    resp = await client.post("/api/agents", data=b'{ "name" :"A" }', headers={**keyed(headers, key),
                                                                            "Content-Type": "application/json"})
    assert resp.status == 201 and resp.headers["Idempotent-Replayed"] == "true"
    for path, body in (("/api/agents", {"name": "Other"}), ("/api/threads", {"agent_id": "x"})):
        resp = await client.post(path, json=body, headers=keyed(headers, key))
        assert resp.status == 422 and (await resp.json())["error"]["code"] == "idempotency_key_reused"
    assert count(settings, "SELECT count(*) FROM agents") == 1 and count(settings, "SELECT count(*) FROM threads") == 0
    # keys belong to their user: another user's same key is a new action
    _, bob = await token_user(client, "bob@example.org")
    resp = await client.post("/api/agents", json={"name": "A"}, headers=keyed(bob, key))
    assert resp.status == 201 and "Idempotent-Replayed" not in resp.headers
    for bad in ("", "has space", "x" * 256, "é"):
        resp = await client.post("/api/agents", json={"name": "A"}, headers={**headers, "Idempotency-Key": bad},
                                 validate_contract=False)
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_idempotency_key", bad
    assert count(settings, "SELECT count(*) FROM agents") == 2


async def test_a_refused_request_stores_no_key_so_its_retry_runs_again(api, settings, llm):
    """The key is stored in the change's own transaction: a request that changed nothing
    (409 run_in_progress) left no key, and the same request later goes through."""
    client, headers = api
    agent = await (await client.post("/api/agents", json={"name": "A"}, headers=headers)).json()
    thread = await (await client.post("/api/threads", json={"agent_id": agent["id"]}, headers=headers)).json()
    llm.tokens_per_second = 20
    first = await (await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "one"},
                                     headers=headers)).json()
    key = str(uuid.uuid4())
    busy = await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "two"},
                             headers=keyed(headers, key))
    assert busy.status == 409 and (await busy.json())["error"]["code"] == "run_in_progress"
    assert count(settings, "SELECT count(*) FROM idempotency_keys") == 0
    await settled(client, headers, first["id"])
    retry = await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "two"},
                              headers=keyed(headers, key))
    assert retry.status == 202 and "Idempotent-Replayed" not in retry.headers
    await settled(client, headers, (await retry.json())["id"])


async def test_concurrent_requests_with_one_key_make_one_resource(api, settings):
    client, headers = api
    key = str(uuid.uuid4())
    answers = await asyncio.gather(*(client.post("/api/agents", json={"name": "A"}, headers=keyed(headers, key))
                                     for _ in range(5)))
    statuses = sorted(r.status for r in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
    for r in answers:
        if r.status == 409:
            assert (await r.json())["error"]["code"] == "idempotency_key_in_use"
    assert count(settings, "SELECT count(*) FROM agents") == 1
    assert len({(await r.json())["id"] for r in answers if r.status == 201}) == 1


async def test_a_tokens_value_is_kept_for_retries_but_never_in_plain_text(api, settings):
    client, headers = api
    key = str(uuid.uuid4())
    first = await (await client.post("/api/tokens", json={"name": "ci"}, headers=keyed(headers, key))).json()
    again = await (await client.post("/api/tokens", json={"name": "ci"}, headers=keyed(headers, key))).json()
    assert again["token"] == first["token"]
    raw = b"".join(p.read_bytes() for p in settings.db_file.parent.glob(settings.db_file.name + "*"))
    assert first["token"].encode() not in raw
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {first['token']}"})).status == 200


async def test_an_expired_key_is_a_new_action(api, settings):
    client, headers = api
    key = str(uuid.uuid4())
    first = await (await client.post("/api/agents", json={"name": "A"}, headers=keyed(headers, key))).json()
    with sqlite3.connect(settings.db_file) as conn:   # its time has passed (AGENTSTEAD_IDEMPOTENCY_KEY_TTL)
        conn.execute("UPDATE idempotency_keys SET expires_at = '2000-01-01T00:00:00.000000Z'")
    resp = await client.post("/api/agents", json={"name": "A"}, headers=keyed(headers, key))
    assert resp.status == 201 and (await resp.json())["id"] != first["id"]
    assert count(settings, "SELECT count(*) FROM idempotency_keys") == 1
