"""Real write failures (libfiu in the running `agentstead serve`): runs whose last
transaction fails are settled once writes work again, without a restart; /readyz
says unready while writes fail and ready again on its own; errors stay clean JSON."""

from __future__ import annotations

import asyncio
import json
import subprocess

import aiohttp

from ..support.faults import WRAPPER, WRITES, Faults, require_fiu
from ..support.llm_server import LLMServer, Turn
from ..support.procs import VENV_BIN, Server, clean_env

ORIGIN = "http://localhost:47294"
FINAL = {"succeeded", "failed", "cancelled", "interrupted"}


async def signed_in(server: Server) -> aiohttp.ClientSession:
    """A session that sends an API token (read, write) of a user created with the CLI."""
    env = clean_env(AGENTSTEAD_STATE_DIR=str(server.state_dir))
    subprocess.run([str(VENV_BIN / "agentstead"), "admin", "create-user", "--email", "ada@example.org"],
                   env=env, check=True, capture_output=True)
    out = subprocess.run([str(VENV_BIN / "agentstead"), "admin", "login-link", "--email", "ada@example.org"],
                         env=env, check=True, capture_output=True, text=True).stdout
    async with aiohttp.ClientSession(base_url=server.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        resp = await browser.get("/auth/link/" + out.split()[0].rsplit("/", 1)[1], allow_redirects=False)
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
