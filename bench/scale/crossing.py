#!/usr/bin/env python3
"""Cross-instance timing (issue 19): a change made through instance 1 takes effect on instance 2
within how long? Target: 100 ms.

Two instances (bench/scale/cluster.py: one SQLite file, nats-server, each pinned to its CPU).
Per kind, `--reps` repetitions; each measures from the moment the client has instance 1's
response to the moment a client of instance 2 sees the effect (one clock, one process):

  token revoke   DELETE /api/tokens/{id} on 1       -> a socket on 2 opened with that token closes 4001
  logout-all     POST /auth/logout-all on 1         -> a socket on 2 opened with the session's ticket closes 4001
  demotion       PATCH /api/admin/users/{id} role member on 1
                                                    -> the demoted admin's socket on 2 reading users/* closes 4003
  cancel         POST /api/runs/{id}/cancel on 1 (the run executes on 2)
                                                    -> run.cancelled reaches a socket on 2

A negative figure: instance 2 acted before instance 1's response reached the client.

Usage: .venv/bin/python bench/scale/crossing.py [--reps 20] [--output bench/out/crossing.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import ORIGIN, ROOT, Pair, close_all, percentile  # noqa: E402

from tests.support.llm_server import LLMServer, Turn  # noqa: E402

LONG = " ".join(f"w{i}" for i in range(2000))


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> tuple[float, int | None]:
    """When the server closed the socket, and with what code."""
    while True:
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return time.perf_counter(), ws.close_code


async def _event(ws: aiohttp.ClientWebSocketResponse, type_: str) -> float:
    while True:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket closed: {msg}")
        body = msg.json()
        if body.get("op") == "event" and body["type"] == type_:
            return time.perf_counter()


async def _subscribed(ws: aiohttp.ClientWebSocketResponse, topic: str) -> None:
    await ws.send_json({"op": "subscribe", "topic": topic})
    while (await ws.receive_json(timeout=10))["op"] != "subscribed":
        pass


async def _timed(action, effect: asyncio.Task, want_code: int | None = None) -> float:
    """ms from the action's response to the effect (the effect task was started before)."""
    resp = await action()
    answered = time.perf_counter()
    assert resp.status < 300, (resp.status, await resp.text())
    seen = await asyncio.wait_for(effect, 10)
    if want_code is not None:
        seen, code = seen
        assert code == want_code, code
    return (seen - answered) * 1000


async def token_revoke(pair: Pair, ada: dict) -> float:
    token = await (await ada["a"].post("/api/tokens", json={"name": "t"}, headers=ada["unsafe"])).json()
    async with aiohttp.ClientSession() as bare:
        ws = await bare.ws_connect(f"{pair.b.url}/ws", headers={"Authorization": f"Bearer {token['token']}"})
        await _subscribed(ws, f"users/{ada['me']['user']['id']}")
        effect = asyncio.create_task(_closed(ws))
        return await _timed(lambda: ada["a"].delete(f"/api/tokens/{token['id']}", headers=ada["unsafe"]), effect, 4001)


async def logout_all(pair: Pair, n: int) -> float:
    s = await pair.sign_in("carol@example.org", create=n == 0)
    try:
        ticket = (await (await s["a"].post("/auth/ws-ticket", headers=s["unsafe"])).json())["ticket"]
        async with aiohttp.ClientSession() as bare:
            ws = await bare.ws_connect(f"{pair.b.url}/ws?ticket={ticket}")
            await _subscribed(ws, f"users/{s['me']['user']['id']}")
            effect = asyncio.create_task(_closed(ws))
            return await _timed(lambda: s["a"].post("/auth/logout-all", headers=s["unsafe"]), effect, 4001)
    finally:
        await close_all(s)


async def demotion(pair: Pair, ada: dict, bob: dict, bob_token: str) -> float:
    bob_id = bob["me"]["user"]["id"]
    async with aiohttp.ClientSession() as bare:
        ws = await bare.ws_connect(f"{pair.b.url}/ws", headers={"Authorization": f"Bearer {bob_token}"})
        await _subscribed(ws, "users/*")
        effect = asyncio.create_task(_closed(ws))
        ms = await _timed(lambda: ada["a"].patch(f"/api/admin/users/{bob_id}", json={"role": "member"},
                                                 headers=ada["unsafe"]), effect, 4003)
    resp = await ada["a"].patch(f"/api/admin/users/{bob_id}", json={"role": "admin"}, headers=ada["unsafe"])
    assert resp.status == 200
    return ms


async def cancel(pair: Pair, ada: dict, thread_id: str) -> float:
    resp = await ada["b"].post(f"/api/threads/{thread_id}/messages", json={"content": "go"}, headers=ada["unsafe"])
    assert resp.status == 202, await resp.text()
    run = await resp.json()
    async with aiohttp.ClientSession(cookie_jar=ada["b"].cookie_jar) as http:
        ws = await http.ws_connect(f"{pair.b.url}/ws", headers={"Origin": ORIGIN})
        await ws.send_json({"op": "subscribe", "topic": f"runs/{run['id']}", "after": 0})
        await _event(ws, "message.delta")   # streaming on instance 2
        effect = asyncio.create_task(_event(ws, "run.cancelled"))
        return await _timed(lambda: ada["a"].post(f"/api/runs/{run['id']}/cancel", headers=ada["unsafe"]), effect)


async def measure(pair: Pair, reps: int) -> dict[str, list[float]]:
    ada = await pair.sign_in("ada@example.org", "admin")
    bob = await pair.sign_in("bob@example.org", "admin")
    try:
        bob_token = (await (await bob["a"].post("/api/tokens", json={"name": "b", "scopes": ["admin"]},
                                                headers=bob["unsafe"])).json())["token"]
        agent = await (await ada["a"].post("/api/agents", json={"name": "x"}, headers=ada["unsafe"])).json()
        thread = await (await ada["a"].post("/api/threads", json={"agent_id": agent["id"]},
                                            headers=ada["unsafe"])).json()
        out: dict[str, list[float]] = {"token revoke": [], "logout-all": [], "demotion": [], "cancel": []}
        for n in range(reps):   # kinds interleaved, so that load drifts over all of them alike
            out["token revoke"].append(await token_revoke(pair, ada))
            out["logout-all"].append(await logout_all(pair, n))
            out["demotion"].append(await demotion(pair, ada, bob, bob_token))
            out["cancel"].append(await cancel(pair, ada, thread["id"]))
            print(n, {k: round(v[-1], 2) for k, v in out.items()}, flush=True)
        return out
    finally:
        await close_all(ada)
        await close_all(bob)


def render(out: dict[str, list[float]], began: float, reps: int) -> str:
    lines = [f"Load (1-min average) at start {began:.2f}, at end {os.getloadavg()[0]:.2f}; {reps} repetitions each.",
             "", "| change on instance 1 → effect on instance 2 | p50 ms | p99 ms | max ms | min ms |",
             "|---|---:|---:|---:|---:|"]
    for kind, values in out.items():
        lines.append(f"| {kind} | {percentile(values, 50):.1f} | {percentile(values, 99):.1f} | "
                     f"{max(values):.1f} | {min(values):.1f} |")
    return "\n".join(lines) + "\n"


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--output", default=str(ROOT / "bench" / "out" / "crossing.md"))
    args = p.parse_args()
    llm = LLMServer(api_key="sk-test", models=("gpt-test",), tokens_per_second=30)
    llm.script = lambda body: Turn(LONG)
    await llm.start()
    began = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-crossing-") as tmp:
            pair = Pair(Path(tmp), llm).start()
            try:
                out = await measure(pair, args.reps)
            finally:
                pair.stop()
    finally:
        await llm.stop()
    report = render(out, began, args.reps)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
