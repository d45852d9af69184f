#!/usr/bin/env python3
"""Auth cost benchmark: what authenticating a request costs, with wrk against `agentstead serve`.

Same endpoint, three ways, in one run on one server: `GET /healthz`
  A anonymous (no credentials; the baseline),
  B with `Authorization: Bearer ast_…` (a valid API token),
  C with `Cookie: as_access=…` (the access JWT from a sign-in link).
/healthz is public, but the auth middleware authenticates whenever credentials are sent
(principal attached to the request), so B and C pay the authentication as every request of
a signed-in client does: reading the credential (the Authorization header; for C the
Cookie header), its SHA-256, and the identity service's map of remembered principals
(valid until the token's or session's end, dropped by every revocation). The first request
of each credential after the server starts or after an invalidation resolves it fully
(for C the HS256 JWT check, session family and user; for B the token row and user); the
warm-up runs those.

The server is the production entry point with its JSON access log (to a file). Two settings
differ from the defaults: AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE=1000000 (wrk is one address /
one user; the limiter still runs for every request, anonymous or not) and
AGENTSTEAD_ACCESS_TOKEN_TTL_SECONDS=3600 (the access cookie must not expire mid-run: on a
public route an expired cookie is silently ignored, which would measure the wrong path).
Both credentials are checked with GET /api/me before and after the measurements.

Order rotates per round (A B C, B C A, C A B); medians; ratios against A from the same run.

Usage: .venv/bin/python bench/auth/run.py [--duration 7] [--connections 64] [--threads 1]
                                          [--rounds 5] [--warmup 3] [--output bench/out/auth.md]
About 2 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "ws"))

import benchkit as kit  # noqa: E402
from signin import agentstead_bin, check_credentials, sign_in  # noqa: E402

ROOT = kit.ROOT
TARGET_COST = 0.10   # authenticated throughput at least 90 % of anonymous
VARIANTS = ("anonymous", "api-token", "cookie")
LABEL = {"anonymous": "A anonymous", "api-token": "B Bearer API token", "cookie": "C session cookie"}


def build_report(args, facts, results, started, finished, checks, log_lines) -> str:
    med = kit.median
    out = []
    cmd = (f"python bench/auth/run.py --duration {args.duration} --connections {args.connections} "
           f"--threads {args.threads} --rounds {args.rounds} --warmup {args.warmup}")
    out.append(f"Run: `{cmd}` — {started:%Y-%m-%d %H:%M} to {finished:%H:%M} UTC\n")
    out.append(f"Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency "
               f"[-H credential] http://127.0.0.1:PORT/healthz`, {args.warmup} s warm-up per variant "
               "(discarded); order rotates per round.\n")
    out.append("Machine:\n")
    out += [f"- {k}: {v}" for k, v in facts.items()]
    out.append("")
    out.append("Server: `agentstead serve` (aiohttp + uvloop, JSON access log to a file), "
               "AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE=1000000, AGENTSTEAD_ACCESS_TOKEN_TTL_SECONDS=3600. "
               f"Credentials checked with GET /api/me: {checks}. wrk and the server share the cores; nothing "
               "is pinned.\n")
    out.append("### Summary (medians over rounds)\n")
    out.append("| request | req/s | **req/s ÷ anonymous** | **throughput cost** | p50 ms | p99 ms "
               "| p99 ÷ anonymous | server CPU µs/req | added CPU µs/req | CPU-based cost "
               "| per-round req/s ratio | errors |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    base = results["anonymous"]
    b_rps, b_p99, b_cpu = (med([r.rps for r in base]), med([r.p99_ms for r in base]),
                           med([r.cpu_us_per_req for r in base]))
    summary = {}
    for v in VARIANTS:
        rs = results[v]
        rps, p50, p99, cpu = (med([r.rps for r in rs]), med([r.p50_ms for r in rs]), med([r.p99_ms for r in rs]),
                              med([r.cpu_us_per_req for r in rs]))
        per_round = [x.rps / y.rps for x, y in zip(rs, base)]
        errors = sum(r.errors + r.non_2xx for r in rs)
        summary[v] = (rps / b_rps, errors, 1 - b_cpu / cpu)
        out.append(f"| {LABEL[v]} | {rps:,.0f} | **{rps / b_rps:.3f}** | **{(1 - rps / b_rps) * 100:+.1f} %** "
                   f"| {p50:.2f} | {p99:.2f} | {p99 / b_p99:.2f} | {cpu:.0f} | {cpu - b_cpu:+.0f} "
                   f"| {(1 - b_cpu / cpu) * 100:+.1f} % "
                   f"| {', '.join(f'{x:.3f}' for x in per_round)} | {errors} |")
    out.append("")
    out.append("throughput cost = 1 − req/s ÷ anonymous req/s (negative: faster than anonymous, i.e. noise). "
               "CPU µs/req = the server process's user+system CPU time (all threads, /proc) ÷ requests. "
               "CPU-based cost = 1 − anonymous CPU/req ÷ this CPU/req: the throughput cost a CPU-bound "
               "server would see, less sensitive to the neighbours on a shared machine than req/s. "
               "errors = socket errors + non-2xx responses.\n")
    out.append("### Every round\n")
    out.append("| round | request | req/s | p50 ms | p99 ms | requests | CPU µs/req | errors |")
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for i, order in enumerate(kit.alternating(list(VARIANTS), args.rounds)):
        for v in order:
            r = results[v][i]
            out.append(f"| {i + 1} | {LABEL[v]} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.requests:,} "
                       f"| {r.cpu_us_per_req:.0f} | {r.errors + r.non_2xx} |")
    out.append("")
    out.append(f"Access-log lines written: {log_lines:,}\n")
    out.append("### Verdict\n")
    out.append(f"Target: authentication costs ≤ {TARGET_COST:.0%} of throughput.\n")
    for v in ("api-token", "cookie"):
        ratio, errors, cpu_cost = summary[v]
        cost = 1 - ratio
        ok = cost <= TARGET_COST and errors == 0
        out.append(f"- {LABEL[v]}: {cost * 100:.1f} % of req/s (CPU-based: {cpu_cost * 100:.1f} %) → "
                   f"**{'MET' if ok else 'NOT MET'}**"
                   + (f" ({errors} errors: not valid)" if errors else ""))
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description="Auth cost: /healthz anonymous vs API token vs session cookie (wrk).")
    p.add_argument("--duration", type=int, default=7)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "out" / "auth.md")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--py-spy", type=Path, default=None, metavar="EXE",
                   help="after the measurements, profile the server under each load with this py-spy; "
                        "summaries to bench/out/auth-profile-*.md")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        p.error("wrk is not installed (Debian: apt-get install wrk)")
    kit.stop_on_signals()

    tmp = Path(tempfile.mkdtemp(prefix="agentstead-bench-auth-"))
    facts = kit.machine_facts(("PyJWT", "cryptography"), state_dir=tmp)
    facts["agentstead source"] = kit.source_description()
    print("Machine:\n" + "\n".join(f"  {k}: {v}" for k, v in facts.items()), flush=True)
    started = dt.datetime.now(dt.timezone.utc)
    server = None
    try:
        port = kit.free_port()
        env = kit.server_env(tmp, port, AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000",
                             AGENTSTEAD_ACCESS_TOKEN_TTL_SECONDS="3600")
        server = kit.Server("agentstead", agentstead_bin() + ["serve"], env, port, tmp / "server.log")
        server.start()
        server.wait_ready()
        print(f"server {server.base} (pid {server.proc.pid})", flush=True)
        who = sign_in(server.base, env, "bench-auth@example.org", role="member", scopes=("read", "write"))
        headers = {"anonymous": {}, "api-token": who.bearer, "cookie": who.cookie_header}
        before = {v: check_credentials(server.base, headers[v]) for v in ("api-token", "cookie")}
        if before != {"api-token": "token", "cookie": "session"}:
            raise RuntimeError(f"credentials not recognised: {before}")
        url = server.base + "/healthz"
        pids = {"server": server.proc.pid}
        wrk = dict(threads=args.threads, connections=args.connections, pids=pids)
        for v in VARIANTS:
            kit.run_wrk(url, headers=headers[v], duration=args.warmup, **wrk)
        results: dict[str, list] = {v: [] for v in VARIANTS}
        for i, order in enumerate(kit.alternating(list(VARIANTS), args.rounds)):
            for v in order:
                r, cpu = kit.run_wrk(url, headers=headers[v], duration=args.duration, **wrk)
                r.server_cpu_s = cpu["server"]
                results[v].append(r)
                print(f"round {i + 1} {v:10} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
                      f"cpu {r.cpu_us_per_req:4.0f} µs/req  errors {r.errors + r.non_2xx}", flush=True)
                if server.proc.poll() is not None:
                    raise RuntimeError(f"the server died; see {server.log}")
        after = {v: check_credentials(server.base, headers[v]) for v in ("api-token", "cookie")}
        if after != before:
            raise RuntimeError(f"credentials changed during the run: {after}")
        checks = "both recognised before and after (`auth.via` = token / session)"
        if args.py_spy:          # after the measured rounds: never perturbs them
            for v in VARIANTS:
                spy = kit.PySpy(args.py_spy, server.proc.pid, tmp / f"profile-{v}.raw", 6).start()
                kit.run_wrk(url, headers=headers[v], duration=8, **wrk)
                spy.wait()
                dest = args.output.parent / f"auth-profile-{v}.md"
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(f"# py-spy: agentstead serve under wrk, GET /healthz, {LABEL[v]}\n\n"
                                + kit.summarize_profile(tmp / f"profile-{v}.raw", top=40))
                print(f"profile: {dest}", flush=True)
        finished = dt.datetime.now(dt.timezone.utc)
        with open(server.log, "rb") as fh:
            log_lines = sum(1 for _ in fh)
        report = build_report(args, facts, results, started, finished, checks, log_lines)
        kit.write_report(args.output, report)
        return 0
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"auth/run.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        kit.clean_up(tmp, args.keep, server)


if __name__ == "__main__":
    sys.exit(main())
