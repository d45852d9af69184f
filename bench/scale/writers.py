#!/usr/bin/env python3
"""SQLite with several writer processes (issue 19): what two instances writing to one file cost
and give, against one instance, in one run (alternating rounds: 1 2, then 2 1, ...).

Shapes: "1" one instance (CPU 0); "2" two instances on one file with NATS (CPU 0 and 1),
taking turns at the write gate (store/write_gate.py) as AGENTSTEAD_INSTANCES=2 makes them;
"2 no gate" the same with AGENTSTEAD_INSTANCES=1 on both: SQLite's busy handler alone.
Load: wrk on POST /api/agents (a write: the agent row, its first version, an audit row, an
event: one `db.write`) with an admin API token, `--connections` in all (shape 2: two wrk
processes, half the connections each, one per instance; so the same offered load). Reported:
- writes/s (2xx responses per second over both), and every non-2xx (must be none);
- the write lock's wait (agentstead_db_lock_wait_seconds from each instance's /metrics, the
  rounds' observations only): p50/p99 as the histogram bucket bound they fall in, and the mean;
- write transactions per second and writes per transaction (group commit: how many requests
  one fsync covers), from agentstead_db_writes_total.

Usage: .venv/bin/python bench/scale/writers.py [--rounds 4] [--duration 8] [--connections 32]
                                               [--output bench/out/writers.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import ROOT, Pair, close_all  # noqa: E402

from tests.support.llm_server import LLMServer  # noqa: E402

LUA = """wrk.method = "POST"
wrk.body = '{"name": "bench writer"}'
wrk.headers["Content-Type"] = "application/json"
"""


async def scrape(url: str) -> dict:
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{url}/metrics")).text()
    out: dict = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("agentstead_db_lock_wait_seconds"):
                out[(s.name, s.labels.get("le"))] = s.value
            elif s.name == "agentstead_db_writes_total":
                out[("writes", s.labels["outcome"])] = s.value
    return out


def wrk(url: str, token: str, connections: int, duration: int, script: Path) -> subprocess.Popen:
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", str(script),
                             "-H", f"Authorization: Bearer {token}", f"{url}/api/agents"],
                            stdout=subprocess.PIPE, text=True)


def parsed(out: str) -> tuple[int, int, float]:
    """(requests, non-2xx, seconds)."""
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    secs = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return int(m.group(1)), int(bad.group(1)) if bad else 0, secs


def waits(before: dict, after: dict) -> dict:
    """Bucket counts of this round's lock waits, summed over instances."""
    keys = {k for k in after if k[0] == "agentstead_db_lock_wait_seconds_bucket"}
    return {k[1]: after[k] - before.get(k, 0) for k in keys}


def quantile_bound(buckets: dict, q: float) -> str:
    total = buckets.get("+Inf", 0)
    for le in sorted((b for b in buckets if b != "+Inf"), key=float):
        if buckets[le] >= q / 100 * total:
            return f"≤ {float(le) * 1000:g}"
    return "> 5000"


SHAPES = {"1": (1, {}), "2": (2, {}), "2 no gate": (2, {"AGENTSTEAD_INSTANCES": "1"})}


async def one_round(work: Path, llm: LLMServer, shape: str, args, script: Path) -> dict:
    instances, env = SHAPES[shape]
    pair = Pair(work, llm, **env)
    urls = [pair.a.url] if instances == 1 else [pair.a.url, pair.b.url]
    pair.nats.start()
    pair.a.start(60)
    if instances == 2:
        pair.b.start(60)
    try:
        s = await pair.sign_in("ada@example.org", "admin")
        token = (await (await s["a"].post("/api/tokens", json={"name": "w", "scopes": ["admin"]},
                                          headers=s["unsafe"])).json())["token"]
        await close_all(s)
        before = [await scrape(u) for u in urls]
        procs = [wrk(u, token, args.connections // instances, args.duration, script) for u in urls]
        outs = [p.communicate(timeout=args.duration + 60)[0] for p in procs]
        after = [await scrape(u) for u in urls]
    finally:
        pair.stop()
    reqs = [parsed(o) for o in outs]
    buckets: dict = {}
    for b, a in zip(before, after):
        for le, n in waits(b, a).items():
            buckets[le] = buckets.get(le, 0) + n
    wait_sum = sum(a[("agentstead_db_lock_wait_seconds_sum", None)] - b.get(("agentstead_db_lock_wait_seconds_sum",
                                                                              None), 0) for b, a in zip(before, after))
    tx = sum(a[("writes", "ok")] - b.get(("writes", "ok"), 0) for b, a in zip(before, after))
    failed = sum(a[("writes", "failed")] - b.get(("writes", "failed"), 0) for b, a in zip(before, after))
    ok = sum(n - bad for n, bad, _ in reqs)
    secs = max(t for _, _, t in reqs)
    return {"writes_per_s": ok / secs, "non2xx": sum(bad for _, bad, _ in reqs), "tx_per_s": tx / secs,
            "per_tx": ok / tx if tx else float("nan"), "failed_tx": failed, "buckets": buckets,
            "wait_mean_ms": wait_sum / buckets.get("+Inf", 1) * 1000}


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--output", default=str(ROOT / "bench" / "out" / "writers.md"))
    args = p.parse_args()
    llm = LLMServer(api_key="sk-test", models=("gpt-test",))
    await llm.start()
    began = os.getloadavg()[0]
    results: dict[str, list[dict]] = {k: [] for k in SHAPES}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-writers-") as tmp:
            script = Path(tmp) / "post.lua"
            script.write_text(LUA)
            for r in range(args.rounds):
                for i, n in enumerate(list(SHAPES) if r % 2 == 0 else reversed(SHAPES)):
                    row = await one_round(Path(tmp) / f"r{r}-{i}", llm, n, args, script)
                    results[n].append(row)
                    print(n, {k: v for k, v in row.items() if k != "buckets"}, flush=True)
    finally:
        await llm.stop()
    report = render(results, args, began)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    print(report)
    return 0


def render(results: dict[str, list[dict]], args, began: float) -> str:
    def med(n, key):
        v = sorted(r[key] for r in results[n])
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

    def pooled(n):
        out: dict = {}
        for r in results[n]:
            for le, c in r["buckets"].items():
                out[le] = out.get(le, 0) + c
        return out
    lines = [f"Load (1-min average) at start {began:.2f}, at end {os.getloadavg()[0]:.2f}; {args.rounds} rounds "
             f"(1 2, 2 1, ...), wrk {args.duration} s, {args.connections} connections in all.", "",
             "| measure | 1 writer process | 2, gate | 2, no gate | **2 gate / 1** | **2 no gate / 1** |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, key in (("writes/s (POST /api/agents, median)", "writes_per_s"),
                       ("write transactions/s", "tx_per_s"), ("writes per transaction", "per_tx"),
                       ("lock wait mean ms", "wait_mean_ms")):
        a, b, c = med("1", key), med("2", key), med("2 no gate", key)
        lines.append(f"| {label} | {a:.2f} | {b:.2f} | {c:.2f} | **{b / a:.2f}** | **{c / a:.2f}** |")
    for q in (50, 90, 99):
        lines.append(f"| lock wait p{q} ms (bucket, all rounds) | " + " | ".join(
            quantile_bound(pooled(n), q) for n in SHAPES) + " | | |")
    bad = sum(r["non2xx"] for n in results for r in results[n])
    failed = sum(r["failed_tx"] for n in results for r in results[n])
    lines += ["", f"Responses other than 2xx in all rounds: {bad}; failed write transactions: {failed}.",
              "Per round (writes/s): " + "; ".join(f"{n}: " + ", ".join(f"{r['writes_per_s']:.0f}" for r in results[n])
                                                  for n in results)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
