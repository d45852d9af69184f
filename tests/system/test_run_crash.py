"""kill -9 of a real `agentstead serve` in the middle of a streamed run: after a restart
the run is interrupted, resumes, and the thread ends with a complete transcript and
no duplicated message; a resubscribing client gets every event it missed."""

from __future__ import annotations

import asyncio
import json
import signal

import aiohttp

from ..support.live import Live
from ..support.llm_server import LLMServer, ToolCall, Turn
from ..support.procs import Server, login_link

ORIGIN = "http://localhost:47294"


async def _session(server: Server) -> tuple[aiohttp.ClientSession, dict]:
    """Sign in like a person without an identity provider: CLI user + single-use link."""
    http = aiohttp.ClientSession(base_url=server.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    resp = await http.get(login_link(server.state_dir, "ada@example.org"), allow_redirects=False)
    assert resp.status == 302
    me = await (await http.get("/api/me")).json()
    return http, {"Origin": ORIGIN, "X-CSRF-Token": me["csrf_token"]}


async def _wait_status(http, run_id: str, statuses: set[str], timeout: float = 30.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            run = await (await http.get(f"/api/runs/{run_id}")).json()
            if run["status"] in statuses:
                return run
            await asyncio.sleep(0.05)


async def test_kill_9_mid_run_then_resume(tmp_path):
    llm = LLMServer(api_key="sk-test", models=("gpt-test",), tokens_per_second=15)
    await llm.start()
    answer = " ".join(f"token{i}" for i in range(60))
    llm.script = [Turn(tool_calls=[ToolCall("calculator", {"expression": "2 + 2"})]), Turn(answer), Turn(answer)]
    providers = json.dumps([{"name": "local", "base_url": llm.base_url, "models": ["gpt-test"]}])
    key = tmp_path / "llm_key"
    key.write_text("sk-test")
    providers = json.dumps([{"name": "local", "base_url": llm.base_url, "models": ["gpt-test"],
                             "api_key_file": str(key)}])
    env = {"AGENTSTEAD_LLM_PROVIDERS": providers}
    server = Server(tmp_path / "state", **env).start()
    try:
        http, unsafe = await _session(server)
        agent = await (await http.post("/api/agents", json={"name": "A", "tools": ["calculator"]},
                                       headers=unsafe)).json()
        thread = await (await http.post("/api/threads", json={"agent_id": agent["id"]}, headers=unsafe)).json()
        live = Live(await http.ws_connect("/ws", headers={"Origin": ORIGIN}))
        await live.send({"op": "subscribe", "topic": f"threads/{thread['id']}", "after": 0})
        await live.until("subscribed")
        run = await (await http.post(f"/api/threads/{thread['id']}/messages", json={"content": "go"},
                                     headers=unsafe)).json()
        seen = []
        async with asyncio.timeout(30):
            while sum(1 for e in seen if e["type"] == "message.delta") < 10:
                seen.append(await live.until("event"))
        last_seq = seen[-1]["seq"]

        server.proc.send_signal(signal.SIGKILL)
        assert server.wait(10) == -signal.SIGKILL
        await http.close()
        server = Server(tmp_path / "state", port=server.port, **env).start()
        http = aiohttp.ClientSession(base_url=server.url, cookie_jar=http.cookie_jar)
        me = await (await http.get("/api/me")).json()
        unsafe = {"Origin": ORIGIN, "X-CSRF-Token": me["csrf_token"]}

        interrupted = await _wait_status(http, run["id"], {"interrupted"})
        assert interrupted["error"]["code"] == "interrupted"
        requests_before_resume = len(llm.requests)
        resp = await http.post(f"/api/runs/{run['id']}/resume", headers=unsafe)
        assert resp.status == 202, await resp.text()
        done = await _wait_status(http, run["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded", done

        body = await (await http.get(f"/api/threads/{thread['id']}")).json()
        roles = [m["role"] for m in body["messages"]]
        assert roles == ["user", "assistant", "tool", "assistant"], roles   # no duplicate, nothing lost
        assert body["messages"][-1]["content"] == answer and not body["messages"][-1]["partial"]
        assert body["messages"][2]["content"] == "4"
        # completed steps were not repeated: one more model call (the interrupted reply), no second tool call
        assert len(llm.requests) == requests_before_resume + 1

        # a client that was cut off resumes from its cursor and sees the rest, in order
        again = Live(await http.ws_connect("/ws", headers={"Origin": ORIGIN}))
        await again.send({"op": "subscribe", "topic": f"threads/{thread['id']}", "after": last_seq})
        rest = []
        async with asyncio.timeout(10):
            while not rest or rest[-1]["type"] != "run.succeeded":
                rest.append(await again.until("event"))
        seqs = [e["seq"] for e in rest]
        assert seqs == sorted(seqs) and seqs[0] > last_seq
        types = [e["type"] for e in rest]
        assert "run.interrupted" in types and "run.started" in types
        created = [e["data"]["message"]["content"] for e in rest if e["type"] == "message.created"]
        assert answer in created  # the complete text, even though deltas of finished runs are compacted
        await http.close()
    finally:
        server.stop()
        await llm.stop()
