"""Real write failures (libfiu in the running `agentstead serve`): runs whose last
transaction fails are settled once writes work again, without a restart; /readyz
says unready while writes fail and ready again on its own; errors stay clean JSON."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import uuid

import aiohttp

from ..support.faults import WRAPPER, WRITES, Faults, require_fiu
from ..support.llm_server import LLMServer, Turn
from ..support.procs import Server, login_link

ORIGIN = "http://localhost:47294"
FINAL = {"succeeded", "failed", "cancelled", "interrupted"}


async def signed_in(server: Server) -> aiohttp.ClientSession:
    """A session that sends an API token (read, write) of a user created with the CLI."""
    link = login_link(server.state_dir, "ada@example.org")
    async with aiohttp.ClientSession(base_url=server.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        resp = await browser.get(link, allow_redirects=False)
        assert resp.status == 302
        me = await (await browser.get("/api/me")).json()
        resp = await browser.post("/api/tokens", json={"name": "faults", "scopes": ["read", "write"]},
                                  headers={"Origin": ORIGIN, "X-CSRF-Token": me["csrf_token"]})
        assert resp.status == 201, await resp.text()
        token = (await resp.json())["token"]
    return aiohttp.ClientSession(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def providers(llm: LLMServer, tmp_path) -> str:
    key = tmp_path / "llm_key"
    key.write_text("sk-test")
    return json.dumps([{"name": "local", "base_url": llm.base_url, "models": ["gpt-test"], "api_key_file": str(key)}])


async def assert_clean_error(resp: aiohttp.ClientResponse) -> dict:
    """A non-2xx answer is the JSON error shape, nothing else."""
    body = json.loads(await resp.text())
    assert set(body) == {"error"} and {"code", "message", "request_id"} <= set(body["error"]), body
    return body["error"]


async def statuses(http: aiohttp.ClientSession, run_ids: list[str]) -> dict[str, str]:
    return {i: (await (await http.get(f"/api/runs/{i}")).json())["status"] for i in run_ids}


async def test_runs_whose_last_writes_fail_are_settled_once_writes_work_again(tmp_path):
    require_fiu()
    llm = LLMServer(api_key="sk-test", models=("gpt-test",), tokens_per_second=25)
    await llm.start()
    reply = " ".join(f"w{i}" for i in range(25))          # about a second of streaming
    llm.script = lambda body: Turn(reply)
    server = Server(tmp_path / "state", wrapper=WRAPPER, AGENTSTEAD_LLM_PROVIDERS=providers(llm, tmp_path),
                    AGENTSTEAD_RUNS_MAX_PER_USER="10", AGENTSTEAD_RUN_LEASE_SECONDS="3",
                    AGENTSTEAD_READYZ_WRITE_WINDOW="4s").start()
    faults = Faults(server.proc.pid)
    try:
        http = await signed_in(server)
        agent = await (await http.post("/api/agents", json={"name": "A"})).json()
        threads = [await (await http.post("/api/threads", json={"agent_id": agent["id"]})).json() for _ in range(6)]
        runs = []
        for thread in threads:
            resp = await http.post(f"/api/threads/{thread['id']}/messages", json={"content": "go"})
            assert resp.status == 202, await resp.text()
            runs.append((await resp.json())["id"])
        await asyncio.sleep(0.3)                            # every run is streaming its reply

        faults.fail(*WRITES)                                # every pwrite and fdatasync fails now
        try:
            ready = await http.get("/readyz")
            assert ready.status == 503
            assert {"database", "writes"} <= set((await ready.json())["failing"])
            # a cancel stops the run; the database cannot record it yet, and says so cleanly
            resp = await http.post(f"/api/runs/{runs[0]}/cancel")
            assert resp.status == 503 and (await assert_clean_error(resp))["code"] == "database_unavailable"
            resp = await http.post("/api/agents", json={"name": "B"})
            assert resp.status == 503 and (await assert_clean_error(resp))["code"] == "database_unavailable"
            await asyncio.sleep(3)                          # every reply has ended; no end could be written
            assert set((await statuses(http, runs)).values()) == {"running"}
        finally:
            faults.clear(*WRITES)

        async with asyncio.timeout(10):                     # no restart: the kept endings are written
            while not set((current := await statuses(http, runs)).values()) <= FINAL:
                await asyncio.sleep(0.1)
        assert current[runs[0]] == "cancelled" and all(current[r] == "succeeded" for r in runs[1:]), current
        for thread in threads[1:]:
            messages = (await (await http.get(f"/api/threads/{thread['id']}")).json())["messages"]
            assert [(m["role"], m["content"]) for m in messages] == [("user", "go"), ("assistant", reply)]
        # the threads take new messages again (nothing left in progress)
        resp = await http.post(f"/api/threads/{threads[1]['id']}/messages", json={"content": "again"})
        assert resp.status == 202, await resp.text()

        async with asyncio.timeout(15):                     # readiness recovers by itself
            while (ready := await http.get("/readyz")).status != 200:
                await asyncio.sleep(0.25)
        metrics = await (await http.get("/metrics")).text()
        failed = [line for line in metrics.splitlines() if line.startswith('agentstead_db_writes_total{outcome="failed"}')]
        assert failed and float(failed[0].split()[-1]) > 0
        await http.close()
    finally:
        server.stop()
        await llm.stop()


async def test_random_io_failures_lose_nothing_acknowledged_and_heal_without_a_restart(tmp_path):
    """libfiu fails pwrite, fdatasync and open at random in the running server while clients
    create agents, threads and runs (each POST with an Idempotency-Key). Meanwhile: every
    answer is a 2xx or a clean JSON error, /readyz says unready. After: readiness and the
    runs recover without a restart, a retry of every failed POST with its key succeeds
    (replayed when the first attempt had committed after all), and after a kill -9 and a
    restart everything acknowledged is there, once, in a database that passes integrity_check."""
    require_fiu()
    llm = LLMServer(api_key="sk-test", models=("gpt-test",), tokens_per_second=0)
    await llm.start()
    llm.script = lambda body: Turn("Done.")
    env = {"AGENTSTEAD_LLM_PROVIDERS": providers(llm, tmp_path), "AGENTSTEAD_RUNS_MAX_PER_USER": "20",
           "AGENTSTEAD_RUN_LEASE_SECONDS": "3", "AGENTSTEAD_READYZ_WRITE_WINDOW": "3s",
           "AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE": "100000"}
    server = Server(tmp_path / "state", wrapper=WRAPPER, **env).start()
    faults = Faults(server.proc.pid)
    points = (*WRITES, "posix/io/oc/open")
    acked: dict[str, list[dict]] = {"agents": [], "threads": [], "runs": []}
    failed: list[tuple[str, dict, str]] = []       # POSTs answered 5xx: (path, body, key)
    seen = {"ready_503": 0, "errors": 0}
    try:
        http = await signed_in(server)
        agent = await (await http.post("/api/agents", json={"name": "warm-up"})).json()
        thread = await (await http.post("/api/threads", json={"agent_id": agent["id"]})).json()
        assert (await http.post(f"/api/threads/{thread['id']}/messages", json={"content": "warm"})).status == 202

        async def post(kind: str, path: str, body: dict) -> dict | None:
            key = str(uuid.uuid4())
            resp = await http.post(path, json=body, headers={"Idempotency-Key": key})
            if 200 <= resp.status < 300:
                created = await resp.json()
                acked[kind].append(created)
                return created
            error = await assert_clean_error(resp)
            seen["errors"] += 1
            if resp.status >= 500:
                assert resp.status == 503 or error["code"] == "internal_error", (resp.status, error)
                failed.append((path, body, key))
            else:
                assert error["code"] in ("run_in_progress", "idempotency_key_in_use"), error
            return None

        # a write transaction is several pwrites and an fdatasync: about half of them fail
        faults.fail("posix/io/rw/pwrite", probability=0.05)
        faults.fail("posix/io/sync/fdatasync", probability=0.15)
        faults.fail("posix/io/oc/open", probability=0.05)
        try:
            deadline = asyncio.get_running_loop().time() + 10
            i = 0
            while asyncio.get_running_loop().time() < deadline:
                i += 1
                await post("agents", "/api/agents", {"name": f"agent-{i}"})
                made = await post("threads", "/api/threads", {"agent_id": agent["id"], "title": f"thread-{i}"})
                target = made or thread
                await post("runs", f"/api/threads/{target['id']}/messages", {"content": f"message {i}"})
                ready = await http.get("/readyz")
                if ready.status == 503:
                    seen["ready_503"] += 1
                    assert {"database", "writes"} & set((await ready.json())["failing"])
                await asyncio.sleep(0.02)
        finally:
            faults.clear(*points)
        assert seen["errors"] > 0 and seen["ready_503"] > 0, seen   # the faults did bite
        assert acked["agents"] and acked["threads"] and acked["runs"], {k: len(v) for k, v in acked.items()}

        async with asyncio.timeout(20):                       # readiness comes back by itself
            while (await http.get("/readyz")).status != 200:
                await asyncio.sleep(0.25)
        for path, body, key in failed:                         # retries are safe
            resp = await http.post(path, json=body, headers={"Idempotency-Key": key})
            assert 200 <= resp.status < 300 or (await assert_clean_error(resp))["code"] == "run_in_progress", \
                (path, resp.status)
            if 200 <= resp.status < 300:
                kind = "runs" if path.endswith("/messages") else path.rsplit("/", 1)[1]
                acked[kind].append(await resp.json())
        async with asyncio.timeout(20):                        # no run stays queued or running
            while (await (await http.get("/api/runs?status=running")).json())["runs"] or \
                    (await (await http.get("/api/runs?status=queued")).json())["runs"]:
                await asyncio.sleep(0.25)
        await http.close()

        server.signal(signal.SIGKILL)
        server.wait(10)
        server = Server(tmp_path / "state", port=server.port, **env).start()
        http = aiohttp.ClientSession(base_url=server.url, headers=http.headers)
        for kind, items in acked.items():
            for item in items:
                resp = await http.get(f"/api/{kind}/{item['id']}")
                assert resp.status == 200, (kind, item["id"], resp.status)
        names = [a["name"] for a in (await (await http.get("/api/agents?limit=200")).json())["agents"]]
        assert len(names) == len(set(names))                   # no agent made twice by a retry
        titles = [t["title"] for t in (await (await http.get("/api/threads?limit=200")).json())["threads"]]
        assert len([t for t in titles if t.startswith("thread-")]) == len({t for t in titles if t.startswith("thread-")})
        await http.close()
    finally:
        server.stop()
        await llm.stop()
    with sqlite3.connect(tmp_path / "state" / "agentstead.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
