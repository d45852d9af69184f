#!/usr/bin/env python3
"""What one thread hand-off every 50 ms costs a LangGraph stream running as fast as it can, by
CPU placement: the experiment behind bench/runs/run.py's --placement (bench/RESULTS.md, Runs,
Session 4).

The stream: the direct graph of bench/runs/direct.py reading `tok-N` from the LLM test server
(bench/runs/llm.py, its own process, tokens_per_second=0), in this process under uvloop, as the
server runs it. While it streams, a task of this process's loop does, every 50 ms:
- none: nothing (the baseline);
- thread-noop: wakes a worker thread that does nothing and answers through
  call_soon_threadsafe (the hand-off alone);
- thread-sqlite: the worker commits one 300-byte row to a WAL database with synchronous=FULL
  (what the bus's writer thread does for a streamed delta, reduced to its SQLite part);
- loop-sqlite: the same commit on the event loop's own thread (no hand-off; blocks the loop).
Placements: shared (every process on every CPU) and split (the LLM server on the last CPU,
this process, all its threads, on the others). Per round, each placement in turn (the order
alternates), one discarded run after the move, then each mode once (the order alternates);
the report gives medians and the ratio to `none` of the same placement.

Usage: .venv/bin/python bench/runs/handoff.py [--rounds 16] [--tokens 1000] [--output F]
About 1 minute with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import queue
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ws"))

import benchkit as kit  # noqa: E402
from direct import direct_graph, direct_run  # noqa: E402
from llm import spawned  # noqa: E402

MODES = ("none", "thread-noop", "thread-sqlite", "loop-sqlite")
PLACEMENTS = ("shared", "split")
TICK = 0.05


def commit_one(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (?)", ("x" * 300,))
    conn.execute("COMMIT")


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (x TEXT)")
    return conn


class Worker:
    """A thread that takes (future, loop) jobs and answers each through the loop."""

    def __init__(self, conn: sqlite3.Connection | None):
        self.conn = conn
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            future, loop = job
            if self.conn is not None:
                commit_one(self.conn)
            loop.call_soon_threadsafe(future.set_result, None)

    async def call(self) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.jobs.put((future, loop))
        await future


async def ticker(mode: str, workers: dict, conn: sqlite3.Connection, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(TICK)
        if mode in workers:
            await workers[mode].call()
        elif mode == "loop-sqlite":
            commit_one(conn)


ALL = frozenset(os.sched_getaffinity(0))


def place(kind: str, llm_pid: int) -> None:
    """shared: both processes on every CPU; split: the LLM server on the last, this one on the rest."""
    last = {max(ALL)}
    mine, llms = (ALL, ALL) if kind == "shared" else (ALL - last, last)
    for pid, cpus in ((os.getpid(), mine), (llm_pid, llms)):
        kit.pin(pid, cpus)


async def measure(args, url: str, llm_pid: int, db: Path) -> dict:
    graph = direct_graph(url, "sk-bench", f"tok-{args.tokens}")
    conn = connect(db)
    workers = {"thread-noop": Worker(None), "thread-sqlite": Worker(connect(db))}
    for _ in range(3):
        await direct_run(graph)                                   # warm-up (discarded)
    out = {(p, m): {"ms": [], "cpu": []} for p in PLACEMENTS for m in MODES}
    for i in range(args.rounds):
        for placement in (PLACEMENTS if i % 2 == 0 else PLACEMENTS[::-1]):
            place(placement, llm_pid)
            await direct_run(graph)          # after the move, one run to settle (discarded)
            for mode in (MODES if i % 2 == 0 else MODES[::-1]):
                stop = asyncio.Event()
                task = asyncio.create_task(ticker(mode, workers, conn, stop))
                c0 = time.process_time()
                r = await direct_run(graph)
                c1 = time.process_time()
                stop.set()
                await task
                out[(placement, mode)]["ms"].append(r["ms"])
                out[(placement, mode)]["cpu"].append((c1 - c0) * 1000)
        print(f"round {i + 1}/{args.rounds}", flush=True)
    for w in workers.values():
        w.jobs.put(None)
    place("shared", llm_pid)
    return out


def report(args, facts, started, out) -> str:
    lines = [f"Run: `python bench/runs/handoff.py --rounds {args.rounds} --tokens {args.tokens}` — "
             f"{started:%Y-%m-%d %H:%M} UTC\n", "Machine:\n"]
    lines += [f"- {k}: {v}" for k, v in facts.items()]
    lines += ["", f"A {args.tokens}-token stream, tokens_per_second=0; every {TICK * 1000:.0f} ms during it, the "
              "action in the row. Medians of the rounds; ratio to `none` in the same placement.\n",
              "| placement | every 50 ms | stream ms | **÷ none** | process CPU ms |", "|---|---|---:|---:|---:|"]
    for p in PLACEMENTS:
        base = statistics.median(out[(p, "none")]["ms"])
        for m in MODES:
            ms = statistics.median(out[(p, m)]["ms"])
            lines.append(f"| {p} | {m} | {ms:.1f} | **{ms / base:.3f}** | "
                         f"{statistics.median(out[(p, m)]['cpu']):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=16)
    p.add_argument("--tokens", type=int, default=1000)
    p.add_argument("--output", type=Path, default=kit.ROOT / "bench" / "out" / "runs-handoff.md")
    args = p.parse_args()
    if len(ALL) < 2:
        print("handoff.py needs at least 2 CPUs (the split placement)", file=sys.stderr)
        return 1
    started = dt.datetime.now(dt.timezone.utc)
    facts = kit.machine_facts(("langgraph", "langchain-openai", "openai", "uvloop"), state_dir=Path(tempfile.gettempdir()))
    with tempfile.TemporaryDirectory(prefix="agentstead-bench-handoff-") as tmp:
        with spawned("sk-bench", [f"tok-{args.tokens}"]) as (llm, ports):
            url = f"http://127.0.0.1:{ports['fast']}/v1"
            import uvloop
            out = uvloop.run(measure(args, url, llm.pid, Path(tmp) / "handoff.db"))
    text = report(args, facts, started, out)
    kit.write_report(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
