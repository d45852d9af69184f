#!/usr/bin/env python3
"""How long a model stream that arrives faster than it is parsed holds the event loop, with and
without runner/graph.py's YieldWhileStreaming, and what the turns it gives cost the stream
(bench/RESULTS.md, Runs, Session 5).

The stream: the agent graph (runner/graph.py build) reading `tok-N` from the LLM test server
(bench/runs/llm.py, its own process on the last CPU, tokens_per_second=0), in this process under
uvloop on the other CPUs, as the server runs it. Three model clients, one call each per round in
alternating order:
- yield: the runner's settings (langchain-openai's per-chunk timeout off, YieldWhileStreaming);
- no-yield: the same with a YieldWhileStreaming that never sleeps (its per-token call stays);
- defaults: a ChatOpenAI with langchain-openai's defaults (its per-chunk asyncio.wait_for on).
While each streams, a task wakes every 1 ms and records how late it woke: the longest wait is
how long the stream kept the loop from everything else (timers, other requests, the bus).

Usage: .venv/bin/python bench/runs/stall.py [--rounds 12] [--tokens 1000] [--output F]
About 30 seconds with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ws"))

import benchkit as kit  # noqa: E402
from direct import default_model, direct_run, graph_on  # noqa: E402
from llm import spawned  # noqa: E402

from agentstead.runner import graph as graphs  # noqa: E402

KINDS = ("yield", "no-yield", "defaults")


def model_graph(kind: str, url: str, model: str):
    if kind == "defaults":
        return graph_on(default_model(url, "sk-bench", model))
    handler = graphs.YieldWhileStreaming()
    if kind == "no-yield":
        handler.YIELD_EVERY = math.inf
    return graph_on(default_model(url, "sk-bench", model, stream_chunk_timeout=None, callbacks=[handler]))


async def watched(graph) -> tuple[float, float]:
    """(stream ms, the loop's longest wait ms) for one call."""
    longest = 0.0

    async def watch():
        nonlocal longest
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            longest = max(longest, time.perf_counter() - before - 0.001)
    task = asyncio.create_task(watch())
    await asyncio.sleep(0.005)
    r = await direct_run(graph)
    task.cancel()
    return r["ms"], longest * 1000


async def measure(args, url: str) -> dict:
    graphs_ = {k: model_graph(k, url, f"tok-{args.tokens}") for k in KINDS}
    for g in graphs_.values():
        await direct_run(g)                                      # warm-up (discarded)
    out = {k: {"ms": [], "stall": []} for k in KINDS}
    for i in range(args.rounds):
        for k in (KINDS if i % 2 == 0 else KINDS[::-1]):
            ms, stall = await watched(graphs_[k])
            out[k]["ms"].append(ms)
            out[k]["stall"].append(stall)
    return out


def report(args, facts, started, out) -> str:
    lines = [f"Run: `python bench/runs/stall.py --rounds {args.rounds} --tokens {args.tokens}` — "
             f"{started:%Y-%m-%d %H:%M} UTC\n", "Machine:\n"]
    lines += [f"- {k}: {v}" for k, v in facts.items()]
    base = statistics.median(out["yield"]["ms"])
    lines += ["", f"A {args.tokens}-token reply at tokens_per_second=0 (the LLM server on the last CPU, this "
              "process on the others). Medians of the rounds.\n",
              "| model client | stream ms | ÷ yield | the loop's longest wait, ms (median of rounds) | worst round |",
              "|---|---:|---:|---:|---:|"]
    for k in KINDS:
        ms = statistics.median(out[k]["ms"])
        lines.append(f"| {k} | {ms:.1f} | {ms / base:.3f} | **{statistics.median(out[k]['stall']):.1f}** | "
                     f"{max(out[k]['stall']):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--tokens", type=int, default=1000)
    p.add_argument("--output", type=Path, default=kit.ROOT / "bench" / "out" / "runs-stall.md")
    args = p.parse_args()
    started = dt.datetime.now(dt.timezone.utc)
    facts = kit.machine_facts(("langgraph", "langchain-openai", "openai", "uvloop"), state_dir=Path(tempfile.gettempdir()))
    cpus = frozenset(os.sched_getaffinity(0))
    with spawned("sk-bench", [f"tok-{args.tokens}"]) as (llm, ports):
        if len(cpus) >= 2:
            kit.pin(llm.pid, {max(cpus)})
            kit.pin(os.getpid(), cpus - {max(cpus)})
        import uvloop
        out = uvloop.run(measure(args, f"http://127.0.0.1:{ports['fast']}/v1"))
    text = report(args, facts, started, out)
    kit.write_report(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
