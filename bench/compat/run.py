#!/usr/bin/env python3
"""What the protocol adapters cost per run and per token, against Agentstead's own API in
the same run (issue 20: target ≤ 1.1×).

One `agentstead serve` (its access log to a file, rate limit out of the way) and the
OpenAI-compatible test server in its own process (bench/runs/llm.py, streaming as fast as
it can; model `tok-N` answers N tokens). One user turn, as each client does it, on a new
conversation each time, streamed and read to its end over plain aiohttp (the server's cost,
not an SDK's):
- api: POST /api/threads, POST /api/threads/{id}/messages, GET /api/runs/{id}/stream (SSE
  until run.succeeded);
- v1:  POST /v1/chat/completions {stream: true} until `data: [DONE]`;
- lg:  POST /lg/runs/stream (stateless: a new thread), stream_mode messages-tuple, to its end.
Per round, the modes in alternating order, each `--runs` sequential turns on tok-1 (the fixed
cost of a run) then on tok-N (per token: (tok-N − tok-1) / (N − 1)). Medians of the per-round
figures: client wall ms per turn and the server process's CPU ms per turn (/proc/<pid>/stat).

Usage: .venv/bin/python bench/compat/run.py [--rounds 5] [--runs 20] [--tokens 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.procs import VENV_BIN, Server, clean_env  # noqa: E402

API_KEY = "sk-bench"


def cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


async def read_sse(resp: aiohttp.ClientResponse, done) -> None:
    async for line in resp.content:
        if done(line):
            return


async def api_turn(http, base, h, agent) -> None:
    async with http.post(f"{base}/api/threads", json={"agent_id": agent["id"], "title": "b"}, headers=h) as r:
        thread = await r.json()
    async with http.post(f"{base}/api/threads/{thread['id']}/messages", json={"content": "hello"}, headers=h) as r:
        run = await r.json()
    async with http.get(f"{base}/api/runs/{run['id']}/stream", headers=h) as r:
        await read_sse(r, lambda line: line.startswith(b"event: run.succeeded"))


async def v1_turn(http, base, h, agent) -> None:
    body = {"model": agent["id"], "stream": True, "messages": [{"role": "user", "content": "hello"}]}
    async with http.post(f"{base}/v1/chat/completions", json=body, headers=h) as r:
        assert r.status == 200, await r.text()
        await read_sse(r, lambda line: line.startswith(b"data: [DONE]"))


async def lg_turn(http, base, h, agent) -> None:
    body = {"assistant_id": agent["id"], "stream_mode": "messages-tuple",
            "input": {"messages": [{"role": "user", "content": "hello"}]}}
    async with http.post(f"{base}/lg/runs/stream", json=body, headers=h) as r:
        assert r.status == 200, await r.text()
        await read_sse(r, lambda line: False)   # to the end of the stream


TURNS = {"api": api_turn, "v1": v1_turn, "lg": lg_turn}


async def measure(http, base, h, agents, server_pid, rounds, runs, tokens) -> dict:
    out = {m: {"tok1_ms": [], "tokN_ms": [], "tok1_cpu": [], "tokN_cpu": []} for m in TURNS}
    for m in TURNS:   # warm-up: a few turns each
        for _ in range(3):
            await TURNS[m](http, base, h, agents["tok-1"])
    for r in range(rounds):
        order = list(TURNS) if r % 2 == 0 else list(TURNS)[::-1]
        for m in order:
            for key, agent in (("tok1", agents["tok-1"]), ("tokN", agents[f"tok-{tokens}"])):
                c0, t0 = cpu_ms(server_pid), time.perf_counter()
                for _ in range(runs):
                    await TURNS[m](http, base, h, agent)
                out[m][f"{key}_ms"].append((time.perf_counter() - t0) * 1000 / runs)
                out[m][f"{key}_cpu"].append((cpu_ms(server_pid) - c0) / runs)
    return {m: {k: statistics.median(v) for k, v in d.items()} for m, d in out.items()}


def report(res: dict, tokens: int) -> str:
    lines = ["| layer | wall ms/run (tok-1) | ratio | server CPU ms/run | ratio | wall µs/token | ratio | "
             "server CPU µs/token | ratio |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = res["api"]

    def per_token(d, k):
        return (d[f"tokN_{k}"] - d[f"tok1_{k}"]) * 1000 / (tokens - 1)
    for m, d in res.items():
        cells = [d["tok1_ms"], d["tok1_ms"] / base["tok1_ms"], d["tok1_cpu"], d["tok1_cpu"] / base["tok1_cpu"],
                 per_token(d, "ms"), per_token(d, "ms") / per_token(base, "ms"),
                 per_token(d, "cpu"), per_token(d, "cpu") / per_token(base, "cpu")]
        lines.append(f"| {m} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    return "\n".join(lines)


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--tokens", type=int, default=300)
    args = p.parse_args()
    models = ["tok-1", f"tok-{args.tokens}"]
    llm = subprocess.Popen([sys.executable, str(ROOT / "bench" / "runs" / "llm.py"), "--api-key", API_KEY,
                            "--models", ",".join(models)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    ports = json.loads(llm.stdout.readline())
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "llm-key").write_text(API_KEY)
        providers = json.dumps([{"name": "local", "base_url": f"http://127.0.0.1:{ports['fast']}/v1",
                                 "api_key_file": str(Path(tmp) / "llm-key"), "models": models,
                                 "default_model": "tok-1"}])
        server = Server(Path(tmp) / "state", AGENTSTEAD_LLM_PROVIDERS=providers,
                        AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000").start()
        try:
            env = clean_env(AGENTSTEAD_STATE_DIR=str(server.state_dir))
            subprocess.run([str(VENV_BIN / "agentstead"), "admin", "create-user", "--email", "b@example.org"],
                           env=env, check=True, capture_output=True)
            token = subprocess.run([str(VENV_BIN / "agentstead"), "admin", "create-token", "--email",
                                    "b@example.org"], env=env, check=True, capture_output=True, text=True).stdout.strip()
            h = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession() as http:
                agents = {}
                for m in models:
                    async with http.post(f"{server.url}/api/agents", json={"name": m, "model": m}, headers=h) as r:
                        agents[m] = await r.json()
                started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                res = await measure(http, server.url, h, agents, server.proc.pid, args.rounds, args.runs, args.tokens)
        finally:
            server.stop()
            llm.stdin.close()
            llm.wait(10)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"started {started}; commit {commit.strip()}; {platform.processor() or platform.machine()}, "
          f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.2f}; rounds {args.rounds} × runs {args.runs}, "
          f"tok-{args.tokens}\n")
    print(report(res, args.tokens))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
