#!/usr/bin/env python3
"""What tracing costs per token: the runner's model client and graph (bench/runs/direct.py)
streaming from the tests' OpenAI-compatible server (bench/runs/llm.py, its own process,
tokens_per_second=0), with tracing off and on in the same run, alternating per round.

"on" is what a traced chat run adds around its model calls: the run's span (runner/
traced.py: Traces.run) and the GenAI callback (ModelSpans) in the graph's config, on the
app's tracer (tracing.py: Tracing), whose BatchSpanProcessor thread exports over OTLP/HTTP
to a real receiver (tests/support/otlp_receiver.py) in a third process. CPU time is the
whole process's (every thread: the exporter's too); per token = (cost of a 1,000-token
reply − cost of a 10-token reply) / 990, so the per-run cost (spans, export) is separated.

    .venv/bin/python bench/runs/tracing.py [--rounds 9] [--runs 6]   # ≈ 2–4 min; bench/out/tracing.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "runs"))

from direct import direct_run, direct_graph  # noqa: E402
from llm import spawned  # noqa: E402

from langchain_core.outputs import LLMResult  # noqa: E402

from agentstead.runner.traced import Traces  # noqa: E402
from agentstead.settings import Settings  # noqa: E402
from agentstead.store.runs import Run  # noqa: E402
from agentstead.tracing import Tracing  # noqa: E402

LONG, SHORT = 1000, 10


async def receive() -> int:
    """--receiver: the OTLP/HTTP receiver in this process; prints its port, then on stdin's
    end (or SIGTERM) prints how many spans it took."""
    from tests.support.otlp_receiver import OTLPReceiver
    receiver = OTLPReceiver()
    await receiver.start()
    print(receiver.port, flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    watcher = asyncio.create_task(reader.read())
    watcher.add_done_callback(lambda _: stop.set())
    await stop.wait()
    print(json.dumps({"spans": len(receiver.spans), "exports": len(receiver.requests)}), flush=True)
    await receiver.stop()
    return 0


async def reply(graph, traces: Traces | None, run: Run) -> float:
    """One reply; the CPU seconds it took (every thread of this process)."""
    cpu = time.process_time()
    if traces is None:
        await direct_run(graph)
    else:
        with traces.run(run, resumed=False) as span:
            await direct_run(graph, callbacks=traces.callbacks)
            span.ended("succeeded")
    return time.process_time() - cpu


async def dispatch_cost(traces: Traces, tokens: int = 20000) -> float:
    """µs of CPU one token costs LangChain's callback manager with the tracing callback
    beside the runner's own (runner/graph.py: YIELD), minus without it: the part of a
    token's cost tracing adds, measured alone (no network, no parsing)."""
    from langchain_core.callbacks import AsyncCallbackManager
    from agentstead.runner.graph import YIELD
    costs = {}
    for name, handlers in (("off", [YIELD]), ("on", [YIELD, *traces.callbacks])):
        manager = AsyncCallbackManager(handlers=handlers, inheritable_handlers=handlers)
        (call,) = await manager.on_chat_model_start({}, [[]], invocation_params={"model": "bench"})
        cpu = time.process_time()
        for _ in range(tokens):
            await call.on_llm_new_token("w")
        costs[name] = (time.process_time() - cpu) / tokens * 1e6
        await call.on_llm_end(LLMResult(generations=[[]]))
    return costs["on"] - costs["off"]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) / 1024 / 1024
    return (f"{os.cpu_count()} vCPU {cpu}, {mem:.1f} GiB, kernel {platform.release()}, CPython "
            f"{platform.python_version()}; load average at start {os.getloadavg()[0]:.2f}")


async def measure(args) -> str:
    receiver = subprocess.Popen([sys.executable, __file__, "--receiver"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    port = int(receiver.stdout.readline())
    tracing = Tracing(Settings(tracing_endpoint=f"http://127.0.0.1:{port}/v1/traces"), "bench")
    tracing.start()
    traces = Traces(tracing.tracer)
    run = Run(id="bench-run", owner_id="bench", status="running", created_at="", kind="chat", agent_id="a",
              agent_version=1, model=f"tok-{LONG}", thread_id="t")
    rows = {"off": [], "on": []}
    with spawned("sk-bench", [f"tok-{LONG}", f"tok-{SHORT}"]) as (_, ports):
        base = f"http://127.0.0.1:{ports['fast']}/v1"
        graphs = {n: direct_graph(base, "sk-bench", f"tok-{n}") for n in (LONG, SHORT)}
        variants = {"off": None, "on": traces}
        for name in ("off", "on", "off", "on"):   # warm-up: clients, connections, the exporter
            await reply(graphs[LONG], variants[name], run)
            await reply(graphs[SHORT], variants[name], run)
        for r in range(args.rounds):
            cpu = {name: {LONG: 0.0, SHORT: 0.0} for name in variants}
            for i in range(args.runs):   # the two variants reply by turns, each first every other time
                order = ("off", "on") if (r + i) % 2 == 0 else ("on", "off")
                for n in (LONG, SHORT):
                    for name in order:
                        cpu[name][n] += await reply(graphs[n], variants[name], run)
            for name in variants:
                rows[name].append({"token_cpu_us": (cpu[name][LONG] - cpu[name][SHORT]) / args.runs
                                   / (LONG - SHORT) * 1e6,
                                   "run_cpu_ms": cpu[name][SHORT] / args.runs * 1000})
        dispatch = statistics.median([await dispatch_cost(traces) for _ in range(5)])
    await tracing.stop()
    receiver.stdin.close()
    received = json.loads(receiver.stdout.readline())
    receiver.wait(timeout=10)
    # a run span and a chat span per traced reply, and the 5 chat spans of dispatch_cost
    expected = 2 * (2 * 2 + 2 * args.runs * args.rounds) + 5
    return report(args, rows, received, expected, tracing.exporter.failed, dispatch)


def report(args, rows, received, expected, failed, dispatch) -> str:
    def med(name, key):
        return statistics.median(row[key] for row in rows[name])
    ratios = [on["token_cpu_us"] / off["token_cpu_us"] for on, off in zip(rows["on"], rows["off"])]
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    lines = [
        f"# Tracing overhead per token ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
        f"Machine: {machine()}.", "",
        f"{args.rounds} rounds × {args.runs} replies of {LONG} and of {SHORT} tokens per variant, by turns; "
        f"spans received by the OTLP receiver: {received['spans']} of {expected} in {received['exports']} exports "
        f"(failed exports: {failed}).", "",
        "| variant | CPU µs per token | CPU ms per 10-token reply |",
        "|---|---:|---:|"]
    for name in ("off", "on"):
        lines.append(f"| tracing {name} | {med(name, 'token_cpu_us'):.1f} | {med(name, 'run_cpu_ms'):.2f} |")
    ratio = statistics.median(ratios)
    lines += ["", f"Per-token CPU, on ÷ off: **{ratio:.3f}** (per-round ratios: median {ratio:.3f}, quartiles "
              f"{q[0]:.3f}–{q[2]:.3f}); target ≤ 1.03: **{'met' if ratio <= 1.03 else 'missed'}**.",
              f"Per-run CPU added (spans, export), 10-token reply: "
              f"{med('on', 'run_cpu_ms') - med('off', 'run_cpu_ms'):+.2f} ms.",
              f"The tracing callback alone, per token (LangChain's dispatch of one more inline handler, "
              f"measured without network or parsing): {dispatch:.2f} µs = "
              f"**{(med('off', 'token_cpu_us') + dispatch) / med('off', 'token_cpu_us'):.3f}×** the off "
              f"variant's per-token cost."]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--runs", type=int, default=6, help="replies of each length per variant and round")
    p.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--output", default=str(ROOT / "bench" / "out" / "tracing.md"))
    args = p.parse_args()
    if args.receiver:
        return asyncio.run(receive())
    text = asyncio.run(measure(args))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
