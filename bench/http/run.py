#!/usr/bin/env python3
"""HTTP benchmark: Agentstead (aiohttp) against FastAPI on uvicorn, same run, same machine.

Starts both servers on free 127.0.0.1 ports — `agentstead serve` on a freshly
migrated temporary database, and bench/http/baseline_fastapi.py (uvicorn,
uvloop + httptools, 1 worker) on a copy of that same database file — then
drives each endpoint with wrk, alternating the two servers (A, B, B, A, A, B …:
the order flips every round so slow drift of a noisy machine hits both sides
alike), and writes a Markdown report with every round, the medians, and the
ratios Agentstead / baseline for requests/s and p99.

Both servers keep their access log ON (production config): Agentstead writes
one JSON line per request to stderr (AGENTSTEAD_LOG_FORMAT=json), uvicorn one
text line per request to stdout; each goes to a file in the temporary directory.

Nothing is pinned. wrk and the server share the machine; the default `-t1`
leaves one core for the generator and one for the server (plus its SQLite
threads). Whatever is chosen is used for both sides.

Authentication. From 2d0bd82 on, Agentstead's `/api/system/schema` needs an
administrator. When the endpoint answers 401 without credentials (the working
tree, or such a --rev), run.py signs in as a real client would, once, before
any measurement: `agentstead admin create-user --email bench@example.org
--role admin` and `agentstead admin login-link` on the same state directory,
GET of that link with a cookie jar (the redirect to the public URL is not
followed), `GET /api/me` for the CSRF token, and `POST /api/tokens
{"name": "bench", "scopes": ["admin"]}` with Origin = the public URL and
X-CSRF-Token. wrk then sends `Authorization: Bearer <that token>` to
Agentstead's database endpoint. The baseline does the same SQLite work with no
authentication at all, so this only handicaps Agentstead. `/healthz` is
measured without credentials on both sides.

Rate limiting. Revisions that know AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE limit
API requests per client IP (anonymous) or per user, and wrk is one address and
one user; run.py sets it to its maximum, 1000000 per minute (a bucket of 1M
requests refilled at 16,667/s, far above what either server can do here), for
the Agentstead server only, unless --agentstead-env sets it.

Usage:
  .venv/bin/python bench/http/run.py [--duration 10] [--connections 64] [--threads 1]
                                     [--rounds 3] [--warmup 3] [--rev REV] [--output bench/out/http.md]
Stops by itself; cleans up its processes and temporary files (unless --keep).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.cookiejar
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HOST = "127.0.0.1"
ENDPOINTS = {"healthz": "/healthz", "schema": "/api/system/schema"}
SERVERS = ("agentstead", "baseline")
TARGET_RPS_RATIO = 1.5  # Agentstead >= 1.5x baseline req/s on the database endpoint
TARGET_P99_RATIO = 1.0  # ... with p99 no worse


# ---------------------------------------------------------------- machine facts

def machine_facts() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mhz = ""
    try:
        m = re.search(r"cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text())
        mhz = f"{float(m.group(1)):.0f} MHz" if m else ""
    except OSError:
        pass
    try:
        wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        wrk_version = "wrk not found"
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    versions = {}
    try:
        from importlib.metadata import version
        for pkg in ("aiohttp", "aiosqlite", "uvloop", "fastapi", "starlette", "uvicorn", "httptools",
                    "pydantic", "prometheus_client"):
            try:
                versions[pkg] = version(pkg)
            except Exception:
                versions[pkg] = "?"
    except ImportError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": f"{model}" + (f" ({mhz})" if mhz else ""),
        "memory": mem,
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


# ---------------------------------------------------------------- wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non_2xx: int
    server_cpu_s: float = 0.0
    raw: str = field(default="", repr=False)

    @property
    def cpu_us_per_req(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else float("nan")


def parse_wrk(out: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors = sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non_2xx = int(m.group(1)) if m else 0
    return WrkResult(rps, p50, p99, requests, errors, non_2xx, raw=out)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads included (aiosqlite's workers too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def run_wrk(url: str, *, threads: int, connections: int, duration: int, pid: int,
            headers: dict[str, str] | None = None) -> WrkResult:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(url)
    cpu0 = proc_cpu_seconds(pid)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    cpu1 = proc_cpu_seconds(pid)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    result = parse_wrk(proc.stdout)
    result.server_cpu_s = cpu1 - cpu0
    return result


# ---------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, log: Path):
        self.name, self.cmd, self.env, self.port, self.log = name, cmd, env, port, log
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        fh = open(self.log, "wb")
        # Own session: a Ctrl-C in the terminal reaches run.py only, which then stops this.
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
        fh.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}:\n"
                                   + self.log.read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {self.log}")

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> dict:
        req = urllib.request.Request(self.base + path, headers=headers or {})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def status_of(self, path: str, headers: dict[str, str] | None = None) -> int:
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def prepare_databases(tmp: Path, agentstead_bin: list[str], env: dict[str, str]) -> Path:
    """Migrate Agentstead's database with `agentstead migrate`; copy it for the baseline."""
    subprocess.run(agentstead_bin + ["migrate"], env=env, check=True, capture_output=True, timeout=60)
    src = Path(env["AGENTSTEAD_STATE_DIR"]) / "agentstead.db"
    dst_dir = tmp / "baseline"
    dst_dir.mkdir()
    dst = dst_dir / "baseline.db"
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    conn = sqlite3.connect(dst)
    conn.execute("PRAGMA journal_mode = WAL")  # as Agentstead's writer leaves its file
    conn.close()
    return dst


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The sign-in link redirects to the public URL (http://localhost:47294/ by
    default), where nothing listens: keep the cookies, do not follow."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


BENCH_ADMIN_EMAIL = "bench@example.org"


def admin_api_token(server: Server, cmd: list[str], env: dict[str, str]) -> str:
    """Sign in to a running `agentstead serve` as a new admin; return an admin-scoped API token.

    Uses only the documented paths: the admin CLI on the same state directory, the
    sign-in link, /api/me and POST /api/tokens (cookie session + Origin + X-CSRF-Token)."""
    def cli(*argv: str) -> str:
        proc = subprocess.run(cmd + list(argv), env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"agentstead {' '.join(argv)} failed ({proc.returncode}): "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    cli("admin", "create-user", "--email", BENCH_ADMIN_EMAIL, "--role", "admin")
    out = cli("admin", "login-link", "--email", BENCH_ADMIN_EMAIL)
    m = re.search(r"(https?://\S+?)(/auth/link/\S+)", out)
    if not m:
        raise RuntimeError(f"no sign-in link in the output of agentstead admin login-link: {out!r}")
    public_url, link_path = m.group(1), m.group(2)   # the link is built on AGENTSTEAD_PUBLIC_URL

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
    try:
        with opener.open(server.base + link_path, timeout=10) as r:
            status = r.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    if status not in (302, 303, 307) or not len(jar):
        raise RuntimeError(f"GET of the sign-in link answered {status} and set {len(jar)} cookies")
    with opener.open(server.base + "/api/me", timeout=10) as r:
        me = json.loads(r.read())
    if me["user"]["role"] != "admin" or not me.get("csrf_token"):
        raise RuntimeError(f"/api/me after sign-in: role {me['user']['role']!r}, csrf_token "
                           f"{'present' if me.get('csrf_token') else 'missing'}")
    req = urllib.request.Request(
        server.base + "/api/tokens", method="POST",
        data=json.dumps({"name": "bench", "scopes": ["admin"]}).encode(),
        headers={"Content-Type": "application/json", "Origin": public_url,
                 "X-CSRF-Token": me["csrf_token"]})
    try:
        with opener.open(req, timeout=10) as r:
            created = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"POST /api/tokens answered {exc.code}: "
                           f"{exc.read().decode(errors='replace')[:500]}") from None
    if "admin" not in created.get("scopes", []) or not created.get("token"):
        raise RuntimeError(f"POST /api/tokens did not return an admin token: scopes {created.get('scopes')}")
    return created["token"]


def knows_setting(src_dir: Path, name: str) -> bool:
    """Whether this revision's settings.py defines a setting (older ones reject unknown AGENTSTEAD_*)."""
    try:
        return f'"{name}"' in (src_dir / "agentstead" / "settings.py").read_text()
    except OSError:
        return False


def agentstead_command() -> list[str]:
    script = Path(sys.executable).parent / "agentstead"
    return [str(script)] if script.exists() else [sys.executable, "-m", "agentstead"]


def git(*argv: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


def source_description(rev: str | None) -> str:
    try:
        if rev:
            return f"git {rev} = {git('rev-parse', rev + '^{commit}')} (extracted with git archive)"
        head = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--", "src"))
        return f"working tree at {head}" + (" with uncommitted changes in src/" if dirty else " (clean)")
    except (OSError, subprocess.SubprocessError):
        return "working tree (not a git checkout?)"


def extract_rev(rev: str, dest: Path) -> Path:
    """`git archive REV src` into dest; returns dest/src (read-only use of the repository)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
                             capture_output=True, check=True, timeout=60).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=60)
    return dest / "src"


# ---------------------------------------------------------------- report

def fmt_ms(v: float) -> str:
    return f"{v:.2f}"


def build_report(args, facts, results, started, finished, logs_lines, auth_note: str = "",
                 a_extra_env: dict[str, str] | None = None) -> str:
    """results[endpoint][server] -> list of WrkResult, one per round."""
    cmd = ("python bench/http/run.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in (
            ("duration", args.duration), ("connections", args.connections), ("threads", args.threads),
            ("rounds", args.rounds), ("warmup", args.warmup), ("readers", args.readers)))
        + (f" --rev {args.rev}" if args.rev else "")
        + "".join(f" --agentstead-env {e}" for e in args.agentstead_env))
    wrk = f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency"
    out = []
    out.append(f"Run: `{cmd}` — {started:%Y-%m-%d %H:%M} to {finished:%H:%M} UTC\n")
    out.append(f"Load: `{wrk}` per measurement, {args.warmup} s warm-up per server and endpoint "
               f"(discarded); order alternates per round (A B, then B A, …).\n")
    out.append("Machine:\n")
    for k, v in facts.items():
        out.append(f"- {k}: {v}")
    out.append("")
    out.append("Servers: **A = Agentstead** (`agentstead serve`, aiohttp + uvloop, JSON access log on, "
               f"{args.readers} read-only aiosqlite connections); **B = baseline** (FastAPI "
               "on uvicorn, uvloop + httptools, 1 worker, uvicorn access log on, same "
               f"{args.readers}-connection read-only aiosqlite pool, copy of the same database). "
               "Both log to a file. wrk and the server share the cores; nothing is pinned.\n")
    if auth_note:
        out.append(auth_note + "\n")
    if a_extra_env:
        out.append("Set by run.py for the Agentstead server only: "
                   + ", ".join(f"`{k}={v}`" for k, v in a_extra_env.items())
                   + " (wrk is one client address and one user; the default would answer 429).\n")

    out.append("### Summary (medians over rounds)\n")
    out.append("| endpoint | A req/s | B req/s | **req/s A/B** | A p50 ms | B p50 ms | A p99 ms | B p99 ms "
               "| **p99 A/B** | A CPU µs/req | B CPU µs/req | per-round req/s A/B (min–max) | errors A/B |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    summary = {}
    for ep, path in ENDPOINTS.items():
        if ep not in results:
            continue
        a, b = results[ep]["agentstead"], results[ep]["baseline"]
        med = lambda rs, attr: statistics.median(getattr(r, attr) for r in rs)
        a_rps, b_rps = med(a, "rps"), med(b, "rps")
        a_p99, b_p99 = med(a, "p99_ms"), med(b, "p99_ms")
        per_round = [x.rps / y.rps for x, y in zip(a, b)]
        a_err = sum(r.errors + r.non_2xx for r in a)
        b_err = sum(r.errors + r.non_2xx for r in b)
        summary[ep] = (a_rps / b_rps, a_p99 / b_p99, a_err + b_err)
        out.append(f"| `{path}` | {a_rps:.0f} | {b_rps:.0f} | **{a_rps / b_rps:.2f}** "
                   f"| {fmt_ms(med(a, 'p50_ms'))} | {fmt_ms(med(b, 'p50_ms'))} "
                   f"| {fmt_ms(a_p99)} | {fmt_ms(b_p99)} | **{a_p99 / b_p99:.2f}** "
                   f"| {med(a, 'cpu_us_per_req'):.0f} | {med(b, 'cpu_us_per_req'):.0f} "
                   f"| {min(per_round):.2f}–{max(per_round):.2f} | {a_err}/{b_err} |")
    out.append("")
    out.append("CPU µs/req = the server process's user+system CPU time (all threads, from /proc) "
               "during the measurement divided by the requests wrk completed. errors = socket errors "
               "plus non-2xx responses over all rounds; a row with errors does not measure the "
               "endpoint's real work.\n")

    out.append("### Every round\n")
    out.append("| endpoint | round | server | req/s | p50 ms | p99 ms | requests | socket errors | non-2xx "
               "| CPU µs/req |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for ep, path in ENDPOINTS.items():
        if ep not in results:
            continue
        for i in range(args.rounds):
            order = SERVERS if i % 2 == 0 else SERVERS[::-1]
            for srv in order:
                r = results[ep][srv][i]
                label = "A Agentstead" if srv == "agentstead" else "B baseline"
                out.append(f"| `{path}` | {i + 1} | {label} | {r.rps:.0f} | {fmt_ms(r.p50_ms)} "
                           f"| {fmt_ms(r.p99_ms)} | {r.requests} | {r.errors} | {r.non_2xx} "
                           f"| {r.cpu_us_per_req:.0f} |")
    out.append("")
    out.append("Access-log lines written: " + ", ".join(f"{k} {v}" for k, v in logs_lines.items()) + "\n")

    out.append("### Verdict\n")
    if "schema" in summary:
        rps_ratio, p99_ratio, n_errors = summary["schema"]
        ok = rps_ratio >= TARGET_RPS_RATIO and p99_ratio <= TARGET_P99_RATIO and n_errors == 0
        out.append(f"Target: Agentstead ≥ {TARGET_RPS_RATIO}× the baseline's requests/s on the database "
                   f"endpoint (`/api/system/schema`) with p99 no worse (A/B ≤ {TARGET_P99_RATIO:.1f}).\n")
        out.append(f"Measured: req/s A/B = **{rps_ratio:.2f}** "
                   f"({'≥' if rps_ratio >= TARGET_RPS_RATIO else '<'} {TARGET_RPS_RATIO}), "
                   f"p99 A/B = **{p99_ratio:.2f}** "
                   f"({'≤' if p99_ratio <= TARGET_P99_RATIO else '>'} {TARGET_P99_RATIO:.1f}) → "
                   f"**{'MET' if ok else 'NOT MET'}**."
                   + (f" ({n_errors} errors or non-2xx responses: the figures are not valid.)"
                      if n_errors else ""))
    else:
        out.append("The database endpoint was not measured; no verdict.")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main

def main() -> int:
    p = argparse.ArgumentParser(description="Agentstead vs FastAPI/uvicorn HTTP benchmark (wrk).")
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument("--threads", type=int, default=1,
                   help="wrk threads (default 1: one core for wrk, one for the server on a 2-core box)")
    p.add_argument("--rounds", type=int, default=3, help="measurements per server and endpoint (default 3)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up seconds per server and endpoint (default 3)")
    p.add_argument("--readers", type=int, default=4, help="read-only SQLite connections, both servers")
    p.add_argument("--endpoints", default="healthz,schema",
                   help="comma-separated subset of: " + ", ".join(ENDPOINTS))
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "out" / "http.md",
                   help="Markdown report (default bench/out/http.md)")
    p.add_argument("--rev", default=None,
                   help="measure this git revision of src/ (extracted with git archive) instead of "
                        "the working tree, e.g. --rev HEAD or a commit")
    p.add_argument("--agentstead-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for agentstead serve, repeatable (run.py already sets "
                        "AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE=1000000 on revisions that know it; "
                        "this overrides it)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (databases, logs)")
    args = p.parse_args()
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    for e in endpoints:
        if e not in ENDPOINTS:
            p.error(f"unknown endpoint {e!r}")
    if shutil.which("wrk") is None:
        p.error("wrk is not installed (Debian: apt-get install wrk)")

    # SIGTERM / SIGHUP behave like Ctrl-C: unwind through the finally below.
    def _stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)

    facts = machine_facts()
    facts["agentstead source"] = source_description(args.rev)
    print("Machine:")
    for k, v in facts.items():
        print(f"  {k}: {v}")
    started = dt.datetime.now(dt.timezone.utc)

    tmp = Path(tempfile.mkdtemp(prefix="agentstead-bench-http-"))
    servers: dict[str, Server] = {}
    try:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSTEAD_")}
        a_env = dict(base_env,
                     AGENTSTEAD_STATE_DIR=str(tmp / "agentstead"), AGENTSTEAD_HOST=HOST,
                     AGENTSTEAD_PORT=str(free_port()), AGENTSTEAD_LOG_FORMAT="json",
                     AGENTSTEAD_LOG_LEVEL="info", AGENTSTEAD_DB_READERS=str(args.readers),
                     AGENTSTEAD_SHUTDOWN_GRACE_SECONDS="2")
        user_env = {}
        for item in args.agentstead_env:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise RuntimeError(f"--agentstead-env wants NAME=VALUE, got {item!r}")
            user_env[name] = value
        src = ROOT / "src"
        if args.rev:
            # Run a pinned revision: its src/ first on the path, ahead of the venv's editable install.
            src = extract_rev(args.rev, tmp / "rev")
            a_env["PYTHONPATH"] = str(src) + (os.pathsep + base_env["PYTHONPATH"]
                                              if base_env.get("PYTHONPATH") else "")
            cmd = [sys.executable, "-m", "agentstead"]
        else:
            cmd = agentstead_command()
        migrations_dir = src / "agentstead" / "store" / "migrations"
        a_extra_env = {}
        if knows_setting(src, "rate_limit_api_per_minute") and \
                "AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE" not in user_env:
            a_extra_env["AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE"] = "1000000"   # the maximum it accepts
        a_env.update(a_extra_env)
        a_env.update(user_env)
        baseline_db = prepare_databases(tmp, cmd, a_env)
        servers["agentstead"] = Server("agentstead", cmd + ["serve"], a_env, int(a_env["AGENTSTEAD_PORT"]),
                                       tmp / "agentstead.log")
        b_port = free_port()
        servers["baseline"] = Server(
            "baseline",
            [sys.executable, str(HERE / "baseline_fastapi.py"), "--host", HOST, "--port", str(b_port),
             "--db", str(baseline_db), "--readers", str(args.readers),
             "--migrations-dir", str(migrations_dir)],
            base_env, b_port, tmp / "baseline.log")
        for s in servers.values():
            s.start()
        for s in servers.values():
            s.wait_ready()
            print(f"{s.name}: {s.base} (pid {s.proc.pid})")

        # Agentstead's database endpoint may need an admin (from 2d0bd82 on): sign in once.
        a_headers: dict[str, dict[str, str]] = {ep: {} for ep in ENDPOINTS}
        auth_note = ""
        if "schema" in endpoints:
            anonymous = servers["agentstead"].status_of(ENDPOINTS["schema"])
            if anonymous in (401, 403):
                token = admin_api_token(servers["agentstead"], cmd, a_env)
                a_headers["schema"] = {"Authorization": f"Bearer {token}"}
                if servers["agentstead"].status_of(ENDPOINTS["schema"], a_headers["schema"]) != 200:
                    raise RuntimeError("the admin API token does not open the database endpoint")
                auth_note = (f"Authentication: Agentstead's `{ENDPOINTS['schema']}` answers {anonymous} "
                             "without credentials (it needs an administrator), so wrk sends "
                             "`Authorization: Bearer <admin API token>` to it, and Agentstead "
                             "authenticates every request (token lookup, user, scopes, rate limit). The "
                             "token was made through the API before the run: `agentstead admin "
                             "create-user --role admin`, `admin login-link`, `GET /api/me` for the CSRF "
                             "token, `POST /api/tokens {\"scopes\": [\"admin\"]}`. The baseline runs the "
                             "same SQLite query with no authentication at all, which only handicaps "
                             "Agentstead. `/healthz` is unauthenticated on both sides.")
                print("agentstead: signed in as an admin; the database endpoint is measured with an "
                      "admin API token (Authorization: Bearer)")
            elif anonymous != 200:
                raise RuntimeError(f"GET {ENDPOINTS['schema']} answered {anonymous} without credentials")
            else:
                auth_note = (f"Authentication: none on either side (`{ENDPOINTS['schema']}` is public "
                             "in this revision).")

        # Same payload shape from both, or the comparison is meaningless.
        if "schema" in endpoints:
            a_schema = servers["agentstead"].get_json(ENDPOINTS["schema"], a_headers["schema"])
            b_schema = servers["baseline"].get_json(ENDPOINTS["schema"])
            strip = lambda d: [{k: m[k] for k in ("version", "name", "checksum")} for m in d["migrations"]]
            if (a_schema["version"], a_schema["latest"], strip(a_schema)) != \
                    (b_schema["version"], b_schema["latest"], strip(b_schema)):
                raise RuntimeError(f"schema payloads differ:\n{a_schema}\n{b_schema}")
        if "healthz" in endpoints:
            a_h, b_h = (servers[n].get_json(ENDPOINTS["healthz"]) for n in SERVERS)
            if set(a_h) != set(b_h):
                raise RuntimeError(f"healthz payload keys differ: {sorted(a_h)} vs {sorted(b_h)}")

        if args.warmup > 0:
            print(f"warm-up: {args.warmup}s per server and endpoint")
            for ep in endpoints:
                for name in SERVERS:
                    s = servers[name]
                    run_wrk(s.base + ENDPOINTS[ep], threads=args.threads, connections=args.connections,
                            duration=args.warmup, pid=s.proc.pid,
                            headers=a_headers[ep] if name == "agentstead" else None)

        results: dict[str, dict[str, list[WrkResult]]] = {ep: {n: [] for n in SERVERS} for ep in endpoints}
        for i in range(args.rounds):
            order = SERVERS if i % 2 == 0 else SERVERS[::-1]
            for ep in endpoints:
                for name in order:
                    s = servers[name]
                    r = run_wrk(s.base + ENDPOINTS[ep], threads=args.threads, connections=args.connections,
                                duration=args.duration, pid=s.proc.pid,
                                headers=a_headers[ep] if name == "agentstead" else None)
                    results[ep][name].append(r)
                    print(f"round {i + 1} {ep:8} {name:10} {r.rps:8.0f} req/s  p50 {r.p50_ms:7.2f} ms  "
                          f"p99 {r.p99_ms:7.2f} ms  errors {r.errors + r.non_2xx}  "
                          f"cpu {r.cpu_us_per_req:5.0f} µs/req", flush=True)
                    if r.errors or r.non_2xx:
                        print(f"  warning: {name}: {r.errors} socket errors, {r.non_2xx} non-2xx responses "
                              "(rate limiting? see --agentstead-env)", flush=True)
                    if s.proc.poll() is not None:
                        raise RuntimeError(f"{name} died during the run; see {s.log}")
        finished = dt.datetime.now(dt.timezone.utc)
        logs_lines = {}
        for name, s in servers.items():
            with open(s.log, "rb") as fh:
                logs_lines[name] = sum(1 for _ in fh)
        report = build_report(args, facts, results, started, finished, logs_lines, auth_note, a_extra_env)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report)
        print()
        print(report)
        print(f"report written to {args.output}")
        return 0
    except KeyboardInterrupt:
        print("interrupted; stopping servers", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 1
    finally:
        for s in servers.values():
            s.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
