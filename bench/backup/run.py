#!/usr/bin/env python3
"""Backup benchmark: replication lag, Litestream's cost on writes, restore time.

Everything is real and on loopback: `agentstead serve`, Litestream started the
way its unit starts it (`agentstead backup replicate`), and an S3 server
(`rclone serve s3` over a temporary directory, tests/support/s3.py).

1. Lag. A writer commits one row per transaction at a steady --rate (100/s)
   into a scratch table of the app's database, through the app's own store
   writer (agentstead.store.db.Database.write(): BEGIN IMMEDIATE, the app's
   pragmas, synchronous=FULL). A follower (`litestream restore -f`, polling
   the bucket every 50 ms) keeps a copy of the replica; a watcher reads that
   copy every 20 ms. Lag of a row = when it first appears in the copy minus
   when its COMMIT returned. It includes the follower's polling (up to ~70 ms),
   so it is an upper bound of the time to the bucket.
2. Litestream's cost. The same writer as fast as it can for --burst seconds,
   without Litestream, then with Litestream replicating (rounds alternate).
   The ratio of rows/s is what replication costs the app's writes.
3. Restore. A database of --size bytes (random, incompressible rows: the worst
   case for Litestream's LZ4) is replicated to the S3 server, then restored:
   `litestream restore` alone, and `agentstead backup restore` (the same, plus
   PRAGMA integrity_check and row counts, then the rename into place).

Usage:
  .venv/bin/python bench/backup/run.py [--rate 100] [--duration 60] [--burst 10] [--rounds 3]
                                       [--size 1GiB] [--skip-restore] [--workdir DIR] [--output bench/out/backup.md]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import pathlib
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agentstead.backup.litestream import child_env  # noqa: E402
from agentstead.settings import _size, load  # noqa: E402
from agentstead.store.db import Database  # noqa: E402
from tests.support.procs import VENV_BIN, Server, clean_env  # noqa: E402
from tests.support.s3 import S3Server  # noqa: E402

TABLE = "bench_rows"
AGENTSTEAD = str(VENV_BIN / "agentstead")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


class Stack:
    def __init__(self, base: pathlib.Path, s3: S3Server, name: str):
        self.base = base / name
        self.base.mkdir(parents=True)
        self.state = self.base / "state"
        self.settings_env = {**s3.settings_env(name, self.base / "creds"), "AGENTSTEAD_LOG_LEVEL": "warning"}
        self.env = clean_env(AGENTSTEAD_STATE_DIR=str(self.state), **self.settings_env)
        self.app: Server | None = None
        self.litestream: subprocess.Popen | None = None

    @property
    def db(self) -> pathlib.Path:
        return self.state / "agentstead.db"

    def start_app(self) -> None:
        self.app = Server(self.state, **self.settings_env).start()

    def start_litestream(self) -> None:
        log = open(self.base / "litestream.log", "ab")
        self.litestream = subprocess.Popen([AGENTSTEAD, "backup", "replicate"], env=self.env, stdout=log,
                                           stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            out = subprocess.run([AGENTSTEAD, "backup", "status", "--json"], env=self.env, capture_output=True,
                                 text=True)
            if '"last_sync_at": "' in out.stdout:
                return
            time.sleep(0.5)
        raise TimeoutError("litestream did not sync within 120 s")

    def stop_litestream(self) -> None:
        if self.litestream and self.litestream.poll() is None:
            self.litestream.terminate()
            try:
                self.litestream.wait(15)
            except subprocess.TimeoutExpired:
                self.litestream.kill()
                self.litestream.wait()
        self.litestream = None

    def stop(self) -> None:
        self.stop_litestream()
        if self.app:
            self.app.stop()


def create_table(db: pathlib.Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    conn.close()


def store_writer(db: pathlib.Path, *, rate: float | None, seconds: float,
                 commits: dict[int, float] | None = None) -> int:
    """Rows through the app's store writer; steady at `rate`/s, or as fast as possible. Returns rows."""
    async def main() -> int:
        store = Database(db, readers=1)
        await store.open()
        n, start = 0, time.monotonic()
        due = start
        try:
            while time.monotonic() - start < seconds:
                async with store.write() as conn:
                    cur = await conn.execute(f"INSERT INTO {TABLE} (payload) VALUES (?)", (os.urandom(64),))
                    row_id = cur.lastrowid
                if commits is not None:
                    commits[row_id] = time.monotonic()
                n += 1
                if rate:
                    due += 1 / rate
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
        finally:
            await store.close()
        return n
    return asyncio.run(main())


class Follower:
    def __init__(self, stack: Stack):
        settings = load(stack.env)
        config = stack.base / "follow.yml"
        config.write_text(subprocess.run([AGENTSTEAD, "backup", "config"], env=stack.env, check=True,
                                         capture_output=True, text=True).stdout)
        self.copy = stack.base / "follow.db"
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "litestream"), "restore", "-config", str(config), "-no-expand-env", "-f",
             "-follow-interval", "50ms", "-o", str(self.copy), str(settings.db_file.resolve())],
            env=child_env(settings), stdout=open(stack.base / "follow.log", "wb"), stderr=subprocess.STDOUT)
        self.seen: dict[int, float] = {}
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def watch(self) -> None:
        high = 0
        while not self.halt.is_set():
            try:
                conn = sqlite3.connect(f"file:{self.copy}?mode=ro", uri=True, timeout=0.2)
                try:
                    top = conn.execute(f"SELECT max(id) FROM {TABLE}").fetchone()[0] or 0
                finally:
                    conn.close()
            except sqlite3.Error:
                top = high
            now = time.monotonic()
            for i in range(high + 1, top + 1):
                self.seen[i] = now
            high = max(high, top)
            self.halt.wait(0.02)

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(5)
        self.proc.terminate()
        self.proc.wait(15)


def bench_lag(base: pathlib.Path, s3: S3Server, rate: float, duration: float) -> dict:
    stack = Stack(base, s3, "lag")
    try:
        stack.start_app()
        stack.start_litestream()
        create_table(stack.db)
        follower = Follower(stack)
        time.sleep(2)
        commits: dict[int, float] = {}
        rows = store_writer(stack.db, rate=rate, seconds=duration, commits=commits)
        last = max(commits)
        deadline = time.monotonic() + 30
        while last not in follower.seen and time.monotonic() < deadline:
            time.sleep(0.1)
        follower.stop()
        lags = [follower.seen[i] - t for i, t in commits.items() if i in follower.seen]
        l0 = len(list((s3.bucket_dir / "lag" / "agentstead.db" / "0000").glob("*.ltx")))
        return {"rows": rows, "seen": len(lags), "achieved_rate": rows / duration,
                "p50": pct(lags, 0.5), "p90": pct(lags, 0.9), "p99": pct(lags, 0.99), "max": max(lags),
                "l0_files": l0, "duration": duration}
    finally:
        stack.stop()


def bench_throughput(base: pathlib.Path, s3: S3Server, burst: float, rounds: int) -> dict:
    stack = Stack(base, s3, "throughput")
    try:
        stack.start_app()
        create_table(stack.db)
        store_writer(stack.db, rate=None, seconds=2)  # warm-up
        off, on = [], []
        for r in range(rounds):
            order = ("off", "on") if r % 2 == 0 else ("on", "off")
            for mode in order:
                if mode == "on":
                    stack.start_litestream()
                    on.append(store_writer(stack.db, rate=None, seconds=burst) / burst)
                    stack.stop_litestream()
                else:
                    off.append(store_writer(stack.db, rate=None, seconds=burst) / burst)
        return {"off": off, "on": on, "ratio": statistics.median(on) / statistics.median(off)}
    finally:
        stack.stop()


def fill(db: pathlib.Path, size: int) -> int:
    """A database of about `size` bytes of random rows, written in large transactions."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    rows = 0
    while db.stat().st_size + (db.with_name(db.name + "-wal").stat().st_size
                               if db.with_name(db.name + "-wal").exists() else 0) < size:
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO {TABLE} (payload) VALUES (randomblob(?))", [(3000,)] * 20_000)
        conn.execute("COMMIT")
        rows += 20_000
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return rows


def bench_restore(base: pathlib.Path, s3: S3Server, size: int) -> dict:
    stack = Stack(base, s3, "restore")
    try:
        t0 = time.monotonic()
        stack.state.mkdir(parents=True)
        subprocess.run([AGENTSTEAD, "migrate"], env=stack.env, check=True, capture_output=True)
        rows = fill(stack.db, size)
        fill_s = time.monotonic() - t0
        db_bytes = stack.db.stat().st_size
        t0 = time.monotonic()
        stack.start_litestream()  # returns after the first sync: the snapshot is in the bucket
        upload_s = time.monotonic() - t0
        stack.stop_litestream()
        stored = sum(f.stat().st_size for f in (s3.bucket_dir / "restore").rglob("*.ltx"))
        settings = load(stack.env)
        config = stack.base / "restore.yml"
        config.write_text(subprocess.run([AGENTSTEAD, "backup", "config"], env=stack.env, check=True,
                                         capture_output=True, text=True).stdout)
        raw_out = stack.base / "raw.db"
        t0 = time.monotonic()
        subprocess.run([str(VENV_BIN / "litestream"), "restore", "-config", str(config), "-no-expand-env",
                        "-o", str(raw_out), str(settings.db_file.resolve())], env=child_env(settings),
                       check=True, capture_output=True)
        raw_s = time.monotonic() - t0
        raw_out.unlink()
        out = stack.base / "restored.db"
        t0 = time.monotonic()
        done = subprocess.run([AGENTSTEAD, "backup", "restore", "--output", str(out)], env=stack.env,
                              capture_output=True, text=True)
        full_s = time.monotonic() - t0
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        conn = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
        restored_rows = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        conn.close()
        assert restored_rows == rows, (restored_rows, rows)
        return {"db_bytes": db_bytes, "rows": rows, "stored_bytes": stored, "fill_s": fill_s,
                "upload_s": upload_s, "raw_s": raw_s, "full_s": full_s}
    finally:
        stack.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--burst", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--skip-restore", action="store_true")
    ap.add_argument("--output")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--workdir", help="parent of the temporary directory (default: the system's; needs ~4x --size)")
    args = ap.parse_args()

    base = pathlib.Path(tempfile.mkdtemp(prefix="agentstead-bench-backup-", dir=args.workdir))
    s3 = S3Server(base / "s3", dir_cache_time=os.environ.get("BENCH_DIR_CACHE")).start()
    started = dt.datetime.now(dt.timezone.utc)
    try:
        lag = bench_lag(base, s3, args.rate, args.duration)
        print(f"lag: {lag}", file=sys.stderr)
        tp = bench_throughput(base, s3, args.burst, args.rounds)
        print(f"throughput: {tp}", file=sys.stderr)
        restore = None if args.skip_restore else bench_restore(base, s3, _size(args.size))
        print(f"restore: {restore}", file=sys.stderr)
    finally:
        s3.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    version = subprocess.run([str(VENV_BIN / "litestream"), "version"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; command: `.venv/bin/python bench/backup/run.py "
        f"--rate {args.rate:g} --duration {args.duration:g} --burst {args.burst:g} --rounds {args.rounds}"
        + (" --skip-restore`" if args.skip_restore else f" --size {args.size}`"),
        f"- Machine: `nproc` {os.cpu_count()}, {platform.processor() or platform.machine()}, kernel "
        f"{platform.release()}, CPython {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"Litestream {version}, rclone serve s3 on loopback.",
        "",
        f"**Replication lag** at {args.rate:g} writes/s for {args.duration:g} s, sync interval 1 s "
        f"({lag['rows']} rows, {lag['seen']} seen in the follower; {lag['l0_files']} LTX uploads):",
        "",
        "| p50 | p90 | p99 | max |",
        "|---:|---:|---:|---:|",
        f"| {lag['p50']:.3f} s | {lag['p90']:.3f} s | {lag['p99']:.3f} s | {lag['max']:.3f} s |",
        "",
        f"**Write throughput** through the store writer, {args.burst:g} s bursts, {args.rounds} rounds "
        "alternating:",
        "",
        "| | rows/s (median) | every round |",
        "|---|---:|---|",
        f"| without Litestream | {statistics.median(tp['off']):.0f} | {', '.join(f'{x:.0f}' for x in tp['off'])} |",
        f"| with Litestream | {statistics.median(tp['on']):.0f} | {', '.join(f'{x:.0f}' for x in tp['on'])} |",
        f"| **ratio** | **{tp['ratio']:.2f}** | |",
    ]
    if restore:
        gib = restore["db_bytes"] / 2**30
        lines += [
            "",
            f"**Restore** of a {gib:.2f} GiB database ({restore['rows']} random rows; "
            f"{restore['stored_bytes'] / 2**30:.2f} GiB in the bucket) from the local S3 server:",
            "",
            "| step | seconds |",
            "|---|---:|",
            f"| first replication (snapshot upload) | {restore['upload_s']:.1f} |",
            f"| `litestream restore` | {restore['raw_s']:.1f} |",
            f"| `agentstead backup restore` (+ integrity_check, counts, rename) | {restore['full_s']:.1f} |",
        ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        pathlib.Path(args.output).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
