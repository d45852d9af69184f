"""kill -9 of a real `agentstead serve` while a workflow's parallel pair runs: after a
restart the run is interrupted, resumes, and completes; the model server's request
count shows that the completed member was not run again. An approval that is waiting
survives a restart and is answered afterwards."""

from __future__ import annotations

import asyncio
import json
import signal

import aiohttp

from ..support.live import Live
from ..support.llm_server import LLMServer, Turn
from ..support.procs import Server
from .test_run_crash import ORIGIN, _session, _wait_status

SLOW = " ".join(f"fact{i}" for i in range(120))


def _script(body):
    system = body["messages"][0]["content"]
    return Turn({"You research.": "Bees dance.", "You find facts.": SLOW, "You write.": "A draft."}[system])


def _count(llm: LLMServer, instructions: str) -> int:
    return sum(1 for r in llm.requests if r["messages"][0]["content"] == instructions)


async def _restart(server: Server, tmp_path, env, http: aiohttp.ClientSession, *, kill: bool):
    if kill:
        server.proc.send_signal(signal.SIGKILL)
        assert server.wait(10) == -signal.SIGKILL
    else:
        server.stop()
    await http.close()
    server = Server(tmp_path / "state", port=server.port, **env).start()
    http = aiohttp.ClientSession(base_url=server.url, cookie_jar=http.cookie_jar)
    me = await (await http.get("/api/me")).json()
    return server, http, {"Origin": ORIGIN, "X-CSRF-Token": me["csrf_token"]}


async def test_kill_9_during_the_parallel_step_then_resume_without_repeating_steps(tmp_path):
    llm = LLMServer(api_key="sk-test", models=("gpt-test",), tokens_per_second=20)
    await llm.start()
    llm.script = _script
    key = tmp_path / "llm_key"
    key.write_text("sk-test")
    env = {"AGENTSTEAD_LLM_PROVIDERS": json.dumps([{"name": "local", "base_url": llm.base_url,
                                                     "models": ["gpt-test"], "api_key_file": str(key)}])}
    server = Server(tmp_path / "state", **env).start()
    try:
        http, unsafe = await _session(server)
        ids = {}
        for name in ("You research.", "You find facts.", "You write."):
            resp = await http.post("/api/agents", json={"name": name, "instructions": name}, headers=unsafe)
            ids[name] = (await resp.json())["id"]
        definition = {
            "name": "Article", "inputs": {"topic": {"type": "string"}}, "start": "gather",
            "steps": {
                "gather": {"kind": "parallel", "steps": ["research", "facts"], "next": "draft"},
                "research": {"kind": "agent", "agent_id": ids["You research."], "input": "{{ input.topic }}"},
                "facts": {"kind": "agent", "agent_id": ids["You find facts."], "input": "{{ input.topic }}"},
                "draft": {"kind": "agent", "agent_id": ids["You write."], "next": "gate",
                          "input": "{{ steps.research.output }} / {{ steps.facts.output }}"},
                "gate": {"kind": "approval", "prompt": "Publish {{ steps.draft.output }}?", "on_approve": "count"},
                "count": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "6 * 7"}},
            }}
        resp = await http.post("/api/workflows", json={"definition": definition}, headers=unsafe)
        assert resp.status == 201, await resp.text()
        wf = await resp.json()
        resp = await http.post(f"/api/workflows/{wf['id']}/runs", json={"input": {"topic": "bees"}}, headers=unsafe)
        assert resp.status == 202, await resp.text()
        run = await resp.json()

        live = Live(await http.ws_connect("/ws", headers={"Origin": ORIGIN}))
        await live.send({"op": "subscribe", "topic": f"runs/{run['id']}", "after": 0})
        seen = []
        async with asyncio.timeout(30):
            while not any(e["type"] == "step.succeeded" and e["data"]["step"] == "research" for e in seen):
                seen.append(await live.until("event"))
        assert any(e["type"] == "step.started" and e["data"]["step"] == "facts" for e in seen)
        await asyncio.sleep(0.5)  # facts is still streaming (about 6 s of tokens)
        assert _count(llm, "You find facts.") == 1 and not llm.cancelled

        server, http, unsafe = await _restart(server, tmp_path, env, http, kill=True)
        interrupted = await _wait_status(http, run["id"], {"interrupted"})
        assert interrupted["error"]["code"] == "interrupted"
        steps = {s["step"]: s["status"] for s in interrupted["steps"]}
        assert steps["research"] == "succeeded" and steps["facts"] == "interrupted", steps

        llm.tokens_per_second = 0
        resp = await http.post(f"/api/runs/{run['id']}/resume", headers=unsafe)
        assert resp.status == 202, await resp.text()
        waiting = await _wait_status(http, run["id"], {"waiting_for_input", "failed", "succeeded"})
        assert waiting["status"] == "waiting_for_input", waiting
        assert waiting["waiting_prompt"] == "Publish A draft.?"
        # the completed member ran once; the one cut off by the crash ran again; the rest once
        assert (_count(llm, "You research."), _count(llm, "You find facts."), _count(llm, "You write.")) == (1, 2, 1)
        writer_input = [r for r in llm.requests if r["messages"][0]["content"] == "You write."][0]
        assert writer_input["messages"][-1]["content"] == f"Bees dance. / {SLOW}"

        # the approval survives a restart (a graceful one, then a kill -9)
        server, http, unsafe = await _restart(server, tmp_path, env, http, kill=False)
        server, http, unsafe = await _restart(server, tmp_path, env, http, kill=True)
        still = await _wait_status(http, run["id"], {"waiting_for_input", "interrupted"})
        assert still["status"] == "waiting_for_input" and still["waiting_prompt"] == "Publish A draft.?"
        resp = await http.post(f"/api/runs/{run['id']}/resume", json={"answer": {"approved": True, "comment": "ok"}},
                               headers=unsafe)
        assert resp.status == 202, await resp.text()
        done = await _wait_status(http, run["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded", done
        assert done["output"]["count"] == "42" and done["output"]["gate"] == {"approved": True, "comment": "ok"}
        assert {s["step"]: s["status"] for s in done["steps"]} == {
            "gather": "succeeded", "research": "succeeded", "facts": "succeeded", "draft": "succeeded",
            "gate": "succeeded", "count": "succeeded"}
        assert len(llm.requests) == 4  # nothing after the approval called the model

        # a client that reconnects replays the whole life of the run, in order, from the log
        again = Live(await http.ws_connect("/ws", headers={"Origin": ORIGIN}))
        await again.send({"op": "subscribe", "topic": f"runs/{run['id']}", "after": 0})
        events = []
        async with asyncio.timeout(10):
            while not events or events[-1]["type"] != "run.succeeded":
                events.append(await again.until("event"))
        types = [e["type"] for e in events]
        assert types.count("run.interrupted") == 1 and types.count("run.waiting") == 1
        assert [e["data"]["step"] for e in events if e["type"] == "step.succeeded"].count("research") == 1
        await http.close()
    finally:
        server.stop()
        await llm.stop()
