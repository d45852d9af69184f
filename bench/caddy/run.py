#!/usr/bin/env python3
"""Caddy overhead benchmark: `GET /healthz` through Caddy vs straight to the app, one run.

- A: wrk → `agentstead serve` (production entry point, JSON access log to a file).
- B: wrk → Caddy (the real binary, caddy/Caddyfile configured only by its CADDY_* placeholders:
  plain HTTP on a loopback port, JSON access log to a file, request id header, security headers,
  reverse_proxy with flush_interval -1) → the same app process.
- C: the same through a second Caddy started with GOMAXPROCS=1 (a deployment knob, not the
  default; --no-gomaxprocs-variant drops it). Go's scheduler spins idle threads looking for
  work; on 2 cores shared with wrk and the app that spinning competes with them.
Rounds rotate A B C, B C A, …; medians; Caddy's cost = 1 − B req/s ÷ A req/s, and p99 B − A.
CPU time and context switches (all threads, /proc) per request of the app and of Caddy.

One setting differs from the default: AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE=1000000 (anonymous
requests are limited per client address, and wrk — directly or through Caddy, whose
X-Forwarded-For the app trusts on loopback — is one address).

Three processes share the 2 cores under B (wrk, Caddy, the app) against two under A; that is
the real cost of a proxy on the same box, and is what this measures. Nothing is pinned.

Usage: .venv/bin/python bench/caddy/run.py [--duration 8] [--connections 64] [--threads 1]
                                           [--rounds 4] [--warmup 3] [--output bench/out/caddy.md]
                                           [--no-gomaxprocs-variant]
About 2 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ws"))
sys.path.insert(0, str(HERE.parent / "auth"))

import benchkit as kit  # noqa: E402
from signin import agentstead_bin  # noqa: E402

ROOT = kit.ROOT
LABEL = {"direct": "A direct to the app", "caddy": "B through Caddy", "caddy1": "C through Caddy, GOMAXPROCS=1"}


def get(url: str) -> tuple[int, dict, dict]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, dict(r.headers), json.loads(r.read())


def build_report(args, facts, results, started, finished, log_lines, variants) -> str:
    med = kit.median
    out = []
    cmd = (f"python bench/caddy/run.py --duration {args.duration} --connections {args.connections} "
           f"--threads {args.threads} --rounds {args.rounds} --warmup {args.warmup}")
    out.append(f"Run: `{cmd}` — {started:%Y-%m-%d %H:%M} to {finished:%H:%M} UTC\n")
    out.append(f"Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency URL/healthz`, "
               f"{args.warmup} s warm-up per path (discarded); order alternates per round.\n")
    out.append("Machine:\n")
    out += [f"- {k}: {v}" for k, v in facts.items()]
    out.append("")
    out.append("A = `agentstead serve` (aiohttp + uvloop, JSON access log to a file, "
               "AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE=1000000). B = Caddy with caddy/Caddyfile (plain HTTP on "
               "127.0.0.1, JSON access log to a file) → the same app. C = a second Caddy, same Caddyfile, started with "
               "GOMAXPROCS=1 (Go's default here is 2 = nproc). Idle servers stay up while another is measured. "
               "Nothing is pinned.\n")
    out.append("### Summary (medians over rounds)\n")
    out.append("| path | req/s | **req/s ÷ direct** | **Caddy's cost** | p50 ms | p99 ms | **p99 added ms** "
               "| app CPU µs/req | Caddy CPU µs/req | app ctx switches/req | Caddy ctx switches/req "
               "| per-round req/s ratio | errors |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    a = results["direct"]
    a_rps, a_p99 = med([r.rps for r in a]), med([r.p99_ms for r in a])
    summary = {}
    for v in variants:
        rs = results[v]
        rps, p50, p99 = med([r.rps for r in rs]), med([r.p50_ms for r in rs]), med([r.p99_ms for r in rs])
        app_cpu = med([r.cpu["app"] / r.requests * 1e6 for r in rs])
        caddy_cpu = med([r.cpu.get(v, 0.0) / r.requests * 1e6 for r in rs])
        app_cs = med([r.ctx["app"] / r.requests for r in rs])
        caddy_cs = med([r.ctx.get(v, 0) / r.requests for r in rs])
        per_round = [x.rps / y.rps for x, y in zip(rs, a)]
        errors = sum(r.errors + r.non_2xx for r in rs)
        summary[v] = (rps / a_rps, p99 - a_p99, errors)
        out.append(f"| {LABEL[v]} | {rps:,.0f} | **{rps / a_rps:.3f}** | **{(1 - rps / a_rps) * 100:.1f} %** "
                   f"| {p50:.2f} | {p99:.2f} | **{p99 - a_p99:+.2f}** | {app_cpu:.0f} "
                   f"| {caddy_cpu:.0f} | {app_cs:.2f} | {caddy_cs:.2f} "
                   f"| {', '.join(f'{x:.3f}' for x in per_round)} | {errors} |")
    out.append("")
    out.append("Caddy's cost = 1 − B req/s ÷ A req/s. CPU µs/req = user+system CPU of the process during the "
               "measurement (/proc) ÷ requests wrk completed; ctx switches/req likewise (voluntary + "
               "involuntary, all threads). errors = socket errors + non-2xx.\n")
    out.append("### Every round\n")
    out.append("| round | path | req/s | p50 ms | p99 ms | requests | app µs/req | Caddy µs/req | errors |")
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for i, order in enumerate(kit.alternating(list(variants), args.rounds)):
        for v in order:
            r = results[v][i]
            out.append(f"| {i + 1} | {LABEL[v]} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.requests:,} "
                       f"| {r.cpu['app'] / r.requests * 1e6:.0f} | {r.cpu.get(v, 0.0) / r.requests * 1e6:.0f} "
                       f"| {r.errors + r.non_2xx} |")
    out.append("")
    out.append("Log lines written: " + ", ".join(f"{k} {v:,}" for k, v in log_lines.items()) + "\n")
    ratio, added, errors = summary["caddy"]
    out.append("### Result\n")
    out.append(f"Through Caddy: **{ratio:.2f}×** the direct requests/s (Caddy costs {(1 - ratio) * 100:.0f} % "
               f"of throughput on this 2-core box) and **{added:+.2f} ms** at p99."
               + (f" ({errors} errors: not valid.)" if errors else ""))
    if "caddy1" in summary:
        r1, a1, e1 = summary["caddy1"]
        out.append(f"\nWith GOMAXPROCS=1 for Caddy: {r1:.2f}× the direct requests/s, {a1:+.2f} ms at p99.")
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description="/healthz through Caddy vs direct (wrk).")
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "out" / "caddy.md")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--no-gomaxprocs-variant", action="store_true", help="measure A and B only")
    args = p.parse_args()
    variants = ("direct", "caddy") if args.no_gomaxprocs_variant else ("direct", "caddy", "caddy1")
    if shutil.which("wrk") is None:
        p.error("wrk is not installed (Debian: apt-get install wrk)")
    kit.stop_on_signals()

    tmp = Path(tempfile.mkdtemp(prefix="agentstead-bench-caddy-"))
    facts = kit.machine_facts(caddy=True, state_dir=tmp)
    facts["agentstead source"] = kit.source_description()
    print("Machine:\n" + "\n".join(f"  {k}: {v}" for k, v in facts.items()), flush=True)
    started = dt.datetime.now(dt.timezone.utc)
    server = caddy = caddy1 = None
    try:
        port = kit.free_port()
        env = kit.server_env(tmp, port, AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000")
        server = kit.Server("agentstead", agentstead_bin() + ["serve"], env, port, tmp / "server.log")
        server.start()
        server.wait_ready()
        caddy = kit.start_caddy(tmp / "caddy", port)
        print(f"server {server.base} (pid {server.proc.pid}); caddy {caddy.url} (pid {caddy.proc.pid})", flush=True)
        urls = {"direct": server.base + "/healthz", "caddy": caddy.url + "/healthz"}
        pids = {"app": server.proc.pid, "caddy": caddy.proc.pid}
        if "caddy1" in variants:
            caddy1 = kit.start_caddy(tmp / "caddy1", port, GOMAXPROCS="1")
            urls["caddy1"], pids["caddy1"] = caddy1.url + "/healthz", caddy1.proc.pid
        for v in variants[1:]:
            (sa, _, ba), (sb, hb, bb) = get(urls["direct"]), get(urls[v])
            if sa != 200 or sb != 200 or set(ba) != set(bb) or "x-request-id" not in {k.lower() for k in hb}:
                raise RuntimeError(f"the two paths answer differently: {sa} {ba} / {sb} {bb} {hb}")
        wrk = dict(threads=args.threads, connections=args.connections, pids=pids)
        for v in variants:
            kit.run_wrk(urls[v], duration=args.warmup, **wrk)
        results: dict[str, list] = {v: [] for v in variants}
        for i, order in enumerate(kit.alternating(list(variants), args.rounds)):
            for v in order:
                r, cpu = kit.run_wrk(urls[v], duration=args.duration, **wrk)
                r.cpu = cpu
                results[v].append(r)
                print(f"round {i + 1} {v:7} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
                      f"app {cpu['app'] / r.requests * 1e6:4.0f} µs/req  caddy {cpu.get(v, 0) / r.requests * 1e6:4.0f} "
                      f"µs/req  ctx/req app {r.ctx['app'] / r.requests:.2f} caddy {r.ctx.get(v, 0) / r.requests:.2f}  "
                      f"errors {r.errors + r.non_2xx}", flush=True)
                if server.proc.poll() is not None or caddy.proc.poll() is not None:
                    raise RuntimeError("the app or Caddy died during the run")
        finished = dt.datetime.now(dt.timezone.utc)
        log_lines = {}
        for name, path in (("app", server.log), ("caddy access log", tmp / "caddy" / "access.log"),
                           ("caddy (GOMAXPROCS=1) access log", tmp / "caddy1" / "access.log")):
            if not path.exists():
                continue
            with open(path, "rb") as fh:
                log_lines[name] = sum(1 for _ in fh)
        report = build_report(args, facts, results, started, finished, log_lines, variants)
        kit.write_report(args.output, report)
        return 0
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError, TimeoutError) as exc:
        print(f"caddy/run.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        kit.clean_up(tmp, args.keep, caddy, caddy1, server)


if __name__ == "__main__":
    sys.exit(main())
