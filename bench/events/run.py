#!/usr/bin/env python3
"""Event-log bytes per run: the working tree against a baseline revision (default a19b284,
before events were stored once with their topics linked), in the same session.

Each round starts a real `agentstead serve` of one revision on a fresh state directory
(the baseline's src/ from `git archive`, first on PYTHONPATH), signs in, and runs --runs
chat runs (--concurrency at a time, over --threads threads) against the tests' LLM server
(bench/runs/llm.py, 30 streamed tokens, as fast as it can), then --tools runs that call a
tool (a tool.called and a tool.result each). Then the server stops, the database is copied
with VACUUM INTO (no free pages), and SQLite's dbstat gives the bytes of every table and
index of the event log. Rounds alternate A, B, A, B...

    .venv/bin/python bench/events/run.py                 # 2 rounds of 300 + 30 runs each
    .venv/bin/python bench/events/run.py --rev a19b284 --rounds 2 --runs 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for sub in ("ws", "runs", "auth"):
    sys.path.insert(0, str(ROOT / "bench" / sub))

import aiohttp  # noqa: E402
import benchkit as kit  # noqa: E402
from llm import spawned  # noqa: E402
from signin import agentstead_bin, sign_in  # noqa: E402

MODEL = "tok-30"
# Every table and index that holds the event log, in either layout.
OBJECTS = ("events", "event_topics", "topics", "events_at", "events_topic_seq", "event_topics_seq",
           "sqlite_autoindex_topics_1", "sqlite_autoindex_event_topics_1")


def extract(rev: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"], check=True,
                             capture_output=True, timeout=60).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=60)
    return dest / "src"


def event_bytes(db: Path, tmp: Path) -> dict:
    copy = tmp / "vacuumed.db"
    copy.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute("VACUUM INTO ?", (str(copy),))
    with sqlite3.connect(copy) as conn:
        sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
        runs = conn.execute("SELECT count(*) FROM runs WHERE status = 'succeeded'").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        links = conn.execute("SELECT count(*) FROM event_topics").fetchone()[0] if "event_topics" in tables else events
    return {"runs": runs, "events": events, "deliveries": links,
            "bytes": {k: v for k, v in sizes.items() if k in OBJECTS}, "total": sum(v for k, v in sizes.items()
                                                                             if k in OBJECTS)}


async def load(base: str, token: str, threads: list[str], runs: int, concurrency: int) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for t in threads:
        queue.put_nowait(t)
    done = 0
    async with aiohttp.ClientSession(base, headers={"Authorization": f"Bearer {token}"}) as http:
        async def one() -> None:
            nonlocal done
            while done < runs:
                thread = await queue.get()
                done += 1
                async with http.post(f"/api/threads/{thread}/messages", json={"content": "tell me"}) as resp:
                    run = await resp.json()
                    assert resp.status == 202, run
                while True:
                    async with http.get(f"/api/runs/{run['id']}") as resp:
                        status = (await resp.json())["status"]
                    if status not in ("queued", "running"):
                        assert status == "succeeded", status
                        break
                    await asyncio.sleep(0.05)
                queue.put_nowait(thread)
        await asyncio.gather(*(one() for _ in range(concurrency)))


def measure(variant: str, src: Path | None, args, ports: dict, tmp: Path) -> dict:
    work = tmp / f"{variant}-{time.monotonic_ns()}"
    work.mkdir()
    key = work / "llm_key"
    key.write_text("sk-events")
    port = kit.free_port()
    env = kit.server_env(work, port, AGENTSTEAD_LLM_PROVIDERS=json.dumps([{
        "name": "local", "base_url": f"http://127.0.0.1:{ports['fast']}/v1", "models": [MODEL],
        "api_key_file": str(key)}]), AGENTSTEAD_RUNS_MAX_PER_USER="32", AGENTSTEAD_RUNS_MAX_CONCURRENT="32",
        AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000", AGENTSTEAD_LOG_LEVEL="warning")
    if src is not None:
        env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    server = kit.Server(variant, agentstead_bin() + ["serve"], env, port, work / "serve.log")
    server.start()
    try:
        server.wait_ready()
        signed = sign_in(server.base, env, "events@example.org", role="member", scopes=("read", "write"))

        def post(path: str, body: dict) -> dict:
            req = urllib.request.Request(server.base + path, data=json.dumps(body).encode(), method="POST",
                                         headers={**signed.bearer, "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        agent = post("/api/agents", {"name": "events", "model": MODEL})
        threads = [post("/api/threads", {"agent_id": agent["id"]})["id"] for _ in range(args.threads)]
        t0 = time.monotonic()
        asyncio.run(load(server.base, signed.api_token, threads, args.runs, args.concurrency))
        seconds = time.monotonic() - t0
    finally:
        server.stop()
    result = event_bytes(work / "state" / "agentstead.db", work)
    result.update(variant=variant, seconds=round(seconds, 1))
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rev", default="a19b284", help="the baseline revision of src/")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--threads", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "out" / "events.md")
    args = p.parse_args()
    kit.stop_on_signals()
    tmp = Path(tempfile.mkdtemp(prefix="events-bench-"))
    try:
        baseline = extract(args.rev, tmp / "rev")
        results = []
        with spawned("sk-events", [MODEL]) as (_, ports):
            for i in range(args.rounds):
                order = [("A", None), ("B", baseline)] if i % 2 == 0 else [("B", baseline), ("A", None)]
                for variant, src in order:
                    r = measure(variant, src, args, ports, tmp)
                    print(json.dumps(r), flush=True)
                    results.append(r)
        facts = kit.machine_facts()
        facts["A"] = kit.source_description()
        facts["B"] = f"git {args.rev} (git archive of src/)"
        lines = [f"# Event-log bytes per run: A (working tree) against B ({args.rev})\n",
                 "Machine: " + "; ".join(f"{k}: {v}" for k, v in facts.items()) + "\n",
                 f"{args.runs} chat runs per round ({args.concurrency} at a time over {args.threads} threads), "
                 "30 streamed tokens each; bytes from dbstat after VACUUM INTO, every table and index of the "
                 "event log.\n",
                 "| round | variant | runs | event rows | deliveries (topic, event) | bytes | bytes/run |",
                 "|---:|---|---:|---:|---:|---:|---:|"]
        for i, r in enumerate(results):
            lines.append(f"| {i // 2 + 1} | {r['variant']} | {r['runs']} | {r['events']:,} | {r['deliveries']:,} | "
                         f"{r['total']:,} | {r['total'] / max(r['runs'], 1):,.0f} |")
        per = {v: [r["total"] / max(r["runs"], 1) for r in results if r["variant"] == v] for v in ("A", "B")}
        a, b = kit.median(per["A"]), kit.median(per["B"])
        lines.append(f"\nMedian bytes per run: A {a:,.0f}, B {b:,.0f}: A/B = **{a / b:.2f}** (target: at most 0.50).\n")
        lines.append("By object (last round): " + "; ".join(
            f"{r['variant']}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(r["bytes"].items())) for r in results[-2:]))
        kit.write_report(args.output, "\n".join(lines) + "\n")
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
