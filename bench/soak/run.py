#!/usr/bin/env python3
"""Soak: a real `agentstead serve` under mixed load with long threads for --minutes (20+),
sampled every 30 s; the report gives the slope of every series. Not run in CI.

Load (all at once, from this process, over loopback):
- chat runs at --rate a second, round-robin over --threads threads that start --prefill
  messages long and grow by two per run (each POST carries an Idempotency-Key); a run's
  time is POST to its run.succeeded on the owner's users/{id} topic;
- --sockets WebSockets, each following one of the threads (events counted, not checked);
- an API token created and the previous one revoked every 3 s;
- thread GETs (the default newest page, as the chat page loads it) at --gets a second.

Sampled every 30 s: the server's RSS and open fds, WAL and database bytes, rows in
events / event_topics / messages, and p50/p99 of the window's run times and GET times.
Slopes are least squares over the samples after the first two (warm-up), per minute.

The model is tests/support/llm_server.py in its own process (bench/runs/llm.py, streaming
30 tokens as fast as it can), so run times are the server's own work.

    .venv/bin/python bench/soak/run.py                      # 22 minutes, defaults below
    .venv/bin/python bench/soak/run.py --minutes 2          # a trial
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import itertools
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "ws"))
sys.path.insert(0, str(ROOT / "bench" / "runs"))
sys.path.insert(0, str(ROOT / "bench" / "auth"))

import aiohttp  # noqa: E402
import benchkit as kit  # noqa: E402
from llm import spawned  # noqa: E402
from signin import agentstead_bin, sign_in  # noqa: E402

MODEL = "tok-30"
SAMPLE_SECONDS = 30.0


def prefill(db: Path, thread_ids: list[str], n: int) -> None:
    """n messages per thread (user and assistant turns shaped like the ones the load adds: a
    short question, a 30-word reply), written straight into the file while the server is
    stopped: the threads start long, and the window a run sends (its prompt budget) holds
    as many messages at the start as at the end, so a slope means growth, not a change of
    message sizes."""
    conn = sqlite3.connect(db)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    with conn:
        for thread_id in thread_ids:
            conn.executemany(
                "INSERT INTO messages (id, thread_id, run_id, role, content, tool_calls, tool_call_id, partial, "
                "created_at) VALUES (?, ?, NULL, ?, ?, NULL, NULL, 0, ?)",
                [(str(uuid.uuid4()), thread_id, "user" if i % 2 == 0 else "assistant",
                  f"question {1e9 + i}" if i % 2 == 0 else " ".join(f"w{j}" for j in range(30)), now)
                 for i in range(n)])
    conn.close()


class Stats:
    def __init__(self) -> None:
        self.runs: list[float] = []        # ms, this window
        self.gets: list[float] = []
        self.errors: dict[str, int] = {}
        self.runs_total = 0
        self.events = 0

    def take(self) -> tuple[list[float], list[float]]:
        runs, gets, self.runs, self.gets = self.runs, self.gets, [], []
        return runs, gets

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


_CPU: dict[int, tuple[float, float]] = {}   # pid -> (cpu seconds, monotonic time) at the last sample


def cpu_share(pid: int) -> float:
    """The process's CPU (all threads) since the last sample, in % of one core."""
    now, cpu = time.monotonic(), kit.proc_cpu_seconds(pid)
    last = _CPU.get(pid)
    _CPU[pid] = (cpu, now)
    return round(100 * (cpu - last[0]) / (now - last[1]), 1) if last else float("nan")


def sample(pid: int, db: Path, stats: Stats, t0: float) -> dict:
    runs, gets = stats.take()
    wal = db.with_name(db.name + "-wal")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("events", "event_topics", "messages", "runs")}
        longest = conn.execute("SELECT max(n) FROM (SELECT count(*) n FROM messages GROUP BY thread_id)").fetchone()[0]
    finally:
        conn.close()
    return {"minute": round((time.monotonic() - t0) / 60, 3), "rss_mib": round(kit.rss_kib(pid) / 1024, 2),
            "server_cpu_pct": cpu_share(pid), "client_cpu_pct": cpu_share(os.getpid()),
            "fds": len(os.listdir(f"/proc/{pid}/fd")), "wal_mib": round(wal.stat().st_size / 2**20, 3)
            if wal.exists() else 0.0, "db_mib": round(db.stat().st_size / 2**20, 3),
            "events": rows["events"], "event_topics": rows["event_topics"], "messages": rows["messages"],
            "thread_len": longest, "runs_done": stats.runs_total,
            "run_p50_ms": round(kit.percentile(runs, 50), 2), "run_p99_ms": round(kit.percentile(runs, 99), 2),
            "get_p50_ms": round(kit.percentile(gets, 50), 2), "get_p99_ms": round(kit.percentile(gets, 99), 2),
            "runs_in_window": len(runs), "gets_in_window": len(gets)}


def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else float("nan")


async def load(base: str, token: str, user_id: str, threads: list[str], args, stats: Stats, stop: asyncio.Event):
    headers = {"Authorization": f"Bearer {token}"}
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base, headers=headers, connector=conn) as http:
        pending: dict[str, tuple[float, str]] = {}    # run id -> (t0, thread)
        busy: set[str] = set()

        async def follow_runs():
            ws = await http.ws_connect("/ws", headers={"Origin": "http://localhost:47294"})
            await ws.send_json({"op": "subscribe", "topic": f"users/{user_id}"})
            async for msg in ws:
                data = json.loads(msg.data)
                if data.get("op") != "event" or not data["type"].startswith("run."):
                    continue
                if data["type"] in ("run.succeeded", "run.failed", "run.cancelled"):
                    run_id = data["data"]["run_id"]
                    started = pending.pop(run_id, None)
                    if started is not None:
                        busy.discard(started[1])
                        if data["type"] == "run.succeeded":
                            stats.runs.append((time.monotonic() - started[0]) * 1000)
                            stats.runs_total += 1
                        else:
                            stats.error(data["type"])

        async def watcher(topic: str):
            async with http.ws_connect("/ws", headers={"Origin": "http://localhost:47294"}) as ws:
                await ws.send_json({"op": "subscribe", "topic": topic})
                async for _ in ws:
                    stats.events += 1

        async def runs():
            order = itertools.cycle(threads)
            interval = 1 / args.rate
            nxt = time.monotonic()
            while not stop.is_set():
                nxt += interval
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
                thread = next(order)
                if thread in busy:
                    stats.error("thread still busy (rate above capacity)")
                    continue
                busy.add(thread)
                asyncio.create_task(post(thread))

        async def post(thread: str):
            t0 = time.monotonic()
            key = str(uuid.uuid4())
            for attempt in range(5):
                try:
                    async with http.post(f"/api/threads/{thread}/messages", json={"content": f"question {t0}"},
                                         headers={"Idempotency-Key": key}) as resp:
                        body = await resp.json()
                        if resp.status == 202:
                            pending[body["id"]] = (t0, thread)
                            return
                        stats.error(f"POST message {resp.status} {body.get('error', {}).get('code')}")
                        if resp.status != 503:
                            break
                except aiohttp.ClientError as exc:
                    stats.error(f"POST message {type(exc).__name__}")
                await asyncio.sleep(0.2 * (attempt + 1))
            busy.discard(thread)

        async def gets():
            interval = 1 / args.gets
            nxt = time.monotonic()
            while not stop.is_set():
                nxt += interval
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
                t0 = time.monotonic()
                try:
                    async with http.get(f"/api/threads/{random.choice(threads)}?limit=100") as resp:
                        await resp.read()
                        if resp.status != 200:
                            stats.error(f"GET thread {resp.status}")
                            continue
                except aiohttp.ClientError as exc:
                    stats.error(f"GET thread {type(exc).__name__}")
                    continue
                stats.gets.append((time.monotonic() - t0) * 1000)

        async def tokens():
            previous = None
            while not stop.is_set():
                async with http.post("/api/tokens", json={"name": "rotating", "scopes": ["read"]},
                                     headers={"Idempotency-Key": str(uuid.uuid4())}) as resp:
                    if resp.status != 201:
                        stats.error(f"POST token {resp.status}")
                    else:
                        created = (await resp.json())["id"]
                        if previous:
                            async with http.delete(f"/api/tokens/{previous}") as gone:
                                if gone.status != 204:
                                    stats.error(f"DELETE token {gone.status}")
                        previous = created
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(3):
                        await stop.wait()

        tasks = [asyncio.create_task(follow_runs())]
        tasks += [asyncio.create_task(watcher(f"threads/{threads[i % len(threads)]}")) for i in range(args.sockets)]
        await asyncio.sleep(1)
        tasks += [asyncio.create_task(f()) for f in (runs, gets, tokens)]
        await stop.wait()
        await asyncio.sleep(2)   # the last runs finish
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def soak(args, server, db: Path, signed, threads: list[str]) -> list[dict]:
    stats = Stats()
    stop = asyncio.Event()
    samples: list[dict] = []
    t0 = time.monotonic()
    cpu_share(server.proc.pid), cpu_share(os.getpid())   # the first window starts now

    async def sampler():
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SAMPLE_SECONDS):
                    await stop.wait()
            row = await asyncio.to_thread(sample, server.proc.pid, db, stats, t0)
            row["errors"] = sum(stats.errors.values())
            samples.append(row)
            print(json.dumps(row), flush=True)
            if time.monotonic() - t0 >= args.minutes * 60:
                stop.set()

    await asyncio.gather(load(server.base, signed.api_token, signed.user_id, threads, args, stats, stop), sampler())
    samples[-1]["error_kinds"] = stats.errors
    return samples


def report(args, samples: list[dict], facts: dict) -> str:
    used = samples[2:] if len(samples) > 4 else samples
    xs = [s["minute"] for s in used]
    series = [("rss_mib", "RSS", "MiB"), ("fds", "open fds", ""), ("wal_mib", "WAL", "MiB"),
              ("db_mib", "database file", "MiB"), ("events", "event rows", ""),
              ("event_topics", "event_topics rows", ""), ("messages", "messages", ""),
              ("thread_len", "longest thread", "messages"), ("server_cpu_pct", "server CPU", "% of a core"),
              ("run_p50_ms", "run p50", "ms"),
              ("run_p99_ms", "run p99", "ms"), ("get_p50_ms", "thread GET p50", "ms"),
              ("get_p99_ms", "thread GET p99", "ms")]
    lines = [f"# Soak: {args.minutes:g} min, {args.rate:g} runs/s over {args.threads} threads "
             f"(prefilled {args.prefill} messages), {args.sockets} WebSockets, token create/revoke every 3 s, "
             f"{args.gets:g} thread GETs/s, prompt budget {args.context_tokens} tokens\n", "Machine: " + "; ".join(f"{k}: {v}" for k, v in facts.items()) + "\n",
             f"Slopes: least squares per minute over {len(used)} samples (30 s apart, the first two left out "
             "as warm-up).\n", "| series | first | last | slope per minute |", "|---|---:|---:|---:|"]
    for key, name, unit in series:
        ys = [s[key] for s in used]
        lines.append(f"| {name} ({unit or 'count'}) | {used[0][key]:,} | {used[-1][key]:,} | "
                     f"{slope(xs, ys):+.4g} |")
    lines.append(f"\nRuns done: {samples[-1]['runs_done']:,}; errors: {samples[-1].get('error_kinds') or 'none'}\n")
    lines.append("Samples:\n\n| min | RSS MiB | fds | WAL MiB | DB MiB | events | thread len | server CPU % "
                 "| client CPU % | run p50/p99 ms | GET p50/p99 ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in samples:
        lines.append(f"| {s['minute']:.1f} | {s['rss_mib']} | {s['fds']} | {s['wal_mib']} | {s['db_mib']} | "
                     f"{s['events']:,} | {s['thread_len']:,} | {s['server_cpu_pct']} | {s['client_cpu_pct']} | "
                     f"{s['run_p50_ms']}/{s['run_p99_ms']} | {s['get_p50_ms']}/{s['get_p99_ms']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=22.0)
    p.add_argument("--rate", type=float, default=5.0, help="chat runs a second")
    p.add_argument("--threads", type=int, default=20)
    p.add_argument("--prefill", type=int, default=2000, help="messages each thread starts with")
    p.add_argument("--sockets", type=int, default=220)
    p.add_argument("--gets", type=float, default=5.0, help="thread GETs a second")
    p.add_argument("--context-tokens", type=int, default=4000,
                   help="AGENTSTEAD_LLM_CONTEXT_TOKENS: the prompt budget (about 150 of these messages); a run's "
                        "CPU grows with the messages it sends (the openai SDK walks each one)")
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "out" / "soak.md")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    kit.stop_on_signals()
    kit.raise_nofile()
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    server = None
    with spawned("sk-soak", [MODEL]) as (_, ports):
        try:
            key = tmp / "llm_key"
            key.write_text("sk-soak")
            port = kit.free_port()
            env = kit.server_env(tmp, port, AGENTSTEAD_LLM_PROVIDERS=json.dumps([{
                "name": "local", "base_url": f"http://127.0.0.1:{ports['fast']}/v1", "models": [MODEL],
                "api_key_file": str(key)}]), AGENTSTEAD_RUNS_MAX_PER_USER="64", AGENTSTEAD_RUNS_MAX_CONCURRENT="64",
                AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000", AGENTSTEAD_RATE_LIMIT_AUTH_PER_MINUTE="100000",
                AGENTSTEAD_LLM_CONTEXT_TOKENS=str(args.context_tokens))
            server = kit.Server("agentstead", agentstead_bin() + ["serve"], env, port, tmp / "serve.log")
            server.start()
            server.wait_ready()
            signed = sign_in(server.base, env, "soak@example.org", role="member", scopes=("read", "write"))
            import urllib.request

            def post(path: str, body: dict) -> dict:
                req = urllib.request.Request(server.base + path, data=json.dumps(body).encode(), method="POST",
                                             headers={**signed.bearer, "Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    return json.loads(r.read())
            agent = post("/api/agents", {"name": "soak", "model": MODEL, "instructions": "Answer briefly."})
            threads = [post("/api/threads", {"agent_id": agent["id"]})["id"] for _ in range(args.threads)]
            server.stop()
            db = tmp / "state" / "agentstead.db"
            prefill(db, threads, args.prefill)
            server.start()
            server.wait_ready()
            facts = kit.machine_facts(state_dir=tmp / "state")
            facts["agentstead source"] = kit.source_description()
            samples = asyncio.run(soak(args, server, db, signed, threads))
            args.output.parent.mkdir(parents=True, exist_ok=True)
            with open(args.output.with_suffix(".csv"), "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=[k for k in samples[0] if k != "error_kinds"], extrasaction="ignore")
                writer.writeheader()
                writer.writerows(samples)
            kit.write_report(args.output, report(args, samples, facts))
        finally:
            kit.clean_up(tmp, args.keep, server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
