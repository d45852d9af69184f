#!/usr/bin/env python3
"""Time to first token: Agentstead against the same graph called directly, same LLM server.

A (Agentstead): POST /api/threads/{id}/messages → the first message.delta received on the
WebSocket that follows the thread (subscribed before the POST, not timed). D (direct): the
graph of bench/runs/direct.py, `astream` called → its first text chunk, in this process. The
LLM server (bench/runs/llm.py, "slow": 30 tokens/s, model tok-30) is the same for both;
rounds alternate A D / D A. Target (issue 22): A's median ≤ D's median + 10 ms.

Usage: .venv/bin/python bench/runs/first_token.py [--rounds 6] [--n 10] [--output bench/out/first-token.md]
About 1 minute.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ws"))
sys.path.insert(0, str(HERE.parent / "auth"))
sys.path.insert(0, str(HERE))            # bench/runs/run.py before bench/auth/run.py

import benchkit as kit  # noqa: E402
from signin import sign_in  # noqa: E402
from direct import direct_graph  # noqa: E402
from run import API_KEY, LLMProc, Watcher, agentstead_run  # noqa: E402

from langchain_core.messages import AIMessageChunk, HumanMessage  # noqa: E402

TARGET_MS = 10.0
MODEL = "tok-30"


async def direct_first(graph) -> dict:
    """Call → first text chunk (ms), and the whole call (ms)."""
    t0 = time.perf_counter()
    first = None
    async for mode, chunk in graph.astream({"messages": [HumanMessage("hello")]}, {"recursion_limit": 21},
                                           stream_mode=["messages", "updates"]):
        if mode == "messages" and first is None:
            piece, _ = chunk
            if isinstance(piece, AIMessageChunk) and piece.content:
                first = time.perf_counter()
    end = time.perf_counter()
    return {"first_delta": ((first or end) - t0) * 1000, "ms": (end - t0) * 1000}


async def bench(args, base: str, token: str, llm: LLMProc) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=120)) as http:
        async with http.post(base + "/api/agents", json={"name": "ttft", "provider": "slow", "model": MODEL}) as r:
            agent = (await r.json())["id"]
        graph = direct_graph(llm.url("slow"), API_KEY, MODEL)
        watcher = Watcher(http, base)
        for _ in range(2):                                     # warm-up (discarded)
            await agentstead_run(http, base, watcher, agent)
            await direct_first(graph)
        out = {"A": [], "D": []}
        for i in range(args.rounds):
            for side in (("A", "D") if i % 2 == 0 else ("D", "A")):
                for _ in range(args.n):
                    r = (await agentstead_run(http, base, watcher, agent) if side == "A"
                         else await direct_first(graph))
                    out[side].append(r["first_delta"])
            print(f"round {i + 1}: A {kit.median(out['A'][-args.n:]):.1f} ms, "
                  f"D {kit.median(out['D'][-args.n:]):.1f} ms", flush=True)
        await watcher.close()
        return out


def report(args, facts, started, res) -> str:
    a, d = res["A"], res["D"]
    ma, md = kit.median(a), kit.median(d)
    lines = [f"# Time to first token ({started:%Y-%m-%d %H:%M} UTC)", "",
             "Machine: " + "; ".join(f"{k}: {v}" for k, v in facts.items()), "",
             f"{args.rounds} rounds × {args.n} runs per side, alternating; LLM server at 30 tokens/s ({MODEL}).", "",
             "| side | median | p90 | min | max |", "|---|---|---|---|---|"]
    for name, v in (("A: POST → first message.delta on the WebSocket", a), ("D: astream → first text chunk", d)):
        lines.append(f"| {name} | {kit.median(v):.1f} ms | {kit.percentile(v, 90):.1f} ms | {min(v):.1f} ms "
                     f"| {max(v):.1f} ms |")
    verdict = "met" if ma <= md + TARGET_MS else "NOT met"
    lines += ["", f"A − D = {ma - md:.1f} ms (A ÷ D = {ma / md:.2f}); target A ≤ D + {TARGET_MS:g} ms: {verdict}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--n", type=int, default=10, help="runs per side per round")
    p.add_argument("--output", type=Path, default=kit.ROOT / "bench" / "out" / "first-token.md")
    args = p.parse_args()
    kit.stop_on_signals()
    tmp = Path(tempfile.mkdtemp(prefix="agentstead-bench-ttft-"))
    facts = kit.machine_facts(("langgraph", "langchain-openai"), state_dir=tmp)
    facts["agentstead source"] = kit.source_description()
    started = dt.datetime.now(dt.timezone.utc)
    server = llm = None
    try:
        llm = LLMProc([MODEL], tmp / "llm.log", 30.0)
        key = tmp / "llm_key"
        key.write_text(API_KEY)
        providers = [{"name": "slow", "base_url": llm.url("slow"), "models": [MODEL], "api_key_file": str(key)}]
        port = kit.free_port()
        env = kit.server_env(tmp, port, AGENTSTEAD_LLM_PROVIDERS=json.dumps(providers),
                             AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000")
        server = kit.Server("agentstead", [sys.executable, str(HERE.parent / "ws" / "server.py")], env, port,
                            tmp / "server.log")
        server.start()
        server.wait_ready()
        admin = sign_in(server.base, env, "bench-ttft@example.org")
        res = asyncio.run(bench(args, server.base, admin.api_token, llm))
        text = report(args, facts, started, res)
        kit.write_report(args.output, text)
        return 0
    except (RuntimeError, OSError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
        print(f"runs/first_token.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        kit.clean_up(tmp, False, server, llm)


if __name__ == "__main__":
    sys.exit(main())
