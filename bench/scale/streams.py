"""Two measures of bench/scale/run.py, per shape:

- `streaming`: concurrent streaming runs at 30 tokens/s. At each level N, N chat runs at once
  (one thread and one socket each, through Caddy, so spread over the instances), the LLM
  streaming 30 tokens/s for ~5 s; the gap between consecutive `message.delta` events of a run,
  as its socket receives them (the runner sends at most one per 50 ms: runner/stream.py), over
  all runs of the level. The level is held while the gap p99 is ≤ 100 ms; levels double until
  one is not (or `top`).
- `paced`: delivery latency without queueing: `events` events published on instance 1 one every
  `interval` s (not a burst), read by sockets connected straight to instance 1 (in-process
  delivery) and, with two instances, to instance 2 (over NATS). p50/p99 per side.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time

import aiohttp

STREAM_TPS = 30
STREAM_SECONDS = 5
GAP_TARGET_MS = 100.0


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


async def _level(url: str, token: str, n: int) -> dict:
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=url, headers=auth) as http:
        agent = await (await http.post("/api/agents", json={"name": "stream"})).json()
        threads = [await (await http.post("/api/threads", json={"agent_id": agent["id"]})).json() for _ in range(n)]
        socks = []
        for t in threads:
            ws = await http.ws_connect("/ws")
            await ws.send_json({"op": "subscribe", "topic": f"threads/{t['id']}"})
            while (await ws.receive_json(timeout=30))["op"] != "subscribed":
                pass
            socks.append(ws)
        gaps: list[float] = []

        async def follow(ws) -> None:
            last = None
            while True:
                msg = await ws.receive(timeout=STREAM_SECONDS * 6 + 60)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket closed: {msg}")
                body = json.loads(msg.data)
                if body.get("op") != "event":
                    continue
                now = time.perf_counter()
                if body["type"] == "message.delta":
                    if last is not None:
                        gaps.append((now - last) * 1000)
                    last = now
                elif body["type"] in ("run.succeeded", "run.failed"):
                    assert body["type"] == "run.succeeded", body
                    return
        readers = [asyncio.create_task(follow(ws)) for ws in socks]
        posted = await asyncio.gather(*(http.post(f"/api/threads/{t['id']}/messages", json={"content": "go"})
                                        for t in threads))
        assert all(p.status == 202 for p in posted), [p.status for p in posted]
        await asyncio.gather(*readers)
        for ws in socks:
            await ws.close()
    return {"runs": n, "gap_p50_ms": _p(gaps, 50), "gap_p99_ms": _p(gaps, 99), "gaps": len(gaps)}


async def streaming(url: str, token: str, llm, start: int = 4, top: int = 256) -> dict:
    """The most runs at 30 tokens/s held with delta-gap p99 ≤ 100 ms, and every level's figures."""
    answer = " ".join(f"w{i}" for i in range(STREAM_TPS * STREAM_SECONDS))
    pace, script = llm.tokens_per_second, llm.script
    llm.tokens_per_second = STREAM_TPS
    llm.script = lambda body: answer
    levels, held, n = [], 0, start
    try:
        while n <= top:
            row = await _level(url, token, n)
            levels.append(row)
            if row["gap_p99_ms"] > GAP_TARGET_MS:
                break
            held = n
            n *= 2
    finally:
        llm.tokens_per_second, llm.script = pace, script
    return {"held": held, "levels": levels}


def _ask(proc: subprocess.Popen, cmd: str) -> dict:
    proc.stdin.write(json.dumps({"cmd": cmd}) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


async def paced(client_py: list[str], ports: list[int], publish_url: str, token: str, sockets: int,
                events: int, interval: float, percentile) -> list[dict]:
    """Per instance port: p50/p99 ms of publish-to-receive, events published one at a time."""
    clients = [subprocess.Popen([*client_py, "--port", str(port), "--token", token, "--topic", "users/bench",
                                 "--sockets", str(sockets)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for port in ports]
    try:
        for c in clients:
            ready = json.loads(c.stdout.readline())
            assert ready["failed"] == 0, ready
        for c in clients:
            _ask(c, "reset")
        async with aiohttp.ClientSession() as http:
            resp = await http.post(publish_url, json={"topic": "users/bench", "n": events, "interval": interval})
            assert resp.status == 200, await resp.text()
        deadline = time.monotonic() + 30
        while True:
            stats = [_ask(c, "stats") for c in clients]
            if all(s["events"] >= sockets * events for s in stats) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        return [{"events": s["events"], "expected": sockets * events, "p50_ms": percentile(s["hist"], 50),
                 "p99_ms": percentile(s["hist"], 99)} for s in stats]
    finally:
        for c in clients:
            c.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            c.stdin.flush()
            c.wait(30)
