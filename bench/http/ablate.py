#!/usr/bin/env python3
"""Where does Agentstead's per-request time go? Ablation runs, without touching src/.

Starts the baseline (FastAPI/uvicorn, as in run.py) and several copies of
`agentstead serve`, each with one or more parts of the request path replaced
by a monkeypatch applied before the server starts, then drives one endpoint
(default: the database endpoint) with wrk in rotating order, and reports
req/s, p99 and server CPU µs/request per variant, with ratios to the baseline
and to the unpatched Agentstead. The difference between a variant and
"as-is" is what that part costs.

Patches (server side, `ablate.py serve --patch a,b`):
  cache-latest    `latest` in /api/system/schema computed once, not by listing
                  and reading the migration files on every request
  fetchall-once   the query as one aiosqlite round trip (execute_fetchall)
                  instead of three (execute, fetchall, cursor close)
  sqlite-inline   the query on a plain read-only sqlite3 connection, called
                  inline on the event loop (no thread hop at all)
  no-access-log   the agentstead.access logger disabled (other logs stay on)
  no-metrics      the Prometheus counters/histogram/gauge replaced by no-ops
  no-request-id   no uuid4 per request (the id is a constant)
  public-schema   on revisions where /api/system/schema needs an admin, declare it public
                  (the auth middleware still runs; no credential lookup), to compare the
                  database path with the unauthenticated baseline
  gil-1ms         sys.setswitchinterval(0.001) instead of 5 ms (a diagnostic: how much
                  of the aiosqlite cost is threads waiting for the GIL)
  asyncio-loop    asyncio's own event loop instead of uvloop (server.run falls back to it
                  when uvloop cannot be imported)

Usage:
  .venv/bin/python bench/http/ablate.py [--rev 67215d2] [--duration 10] [--rounds 3]
        [--threads 1] [--connections 64] [--endpoint schema]
        [--variants "as-is;cache-latest;cache-latest,fetchall-once;..."]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PATCHES = ("cache-latest", "fetchall-once", "sqlite-inline", "no-access-log", "no-metrics", "no-request-id",
           "gil-1ms", "public-schema", "asyncio-loop")
DEFAULT_VARIANTS = ";".join([
    "as-is",
    "no-access-log",
    "no-metrics",
    "no-request-id",
    "cache-latest",
    "cache-latest,fetchall-once",
    "cache-latest,sqlite-inline",
    "cache-latest,fetchall-once,no-access-log,no-metrics,no-request-id",
])


# ---------------------------------------------------------------- server side

def apply_patches(names: list[str]) -> None:
    import logging

    import agentstead.app
    import agentstead.http.meta as meta
    import agentstead.http.middleware as middleware
    import agentstead.store.health as health
    from agentstead.store.migrate import latest_version

    sql = "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"

    if "cache-latest" in names:
        value = latest_version()
        meta.latest_version = lambda: value

    if "fetchall-once" in names:
        async def applied_migrations(db):
            async with db.read() as conn:
                rows = await conn.execute_fetchall(sql)
            return [health.AppliedMigration(*row) for row in rows]
        health.applied_migrations = applied_migrations

    if "sqlite-inline" in names:
        conns: dict[str, sqlite3.Connection] = {}

        async def applied_migrations(db):  # noqa: F811
            conn = conns.get(str(db.path))
            if conn is None:
                conn = sqlite3.connect(f"file:{db.path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 5000")
                conns[str(db.path)] = conn
            rows = conn.execute(sql).fetchall()
            return [health.AppliedMigration(*row) for row in rows]
        health.applied_migrations = applied_migrations

    if "no-access-log" in names:
        logging.getLogger("agentstead.access").disabled = True

    if "no-metrics" in names:
        class _Noop:
            def labels(self, *a, **k):
                return self

            def inc(self, *a, **k):
                pass

            dec = observe = set = inc

        class NoMetrics:
            def __init__(self):
                self.requests = self.latency = self.in_flight = self.db_probe = self.db_probe_ok = _Noop()

            def render(self) -> bytes:
                return b""
        agentstead.app.Metrics = NoMetrics

    if "public-schema" in names:
        meta.schema.__access__ = "public"  # read by the auth middleware at request time

    if "gil-1ms" in names:
        sys.setswitchinterval(0.001)

    if "asyncio-loop" in names:
        sys.modules["uvloop"] = None   # `import uvloop` raises ImportError

    if "no-request-id" in names:
        class _Const:
            hex = "0" * 32
        middleware.uuid.uuid4 = lambda: _Const  # the module's `uuid` is the stdlib module
        # (patching the stdlib function is fine: this process only serves the benchmark)


def serve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="ablate.py serve")
    p.add_argument("--patch", default="")
    args = p.parse_args(argv)
    names = [n for n in args.patch.split(",") if n and n != "as-is"]
    for n in names:
        if n not in PATCHES:
            p.error(f"unknown patch {n!r}")
    apply_patches(names)
    from agentstead.cli import main
    return main(["serve"])


# ---------------------------------------------------------------- driver

def drive() -> int:
    import run  # bench/http/run.py

    p = argparse.ArgumentParser(description="Ablation runs: what each part of Agentstead's request path costs.")
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--readers", type=int, default=4)
    p.add_argument("--endpoint", default="schema", choices=sorted(run.ENDPOINTS))
    p.add_argument("--variants", default=DEFAULT_VARIANTS,
                   help="';'-separated variants, each a ','-separated list of patches (or as-is)")
    p.add_argument("--rev", default=None, help="git revision of src/ to measure (default: working tree)")
    p.add_argument("--agentstead-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for every Agentstead variant, repeatable")
    p.add_argument("--output", type=Path, default=run.ROOT / "bench" / "out" / "http-ablate.md")
    args = p.parse_args()
    variants = [v.strip() for v in args.variants.split(";") if v.strip()]
    for v in variants:
        for n in v.split(","):
            if n != "as-is" and n not in PATCHES:
                p.error(f"unknown patch {n!r}")

    def _stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)

    facts = run.machine_facts()
    facts["agentstead source"] = run.source_description(args.rev)
    for k, v in facts.items():
        print(f"  {k}: {v}")
    started = dt.datetime.now(dt.timezone.utc)
    tmp = Path(tempfile.mkdtemp(prefix="agentstead-bench-ablate-"))
    servers: dict[str, run.Server] = {}
    try:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSTEAD_")}
        pythonpath = str(HERE)
        migrations_dir = run.ROOT / "src" / "agentstead" / "store" / "migrations"
        if args.rev:
            src = run.extract_rev(args.rev, tmp / "rev")
            pythonpath = str(src) + os.pathsep + pythonpath
            migrations_dir = src / "agentstead" / "store" / "migrations"
        env0 = dict(base_env, PYTHONPATH=pythonpath, AGENTSTEAD_STATE_DIR=str(tmp / "migrate"),
                    AGENTSTEAD_HOST=run.HOST, AGENTSTEAD_LOG_FORMAT="json", AGENTSTEAD_LOG_LEVEL="info",
                    AGENTSTEAD_DB_READERS=str(args.readers), AGENTSTEAD_SHUTDOWN_GRACE_SECONDS="2")
        for item in args.agentstead_env:
            name, sep, value = item.partition("=")
            if not sep or not name:
                p.error(f"--agentstead-env wants NAME=VALUE, got {item!r}")
            env0[name] = value
        baseline_db = run.prepare_databases(tmp, [sys.executable, "-m", "agentstead"], env0)
        master = Path(env0["AGENTSTEAD_STATE_DIR"]) / "agentstead.db"

        port = run.free_port()
        servers["baseline"] = run.Server(
            "baseline", [sys.executable, str(HERE / "baseline_fastapi.py"), "--host", run.HOST,
                         "--port", str(port), "--db", str(baseline_db), "--readers", str(args.readers),
                         "--migrations-dir", str(migrations_dir)],
            base_env, port, tmp / "baseline.log")
        for i, v in enumerate(variants):
            state = tmp / f"v{i}"
            state.mkdir()
            with sqlite3.connect(master) as a, sqlite3.connect(state / "agentstead.db") as b:
                a.backup(b)
            c = sqlite3.connect(state / "agentstead.db")
            c.execute("PRAGMA journal_mode = WAL")
            c.close()
            port = run.free_port()
            env = dict(env0, AGENTSTEAD_STATE_DIR=str(state), AGENTSTEAD_PORT=str(port))
            servers[v] = run.Server(v, [sys.executable, str(HERE / "ablate.py"), "serve", "--patch", v],
                                    env, port, tmp / f"v{i}.log")
        for s in servers.values():
            s.start()
            s.wait_ready()
            s.get_json(run.ENDPOINTS[args.endpoint])  # fails loudly on a 401 or a broken patch
            print(f"{s.name}: {s.base} pid {s.proc.pid}")

        path = run.ENDPOINTS[args.endpoint]
        names = list(servers)
        for name in names:
            if args.warmup:
                s = servers[name]
                run.run_wrk(s.base + path, threads=args.threads, connections=args.connections,
                            duration=args.warmup, pid=s.proc.pid)
        results: dict[str, list] = {n: [] for n in names}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]  # rotate the start every round
            if r % 2:
                order.reverse()
            for name in order:
                s = servers[name]
                res = run.run_wrk(s.base + path, threads=args.threads, connections=args.connections,
                                  duration=args.duration, pid=s.proc.pid)
                if res.errors or res.non_2xx:
                    print(f"warning: {name}: {res.errors} socket errors, {res.non_2xx} non-2xx")
                results[name].append(res)
                print(f"round {r + 1} {name:70} {res.rps:7.0f} req/s p50 {res.p50_ms:7.2f} "
                      f"p99 {res.p99_ms:7.2f} ms cpu {res.cpu_us_per_req:5.0f} µs/req", flush=True)

        med = lambda n, a: statistics.median(getattr(x, a) for x in results[n])
        b_rps, b_p99 = med("baseline", "rps"), med("baseline", "p99_ms")
        a_rps, a_cpu = med(variants[0], "rps"), med(variants[0], "cpu_us_per_req")
        lines = [f"Ablation on `GET {path}` — {started:%Y-%m-%d %H:%M} UTC, "
                 f"`wrk -t{args.threads} -c{args.connections} -d{args.duration}s`, {args.rounds} rounds "
                 f"(rotating order), medians. Source: {facts['agentstead source']}.\n",
                 f"| variant | req/s | vs baseline | vs {variants[0]} | p50 ms | p99 ms | p99 vs baseline "
                 f"| CPU µs/req | Δ CPU µs/req vs {variants[0]} |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name in names:
            rps, p99, cpu = med(name, "rps"), med(name, "p99_ms"), med(name, "cpu_us_per_req")
            label = "baseline (FastAPI/uvicorn)" if name == "baseline" else f"Agentstead {name}"
            lines.append(f"| {label} | {rps:.0f} | {rps / b_rps:.2f} | {rps / a_rps:.2f} "
                         f"| {med(name, 'p50_ms'):.2f} | {p99:.2f} | {p99 / b_p99:.2f} | {cpu:.0f} "
                         f"| {cpu - a_cpu:+.0f} |")
        report = "\n".join(lines) + "\n"
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report)
        print()
        print(report)
        print(f"report written to {args.output}")
        return 0
    except KeyboardInterrupt:
        print("interrupted; stopping servers", file=sys.stderr)
        return 130
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        sys.exit(serve(sys.argv[2:]))
    sys.exit(drive())
