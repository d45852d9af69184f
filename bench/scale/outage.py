#!/usr/bin/env python3
"""NATS stopped for 30 s while runs stream (issue 19's fault, at full length; the system test
tests/system/test_scale_out.py does 4 s).

Two instances (bench/scale/cluster.py). `--runs` chat runs, half posted to each instance, the LLM
streaming `--tps` tokens/s for longer than the outage; every thread read by one socket on each
instance. `--before` s into the stream nats-server is killed; `--outage` s later it starts again
on the same port. Reported:
- per socket: events received, duplicates, events the log still has that the socket missed
  (both must be 0), and whether it ended with run.succeeded;
- /readyz of both instances during the outage (degraded, `bus`) and after (ok);
- the bus counters (/metrics) at the three moments: heard over NATS, filled from the log;
- the gap between consecutive message.delta events on the sockets of the instance NOT running
  the run (p50/p99/max), before, during and after the outage: the log path's cost.

Usage: .venv/bin/python bench/scale/outage.py [--runs 6] [--tps 30] [--before 5] [--outage 30]
                                              [--output bench/out/outage.md]
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
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import ORIGIN, ROOT, Pair, close_all, percentile  # noqa: E402

from tests.support.llm_server import LLMServer, Turn  # noqa: E402

COUNTERS = ("agentstead_bus_events_heard_total", "agentstead_bus_events_filled_total")


async def counters(http: aiohttp.ClientSession) -> dict[str, float]:
    text = await (await http.get("/metrics")).text()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name in COUNTERS}


async def readyz(http: aiohttp.ClientSession) -> str:
    body = await (await http.get("/readyz")).json()
    return f"{body['status']} {body['degraded']}"


async def follow(ws: aiohttp.ClientWebSocketResponse, got: list) -> None:
    """(receive time, event) until run.succeeded."""
    while True:
        msg = await ws.receive(timeout=120)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket closed: {msg}")
        body = msg.json()
        if body["op"] == "event":
            got.append((time.perf_counter(), body))
            if body["type"] == "run.succeeded":
                return


async def logged(http: aiohttp.ClientSession, topic: str) -> list[int]:
    """The seqs the log still has on the topic (a replay from 0)."""
    ws = await http.ws_connect("/ws", headers={"Origin": ORIGIN})
    await ws.send_json({"op": "subscribe", "topic": topic, "after": 0})
    got: list = []
    await follow(ws, got)
    await ws.close()
    return [e["seq"] for _, e in got]


def gaps(got: list, start: float, end: float) -> list[float]:
    times = [t for t, e in got if e["type"] == "message.delta"]
    return [(b - a) * 1000 for a, b in zip(times, times[1:]) if start <= b < end]


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=6)
    p.add_argument("--tps", type=float, default=30)
    p.add_argument("--before", type=float, default=5)
    p.add_argument("--outage", type=float, default=30)
    p.add_argument("--output", default=str(ROOT / "bench" / "out" / "outage.md"))
    args = p.parse_args()
    tokens = int(args.tps * (args.before + args.outage + 10))
    answer = " ".join(f"w{i}" for i in range(tokens))
    llm = LLMServer(api_key="sk-test", models=("gpt-test",), tokens_per_second=args.tps)
    llm.script = lambda body: Turn(answer)
    await llm.start()
    began = os.getloadavg()[0]
    lines: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
            pair = Pair(Path(tmp), llm).start()
            s = await pair.sign_in("ada@example.org")
            try:
                agent = await (await s["a"].post("/api/agents", json={"name": "x"}, headers=s["unsafe"])).json()
                threads, where = [], []
                for i in range(args.runs):
                    t = await (await s["a"].post("/api/threads", json={"agent_id": agent["id"]},
                                                 headers=s["unsafe"])).json()
                    threads.append(t["id"])
                    where.append("ab"[i % 2])
                socks, got = {}, {}
                for t in threads:
                    for name in "ab":
                        ws = await s[name].ws_connect("/ws", headers={"Origin": ORIGIN})
                        await ws.send_json({"op": "subscribe", "topic": f"threads/{t}", "after": 0})
                        socks[(t, name)], got[(t, name)] = ws, []
                readers = [asyncio.create_task(follow(ws, got[key])) for key, ws in socks.items()]
                for t, name in zip(threads, where):
                    resp = await s[name].post(f"/api/threads/{t}/messages", json={"content": "go"},
                                              headers=s["unsafe"])
                    assert resp.status == 202, await resp.text()
                t0 = time.perf_counter()
                await asyncio.sleep(args.before)
                c0 = [await counters(s[n]) for n in "ab"]
                pair.nats.stop()
                t1 = time.perf_counter()
                await asyncio.sleep(min(3.0, args.outage / 2))
                during = [await readyz(s[n]) for n in "ab"]
                await asyncio.sleep(args.outage - (time.perf_counter() - t1))
                c1 = [await counters(s[n]) for n in "ab"]
                pair.nats.start()
                t2 = time.perf_counter()
                await asyncio.sleep(3)
                after = [await readyz(s[n]) for n in "ab"]
                await asyncio.wait_for(asyncio.gather(*readers), args.outage + 60)
                t3 = time.perf_counter()
                c2 = [await counters(s[n]) for n in "ab"]
                lines += [f"Load (1-min average) at start {began:.2f}, at end {os.getloadavg()[0]:.2f}. "
                          f"{args.runs} runs at {args.tps:g} tokens/s ({tokens} tokens each), half on each "
                          f"instance; NATS stopped {args.before:g} s in, for {args.outage:g} s; every thread "
                          f"read on both instances ({len(socks)} sockets).", "",
                          f"- /readyz during the outage: {during}; 3 s after NATS returned: {after}.",
                          "- bus counters (instance 1 / instance 2), heard over NATS | filled from the log:"]
                for label, c in (("before the outage", c0), ("at its end", c1), ("after the runs", c2)):
                    lines.append(f"  - {label}: " + " / ".join(
                        f"{int(x[COUNTERS[0]])} | {int(x[COUNTERS[1]])}" for x in c))
                problems = []
                for t in threads:
                    truth = set(await logged(s["a"], f"threads/{t}"))
                    for name in "ab":
                        seqs = [e["seq"] for _, e in got[(t, name)]]
                        dup = len(seqs) - len(set(seqs))
                        missed = len(truth - set(seqs))
                        if dup or missed or seqs != sorted(seqs) or got[(t, name)][-1][1]["type"] != "run.succeeded":
                            problems.append((t, name, dup, missed))
                lines.append(f"- sockets with a duplicate, a missed logged event, an event out of order or no "
                             f"run.succeeded: {problems or 'none'} (of {len(socks)}).")
                lines += ["", "| delta gap on the other instance's sockets, ms | p50 | p99 | max | gaps |",
                          "|---|---:|---:|---:|---:|"]
                remote = [got[(t, "b" if w == "a" else "a")] for t, w in zip(threads, where)]
                for label, (lo, hi) in (("before (NATS)", (t0, t1)), ("outage (the log, polled)", (t1, t2)),
                                        ("after (NATS again)", (t2 + 1, t3))):
                    g = [x for r in remote for x in gaps(r, lo, hi)]
                    lines.append(f"| {label} | {percentile(g, 50):.1f} | {percentile(g, 99):.1f} | "
                                 f"{max(g, default=float('nan')):.1f} | {len(g)} |")
            finally:
                await close_all(s)
                pair.stop()
    finally:
        await llm.stop()
    report = "\n".join(lines) + "\n"
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
