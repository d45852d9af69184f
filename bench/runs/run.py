#!/usr/bin/env python3
"""Runs benchmark: what Agentstead adds to a LangGraph run, per run, per token, and under load.

Processes (127.0.0.1 only; every wait has a timeout; all stopped at the end):
- bench/runs/llm.py: two OpenAI-compatible test servers (tests/support/llm_server.py) in their
  own process: "fast" streams with tokens_per_second=0 (overhead measurements), "slow" at 30
  tokens/s. Model `tok-N` answers N tokens.
- bench/ws/server.py: `agentstead serve` unchanged plus bench-only routes (here: the
  event-loop lag monitor, GET /bench/lag). Providers point at the two LLM servers. Settings
  that differ from the defaults: AGENTSTEAD_RUNS_MAX_CONCURRENT / _PER_USER = 64 (50 runs
  of one user at once; the defaults are 16 / 4), AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE=1000000.
- this script: the client (aiohttp, Bearer API token of an admin, WebSocket subscriptions) and
  the baseline, "direct": the same graph (agentstead.runner.graph.build + chat_model, i.e.
  langchain-openai ChatOpenAI, streaming) called in-process with `graph.astream(…,
  stream_mode=["messages", "updates"])` as the runner does, without checkpointer, database,
  bus or HTTP. Built once and reused, as a script would. "D0" is the same graph on a ChatOpenAI
  with langchain-openai's defaults (its per-chunk timeout on, no YieldWhileStreaming): what a
  script that does not share runner/graph.py's model settings runs.

Measured:
1. Per run and per token, tokens_per_second=0, sequential, alternating A (Agentstead) / D
   (direct) per round: A = POST /api/threads/{id}/messages → run.succeeded received on the
   WebSocket (a new thread per run, so every prompt is the same one message); D = the
   astream call. Replies of --short and --long tokens; per-token time = (long − short) ÷
   (long − short tokens), over all rounds and round by round (the verdict: the median of the
   rounds' A ÷ D, each against the baseline measured minutes apart at most). The long reply is
   1,000 tokens (~250 ms) so that it carries streamed deltas at their steady rate (one per
   50 ms); a 200-token reply ends within 0–1 of them. Timeline of A from the events' receive
   times.
2. 50 concurrent runs at 30 tokens/s (tok-300: 10 s each) — 50 threads, one WebSocket each:
   server event-loop lag (a task sleeping 10 ms, how late it wakes), message.delta tokens
   delivered per second, run durations, server CPU; the same 50 streams direct in this process
   (with its own lag monitor) as the baseline; 2 rounds, A D / D A. "database is locked" in the
   server log.
3. Storage: database file + WAL after `PRAGMA wal_checkpoint(TRUNCATE)` (from a separate
   connection, server idle) before and after the 50 runs, per table (dbstat); a 10-turn
   thread (tok-100 replies), size after every turn; rows in LangGraph's `checkpoints` and
   `writes` tables after the runs finished.

Placement of section 1 (--placement): "split" (the default) puts the LLM server, which stands
in for the provider's machine, on the last CPU, and the server, this client and the direct
baselines on the others; "shared" lets the scheduler put every process on every CPU; "app" pins
only the server, all its threads, to the first CPU (as systemd's CPUAffinity= would). Sections
2 and 3 always run shared: at 30 tokens/s the LLM server does not hog a CPU, and 50 runs need
the server's writer and this client's 50 WebSockets off the event loop's CPU. With its threads
free to run on every CPU, the server's SQLite writer thread waits for the GIL while the event
loop's thread parses a fast stream: the streamed deltas fall behind and every hand-off costs
the stream milliseconds. bench/runs/handoff.py measures the hand-off alone; bench/RESULTS.md
(Runs, Session 4) has the three placements.

Usage: .venv/bin/python bench/runs/run.py [--rounds 6] [--short 10] [--long 1000] [--n-short 20]
                                          [--n-long 5] [--concurrent 50] [--output bench/out/runs.md]
                                          [--placement split|shared]
                                          [--py-spy /tmp/prof/bin/py-spy]
About 2.3 minutes with the defaults (+ 30 s with --py-spy).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ws"))
sys.path.insert(0, str(HERE.parent / "auth"))

import benchkit as kit  # noqa: E402
from signin import sign_in  # noqa: E402
from direct import default_graph, direct_graph, direct_run  # noqa: E402

from langchain_core.messages import AIMessageChunk, HumanMessage  # noqa: E402

from agentstead.runner.compaction import QUIET  # noqa: E402


ROOT = kit.ROOT
API_KEY = "sk-bench"
TARGET_RUN_MS = 5.0
TARGET_TOKEN = 0.05
TARGET_LAG_P99_MS = 20.0
COMPACTED_AFTER = QUIET + 1.5   # seconds after runs end: their deltas are compacted by then (storage figures)
med = kit.median


# ---------------------------------------------------------------- helpers

def placement(kind: str) -> tuple[set[int], set[int]] | None:
    """(CPUs of the server, and of this client and the direct baselines; CPUs of the LLM
    server) for --placement split and app, or None for shared (the scheduler places all)."""
    cpus = sorted(os.sched_getaffinity(0))
    if kind == "shared":
        return None
    if kind == "app":       # only the server is pinned, to one CPU
        return set(cpus[:1]), set(cpus)
    if len(cpus) < 2:
        raise RuntimeError("--placement split needs at least 2 CPUs")
    return set(cpus[:-1]), {cpus[-1]}


class LLMProc:
    def __init__(self, models: list[str], log: Path, slow_tps: float):
        self.log = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "llm.py"), "--api-key", API_KEY, "--models",
                                      ",".join(models), "--slow-tps", str(slow_tps)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, cwd=ROOT,
                                     start_new_session=True)
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        if not ready:
            raise RuntimeError("LLM server did not start")
        self.ports = json.loads(self.proc.stdout.readline())

    def url(self, which: str) -> str:
        return f"http://127.0.0.1:{self.ports[which]}/v1"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


def db_stats(path: Path) -> dict:
    """Checkpoint (TRUNCATE) from a separate connection, then file sizes, per-table bytes, rows."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        tables = {}
        owner = {name: tbl for name, tbl in conn.execute("SELECT name, tbl_name FROM sqlite_master")}
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            tbl = owner.get(name, name)
            tables[tbl] = tables.get(tbl, 0) + size
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("checkpoints", "writes", "events", "messages", "runs")}
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        used = (conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]) * page
    finally:
        conn.close()
    wal = Path(str(path) + "-wal")
    return {"busy": busy, "db": path.stat().st_size, "wal": wal.stat().st_size if wal.exists() else 0,
            "tables": tables, "rows": rows, "used": used}


class Lag:
    """Event-loop lag of this process (same method as the server's bench monitor)."""

    def __init__(self):
        self.samples: list[float] = []
        self.task: asyncio.Task | None = None

    async def _run(self):
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.010)
            self.samples.append(max(0.0, time.perf_counter() - t - 0.010))

    def start(self):
        self.samples.clear()
        self.task = asyncio.create_task(self._run())

    def stop(self) -> dict:
        self.task.cancel()
        v = self.samples
        return {"samples": len(v), "p50_ms": kit.percentile(v, 50) * 1000, "p99_ms": kit.percentile(v, 99) * 1000,
                "max_ms": max(v) * 1000 if v else float("nan"), "over_20ms": sum(1 for x in v if x > 0.02)}


@dataclasses.dataclass
class Track:
    """One run as seen on the WebSocket."""
    done: asyncio.Future
    times: dict = dataclasses.field(default_factory=dict)
    deltas: int = 0          # tokens received (the runner may coalesce several into one event)
    events: int = 0          # message.delta events received
    first_delta: float | None = None
    last_delta: float | None = None
    status: str | None = None


class Watcher:
    """Follows threads (threads/{id}: a thread's events are its owner's only, there is no
    threads/* to read) and routes their events to each thread's Track (receive times)."""

    def __init__(self, http: aiohttp.ClientSession, base: str):
        self.http, self.base = http, base
        self.tracks: dict[str, Track] = {}
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task] = []
        self.replies: dict[str, asyncio.Future] = {}
        self.delta_times: list[float] = []

    async def follow(self, thread_id: str, *, own_socket: bool = False) -> None:
        """Subscribe to threads/{thread_id} before its run starts (not timed): on this
        watcher's socket, or on a new one (one per thread: one per browser tab)."""
        if own_socket or not self.sockets:
            ws = await self.http.ws_connect(self.base + "/ws", heartbeat=None, max_msg_size=0)
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self._read(ws)))
        topic = f"threads/{thread_id}"
        reply = self.replies[topic] = asyncio.get_running_loop().create_future()
        await self.sockets[-1].send_json({"op": "subscribe", "topic": topic, "id": topic})
        async with asyncio.timeout(10):
            msg = await reply
        if msg["op"] != "subscribed":
            raise RuntimeError(f"subscribe {topic}: {msg}")

    async def unfollow(self, thread_id: str) -> None:
        await self.sockets[-1].send_json({"op": "unsubscribe", "topic": f"threads/{thread_id}"})

    async def _read(self, ws) -> None:
        async for msg in ws:
            now = time.perf_counter()
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("op") in ("subscribed", "error") and data.get("id") in self.replies:
                self.replies.pop(data["id"]).set_result(data)
                continue
            if data.get("op") != "event":
                continue
            track = self.tracks.get(data["data"].get("thread_id"))
            if track is None:
                continue
            kind = data["type"]
            if kind == "message.delta":
                # Tokens are " wN" words: count words, not events (deltas coalesce under load).
                tokens = len(data["data"]["text"].split())
                track.deltas += tokens
                track.events += 1
                track.first_delta = track.first_delta or now
                track.last_delta = now
                self.delta_times.extend([now] * tokens)
            else:
                track.times.setdefault(kind, now)
            if kind in ("run.succeeded", "run.failed", "run.cancelled") and not track.done.done():
                track.status = kind
                track.done.set_result(now)

    async def close(self) -> None:
        for t in self.readers:
            t.cancel()
        for ws in self.sockets:
            await ws.close()
        self.sockets.clear()
        self.readers.clear()


# ---------------------------------------------------------------- one run, both ways

async def agentstead_run(http, base: str, watcher: Watcher, agent_id: str, timeout: float = 120) -> dict:
    async with http.post(base + "/api/threads", json={"agent_id": agent_id}) as r:
        thread = (await r.json())["id"]
    await watcher.follow(thread)
    track = Track(asyncio.get_running_loop().create_future())
    watcher.tracks[thread] = track
    t0 = time.perf_counter()
    async with http.post(f"{base}/api/threads/{thread}/messages", json={"content": "hello"}) as r:
        if r.status != 202:
            raise RuntimeError(f"POST message answered {r.status}: {await r.text()}")
        await r.read()
    t_accepted = time.perf_counter()
    end = await asyncio.wait_for(track.done, timeout)
    del watcher.tracks[thread]
    await watcher.unfollow(thread)
    tm = track.times
    return {"ms": (end - t0) * 1000, "status": track.status, "deltas": track.deltas, "events": track.events,
            "thread": thread,
            "accepted": (t_accepted - t0) * 1000,
            "started": (tm.get("run.started", end) - t0) * 1000,
            "first_delta": ((track.first_delta or end) - t0) * 1000,
            "last_delta": ((track.last_delta or end) - t0) * 1000,
            "created": (tm.get("message.created", end) - t0) * 1000}


async def concurrent_agentstead(http, base: str, agent_id: str, n: int, server_pid: int) -> dict:
    """n runs posted at once, one WebSocket per thread; server lag, tokens/s, CPU."""
    watcher = Watcher(http, base)
    threads = []
    for _ in range(n):
        async with http.post(base + "/api/threads", json={"agent_id": agent_id}) as r:
            threads.append((await r.json())["id"])
    for t in threads:
        await watcher.follow(t, own_socket=True)
    tracks = {t: Track(asyncio.get_running_loop().create_future()) for t in threads}
    watcher.tracks.update(tracks)
    async with http.get(base + "/bench/lag?reset=1") as r:
        await r.read()
    cpu0 = kit.proc_cpu_seconds(server_pid)
    t0 = time.perf_counter()

    async def post(t):
        async with http.post(f"{base}/api/threads/{t}/messages", json={"content": "hello"}) as r:
            if r.status != 202:
                raise RuntimeError(f"POST message answered {r.status}: {await r.text()}")
    await asyncio.gather(*(post(t) for t in threads))
    ends = await asyncio.wait_for(asyncio.gather(*(tr.done for tr in tracks.values())), 120)
    cpu1 = kit.proc_cpu_seconds(server_pid)
    async with http.get(base + "/bench/lag") as r:
        lag = await r.json()
    dts = watcher.delta_times
    total = sum(tr.deltas for tr in tracks.values())
    await watcher.close()
    return {"durations": [(e - t0) for e in ends], "lag": lag, "tokens": total,
            "tokens_per_s": total / (max(dts) - min(dts)) if len(dts) > 1 else float("nan"),
            "failed": sum(1 for tr in tracks.values() if tr.status != "run.succeeded"),
            "cpu_us_per_token": (cpu1 - cpu0) / total * 1e6 if total else float("nan"),
            "wall": max(ends) - t0}


async def concurrent_direct(base_url: str, model: str, n: int) -> dict:
    """The same n streams, direct, in this process, with this process's lag monitor."""
    g = direct_graph(base_url, API_KEY, model)
    lagmon = Lag()
    lagmon.start()
    c0 = time.process_time()
    t0 = time.perf_counter()
    stamps: list[float] = []

    async def one():
        count = 0
        async for mode, chunk in g.astream({"messages": [HumanMessage("hello")]}, {"recursion_limit": 21},
                                           stream_mode=["messages", "updates"]):
            if mode == "messages" and isinstance(chunk[0], AIMessageChunk) and chunk[0].content:
                count += 1
                stamps.append(time.perf_counter())
        return time.perf_counter() - t0, count
    out = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), 120)
    c1 = time.process_time()
    lag = lagmon.stop()
    total = sum(c for _, c in out)
    return {"durations": [d for d, _ in out], "lag": lag, "tokens": total,
            "tokens_per_s": total / (max(stamps) - min(stamps)) if len(stamps) > 1 else float("nan"),
            "cpu_us_per_token": (c1 - c0) / total * 1e6 if total else float("nan"),
            "wall": max(d for d, _ in out), "failed": 0}


# ---------------------------------------------------------------- the benchmark

async def bench(args, base: str, token: str, llm: LLMProc, server_pid: int, db_path: Path, log_path: Path) -> dict:
    res: dict = {}
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
        async def agent(name, provider, model):
            async with http.post(base + "/api/agents", json={"name": name, "provider": provider,
                                                             "model": model}) as r:
                if r.status != 201:
                    raise RuntimeError(f"create agent: {r.status} {await r.text()}")
                return (await r.json())["id"]
        short, long_ = f"tok-{args.short}", f"tok-{args.long}"
        agents = {"short": await agent("short", "fast", short), "long": await agent("long", "fast", long_),
                  "stream": await agent("stream", "slow", f"tok-{args.stream_tokens}"),
                  "turns": await agent("turns", "fast", f"tok-{args.turn_tokens}")}
        graphs_once = {"short": direct_graph(llm.url("fast"), API_KEY, short), "long": direct_graph(llm.url("fast"), API_KEY, long_)}
        models = {"short": short, "long": long_}
        defaults = {"short": default_graph(llm.url("fast"), API_KEY, short),
                    "long": default_graph(llm.url("fast"), API_KEY, long_)}

        watcher = Watcher(http, base)

        # ---- 1. per run / per token, sequential, tokens_per_second=0
        for kind in ("short", "long"):                           # warm-up (discarded)
            for _ in range(3):
                await agentstead_run(http, base, watcher, agents[kind])
                await direct_run(graphs_once[kind])
                await direct_run(defaults[kind])
        async def in_server(kind: str, n: int) -> dict:
            async with http.post(base + "/bench/direct", json={"base_url": llm.url("fast"), "api_key": API_KEY,
                                                                "model": models[kind], "n": n}) as r:
                if r.status != 200:
                    raise RuntimeError(f"/bench/direct: {r.status} {await r.text()}")
                return await r.json()
        for kind in ("short", "long"):
            await in_server(kind, 3)                             # warm-up (discarded)
        seq = {side: {"short": [], "long": []} for side in ("A", "D", "D0", "Ds")}
        cpu = {"A": {"short": [], "long": []}, "D": {"short": [], "long": []}, "Ds": {"short": [], "long": []}}
        for i in range(args.rounds):
            order = ("A", "Ds", "D", "D0") if i % 2 == 0 else ("D0", "D", "Ds", "A")
            for side in order:
                for kind, n in (("short", args.n_short), ("long", args.n_long)):
                    if side == "Ds":
                        x = await in_server(kind, n)
                        seq[side][kind] += [{"ms": v} for v in x["ms"]]
                        cpu[side][kind].append(x["cpu_ms"])
                        continue
                    c0 = kit.proc_cpu_seconds(server_pid) if side == "A" else time.process_time()
                    for _ in range(n):
                        if side == "A":
                            r = await agentstead_run(http, base, watcher, agents[kind])
                            if r["status"] != "run.succeeded" or "no-deltas" not in args.server_variants and \
                                    r["deltas"] != (args.short if kind == "short"
                                                                                  else args.long):
                                raise RuntimeError(f"run did not succeed as expected: {r}")
                        elif side == "D":
                            r = await direct_run(graphs_once[kind])
                        else:
                            r = await direct_run(defaults[kind])
                        seq[side][kind].append(r)
                    if side in cpu:
                        used = (kit.proc_cpu_seconds(server_pid) if side == "A" else time.process_time()) - c0
                        cpu[side][kind].append(used / n * 1000)
            print(f"round {i + 1}: " + ", ".join(
                f"{s} {k} {med([r['ms'] for r in seq[s][k][-(args.n_short if k == 'short' else args.n_long):]]):.1f} ms"
                for s in ("A", "Ds", "D", "D0") for k in ("short", "long")), flush=True)
        res["seq"], res["cpu"] = seq, cpu
        await watcher.close()
        if args.cpus is not None:            # sections 2 and 3 run with every process on every CPU
            everything = args.cpus[0] | args.cpus[1]
            for pid in (os.getpid(), server_pid, llm.proc.pid):
                kit.pin(pid, everything)

        # ---- 2. concurrent runs at 30 tokens/s, alternating A D / D A
        res["conc_A"], res["conc_D"] = [], []
        for i in range(args.conc_rounds):
            for side in (("A", "D") if i % 2 == 0 else ("D", "A")):
                if side == "A":
                    before = await asyncio.to_thread(db_stats, db_path) if i == 0 else None
                    x = await concurrent_agentstead(http, base, agents["stream"], args.concurrent, server_pid)
                    if i == 0:      # after the finished runs' deltas are compacted (runner/compaction.py)
                        await asyncio.sleep(COMPACTED_AFTER)
                        res["storage_runs"] = (before, await asyncio.to_thread(db_stats, db_path))
                    res["conc_A"].append(x)
                else:
                    x = await concurrent_direct(llm.url("slow"), f"tok-{args.stream_tokens}", args.concurrent)
                    res["conc_D"].append(x)
                print(f"concurrent round {i + 1} {side}: {x['tokens']} tokens, {x['tokens_per_s']:.0f}/s, "
                      f"lag p99 {x['lag']['p99_ms']:.1f} ms, wall {x['wall']:.1f}s", flush=True)

        # ---- 3. a 10-turn thread
        watcher = Watcher(http, base)
        async with http.post(base + "/api/threads", json={"agent_id": agents["turns"]}) as r:
            thread = (await r.json())["id"]
        await watcher.follow(thread)
        sizes = [await asyncio.to_thread(db_stats, db_path)]
        turn_ms = []
        for _ in range(args.turns):
            track = Track(asyncio.get_running_loop().create_future())
            watcher.tracks[thread] = track
            t0 = time.perf_counter()
            async with http.post(f"{base}/api/threads/{thread}/messages", json={"content": "hello again"}) as r:
                if r.status != 202:
                    raise RuntimeError(f"turn: {r.status} {await r.text()}")
            end = await asyncio.wait_for(track.done, 60)
            if track.status != "run.succeeded":
                raise RuntimeError(f"turn ended {track.status}")
            turn_ms.append((end - t0) * 1000)
            await asyncio.sleep(COMPACTED_AFTER)
            sizes.append(await asyncio.to_thread(db_stats, db_path))
        res["turns"] = {"sizes": sizes, "ms": turn_ms}
        await watcher.close()

        # ---- optional: where the server's time goes (after the measurements; not in the tables)
        if args.py_spy:
            res["profiles"] = {}
            watcher = Watcher(http, base)
            for kind in ("short", "long"):
                spy = kit.PySpy(args.py_spy, server_pid, db_path.parent.parent / f"profile-{kind}.raw", 8).start()
                await asyncio.sleep(0.5)
                t_end = time.perf_counter() + 7
                runs = 0
                while time.perf_counter() < t_end:
                    await agentstead_run(http, base, watcher, agents[kind])
                    runs += 1
                await asyncio.to_thread(spy.wait)
                res["profiles"][kind] = (spy.out, f"{runs} sequential {kind} runs (tokens_per_second=0)")
            spy = kit.PySpy(args.py_spy, server_pid, db_path.parent.parent / "profile-direct-long.raw", 8).start()
            await asyncio.sleep(0.5)
            t_end, runs = time.perf_counter() + 7, 0
            while time.perf_counter() < t_end:
                runs += len((await in_server("long", 5))["ms"])
            await asyncio.to_thread(spy.wait)
            res["profiles"]["direct-long"] = (spy.out, f"{runs} sequential long Ds calls (the graph in the server)")
            await watcher.close()
            spy = kit.PySpy(args.py_spy, server_pid, db_path.parent.parent / "profile-concurrent.raw", 8).start()
            await asyncio.sleep(0.5)
            await concurrent_agentstead(http, base, agents["stream"], args.concurrent, server_pid)
            await asyncio.to_thread(spy.wait)
            res["profiles"]["concurrent"] = (spy.out, f"{args.concurrent} concurrent runs at {args.slow_tps:g} tokens/s")
    text = log_path.read_text(errors="replace")
    res["log"] = {"locked": len(re.findall(r"database is locked", text)),
                  "errors": sum(1 for line in text.splitlines() if '"level": "error"' in line),
                  "warnings": sum(1 for line in text.splitlines() if '"level": "warning"' in line)}
    return res


# ---------------------------------------------------------------- report

def build_report(args, facts, started, finished, res) -> str:
    out = []
    cmd = (f"python bench/runs/run.py --rounds {args.rounds} --short {args.short} --long {args.long} "
           f"--n-short {args.n_short} --n-long {args.n_long} --concurrent {args.concurrent} "
           f"--stream-tokens {args.stream_tokens} --conc-rounds {args.conc_rounds} --turns {args.turns} "
           f"--turn-tokens {args.turn_tokens}")
    cmd += f" --placement {args.placement}"
    if args.server_variants:
        cmd += f" --server-variants {args.server_variants}"
    out.append(f"Run: `{cmd}` — {started:%Y-%m-%d %H:%M} to {finished:%H:%M} UTC\n")
    if args.server_variants:
        out.append(f"**Ablation run: the server is monkeypatched with {args.server_variants} (bench/ws/server.py); "
                   "these are not the app's numbers.**\n")
    out.append("Machine:\n")
    out += [f"- {k}: {v}" for k, v in facts.items()]
    out.append("")
    out.append("A = Agentstead: bench/ws/server.py (= `agentstead serve` + a lag monitor), JSON logs to a file, "
               "SQLite synchronous=FULL on the disk above; AGENTSTEAD_RUNS_MAX_CONCURRENT=64, "
               "AGENTSTEAD_RUNS_MAX_PER_USER=64, AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE=1000000. Client: aiohttp "
               "with an admin API token; run events on the WebSocket. D = direct: the same graph "
               "(runner/graph.py: ChatOpenAI streaming, model node, no tools) via `graph.astream(…, "
               "stream_mode=[\"messages\", \"updates\"])` in the client process, no checkpointer; built once. "
               "D0 = the same graph on a ChatOpenAI with langchain-openai's defaults (per-chunk timeout on, "
               "no YieldWhileStreaming), as a script that does not share runner/graph.py would. Ds = direct in the "
               "server's own process (bench route /bench/direct; timed there, no HTTP): the same-process "
               "baseline, which separates what the runner adds from what that process costs per Python "
               "operation. All against the same LLM server process (tests/support/llm_server.py).\n")

    seq, cpu = res["seq"], res["cpu"]
    m = {s: {k: med([r["ms"] for r in seq[s][k]]) for k in ("short", "long")} for s in seq}
    out.append("### 1. Per run and per token (tokens_per_second = 0, sequential, medians)\n")
    out.append("| reply | A ms | D ms | D0 ms | Ds ms | **A − D ms** | A − Ds ms | A ÷ D | A server CPU ms/run "
               "| D CPU ms/run | Ds CPU ms/run | runs per side |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, ntok in (("short", args.short), ("long", args.long)):
        out.append(f"| {ntok} tokens | {m['A'][kind]:.1f} | {m['D'][kind]:.1f} | {m['D0'][kind]:.1f} "
                   f"| {m['Ds'][kind]:.1f} | **{m['A'][kind] - m['D'][kind]:+.1f}** "
                   f"| {m['A'][kind] - m['Ds'][kind]:+.1f} | {m['A'][kind] / m['D'][kind]:.1f} "
                   f"| {med(cpu['A'][kind]):.1f} | {med(cpu['D'][kind]):.1f} | {med(cpu['Ds'][kind]):.1f} "
                   f"| {len(seq['A'][kind])} |")
    dtok = args.long - args.short
    per_tok = {s: (m[s]["long"] - m[s]["short"]) / dtok * 1000 for s in m}
    cpu_tok = {s: (med(cpu[s]["long"]) - med(cpu[s]["short"])) / dtok * 1000 for s in cpu}
    run_added = m["A"]["short"] - m["D"]["short"] - args.short * (per_tok["A"] - per_tok["D"]) / 1000
    out.append("")
    out.append(f"Per token (({args.long} − {args.short})-token difference): A **{per_tok['A']:.0f} µs**, "
               f"D {per_tok['D']:.0f} µs, D0 {per_tok['D0']:.0f} µs (A ÷ D0 = {per_tok['A'] / per_tok['D0']:.2f}) → A adds **{per_tok['A'] - per_tok['D']:.0f} µs "
               f"per token** (A ÷ D = **{per_tok['A'] / per_tok['D']:.2f}**). CPU per token: A's server "
               f"{cpu_tok['A']:.0f} µs, D {cpu_tok['D']:.0f} µs. Fixed cost per run (A − D at {args.short} "
               f"tokens minus {args.short} × the per-token difference): **{run_added:.1f} ms**. At 30 tokens/s a "
               f"token is 33.3 ms apart: A's added {per_tok['A'] - per_tok['D']:.0f} µs is "
               f"{(per_tok['A'] - per_tok['D']) / 33333 * 100:.1f} % of that.\n")
    def per_round(side: str) -> list[float]:
        """The per-token time of each round (its own medians), to pair with the same round's baseline."""
        out_ = []
        for r in range(args.rounds):
            lo = seq[side]["long"][r * args.n_long:(r + 1) * args.n_long]
            sh = seq[side]["short"][r * args.n_short:(r + 1) * args.n_short]
            out_.append((med([x["ms"] for x in lo]) - med([x["ms"] for x in sh])) / dtok * 1000)
        return out_
    paired = {b: sorted(a / d for a, d in zip(per_round("A"), per_round(b))) for b in ("D", "Ds")}
    out.append(f"Per token, round by round (A ÷ the baseline of the same round, sorted): A ÷ D "
               f"{', '.join(f'{x:.2f}' for x in paired['D'])} (median **{med(paired['D']):.2f}**); A ÷ Ds "
               f"{', '.join(f'{x:.2f}' for x in paired['Ds'])} (median **{med(paired['Ds']):.2f}**).\n")
    run_added_s = m["A"]["short"] - m["Ds"]["short"] - args.short * (per_tok["A"] - per_tok["Ds"]) / 1000
    out.append(f"Against the same graph in the server's own process (Ds): per token A **{per_tok['A']:.0f} µs** vs "
               f"Ds {per_tok['Ds']:.0f} µs (A ÷ Ds = **{per_tok['A'] / per_tok['Ds']:.2f}**; CPU per token Ds "
               f"{cpu_tok['Ds']:.0f} µs); fixed cost per run A − Ds **{run_added_s:.1f} ms** (includes the HTTP "
               f"request and the WebSocket delivery, which Ds, timed inside the server, does not have).\n")
    tl = {k: med([r[k] for r in seq["A"]["long"]]) for k in ("accepted", "started", "first_delta", "last_delta",
                                                                "created", "ms")}
    ts = {k: med([r[k] for r in seq["A"]["short"]]) for k in tl}
    out.append("Where A's time goes (medians, ms after the POST was sent; receive times on the WebSocket; "
               f"message.delta events per run: {med([r['events'] for r in seq['A']['short']]):g} for "
               f"{args.short} tokens, {med([r['events'] for r in seq['A']['long']]):g} for {args.long}):\n")
    out.append("| reply | 202 Accepted | run.started | first delta | last delta | message.created | run.succeeded |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for label, t in ((f"{args.short} tokens", ts), (f"{args.long} tokens", tl)):
        out.append(f"| {label} | {t['accepted']:.1f} | {t['started']:.1f} | {t['first_delta']:.1f} "
                   f"| {t['last_delta']:.1f} | {t['created']:.1f} | {t['ms']:.1f} |")
    out.append("")

    ideal = args.stream_tokens / args.slow_tps
    out.append(f"### 2. {args.concurrent} concurrent runs, {args.slow_tps:g} tokens/s each ({args.stream_tokens} "
               f"tokens: {ideal:.1f} s at best); {args.conc_rounds} rounds, A D / D A, medians\n")
    out.append("| | run duration p50 s | p99 s | all done after s | **tokens/s delivered** | **event-loop lag p50 ms** "
               "| **p99 ms** | p99 per round | max ms | lag samples > 20 ms | CPU µs/token | failed runs |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    conc = {}
    for label, xs in (("A Agentstead (server loop; tokens on WebSockets)", res["conc_A"]),
                      ("D direct (client loop; tokens from astream)", res["conc_D"])):
        c = {"p50": med([kit.percentile(x["durations"], 50) for x in xs]),
             "p99": med([kit.percentile(x["durations"], 99) for x in xs]), "wall": med([x["wall"] for x in xs]),
             "tps": med([x["tokens_per_s"] for x in xs]), "lag50": med([x["lag"]["p50_ms"] for x in xs]),
             "lag99": med([x["lag"]["p99_ms"] for x in xs]), "lagmax": max(x["lag"]["max_ms"] for x in xs),
             "over": sum(x["lag"]["over_20ms"] for x in xs), "samples": sum(x["lag"]["samples"] for x in xs),
             "cpu": med([x["cpu_us_per_token"] for x in xs]), "failed": sum(x.get("failed", 0) for x in xs),
             "tokens": sum(x["tokens"] for x in xs)}
        conc[label[0]] = c
        per_round_p99 = ", ".join(f"{x['lag']['p99_ms']:.1f}" for x in xs)
        out.append(f"| {label} | {c['p50']:.2f} | {c['p99']:.2f} | {c['wall']:.2f} | **{c['tps']:,.0f}** "
                   f"| **{c['lag50']:.1f}** | **{c['lag99']:.1f}** "
                   f"| {per_round_p99} | {c['lagmax']:.1f} "
                   f"| {c['over']} / {c['samples']} | {c['cpu']:.0f} | {c['failed']} |")
    a, d = conc["A"], conc["D"]
    out.append("")
    out.append(f"Tokens: A {a['tokens']:,} message.delta events received on {args.concurrent} WebSockets (one per "
               f"thread) over all rounds, D {d['tokens']:,} chunks; tokens/s = tokens ÷ (last − first token time); "
               f"the offered rate is {args.concurrent} × {args.slow_tps:g} = {args.concurrent * args.slow_tps:,.0f}/s. "
               f"Lag: a task sleeps 10 ms in a loop and records how late it wakes (A: in the server, D: in this "
               f"process). A's CPU is the server's (all threads); D's is this process's during the streams.\n")
    log = res["log"]
    out.append(f"Server log: **{log['locked']}** \"database is locked\", {log['errors']} error and "
               f"{log['warnings']} warning lines over the whole run.\n")

    before, after = res["storage_runs"]
    n = args.concurrent
    grow = (after["db"] + after["wal"]) - (before["db"] + before["wal"])
    out.append("### 3. Storage\n")
    out.append(f"After {n} runs of {args.stream_tokens} tokens (each file size after `PRAGMA wal_checkpoint(TRUNCATE)`, "
               f"busy={before['busy']}/{after['busy']}):\n")
    used = after["used"] - before["used"]
    out.append("| | before | after | growth | **per run** |")
    out.append("|---|---:|---:|---:|---:|")
    out.append(f"| database file + WAL (bytes) | {before['db'] + before['wal']:,} | {after['db'] + after['wal']:,} "
               f"| {grow:,} | **{grow / n:,.0f}** |")
    out.append(f"| pages in use (bytes; file minus free list) | {before['used']:,} | {after['used']:,} "
               f"| {used:,} | {used / n:,.0f} |")
    for t in sorted(set(before["tables"]) | set(after["tables"]),
                    key=lambda t: -(after["tables"].get(t, 0) - before["tables"].get(t, 0))):
        g = after["tables"].get(t, 0) - before["tables"].get(t, 0)
        if g:
            out.append(f"| table {t} (pages incl. indexes) | {before['tables'].get(t, 0):,} | "
                       f"{after['tables'].get(t, 0):,} | {g:,} | {g / n:,.0f} |")
    for t in ("events", "messages", "checkpoints", "writes"):
        out.append(f"| rows in {t} | {before['rows'][t]:,} | {after['rows'][t]:,} "
                   f"| {after['rows'][t] - before['rows'][t]:,} | {(after['rows'][t] - before['rows'][t]) / n:,.1f} |")
    out.append("")
    turns = res["turns"]
    sizes = turns["sizes"]
    tot = [s["db"] + s["wal"] for s in sizes]
    use = [s["used"] for s in sizes]
    out.append(f"A {args.turns}-turn thread ({args.turn_tokens}-token replies; the prompt grows with the history). "
               "File sizes after a TRUNCATE checkpoint; the file only grows when the free list is used up, so "
               "the growth per turn is read from the pages in use:\n")
    out.append("| after turn | db + WAL bytes | pages in use, bytes | **growth this turn** | rows events "
               "| rows checkpoints | rows writes | turn ms |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i in range(1, len(sizes)):
        out.append(f"| {i} | {tot[i]:,} | {use[i]:,} | **{use[i] - use[i - 1]:+,}** "
                   f"| {sizes[i]['rows']['events'] - sizes[i - 1]['rows']['events']:+,} "
                   f"| {sizes[i]['rows']['checkpoints']} | {sizes[i]['rows']['writes']} | {turns['ms'][i - 1]:.0f} |")
    out.append("")
    out.append(f"Whole thread: {use[-1] - use[0]:,} bytes of pages for {args.turns} turns "
               f"({(use[-1] - use[0]) / args.turns:,.0f} per turn); file + WAL {tot[-1] - tot[0]:+,} bytes.\n")

    # ---- verdict
    out.append("### Verdict\n")
    ok_run = run_added <= TARGET_RUN_MS
    ok_tok = med(paired["D"]) - 1 <= TARGET_TOKEN
    ok_lag = a["lag99"] <= TARGET_LAG_P99_MS
    rows_end = sizes[-1]["rows"]
    ok_ckpt = rows_end["checkpoints"] == 0 and rows_end["writes"] == 0 and after["rows"]["checkpoints"] == 0
    out.append(f"- Per-run overhead ≤ {TARGET_RUN_MS:g} ms: {run_added:.1f} ms fixed per run "
               f"(A − D for a {args.short}-token reply: {m['A']['short'] - m['D']['short']:.1f} ms) → "
               f"**{'MET' if ok_run else 'NOT MET'}**")
    out.append(f"- Per-token overhead ≤ {TARGET_TOKEN:.0%}: A ÷ D per round, median {med(paired['D']):.2f} "
               f"(A ÷ Ds {med(paired['Ds']):.2f}; over all rounds A {per_tok['A']:.0f} µs vs D {per_tok['D']:.0f} µs "
               f"per token = {(per_tok['A'] / per_tok['D'] - 1) * 100:+.0f} %) → **{'MET' if ok_tok else 'NOT MET'}**")
    out.append(f"- Event-loop lag p99 ≤ {TARGET_LAG_P99_MS:g} ms with {args.concurrent} runs at {args.slow_tps:g} "
               f"tokens/s: {a['lag99']:.1f} ms, median of {args.conc_rounds} rounds (direct baseline "
               f"{d['lag99']:.1f} ms) → "
               f"**{'MET' if ok_lag else 'NOT MET'}**")
    out.append(f"- Zero \"database is locked\": {log['locked']} → **{'MET' if log['locked'] == 0 else 'NOT MET'}**")
    out.append(f"- Checkpoint storage does not grow with turns (0 rows in checkpoints/writes for finished runs): "
               f"{after['rows']['checkpoints']}/{after['rows']['writes']} after the {n} runs, "
               f"{rows_end['checkpoints']}/{rows_end['writes']} after {args.turns} turns → "
               f"**{'MET' if ok_ckpt else 'NOT MET'}**")
    out.append(f"- Database growth: {grow / n:,.0f} bytes per {args.stream_tokens}-token run, "
               f"{(use[-1] - use[0]):,} bytes per {args.turns}-turn thread of {args.turn_tokens}-token replies "
               "(no target).")
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description="Per-run / per-token overhead of Agentstead runs vs the graph called directly.")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--short", type=int, default=10, help="tokens of the short reply")
    p.add_argument("--long", type=int, default=1000, help="tokens of the long reply")
    p.add_argument("--n-short", type=int, default=20, help="runs per side per round, short reply")
    p.add_argument("--n-long", type=int, default=5, help="runs per side per round, long reply")
    p.add_argument("--concurrent", type=int, default=50)
    p.add_argument("--slow-tps", type=float, default=30.0)
    p.add_argument("--stream-tokens", type=int, default=300)
    p.add_argument("--conc-rounds", type=int, default=2, help="rounds of the concurrent test (A D, D A, …)")
    p.add_argument("--turns", type=int, default=10)
    p.add_argument("--turn-tokens", type=int, default=100)
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "out" / "runs.md")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--server-variants", default="", metavar="A,B",
                   help="ablation: monkeypatch the bench server (see bench/ws/server.py VARIANTS); "
                        "the report says so. Not for the reference tables.")
    p.add_argument("--placement", choices=("split", "shared", "app"), default="split",
                   help="split (default): the LLM server, the stand-in for the provider's machine, on the last "
                        "CPU and everything else (the server, this client, the direct baselines) on the others; "
                        "shared: the scheduler places all processes on all CPUs; app: only the server is "
                        "pinned, to the first CPU (bench/RESULTS.md, Runs, Session 4, explains the difference)")
    p.add_argument("--py-spy", type=Path, default=None, metavar="EXE",
                   help="after the measurements, profile the server with this py-spy (sequential short, long, "
                        "concurrent runs); summaries to bench/out/runs-profile-*.md")
    args = p.parse_args()
    kit.stop_on_signals()
    kit.raise_nofile()

    cpus = args.cpus = placement(args.placement)
    if args.placement == "split":
        os.sched_setaffinity(0, cpus[0])   # before any thread of this process starts
    tmp = Path(tempfile.mkdtemp(prefix="agentstead-bench-runs-"))
    facts = kit.machine_facts(("langgraph", "langgraph-checkpoint-sqlite", "langchain-core", "langchain-openai",
                               "openai", "httpx"), state_dir=tmp)
    facts["agentstead source"] = kit.source_description()
    facts["placement"] = {
        "split": f"section 1 split: the LLM server on CPU {sorted(cpus[1])}; the server, the client and the "
                 f"direct baselines on CPU {sorted(cpus[0])}; sections 2 and 3 shared" if cpus else "",
        "app": f"section 1 app: the server on CPU {sorted(cpus[0])}, the rest anywhere; sections 2 and 3 shared"
               if cpus else "",
        "shared": "shared: every process on every CPU"}[args.placement]
    print("Machine:\n" + "\n".join(f"  {k}: {v}" for k, v in facts.items()), flush=True)
    started = dt.datetime.now(dt.timezone.utc)
    server = llm = None
    try:
        models = sorted({f"tok-{n}" for n in (args.short, args.long, args.stream_tokens, args.turn_tokens)})
        llm = LLMProc(models, tmp / "llm.log", args.slow_tps)
        if cpus is not None:
            kit.pin(llm.proc.pid, cpus[1])
        key = tmp / "llm_key"
        key.write_text(API_KEY)
        providers = [{"name": name, "base_url": llm.url(name), "models": models, "api_key_file": str(key)}
                     for name in ("fast", "slow")]
        port = kit.free_port()
        env = kit.server_env(tmp, port, AGENTSTEAD_LLM_PROVIDERS=json.dumps(providers),
                             AGENTSTEAD_RUNS_MAX_CONCURRENT="64", AGENTSTEAD_RUNS_MAX_PER_USER="64",
                             AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000", BENCH_VARIANTS=args.server_variants)
        server = kit.Server("agentstead", [sys.executable, str(HERE.parent / "ws" / "server.py")], env, port,
                            tmp / "server.log")
        server.start()
        server.wait_ready()
        if cpus is not None:
            kit.pin(server.proc.pid, cpus[0])
        print(f"server {server.base} (pid {server.proc.pid}); llm {llm.ports}", flush=True)
        admin = sign_in(server.base, env, "bench-runs@example.org")
        db_path = tmp / "state" / "agentstead.db"

        async def go():
            return await bench(args, server.base, admin.api_token, llm, server.proc.pid, db_path, server.log)
        try:
            import uvloop
            res = uvloop.run(go())
        except ImportError:
            res = asyncio.run(go())
        if server.proc.poll() is not None:
            raise RuntimeError("the server died during the run")
        finished = dt.datetime.now(dt.timezone.utc)
        report = build_report(args, facts, started, finished, res)
        for kind, (raw, what) in res.get("profiles", {}).items():
            dest = args.output.parent / f"runs-profile-{kind}.md"
            dest.write_text(f"# py-spy: Agentstead server during {what}\n\n" + kit.summarize_profile(raw))
            print(f"profile: {dest}", flush=True)
        kit.write_report(args.output, report)
        return 0
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
        print(f"runs/run.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        kit.clean_up(tmp, args.keep, server, llm)


if __name__ == "__main__":
    sys.exit(main())
