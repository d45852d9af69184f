#!/usr/bin/env python3
"""Agentstead's LangGraph API (/lg) against LangGraph Server (`langgraph dev`, in memory)
running the same graph, driven by the same langgraph-sdk calls (issue 20: Agentstead must
stay ahead on fixed cost per run and per token).

- LangGraph Server runs in its own venv (bench/out/.venv-langgraph-server), made from the
  hashed lock bench/compat/langgraph-server.txt (langgraph-cli[inmem], with LangGraph and
  langchain-openai at requirements.txt's versions); the graph module is written from
  Agentstead's own runner/graph.py (bench/compat/lg_graph.py says how). `langgraph dev
  --no-browser --no-reload --allow-blocking` (one process; blockbuster's checks off, as in
  a deployed server) with its telemetry off: no CLI analytics (LANGGRAPH_CLI_NO_ANALYTICS),
  no PyPI version check (LANGGRAPH_NO_VERSION_CHECK), no LangSmith tracing, no license key
  (so no metadata loop). Its sockets are sampled with `ss` while it runs: any peer that is
  not loopback is reported (and `--strace` traces every connect() of its process tree).
- `agentstead serve` (as bench/compat/run.py starts it), the agents named like the graphs.
- One OpenAI-compatible stub (bench/runs/llm.py, as fast as it can) for both; model
  `tok-N` answers N tokens.

A run, the same on both (langgraph_sdk.get_client, assistant id = the graph's/agent's
name): `threads.create()` then one of `runs.stream(..., stream_mode="messages-tuple")`,
`runs.stream(..., stream_mode="values")`, `runs.wait(...)`, read to its end. Per round, the
servers in alternating order, each call `--runs` runs on tok-1 (the fixed cost of a run)
then on tok-N (per token: (tok-N - tok-1) / (N - 1)). Wall ms per run at the client, and
server CPU ms per run: user+system of the server's process and its children
(/proc/<pid>/stat). Medians of the rounds; ratios Agentstead / LangGraph Server. Also
LangGraph's wall less its runs' queue wait (its log's run_queue_ms: `langgraph dev` polls
its queue every 0.5 s), and each server's idle CPU after the runs.

Usage: .venv/bin/python bench/compat/langgraph_server.py [--rounds 5] [--runs 10] [--tokens 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import lg_graph  # noqa: E402
from langgraph_sdk import get_client  # noqa: E402

from agentstead.settings import Settings  # noqa: E402
from tests.support.procs import VENV_BIN, Server, clean_env, free_port, wait_http  # noqa: E402

LOCK = ROOT / "bench" / "compat" / "langgraph-server.txt"
VENV = ROOT / "bench" / "out" / ".venv-langgraph-server"
API_KEY = "sk-bench"
CALLS = ("stream-messages", "stream-values", "wait")
QUIET = {   # what langgraph-cli / langgraph-api / langsmith read to stay at home
    "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false", "LANGSMITH_TRACING_V2": "false", "LANGCHAIN_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false", "LANGSMITH_OTEL_ENABLED": "false",
    "LOG_JSON": "true", "LOG_COLOR": "false"}   # its log as JSON lines: queue_waits reads them
LOUD = ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGGRAPH_CLOUD_LICENSE_KEY", "LANGSMITH_CONTROL_PLANE_API_KEY",
        "LANGGRAPH_API_KEY", "OPENAI_API_KEY", "OTEL_EXPORTER_OTLP_ENDPOINT")


def ensure_venv() -> Path:
    """The LangGraph Server venv, (re)made when the lock changed."""
    stamp = VENV / "lock.sha256"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return VENV / "bin"
    shutil.rmtree(VENV, ignore_errors=True)
    venv.EnvBuilder(with_pip=True).create(VENV)
    subprocess.run([VENV / "bin" / "pip", "install", "-q", "--require-hashes", "--no-deps", "-r", LOCK], check=True)
    stamp.write_text(digest)
    return VENV / "bin"


def tree_pids(root: int) -> list[int]:
    """`root` and its descendants now."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def cpu_ms(root: int) -> float:
    """User+system CPU of a process tree: the live processes' own and their reaped children's."""
    total = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def foreign_peers(root: int) -> set[str]:
    """Remote addresses of the tree's TCP/UDP sockets that are not loopback."""
    pids = set(tree_pids(root))
    out = subprocess.run(["ss", "-tunapH"], capture_output=True, text=True).stdout
    peers = set()
    for line in out.splitlines():
        if not any(f"pid={p}," in line for p in pids):
            continue
        peer = line.split()[5]
        host = peer.rsplit(":", 1)[0].strip("[]")
        if host not in ("*", "0.0.0.0", "::") and not host.startswith(("127.", "::1", "::ffff:127.")):
            peers.add(peer)
    return peers


class LangGraphServer:
    """`langgraph dev` on a free loopback port, serving the graphs written into `directory`."""

    def __init__(self, bin_dir: Path, directory: Path, strace: bool):
        self.port, self.directory = free_port(), directory
        self.read_to, self.waits = 0, []
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in clean_env(**QUIET).items() if k not in LOUD}
        cmd = [str(bin_dir / "langgraph"), "dev", "--no-browser", "--no-reload", "--allow-blocking",
               "--host", "127.0.0.1", "--port", str(self.port), "--config", "langgraph.json"]
        self.trace = directory / "connect.trace"
        if strace:
            cmd = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(self.trace), *cmd]
        self.log = open(directory / "langgraph-dev.log", "ab")
        # its own process group: stop() ends strace's child too (strace detaches on SIGTERM)
        self.proc = subprocess.Popen(cmd, cwd=directory, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_http(self.url + "/ok", 120, self.proc, detail=lambda: (directory / "langgraph-dev.log").read_text())

    def queue_ms(self) -> float:
        """The queue time (run_queue_ms) of the runs started since the last call, summed: the
        in-memory runtime looks for new runs every 0.5 s when idle (langgraph_runtime_inmem
        ops.Runs.next: asyncio.sleep(0.5)), so a run waits there up to ~1 s before it starts."""
        with open(self.directory / "langgraph-dev.log", "rb") as log:
            log.seek(self.read_to)
            lines = log.read().splitlines()
            self.read_to = log.tell()
        total = 0.0
        for line in lines:
            if b'"Starting background run"' in line:
                wait = float(json.loads(line)["run_queue_ms"])
                self.waits.append(wait)
                total += wait
        return total

    def connects(self) -> tuple[int, list[str]]:
        """strace's connect() calls to internet addresses: how many, and those not to loopback."""
        if not self.trace.exists():
            return 0, []
        lines = [ln for ln in self.trace.read_text().splitlines() if "AF_INET" in ln]
        return len(lines), [ln for ln in lines if '"127.' not in ln and '"::1"' not in ln]

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(15)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):   # strace gone, its child perhaps not yet
            time.sleep(0.5)
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def user(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def one_run(client, assistant: str, call: str) -> str:
    """threads.create and one run with `call`, read to its end; the reply's text."""
    thread = await client.threads.create()
    tid = thread["thread_id"]
    if call == "wait":
        return (await client.runs.wait(tid, assistant, input=user("hello")))["messages"][-1]["content"]
    mode = "messages-tuple" if call == "stream-messages" else "values"
    text, last = "", None
    async for part in client.runs.stream(tid, assistant, input=user("hello"), stream_mode=mode):
        if part.event == "messages":
            text += part.data[0].get("content") or ""
        elif part.event == "values":
            last = part.data
        elif part.event == "error":
            raise RuntimeError(f"{assistant}: {part.data}")
    return text if mode == "messages-tuple" else last["messages"][-1]["content"]


async def measure(sides: dict, pids: dict, queued: dict, models: list[str], rounds: int, runs: int, watch) -> dict:
    """Per side and call: medians over rounds of wall, CPU and queue ms per run, on tok-1 and
    tok-N (`queued[side]()`: the queue time of the runs since its last call)."""
    keys = ("tok1_ms", "tokN_ms", "tok1_cpu", "tokN_cpu", "tok1_queue", "tokN_queue")
    out = {s: {c: {k: [] for k in keys} for c in CALLS} for s in sides}
    for r in range(rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for side in order:
            for call in CALLS:
                for key, model in (("tok1", models[0]), ("tokN", models[1])):
                    queued[side]()
                    c0, t0 = cpu_ms(pids[side]), time.perf_counter()
                    for _ in range(runs):
                        await one_run(sides[side], model, call)
                    out[side][call][f"{key}_ms"].append((time.perf_counter() - t0) * 1000 / runs)
                    out[side][call][f"{key}_cpu"].append((cpu_ms(pids[side]) - c0) / runs)
                    out[side][call][f"{key}_queue"].append(queued[side]() / runs)
        watch()
        print(f"round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return {s: {c: {k: statistics.median(v) for k, v in d.items()} for c, d in calls.items()}
            for s, calls in out.items()}


def report(res: dict, tokens: int) -> str:
    """Per call: both servers, LangGraph Server less its queue wait, and the ratios."""
    lines = ["| call | server | wall ms/run | CPU ms/run | wall µs/token | CPU µs/token |", "|---|---|---:|---:|---:|---:|"]

    def figures(d, less_queue=False):
        q1, qn = (d["tok1_queue"], d["tokN_queue"]) if less_queue else (0.0, 0.0)
        return [d["tok1_ms"] - q1, d["tok1_cpu"], ((d["tokN_ms"] - qn) - (d["tok1_ms"] - q1)) * 1000 / (tokens - 1),
                (d["tokN_cpu"] - d["tok1_cpu"]) * 1000 / (tokens - 1)]

    def row(call, name, cells, bold=False):
        fmt = "**{:.2f}**" if bold else "{:.2f}"
        return f"| {call} | {name} | " + " | ".join("n/a" if c is None else fmt.format(c) for c in cells) + " |"
    for call in CALLS:
        a, lg, lq = (figures(res["agentstead"][call]), figures(res["langgraph"][call]),
                     figures(res["langgraph"][call], less_queue=True))
        lines += [row(call, "Agentstead", a), row(call, "LangGraph Server", lg),
                  row(call, "ratio A/L", [x / y if y > 0 else None for x, y in zip(a, lg)], bold=True),
                  row(call, "LangGraph Server less its queue wait", lq[:1] + [None] + lq[2:3] + [None]),
                  row(call, "ratio A/(L less queue wait)", [a[0] / lq[0], None, a[2] / lq[2] if lq[2] > 0 else None,
                                                          None], bold=True)]
    return "\n".join(lines)


async def check_same(sides: dict, models: list[str], tokens: int) -> None:
    """Both answer every call with the same reply (and warm up)."""
    want = {models[0]: "w0", models[1]: " ".join(f"w{i}" for i in range(tokens))}
    for side, client in sides.items():
        for call in CALLS:
            for model in models:
                for _ in range(3):
                    got = await one_run(client, model, call)
                    assert got == want[model], f"{side} {call} {model}: {got[:80]!r}"


def start_agentstead(tmp: Path, llm_url: str, models: list[str]) -> tuple[Server, str]:
    (tmp / "llm-key").write_text(API_KEY)
    providers = json.dumps([{"name": "local", "base_url": llm_url, "api_key_file": str(tmp / "llm-key"),
                             "models": models, "default_model": models[0]}])
    server = Server(tmp / "state", AGENTSTEAD_LLM_PROVIDERS=providers,
                    AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000").start()
    env = clean_env(AGENTSTEAD_STATE_DIR=str(server.state_dir))
    agentstead = str(VENV_BIN / "agentstead")
    subprocess.run([agentstead, "admin", "create-user", "--email", "b@example.org"], env=env, check=True,
                   capture_output=True)
    token = subprocess.run([agentstead, "admin", "create-token", "--email", "b@example.org"], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    return server, token


async def drive(args, tmp: Path, llm_url: str, models: list[str], bin_dir: Path) -> tuple[dict, set, tuple, list]:
    defaults = Settings()
    lg_graph.write(tmp / "lg", models=models, base_url=llm_url, api_key=API_KEY, temperature=0.7,
                   context_tokens=defaults.llm_context_tokens, max_retries=defaults.llm_max_retries,
                   timeout=defaults.llm_timeout_seconds)
    lgs = LangGraphServer(bin_dir, tmp / "lg", args.strace)
    server = None
    try:
        server, token = start_agentstead(tmp, llm_url, models)
        a = get_client(url=f"{server.url}/lg", api_key=token)
        for m in models:   # the agents, named as the graphs are
            resp = await a.http.client.post(f"{server.url}/api/agents", json={"name": m, "model": m},
                                            headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 201, resp.text
        sides = {"agentstead": a, "langgraph": get_client(url=lgs.url, api_key=None)}
        pids = {"agentstead": server.proc.pid, "langgraph": lgs.proc.pid}
        foreign: set[str] = set()
        await check_same(sides, models, args.tokens)
        queued = {"agentstead": lambda: 0.0, "langgraph": lgs.queue_ms}
        res = await measure(sides, pids, queued, models, args.rounds, args.runs,
                            lambda: foreign.update(foreign_peers(lgs.proc.pid)))
        c0 = {side: cpu_ms(pid) for side, pid in pids.items()}
        await asyncio.sleep(args.idle)   # what each costs doing nothing (timers, LangGraph's queue poll and flush)
        res["idle_ms_per_s"] = {side: (cpu_ms(pid) - c0[side]) / args.idle for side, pid in pids.items()}
        return res, foreign, lgs.connects(), lgs.waits
    finally:
        lgs.stop()
        if server is not None:
            server.stop()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measured at the end")
    p.add_argument("--strace", action="store_true", help="trace LangGraph Server's connect() calls (slows it)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, graph module)")
    args = p.parse_args()
    bin_dir = ensure_venv()
    models = ["tok-1", f"tok-{args.tokens}"]
    llm = subprocess.Popen([sys.executable, str(ROOT / "bench" / "runs" / "llm.py"), "--api-key", API_KEY,
                            "--models", ",".join(models)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="lgs-bench-"))
    try:
        llm_url = f"http://127.0.0.1:{json.loads(llm.stdout.readline())['fast']}/v1"
        started, load0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
        res, foreign, connects, waits = asyncio.run(drive(args, tmp, llm_url, models, bin_dir))
    finally:
        llm.stdin.close()
        llm.wait(10)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"started {started}; commit {commit.strip()}; {platform.processor() or platform.machine()}, nproc "
          f"{os.cpu_count()}; load at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, at end "
          f"{os.getloadavg()[0]:.2f}; rounds {args.rounds} × runs {args.runs}, tok-{args.tokens}\n")
    idle = res.pop("idle_ms_per_s")
    print(report(res, args.tokens))
    print(f"\nIdle CPU after the runs (ms per s, over {args.idle:.0f} s): Agentstead {idle['agentstead']:.2f}, "
          f"LangGraph Server {idle['langgraph']:.2f}")
    if waits:
        print(f"\nLangGraph Server's queue wait per run (its log's run_queue_ms): median "
              f"{statistics.median(waits):.1f} ms, min {min(waits):.1f}, max {max(waits):.1f} over {len(waits)} runs")
    print(f"\nLangGraph Server's non-loopback peers (ss, sampled every round): {sorted(foreign) or 'none'}")
    if args.strace:
        print(f"its connect() calls to internet addresses (strace): {connects[0]}; not to loopback: "
              f"{connects[1] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
