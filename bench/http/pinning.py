#!/usr/bin/env python3
"""What pinning the app to one CPU (services.agentstead.cpuAffinity) does to its HTTP throughput.

One `agentstead serve` (production entry point, JSON access log to a file, a migrated temporary
database), signed in as an admin with an API token (bench/auth/signin.py). For every round and
endpoint, wrk runs twice against the same server: once with the server's threads free to use
every CPU ("free") and once with all of them on the first CPU ("pinned"; what systemd's
CPUAffinity= does). The affinity of the running server's threads is changed between the two,
and the order flips every round. wrk itself is never pinned.

Endpoints: GET /healthz (no database), GET /api/threads?limit=50 (authenticated; a read on the
reader pool's threads), POST /api/threads (authenticated; a write through the writer thread,
one transaction per request).

--module-shape: as the NixOS module runs it. wrk goes through Caddy (caddy/Caddyfile, free on
every CPU) and Litestream replicates the database to a local replica (`agentstead backup
replicate`, free on every CPU); only the app's threads move between "free" and "pinned".

Usage: .venv/bin/python bench/http/pinning.py [--rounds 4] [--duration 5] [--connections 32]
                                              [--module-shape] [--output bench/out/http-pinning.md]
About 1.5 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ws"))
sys.path.insert(0, str(HERE.parent / "auth"))

import benchkit as kit  # noqa: E402
from signin import agentstead_bin, sign_in  # noqa: E402

ALL = frozenset(os.sched_getaffinity(0))
PLACEMENTS = {"free": ALL, "pinned": frozenset({min(ALL)})}


def wrk(url: str, *, headers: dict[str, str], script: Path | None, connections: int, duration: int,
        pid: int) -> tuple[kit.WrkResult, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if script is not None:
        cmd += ["-s", str(script)]
    cpu0 = kit.proc_cpu_seconds(pid)
    done = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration + 60)
    cpu = kit.proc_cpu_seconds(pid) - cpu0
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip() or done.stdout.strip()}")
    return kit.parse_wrk(done.stdout), cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--module-shape", action="store_true",
                   help="through Caddy, with Litestream replicating (as services.agentstead runs it)")
    p.add_argument("--output", type=Path, default=kit.ROOT / "bench" / "out" / "http-pinning.md")
    args = p.parse_args()
    if len(ALL) < 2:
        print("pinning.py needs at least 2 CPUs", file=sys.stderr)
        return 1
    kit.raise_nofile()
    started = dt.datetime.now(dt.timezone.utc)
    tmp = Path(tempfile.mkdtemp(prefix="agentstead-bench-pinning-"))
    facts = kit.machine_facts((), state_dir=tmp)
    facts["agentstead source"] = kit.source_description()
    port = kit.free_port()
    backup = {"AGENTSTEAD_BACKUP_ENABLED": "true", "AGENTSTEAD_BACKUP_LOCAL_PATH": str(tmp / "replica")}
    env = kit.server_env(tmp, port, AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000",
                         **(backup if args.module_shape else {}))
    server = kit.Server("agentstead", agentstead_bin() + ["serve"], env, port, tmp / "server.log")
    caddy = litestream = None
    results: dict[tuple[str, str], list[tuple[kit.WrkResult, float]]] = {}
    try:
        server.start()
        server.wait_ready()
        base = server.base
        if args.module_shape:
            caddy = kit.start_caddy(tmp / "caddy", port)
            base = caddy.url
            # Litestream's own environment: no AWS_CA_BUNDLE (it refuses a custom endpoint with it).
            litestream = subprocess.Popen(agentstead_bin() + ["backup", "replicate"],
                                          env={k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"},
                                          stdout=open(tmp / "litestream.log", "wb"), stderr=subprocess.STDOUT)
        admin = sign_in(server.base, env, "bench-pinning@example.org")
        auth = {"Authorization": f"Bearer {admin.api_token}"}
        req = urllib.request.Request(server.base + "/api/agents", data=json.dumps({"name": "Bench"}).encode(),
                                     headers={**auth, "Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            agent_id = json.loads(r.read())["id"]
        post = tmp / "post.lua"
        post.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                        f'wrk.body = \'{{"agent_id": "{agent_id}", "title": "bench"}}\'\n')
        endpoints = {"GET /healthz": ("/healthz", {}, None),
                     "GET /api/threads": ("/api/threads?limit=50", auth, None),
                     "POST /api/threads": ("/api/threads", auth, post)}
        pid = server.proc.pid
        for name, (path, headers, script) in endpoints.items():          # warm-up, discarded
            wrk(base + path, headers=headers, script=script, connections=args.connections, duration=2,
                pid=pid)
        for i in range(args.rounds):
            for placement in (("free", "pinned") if i % 2 == 0 else ("pinned", "free")):
                kit.pin(pid, PLACEMENTS[placement])
                for name, (path, headers, script) in endpoints.items():
                    results.setdefault((name, placement), []).append(
                        wrk(base + path, headers=headers, script=script, connections=args.connections,
                            duration=args.duration, pid=pid))
            print(f"round {i + 1}/{args.rounds}", flush=True)
            if litestream is not None and litestream.poll() is not None:
                raise RuntimeError(f"Litestream exited: {(tmp / 'litestream.log').read_text()[-2000:]}")
    finally:
        if litestream is not None:
            litestream.terminate()
            litestream.wait(30)
        kit.clean_up(tmp, False, caddy, server)
    failed = {k: sum(r.errors + r.non_2xx for r, _ in v) for k, v in results.items()}
    if any(failed.values()):
        print(f"errors or non-2xx answers: {failed}", file=sys.stderr)
        return 1
    lines = [f"Run: `python bench/http/pinning.py --rounds {args.rounds} --duration {args.duration} "
             f"--connections {args.connections}{' --module-shape' if args.module_shape else ''}` — "
             f"{started:%Y-%m-%d %H:%M} UTC\n", "Machine:\n"]
    lines += [f"- {k}: {v}" for k, v in facts.items()]
    shape = (" Through Caddy (free) with Litestream replicating to a local replica (free), as the NixOS "
             "module runs it." if args.module_shape else "")
    lines += ["", "wrk -t1, medians of the rounds; \"pinned\": every thread of the server on CPU "
              f"{min(ALL)}; wrk free.{shape}\n",
              "| endpoint | placement | requests/s | **pinned ÷ free** | p50 ms | p99 ms | server CPU µs/request |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for name in ("GET /healthz", "GET /api/threads", "POST /api/threads"):
        base = statistics.median(r.rps for r, _ in results[(name, "free")])
        for placement in ("free", "pinned"):
            rs = results[(name, placement)]
            rps = statistics.median(r.rps for r, _ in rs)
            cpu = statistics.median(c / (r.rps * args.duration) * 1e6 for r, c in rs)
            lines.append(f"| {name} | {placement} | {rps:,.0f} | **{rps / base:.2f}** "
                         f"| {statistics.median(r.p50_ms for r, _ in rs):.2f} "
                         f"| {statistics.median(r.p99_ms for r, _ in rs):.2f} | {cpu:.0f} |")
    text = "\n".join(lines) + "\n"
    kit.write_report(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
