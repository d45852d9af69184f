#!/usr/bin/env python3
"""50 concurrent chats at 30 tokens/s, as a client sees them: the gap between tokens and the
server's CPU per token (issue 22, "The stream against Open WebUI").

Every side is a real server driven over loopback as a browser would, pointed at the same stub
model (bench/runs/llm.py, "slow": --tps tokens/s, model tok-N answers N tokens):
- Agentstead (`agentstead serve`): per chat, a thread (POST /api/threads), a WebSocket on /ws
  subscribed to threads/{id}, then POST /api/threads/{id}/messages; the chat's tokens are the
  words of its `message.delta` events. Sides: the working tree ("A"), and any
  `--against [NAME=]REV[:VAR=V,…]` (that commit's src/, from `git archive`, on the same venv,
  with settings changed), each with its own server; `--variant NAME:VAR=V,…` adds a server of
  the working tree with settings changed.
- Open WebUI (`--openwebui`, bench/openwebui/run.py): its chat path (what its UI does:
  POST /api/chat/completions with a chat, a message id and a socket.io session; the tokens
  arrive as socket.io events) and its OpenAI proxy (POST /openai/chat/completions, SSE).

Measured per side and round, with all 50 chats posted at once: the client-observed gap between
consecutive token-carrying messages of a chat (pooled over chats: p50, p99, max), tokens
received, wall time, and the server's CPU (utime + stime from /proc, every thread and child
process) divided by the tokens. Rounds alternate the sides' order; the report gives each side's
figures and its ratio to the first side, per round and over all rounds, with the load average.

Usage: .venv/bin/python bench/runs/concurrent_chats.py [--rounds 3] [--n 50] [--tokens 300] [--tps 30]
          [--against REV …] [--variant NAME:VAR=V,…] [--openwebui] [--output bench/out/concurrent.md]
About 15 s per side and round.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ws"))
sys.path.insert(0, str(HERE.parent / "auth"))
sys.path.insert(0, str(HERE))

import benchkit as kit  # noqa: E402
from signin import sign_in  # noqa: E402
from run import API_KEY, LLMProc  # noqa: E402

GAP_TARGET_MS = 50.0
EDGE = 10          # gaps at a chat's start and end, counted apart (summary: where the slowest 1 % fall)


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its descendants alive now (Open WebUI may fork)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += kit.proc_cpu_seconds(p)
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(c) for c in children]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


@dataclasses.dataclass
class Chat:
    """One chat as its client saw it: the receive time and token count of each message."""
    times: list[float] = dataclasses.field(default_factory=list)
    tokens: int = 0
    done: asyncio.Future | None = None
    status: str = ""

    def token(self, now: float, n: int) -> None:
        if n:
            self.times.append(now)
            self.tokens += n

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:])]


def summary(chats: list[Chat], cpu: float, wall: float, expected: int, failed: list[str] = ()) -> dict:
    """A round's figures; `failed`: why chats failed (their tokens still count, the report
    gives their number)."""
    gaps = [g for c in chats for g in c.gaps()]
    tokens = sum(c.tokens for c in chats)
    # Where the slowest 1 % of gaps fall in their chat: among the first EDGE gaps (the 50 runs
    # starting), the last EDGE (runs ending while others still stream) or in between.
    placed = sorted(((g, i, len(c.times) - 1) for c in chats for i, g in enumerate(c.gaps())), reverse=True)
    top = placed[:max(1, len(placed) // 100)] if placed else []
    edges = {"start": sum(1 for _, i, n in top if i < EDGE), "end": sum(1 for _, i, n in top if i >= n - EDGE)}
    middle = [g for c in chats for g in c.gaps()[EDGE:-EDGE]]
    return {"gap_p50": kit.percentile(gaps, 50) * 1000, "gap_p99": kit.percentile(gaps, 99) * 1000,
            "gap_p99_mid": kit.percentile(middle, 99) * 1000 if middle else float("nan"),
            "top_start": edges["start"], "top_end": edges["end"], "top": len(top),
            "gap_max": max(gaps, default=float("nan")) * 1000, "messages": sum(len(c.times) for c in chats),
            "tokens": tokens, "short": sum(1 for c in chats if c.tokens != expected),
            "cpu_s": cpu, "cpu_us_per_token": cpu / tokens * 1e6 if tokens else float("nan"), "wall": wall,
            "load": os.getloadavg()[0], "failed": len(failed), "why": sorted(set(failed))[:3]}


# ---------------------------------------------------------------- Agentstead

class Agentstead:
    """`agentstead serve` from the working tree or from `src` of another commit."""

    def __init__(self, name: str, tmp: Path, llm: LLMProc, model: str, src: Path | None, extra_env: dict):
        self.name, self.model = name, model
        state = tmp / name.replace(":", "-")
        state.mkdir(parents=True)
        key = state / "llm_key"
        key.write_text(API_KEY)
        providers = [{"name": "slow", "base_url": llm.url("slow"), "models": [model], "api_key_file": str(key)}]
        port = kit.free_port()
        env = kit.server_env(state, port, AGENTSTEAD_LLM_PROVIDERS=json.dumps(providers),
                             AGENTSTEAD_RUNS_MAX_CONCURRENT="64", AGENTSTEAD_RUNS_MAX_PER_USER="64",
                             AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000", **extra_env)
        if src is not None:
            env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
        self.env = env
        # BENCH_VARIANTS (an ablation of bench/ws/server.py, e.g. db-synchronous-normal): that wrapper
        # of `agentstead serve`; otherwise `agentstead serve` itself.
        cmd = [sys.executable, str(HERE.parent / "ws" / "server.py")] if env.get("BENCH_VARIANTS") else \
            [sys.executable, "-m", "agentstead", "serve"]
        self.server = kit.Server(name, cmd, env, port, state / "server.log")

    def start(self) -> None:
        self.server.start()
        self.server.wait_ready(60)
        self.token = sign_in(self.server.base, self.env, f"bench-{self.name.replace(':', '-')}@example.org").api_token

    def stop(self) -> None:
        self.server.stop()

    async def setup(self, http: aiohttp.ClientSession) -> None:
        async with http.post(self.server.base + "/api/agents", headers=self._auth,
                             json={"name": "conc", "provider": "slow", "model": self.model}) as r:
            if r.status != 201:
                raise RuntimeError(f"{self.name}: create agent {r.status}: {await r.text()}")
            self.agent = (await r.json())["id"]

    @property
    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    async def _chat(self, http, chat: Chat, start: asyncio.Event, opened: asyncio.Queue) -> None:
        base = self.server.base
        async with http.post(base + "/api/threads", headers=self._auth, json={"agent_id": self.agent}) as r:
            thread = (await r.json())["id"]
        async with http.ws_connect(base + "/ws", headers=self._auth, heartbeat=None, max_msg_size=0) as ws:
            await ws.send_json({"op": "subscribe", "topic": f"threads/{thread}", "id": "s"})
            msg = await ws.receive_json(timeout=10)
            if msg.get("op") != "subscribed":
                raise RuntimeError(f"subscribe: {msg}")
            opened.put_nowait(1)
            await start.wait()
            async with http.post(f"{base}/api/threads/{thread}/messages", headers=self._auth,
                                 json={"content": "hello"}) as r:
                if r.status != 202:
                    raise RuntimeError(f"POST message {r.status}: {await r.text()}")
            async for m in ws:
                now = time.perf_counter()
                data = json.loads(m.data)
                if data.get("op") != "event":
                    continue
                kind = data["type"]
                if kind == "message.delta":
                    chat.token(now, len(data["data"]["text"].split()))   # tokens are " wN" words
                elif kind in ("run.succeeded", "run.failed", "run.cancelled"):
                    chat.status = kind
                    return

    async def round(self, n: int, expected: int) -> dict:
        timeout = aiohttp.ClientTimeout(total=180)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as http:
            if not hasattr(self, "agent"):
                await self.setup(http)
            chats = [Chat() for _ in range(n)]
            start, opened = asyncio.Event(), asyncio.Queue()
            tasks = [asyncio.create_task(self._chat(http, c, start, opened)) for c in chats]
            for _ in range(n):
                await asyncio.wait_for(opened.get(), 30)
            cpu0, t0 = tree_cpu_seconds(self.server.proc.pid), time.perf_counter()
            start.set()
            for result in await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 180):
                if isinstance(result, Exception):
                    print(f"{self.name}: a chat failed: {type(result).__name__}: {result}", flush=True)
            cpu1, t1 = tree_cpu_seconds(self.server.proc.pid), time.perf_counter()
        return summary(chats, cpu1 - cpu0, t1 - t0, expected,
                       [c.status or "no end" for c in chats if c.status != "run.succeeded"])


def extract_src(rev: str, tmp: Path) -> Path:
    """`src/` of commit `rev` (git archive), for a server of that commit on this venv."""
    dest = tmp / f"src-{rev}"
    if dest.exists():                                    # several sides of one commit
        return dest / "src"
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(kit.ROOT), "archive", rev, "src"], capture_output=True, check=True,
                             timeout=60).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


# ---------------------------------------------------------------- the benchmark

async def bench(args, sides: dict) -> dict:
    results: dict[str, list[dict]] = {name: [] for name in sides}
    names = list(sides)
    for name, side in sides.items():                        # warm-up (discarded): a small round each
        await side.round(min(args.n, 5), args.tokens)
    for i in range(args.rounds):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            await asyncio.sleep(1.0)                          # let the previous side's last writes settle
            x = await sides[name].round(args.n, args.tokens)
            results[name].append(x)
            print(f"round {i + 1} {name}: gap p50 {x['gap_p50']:.1f} ms p99 {x['gap_p99']:.1f} ms max "
                  f"{x['gap_max']:.0f} ms; p99 without each chat's first/last {EDGE} gaps {x['gap_p99_mid']:.1f} ms; "
                  f"slowest 1 %: {x['top_start']} at starts, {x['top_end']} at ends of {x['top']}; {x['tokens']} tokens in {x['messages']} messages; CPU {x['cpu_s']:.2f} s "
                  f"({x['cpu_us_per_token']:.0f} µs/token); wall {x['wall']:.1f} s; load {x['load']:.2f}"
                  + (f"; {x['failed']} chats FAILED: {x['why']}" if x["failed"] else ""),
                  flush=True)
    if args.py_spy:                                          # one more round per Agentstead side, profiled
        for name, side in sides.items():
            if name != "A":                                   # the working tree's server only
                continue
            raw = args.output.parent / f"concurrent-profile-{name}.txt"
            raw.parent.mkdir(parents=True, exist_ok=True)
            spy = kit.PySpy(args.py_spy, side.server.proc.pid, raw, args.tokens / args.tps).start()
            await side.round(args.n, args.tokens)
            await asyncio.to_thread(spy.wait)
            dest = args.output.parent / f"concurrent-profile-{name}.md"
            dest.write_text(f"# py-spy: {name} during {args.n} chats\n\n" + kit.summarize_profile(raw, top=40))
            print(f"profile: {dest}", flush=True)
    return results


def report(args, facts, started, results: dict) -> str:
    base = next(iter(results))
    lines = [f"# 50 concurrent chats, client-observed ({started:%Y-%m-%d %H:%M} UTC)", "",
             "Machine: " + "; ".join(f"{k}: {v}" for k, v in facts.items()), "",
             f"{args.rounds} rounds, sides alternating; {args.n} chats at once, {args.tps:g} tokens/s × "
             f"{args.tokens} tokens each (bench/runs/llm.py). Gap: between consecutive token-carrying messages "
             f"of a chat, pooled (gap p99 mid: without each chat's first and last {EDGE} gaps). CPU: the server's utime + stime (all threads and children) ÷ tokens received.",
             "", "| side | gap p50 | gap p99 | gap p99 mid | slowest 1 % at starts / ends | gap max | messages / tokens "
             f"| CPU per round | CPU per token | ÷ {base} (gap p99 / CPU) | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    b = results[base]
    for name, rows in results.items():
        for i, x in enumerate(rows):
            ratio = f"{x['gap_p99'] / b[i]['gap_p99']:.2f} / {x['cpu_s'] / b[i]['cpu_s']:.2f}"
            lines.append(f"| {name} r{i + 1} | {x['gap_p50']:.1f} ms | {x['gap_p99']:.1f} ms | {x['gap_p99_mid']:.1f} ms "
                         f"| {x['top_start']} / {x['top_end']} of {x['top']} | {x['gap_max']:.0f} ms "
                         f"| {x['messages']} / {x['tokens']} | {x['cpu_s']:.2f} s | {x['cpu_us_per_token']:.0f} µs "
                         f"| {ratio} | {x['load']:.2f} |" + (f" {x['failed']} chats failed: {x['why']}" if x["failed"] else ""))
    lines += ["", "Medians over rounds:", "", "| side | gap p99 | CPU per token | ÷ " + base + " | verdict (gap p99 ≤ "
              f"{GAP_TARGET_MS:g} ms) |", "|---|---|---|---|---|"]
    mb = {k: kit.median([x[k] for x in b]) for k in ("gap_p99", "cpu_us_per_token")}
    for name, rows in results.items():
        m = {k: kit.median([x[k] for x in rows]) for k in ("gap_p99", "cpu_us_per_token")}
        lines.append(f"| {name} | {m['gap_p99']:.1f} ms | {m['cpu_us_per_token']:.0f} µs | "
                     f"{m['gap_p99'] / mb['gap_p99']:.2f} / {m['cpu_us_per_token'] / mb['cpu_us_per_token']:.2f} | "
                     f"{'met' if m['gap_p99'] <= GAP_TARGET_MS else 'NOT met'} |")
    return "\n".join(lines) + "\n"


def parse_against(text: str) -> tuple[str, str, dict]:
    """`[NAME=]REV[:VAR=V,…]` -> (side name, commit, environment)."""
    head, _, assignments = text.partition(":")
    name, _, rev = head.rpartition("=")
    return name or f"A@{rev}", rev, assignments_env(assignments)


def assignments_env(text: str) -> dict:
    """`A=1,B=x,y` -> {"A": "1", "B": "x,y"}: a piece without `=` belongs to the value before."""
    env: dict[str, str] = {}
    last = None
    for piece in text.split(","):
        if "=" in piece:
            last, _, value = piece.partition("=")
            env[last] = value
        elif last is not None:
            env[last] += "," + piece
    return env


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, assignments = text.partition(":")
    return name, assignments_env(assignments)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--n", type=int, default=50, help="chats at once")
    p.add_argument("--tokens", type=int, default=300, help="tokens per reply")
    p.add_argument("--tps", type=float, default=30.0, help="the stub model's tokens per second")
    p.add_argument("--against", action="append", default=[], metavar="[NAME=]REV[:VAR=V,…]",
                   help="also a server of this commit (its src/), with these environment variables")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:VAR=V,…",
                   help="also a server of the working tree with these environment variables")
    p.add_argument("--no-this", action="store_true", help="leave out the working tree's own server")
    p.add_argument("--openwebui", action="store_true", help="also Open WebUI's chat path and proxy")
    p.add_argument("--output", type=Path, default=kit.ROOT / "bench" / "out" / "concurrent.md")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--py-spy", type=Path, default=None, metavar="EXE",
                   help="after the rounds, one more of the working tree's server profiled with this py-spy "
                        "(bench/out/concurrent-profile-*.md)")
    args = p.parse_args()
    kit.stop_on_signals()
    kit.raise_nofile()
    tmp = Path(tempfile.mkdtemp(prefix="agentstead-bench-conc-"))
    facts = kit.machine_facts(("langgraph", "langchain-core", "langchain-openai", "openai"), state_dir=tmp)
    facts["agentstead source"] = kit.source_description()
    started = dt.datetime.now(dt.timezone.utc)
    model = f"tok-{args.tokens}"
    llm, sides = None, {}
    try:
        llm = LLMProc([model], tmp / "llm.log", args.tps)
        for spec in args.against:
            name, rev, env = parse_against(spec)
            sides[name] = Agentstead(name, tmp, llm, model, extract_src(rev, tmp), env)
        if not args.no_this:
            sides["A"] = Agentstead("A", tmp, llm, model, None, {})
        for v in args.variant:
            name, env = parse_variant(v)
            sides[f"A:{name}"] = Agentstead(f"A:{name}", tmp, llm, model, None, env)
        if args.openwebui:
            import importlib.util                     # bench/openwebui/run.py ("run" is bench/runs/run.py here)
            spec = importlib.util.spec_from_file_location("openwebui_run", HERE.parent / "openwebui" / "run.py")
            owui_mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(owui_mod)
            owui = owui_mod.OpenWebUI(tmp / "openwebui", llm.url("slow"), API_KEY, model, users=args.n)
            sides["O-chat"], sides["O-proxy"] = owui.chat_side(), owui.proxy_side()
        for side in sides.values():
            side.start()
        try:
            import uvloop
            results = uvloop.run(bench(args, sides))
        except ImportError:
            results = asyncio.run(bench(args, sides))
        kit.write_report(args.output, report(args, facts, started, results))
        return 0
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
        print(f"runs/concurrent_chats.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        for side in sides.values():
            try:
                side.stop()
            except Exception as exc:  # noqa: BLE001 — stop every side
                print(f"stopping {side}: {exc}", file=sys.stderr)
        kit.clean_up(tmp, args.keep, llm)


if __name__ == "__main__":
    sys.exit(main())
