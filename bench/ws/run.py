#!/usr/bin/env python3
"""WebSocket fan-out benchmark: 1,000 sockets on one topic, the real app, direct and through Caddy.

What runs (all on 127.0.0.1, every step bounded by a timeout, everything stopped at the end):

- bench/ws/server.py: `agentstead serve` unchanged (production settings: JSON access log to a
  file, uvloop, synchronous=FULL) plus bench-only routes in that process: POST /bench/publish
  (publish_nowait of a `bench.tick` event that carries its publish time), POST /bench/append,
  GET /bench/lag. One setting differs from the default: AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE
  is raised, since 2,000 handshakes of one user within a minute exceed the default 1,200.
- Caddy (the real binary, caddy/Caddyfile configured by its CADDY_* placeholders) proxying to
  the app, access log to a file.
- Load: bench/ws/client.py processes (2 for direct sockets, 2 for sockets through Caddy), each
  holding `--sockets/2` WebSockets authenticated with an admin API token, all subscribed to
  one topic per path (`users/bench-direct`, `users/bench-caddy`: an admin may read any user's
  topic). The client is a minimal asyncio-protocol WebSocket client, far cheaper per message
  than the server.

Measured:
1. Memory per idle socket: server VmRSS with 0, then 1,000 idle subscribed sockets (after
   gc.collect() each time); also Caddy's VmRSS for its 1,000.
2. Fan-out, alternating direct / Caddy per round: (a) paced: each of `--rates` events/s for
   `--duration` s, i.e. rate × sockets deliveries/s offered (50 × 1,000 = the 50,000/s
   target; 25 × 1,000 shows the curve below it); (b) burst: `--burst` events published at once (capacity: how fast 1,000 sockets
   are fed when the work is there). Deliveries/s = deliveries received / (last − first
   receive time); latency = client receive time − publish time (same clock, CLOCK_MONOTONIC).
   CPU per delivery of server, clients and Caddy from /proc.
3. Event-log append: 50,000 publish_nowait at once (time until the last future resolves)
   vs the baseline — plain single-row INSERTs, one Database.write() transaction each —
   alternating, in the same server process.

Usage: .venv/bin/python bench/ws/run.py [--sockets 1000] [--rates 25,50] [--duration 5] [--burst 200]
                                        [--rounds 3] [--append-n 50000] [--output bench/out/ws.md]
                                        [--py-spy /tmp/prof/bin/py-spy [--native]]
About 2.5 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import select
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "auth"))

import benchkit as kit  # noqa: E402
from signin import sign_in  # noqa: E402

ROOT = kit.ROOT
TARGET_DELIVERIES = 50_000
TARGET_P99_MS = 50.0
TARGET_KB_PER_SOCKET = 30.0
TARGET_APPEND = 20_000


# ---------------------------------------------------------------- client processes

class ClientProc:
    """One bench/ws/client.py: JSON commands on stdin, JSON answers on stdout."""

    def __init__(self, name: str, port: int, token: str, topic: str, sockets: int, log: Path):
        self.name = name
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "client.py"), "--port", str(port), "--token", token, "--topic", topic,
             "--sockets", str(sockets)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, cwd=ROOT, start_new_session=True)
        self.ready: dict | None = None

    def _readline(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"client {self.name}: no answer within {timeout}s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"client {self.name} exited ({self.proc.poll()}); see {self.log.name}")
        return json.loads(line)

    def wait_ready(self, timeout: float = 120) -> dict:
        self.ready = self._readline(timeout)
        return self.ready

    def cmd(self, cmd: str, timeout: float = 30) -> dict:
        self.proc.stdin.write((json.dumps({"cmd": cmd}) + "\n").encode())
        self.proc.stdin.flush()
        return self._readline(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


def merge(stats: list[dict]) -> dict:
    hist: Counter[int] = Counter()
    for s in stats:
        hist.update({int(k): v for k, v in s["hist"].items()})
    firsts = [s["first"] for s in stats if s["first"]]
    closed: Counter[str] = Counter()
    for s in stats:
        closed.update(s["closed"])
    return {"events": sum(s["events"] for s in stats), "first": min(firsts) if firsts else 0.0,
            "last": max(s["last"] for s in stats), "hist": hist, "open": sum(s["open"] for s in stats),
            "closed": dict(closed), "other": sum(s["other"] for s in stats)}


def hist_percentile_ms(hist: Counter, q: float) -> float:
    total = sum(hist.values())
    if not total:
        return float("nan")
    rank = math.ceil(q / 100 * total)
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return math.exp((bucket + 1) / 100) / 1000   # upper edge of the 1 % bucket, in ms
    return float("nan")


# ---------------------------------------------------------------- HTTP to the bench routes

def post(base: str, path: str, body: dict, timeout: float) -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def get_json(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.loads(r.read())


# ---------------------------------------------------------------- measurements

def fanout(base: str, clients: list[ClientProc], topic: str, *, n: int, rate: float, pids: dict[str, int],
           sockets: int, profile: "kit.PySpy | None" = None) -> dict:
    for c in clients:
        c.cmd("reset")
    if profile is not None:
        profile.start()
        time.sleep(0.5)   # py-spy attaches
    get_json(base, "/bench/lag?reset=1")
    cpu0 = {k: kit.proc_cpu_seconds(p) for k, p in pids.items()}
    budget = (n / rate if rate else 0) + 60
    pub = post(base, "/bench/publish", {"topic": topic, "n": n, "rate": rate}, timeout=budget)
    expected = n * sockets
    deadline = time.monotonic() + 30
    last_count, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        merged = merge([c.cmd("stats") for c in clients])
        if merged["events"] >= expected:
            break
        if merged["events"] != last_count:
            last_count, still_since = merged["events"], time.monotonic()
        elif time.monotonic() - still_since > 3:
            break          # nothing more is coming (closed sockets): report what arrived
        time.sleep(0.1)
    cpu1 = {k: kit.proc_cpu_seconds(p) for k, p in pids.items()}
    lag = get_json(base, "/bench/lag")
    if profile is not None:
        profile.wait()
    window = merged["last"] - merged["first"]
    delivered = merged["events"]
    return {
        "n": n, "rate": rate, "offered": rate * sockets if rate else None, "expected": expected,
        "delivered": delivered, "missing": expected - delivered, "window_s": window,
        "per_s": delivered / window if window > 0 else float("nan"),
        "p50_ms": hist_percentile_ms(merged["hist"], 50), "p99_ms": hist_percentile_ms(merged["hist"], 99),
        "max_ms": hist_percentile_ms(merged["hist"], 100), "open": merged["open"], "closed": merged["closed"],
        "cpu_us": {k: (cpu1[k] - cpu0[k]) / delivered * 1e6 if delivered else float("nan") for k in pids},
        "publish": pub, "lag_p99_ms": lag["p99_ms"], "lag_max_ms": lag["max_ms"],
    }


def fmt(v, digits=0) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    return f"{v:,.{digits}f}"


def build_report(args, facts, started, finished, mem, rounds, appends, connect) -> str:
    med = kit.median
    out = []
    kinds = [f"paced-{r:g}" for r in args.rates] + ["burst"]
    cmd = (f"python bench/ws/run.py --sockets {args.sockets} --rates {','.join(f'{r:g}' for r in args.rates)} "
           f"--duration {args.duration:g} "
           f"--burst {args.burst} --rounds {args.rounds} --append-n {args.append_n}")
    if args.server_variants:
        cmd += f" --server-variants {args.server_variants}"
    out.append(f"Run: `{cmd}` — {started:%Y-%m-%d %H:%M} to {finished:%H:%M} UTC\n")
    if args.server_variants:
        out.append(f"**Ablation run: the server is monkeypatched with {args.server_variants} (bench/ws/server.py); "
                   "these are not the app's numbers.**\n")
    out.append("Machine:\n")
    out += [f"- {k}: {v}" for k, v in facts.items()]
    out.append("")
    out.append("Setup: bench/ws/server.py = `agentstead serve` unchanged plus bench-only routes in that "
               "process (JSON access log to a file, SQLite synchronous=FULL on the disk above, "
               "AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE=1000000 because 2,000 handshakes of one user exceed "
               f"the default 1,200/min). {args.sockets} sockets per path, authenticated with an admin API "
               f"token, in 2 client processes per path (bench/ws/client.py, uvloop, raw RFC 6455 frames); "
               "all sockets of a path subscribe to one topic. Caddy: caddy/Caddyfile, plain HTTP on "
               "loopback, access log to a file. Nothing is pinned: server, clients and Caddy share the "
               "cores.\n")

    # ---- summary
    out.append("### Fan-out (medians over rounds)\n")
    out.append("| path | load | offered deliveries/s | **delivered/s** | p50 ms | **p99 ms** | max ms | missing "
               "| closed | server CPU µs/delivery | clients CPU µs/delivery | Caddy CPU µs/delivery "
               "| server loop lag p99 ms |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for kind in kinds:
        for path in ("direct", "caddy"):
            rs = [r[path][kind] for r in rounds]
            s = {
                "per_s": med([r["per_s"] for r in rs]), "p50": med([r["p50_ms"] for r in rs]),
                "p99": med([r["p99_ms"] for r in rs]), "max": max(r["max_ms"] for r in rs),
                "missing": sum(r["missing"] for r in rs),
                "closed": sum(sum(r["closed"].values()) for r in rs),
                "srv": med([r["cpu_us"]["server"] for r in rs]),
                "cli": med([sum(v for k, v in r["cpu_us"].items() if k.startswith(path + "-client"))
                            for r in rs]),
                "caddy": med([r["cpu_us"]["caddy"] for r in rs]) if path == "caddy" else None,
                "lag": med([r["lag_p99_ms"] for r in rs]),
            }
            summary[(path, kind)] = s
            load = (f"{rs[0]['rate']:g} events/s × {args.duration:g} s" if kind != "burst"
                    else f"{args.burst} events at once")
            offered = rs[0]["offered"]
            out.append(f"| {path} | {load} | {fmt(offered)} | **{fmt(s['per_s'])}** | {fmt(s['p50'], 1)} "
                       f"| **{fmt(s['p99'], 1)}** | {fmt(s['max'], 1)} | {s['missing']} | {s['closed']} "
                       f"| {fmt(s['srv'], 1)} | {fmt(s['cli'], 1)} | {fmt(s['caddy'], 1)} | {fmt(s['lag'], 1)} |")
    out.append("")
    out.append("Latency = client receive time − publish time (before the event-log append: it includes "
               "waiting for the batch, the fsync'd commit, the fan-out and the socket writes). For the "
               "burst, latency is mostly queueing behind the other events of the burst. missing = "
               "deliveries expected but not received (all rounds); closed = sockets the server closed "
               "(4008 slow consumer) during the measurements. CPU µs/delivery = user+system CPU of the "
               "process (all threads, /proc) during the measurement ÷ deliveries. Server loop lag = how "
               "late a 10 ms sleep in the server's event loop wakes up (bench monitor), p99 during the "
               "measurement.\n")

    out.append("### Caddy / direct (same run)\n")
    out.append("| load | delivered/s Caddy/direct | p99 Caddy/direct | per-round delivered/s ratio |")
    out.append("|---|---:|---:|---|")
    for kind in kinds:
        d, c = summary[("direct", kind)], summary[("caddy", kind)]
        per_round = [r["caddy"][kind]["per_s"] / r["direct"][kind]["per_s"] for r in rounds]
        out.append(f"| {kind} | **{c['per_s'] / d['per_s']:.2f}** | **{c['p99'] / d['p99']:.2f}** "
                   f"| {', '.join(f'{x:.2f}' for x in per_round)} |")
    out.append("")

    # ---- memory
    out.append("### Memory per idle socket\n")
    out.append("| | sockets | VmRSS before KiB | VmRSS after KiB | **KiB per socket** | handshake+subscribe "
               "time for all |")
    out.append("|---|---:|---:|---:|---:|---:|")
    out.append(f"| server (direct sockets) | {mem['direct_n']} | {mem['rss0']:,} | {mem['rss1']:,} "
               f"| **{(mem['rss1'] - mem['rss0']) / mem['direct_n']:.1f}** | {connect['direct']:.1f} s |")
    out.append(f"| server (+ sockets through Caddy) | {mem['caddy_n']} | {mem['rss1']:,} | {mem['rss2']:,} "
               f"| {(mem['rss2'] - mem['rss1']) / mem['caddy_n']:.1f} | {connect['caddy']:.1f} s |")
    out.append(f"| Caddy | {mem['caddy_n']} | {mem['caddy0']:,} | {mem['caddy1']:,} "
               f"| {(mem['caddy1'] - mem['caddy0']) / mem['caddy_n']:.1f} | |")
    out.append("")
    out.append("VmRSS from /proc/<pid>/status after gc.collect() in the server and 2 s of quiet; kernel "
               "socket buffers are not in it. Each socket is subscribed to one topic (plus the "
               "connection's own users/<id> watch).\n")

    # ---- append
    out.append("### Event-log append\n")
    bus = [a for a in appends if a["mode"] == "bus"]
    single = [a for a in appends if a["mode"] == "single"]
    rates = lambda rows: ", ".join(f"{a['per_second']:,.0f}" for a in rows)
    b_rate, s_rate = med([a["per_second"] for a in bus]), med([a["per_second"] for a in single])
    out.append("| method | events per round | transactions per round | **events/s** (median) | per round |")
    out.append("|---|---:|---:|---:|---|")
    out.append(f"| A: Bus.publish_nowait × {args.append_n:,}, until the last future resolves | "
               f"{bus[0]['events']:,} | {med([a['transactions'] for a in bus]):.0f} | **{b_rate:,.0f}** "
               f"| {rates(bus)} |")
    out.append(f"| B: one INSERT per Database.write() (baseline, ≤ {args.single_seconds:g} s) | "
               f"{med([a['events'] for a in single]):,.0f} | = events | **{s_rate:,.0f}** "
               f"| {rates(single)} |")
    out.append(f"\nA/B = **{b_rate / s_rate:.1f}×**. Both run inside the server process (the real Database, "
               "synchronous=FULL, WAL), alternating A B / B A; each row the bus writes is the same as B's "
               "(topic, type, JSON data, time).\n")

    # ---- every round
    out.append("### Every round\n")
    out.append("| round | path | load | delivered | window s | delivered/s | p50 ms | p99 ms | max ms "
               "| server µs/del | publish: durable after s, batches |")
    out.append("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for i, r in enumerate(rounds):
        for path in r["order"]:
            for kind in kinds:
                x = r[path][kind]
                out.append(f"| {i + 1} | {path} | {kind} | {x['delivered']:,} | {x['window_s']:.2f} "
                           f"| {fmt(x['per_s'])} | {fmt(x['p50_ms'], 1)} | {fmt(x['p99_ms'], 1)} "
                           f"| {fmt(x['max_ms'], 1)} | {fmt(x['cpu_us']['server'], 1)} "
                           f"| {x['publish']['durable_seconds']:.2f}, {x['publish']['batches']} |")
    out.append("")

    # ---- verdict
    target_kind = f"paced-{args.target_rate:g}"
    d = summary[("direct", target_kind)]
    kib = (mem["rss1"] - mem["rss0"]) / mem["direct_n"]
    met_fan = d["per_s"] >= TARGET_DELIVERIES * 0.99 and d["p99"] <= TARGET_P99_MS and d["missing"] == 0
    out.append("### Verdict\n")
    out.append(f"- Fan-out: ≥ {TARGET_DELIVERIES:,} deliveries/s with p99 ≤ {TARGET_P99_MS:g} ms at "
               f"{args.sockets:,} sockets (direct, paced at {fmt(args.target_rate * args.sockets)}/s offered): "
               f"delivered {fmt(d['per_s'])}/s, p99 {fmt(d['p99'], 1)} ms, {d['missing']} missing → "
               f"**{'MET' if met_fan else 'NOT MET'}**. Burst capacity: "
               f"{fmt(summary[('direct', 'burst')]['per_s'])}/s direct.")
    out.append(f"- Memory: ≤ {TARGET_KB_PER_SOCKET:g} KB per idle socket: {kib:.1f} KiB "
               f"({kib * 1.024:.1f} KB) → **{'MET' if kib * 1.024 <= TARGET_KB_PER_SOCKET else 'NOT MET'}**.")
    out.append(f"- Event log: ≥ {TARGET_APPEND:,} appended events/s: {b_rate:,.0f}/s → "
               f"**{'MET' if b_rate >= TARGET_APPEND else 'NOT MET'}** ({b_rate / s_rate:.0f}× the "
               "one-transaction-per-event baseline).")
    for kind in kinds[:-1]:
        if kind != target_kind:
            x = summary[("direct", kind)]
            out.append(f"- At {fmt(x['per_s'])} deliveries/s ({kind}): p99 {fmt(x['p99'], 1)} ms direct.")
    c = summary[("caddy", target_kind)]
    out.append(f"- Through Caddy (paced): {fmt(c['per_s'])}/s, p99 {fmt(c['p99'], 1)} ms "
               f"(delivered/s ×{c['per_s'] / d['per_s']:.2f}, p99 ×{c['p99'] / d['p99']:.2f} vs direct).")
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description="WebSocket fan-out benchmark (real app, direct and through Caddy).")
    p.add_argument("--sockets", type=int, default=1000, help="sockets per path (default 1000)")
    p.add_argument("--rates", default="25,50",
                   help="paced events/s, comma-separated (default 25,50; 50 × 1,000 sockets = the 50,000/s target)")
    p.add_argument("--duration", type=float, default=5, help="seconds of paced publishing per measurement")
    p.add_argument("--burst", type=int, default=200, help="events published at once (capacity)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--append-n", type=int, default=50_000)
    p.add_argument("--append-rounds", type=int, default=3)
    p.add_argument("--single-seconds", type=float, default=3.0, help="time box of the baseline per round")
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "out" / "ws.md")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--server-variants", default="", metavar="A,B",
                   help="ablation: monkeypatch the bench server (see bench/ws/server.py VARIANTS); "
                        "the report says so. Not for the reference tables.")
    p.add_argument("--py-spy", type=Path, default=None, metavar="EXE",
                   help="profile the server with this py-spy during round 1 (direct, paced and burst); "
                        "summaries go to bench/out/ws-profile-*.md")
    p.add_argument("--native", action="store_true", help="with --py-spy: native frames too")
    args = p.parse_args()
    args.rates = [float(x) for x in args.rates.split(",") if x.strip()]
    args.target_rate = TARGET_DELIVERIES / args.sockets
    if args.target_rate not in args.rates:
        args.rates.append(args.target_rate)
    kit.stop_on_signals()
    kit.raise_nofile()

    tmp = Path(tempfile.mkdtemp(prefix="agentstead-bench-ws-"))
    facts = kit.machine_facts(("orjson", "websockets"), caddy=True, state_dir=tmp)
    facts["agentstead source"] = kit.source_description()
    print("Machine:\n" + "\n".join(f"  {k}: {v}" for k, v in facts.items()), flush=True)
    started = dt.datetime.now(dt.timezone.utc)
    server = caddy = None
    clients: dict[str, list[ClientProc]] = {}
    try:
        port = kit.free_port()
        env = kit.server_env(tmp, port, AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000",
                             BENCH_VARIANTS=args.server_variants)
        server = kit.Server("agentstead", [sys.executable, str(HERE / "server.py")], env, port, tmp / "server.log")
        server.start()
        server.wait_ready()
        print(f"server {server.base} (pid {server.proc.pid})", flush=True)
        caddy = kit.start_caddy(tmp / "caddy", port)
        print(f"caddy {caddy.url} (pid {caddy.proc.pid})", flush=True)
        admin = sign_in(server.base, env, "bench-ws@example.org")

        # Warm the WebSocket path once (imports, first handshake), then read the baseline RSS.
        warm = ClientProc("warm", port, admin.api_token, "users/bench-warm", 5, tmp / "client-warm.log")
        warm.wait_ready()
        warm.stop()
        time.sleep(1)
        post(server.base, "/bench/gc", {}, 10)
        time.sleep(2)
        mem = {"rss0": kit.rss_kib(server.proc.pid), "caddy0": kit.rss_kib(caddy.proc.pid)}

        half = [args.sockets // 2, args.sockets - args.sockets // 2]
        connect = {}
        for path, target_port in (("direct", port), ("caddy", caddy.port)):
            t0 = time.monotonic()
            clients[path] = [ClientProc(f"{path}-client{i}", target_port, admin.api_token, f"users/bench-{path}",
                                        half[i], tmp / f"client-{path}-{i}.log") for i in range(2)]
            readies = [c.wait_ready() for c in clients[path]]
            connect[path] = time.monotonic() - t0
            ok = sum(r["ready"] for r in readies)
            print(f"{path}: {ok} sockets subscribed in {connect[path]:.1f}s "
                  f"({sum(r['failed'] for r in readies)} failed)", flush=True)
            if ok != args.sockets:
                raise RuntimeError(f"{path}: only {ok} of {args.sockets} sockets subscribed; see {tmp}")
            post(server.base, "/bench/gc", {}, 10)
            time.sleep(2)
            if path == "direct":
                mem["rss1"], mem["direct_n"] = kit.rss_kib(server.proc.pid), ok
            else:
                mem["rss2"], mem["caddy_n"] = kit.rss_kib(server.proc.pid), ok
                mem["caddy1"] = kit.rss_kib(caddy.proc.pid)
        print(f"memory: {mem}", flush=True)

        pids = {"server": server.proc.pid, "caddy": caddy.proc.pid}
        for path in clients:
            for c in clients[path]:
                pids[c.name] = c.proc.pid
        # warm-up: a short paced run on each path (discarded)
        for path in ("direct", "caddy"):
            fanout(server.base, clients[path], f"users/bench-{path}", n=int(args.target_rate),
                   rate=args.target_rate,
                   pids=pids, sockets=args.sockets)
        rounds = []
        for i in range(args.rounds):
            order = ("direct", "caddy") if i % 2 == 0 else ("caddy", "direct")
            r = {"order": order}
            for path in order:
                r[path] = {}
                spy = {}
                if args.py_spy and i == 0 and path == "direct":
                    spy = {kind: kit.PySpy(args.py_spy, server.proc.pid, tmp / f"profile-{kind}.txt",
                                           args.duration if kind != "burst" else 3, native=args.native)
                           for kind in (f"paced-{args.target_rate:g}", "burst")}
                for rate in args.rates:
                    kind = f"paced-{rate:g}"
                    r[path][kind] = fanout(server.base, clients[path], f"users/bench-{path}",
                                           n=int(rate * args.duration), rate=rate, pids=pids,
                                           sockets=args.sockets, profile=spy.get(kind))
                r[path]["burst"] = fanout(server.base, clients[path], f"users/bench-{path}", n=args.burst,
                                          rate=0, pids=pids, sockets=args.sockets, profile=spy.get("burst"))
                for kind, prof in spy.items():
                    dest = args.output.parent / f"ws-profile-{kind}.md"
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_text(f"# py-spy: server during direct {kind} fan-out (round 1)\n\n"
                                    + kit.summarize_profile(prof.out))
                    print(f"profile: {dest}", flush=True)
                for kind in r[path]:
                    x = r[path][kind]
                    print(f"round {i + 1} {path:6} {kind:8} delivered {x['delivered']:>8,} "
                          f"{x['per_s']:>9,.0f}/s p50 {x['p50_ms']:7.1f} ms p99 {x['p99_ms']:7.1f} ms "
                          f"max {x['max_ms']:7.1f} ms missing {x['missing']} closed {x['closed']} "
                          f"server {x['cpu_us']['server']:.1f} µs/delivery", flush=True)
            rounds.append(r)

        appends = []
        for i in range(args.append_rounds):
            for mode in (("bus", "single") if i % 2 == 0 else ("single", "bus")):
                a = post(server.base, "/bench/append", {"mode": mode, "n": args.append_n, "topic": "users/bench-append",
                                                        "max_seconds": args.single_seconds}, timeout=300)
                appends.append(a)
                print(f"append round {i + 1} {mode:6} {a['events']:>6} events in {a['seconds']:.2f}s = "
                      f"{a['per_second']:,.0f}/s ({a['transactions']} transactions)", flush=True)

        if server.proc.poll() is not None:
            raise RuntimeError("the server died during the run")
        finished = dt.datetime.now(dt.timezone.utc)
        report = build_report(args, facts, started, finished, mem, rounds, appends, connect)
        kit.write_report(args.output, report)
        return 0
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError, TimeoutError) as exc:
        print(f"ws/run.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        kit.clean_up(tmp, args.keep, *(c for cs in clients.values() for c in cs), caddy, server)


if __name__ == "__main__":
    sys.exit(main())
