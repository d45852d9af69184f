"""One read through each way of leaving the event loop for a SQLite thread, per call.

    .venv/bin/python bench/store/hops.py [--calls 20000] [--rounds 5]

The same point query (`SELECT value FROM kv WHERE id = ?`) on a WAL file, awaited one at a
time from the event loop, through:

- `connection.Worker.run(fn)`: the app's way (store/connection.py): a thread per connection,
  a queue, one `call_soon_threadsafe` back;
- `aiosqlite` `execute_fetchall` (1 hop) and `execute` + `fetchall` + close (3 hops, what
  langgraph-checkpoint-sqlite and a typical app do);
- `loop.run_in_executor` on a 1-thread pool with the connection in it;
- the query on the event loop itself (no hop; what `@inline` reads do), for scale.

Rounds alternate the order; the report gives the median µs per call of each and its ratio to
`Worker.run`. Nothing else is contacted; the temporary file is deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiosqlite

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from agentstead.store.connection import Worker, connect  # noqa: E402

QUERY = "SELECT value FROM kv WHERE id = ?"


def _prepare(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY, value TEXT)")
    conn.executemany("INSERT INTO kv VALUES (?, ?)", [(i, f"v{i}") for i in range(1000)])
    conn.commit()
    conn.close()


def _point(conn: sqlite3.Connection, i: int):
    return conn.execute(QUERY, (i,)).fetchall()


async def _time(calls: int, one) -> float:
    t0 = time.perf_counter()
    for i in range(calls):
        await one(i % 1000)
    return (time.perf_counter() - t0) / calls * 1e6


async def measure(path: Path, calls: int, rounds: int) -> dict[str, list[float]]:
    worker = Worker(connect(path, readonly=True, busy_timeout_ms=5000), "bench-reader")
    adb = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    local = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    inline = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    loop = asyncio.get_running_loop()

    async def aiosqlite_3(i):
        async with adb.execute(QUERY, (i,)) as cur:
            return await cur.fetchall()

    async def on_loop(i):
        return _point(inline, i)

    ways = {
        "Worker.run (the app)": lambda i: worker.run(_point, i),
        "aiosqlite execute_fetchall (1 hop)": lambda i: adb.execute_fetchall(QUERY, (i,)),
        "aiosqlite execute+fetchall (3 hops)": aiosqlite_3,
        "run_in_executor": lambda i: loop.run_in_executor(pool, _point, local, i),
        "on the event loop (no hop)": on_loop,
    }
    out: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for name, one in ways.items():   # warm-up
            await _time(500, one)
        for r in range(rounds):
            order = list(ways) if r % 2 == 0 else list(reversed(ways))
            for name in order:
                out[name].append(await _time(calls, ways[name]))
    finally:
        await worker.close()
        await adb.close()
        pool.shutdown()
        local.close()
        inline.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentstead-bench-hops-") as tmp:
        path = Path(tmp) / "hops.db"
        _prepare(path)
        results = asyncio.run(measure(path, args.calls, args.rounds))
    base = statistics.median(results["Worker.run (the app)"])
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, aiosqlite {aiosqlite.__version__}, load {os.getloadavg()[0]:.2f}")
    print(f"{args.rounds} rounds x {args.calls} calls, alternating order\n")
    print("| way | median µs/call | rounds | ratio to Worker.run |")
    print("|---|---:|---|---:|")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.1f} | {', '.join(f'{v:.0f}' for v in values)} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
