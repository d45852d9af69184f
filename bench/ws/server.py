#!/usr/bin/env python3
"""`agentstead serve`, unchanged, plus bench-only routes — for bench/ws and bench/runs.

This runs the production entry point (`agentstead.cli.main(["serve"])`: settings from
AGENTSTEAD_* variables, JSON logs, uvloop, `create_app` + `web.AppRunner`, graceful stop on
SIGTERM). The only difference: `agentstead.server.create_app` is wrapped, in this process
only, to add the routes below to the real application before it starts. Nothing in src/
changes, and these routes exist nowhere else.

Bench routes (all answer JSON; public, so the benchmark needs no extra credentials):

  POST /bench/publish {topic, n, rate}      publish `n` bench.tick events with
       `app[BUS].publish_nowait`, paced at `rate` events/s (0 = as fast as possible), each
       carrying `t` = time.monotonic() at publish (CLOCK_MONOTONIC is system-wide on Linux,
       so a client process on this machine can subtract it from its own receive time).
       Answers once every future resolved.
  POST /bench/append {mode, n, topic, max_seconds}
       mode "bus": `n` publish_nowait calls at once; time until the last future resolves.
       mode "single": one plain INSERT INTO events per `Database.write()` transaction, one
       after the other (the same row the bus writes), until `n` or `max_seconds`.
  GET  /bench/lag[?reset=1]                 event-loop lag: a task sleeps 10 ms in a loop and
       records how late it wakes up; percentiles since the last reset.
  POST /bench/gc                            gc.collect() (before an RSS reading).
  POST /bench/direct {base_url, api_key, model, n}
       bench/runs' baseline "direct", run in this process: the same graph (runner/graph.py,
       langchain-openai, no checkpointer, built once per model) called `n` times in a row
       with `astream(…, stream_mode=["messages", "updates"])`; answers each call's ms and the
       process CPU per call. Separates what the runner adds from what this process costs.

Ablations (what-if experiments for the report, never the default): BENCH_VARIANTS=a,b
monkeypatches this process only, as bench/http/ablate.py does:
  db-synchronous-normal PRAGMA synchronous=NORMAL instead of FULL (no fsync per commit in WAL
                        mode): how much of a cost is the fsync. Breaks the durability promise.
  deltas-at-end         the runner's _stream only collects; the run's next event sends the text
                        as one delta: what streaming costs when nothing goes out mid-stream.
  no-deltas             the runner streams no message.delta at all (the reply arrives with
                        message.created): the whole cost of live streaming, for comparison.
  switch-interval       sys.setswitchinterval(0.0005): the GIL changes hands 10 times as often.
  gc-freeze             gc.freeze() once the app has started: the garbage collector stops
                        scanning the objects of startup (modules, app, caches).
  no-yield              the model's stream never gives the event loop a turn of its own
                        (runner/graph.py YieldWhileStreaming keeps its per-token call but
                        never sleeps): what that turn costs and buys.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

from aiohttp import web

from agentstead import cli
from agentstead import server as agentstead_server
from agentstead.auth.access import public
from agentstead.bus.events import Event, event
from agentstead.keys import BUS, DB
from agentstead.timeutil import now_iso

LAG_INTERVAL = 0.010
LAG_KEY = web.AppKey("bench_lag", list)


@event("bench.tick")
class Tick(Event):
    """Bench only: a numbered tick with its publish time (time.monotonic())."""
    i: int
    t: float


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def _publisher(bus):
    """Publish without waiting for the commit: `Bus.publish` returns the future since the
    "One way in" redesign (issue 18); `publish_nowait` before it (so both can be measured)."""
    return getattr(bus, "publish_nowait", None) or bus.publish


def _transactions(request: web.Request) -> int:
    """Write transactions so far: the old bus counted its batches; the writer's health counts
    every committed transaction since issue 18."""
    bus = request.app[BUS]
    return bus.batches if hasattr(bus, "batches") else request.app[DB].health.total_ok


async def _insert_one(db, sql: str, args: tuple) -> None:
    """One row in its own transaction, through whichever write door this revision has."""
    if not hasattr(db, "transact"):  # issue 18 on: db.write(fn) with a synchronous fn(conn)
        await db.write(lambda conn: conn.execute(sql, args))
    else:                            # before: `async with db.write() as conn`
        async with db.write() as conn:
            await conn.execute(sql, args)


@public
async def bench_publish(request: web.Request) -> web.Response:
    body = await request.json()
    topic, n, rate = body["topic"], int(body["n"]), float(body.get("rate", 0))
    bus = request.app[BUS]
    loop = asyncio.get_running_loop()
    batches0, appended0 = _transactions(request), bus.appended
    publish = _publisher(bus)
    start = loop.time()
    futures = []
    for i in range(n):
        if rate > 0:
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        futures.append(publish(topic, Tick(i, time.monotonic())))
    published = loop.time()
    await asyncio.gather(*futures)
    done = loop.time()
    return web.json_response({"n": n, "publish_seconds": published - start, "durable_seconds": done - start,
                              "batches": _transactions(request) - batches0, "appended": bus.appended - appended0})


@public
async def bench_append(request: web.Request) -> web.Response:
    body = await request.json()
    mode, n, topic = body["mode"], int(body["n"]), body["topic"]
    max_seconds = float(body.get("max_seconds", 1e9))
    bus, db = request.app[BUS], request.app[DB]
    batches0 = _transactions(request)
    done = 0
    start = time.perf_counter()
    if mode == "bus":
        publish = _publisher(bus)
        futures = [publish(topic, Tick(i, 0.0)) for i in range(n)]
        await futures[-1]                      # batches commit in order: the last one resolves last
        await asyncio.gather(*futures)
        done = n
    elif mode == "single":
        sql = "INSERT INTO events (type, data, at) VALUES (?, ?, ?)"   # the row alone, no topic index
        for i in range(n):
            if time.perf_counter() - start > max_seconds:
                break
            data = json.dumps(Tick(i, 0.0).data(), separators=(",", ":"))
            await _insert_one(db, sql, (Tick.type, data, now_iso()))
            done += 1
    else:
        raise web.HTTPBadRequest(text="mode must be bus or single")
    seconds = time.perf_counter() - start
    return web.json_response({"mode": mode, "events": done, "seconds": seconds, "per_second": done / seconds,
                              "transactions": (_transactions(request) - batches0) if mode == "bus" else done})


@public
async def bench_lag(request: web.Request) -> web.Response:
    samples = request.app[LAG_KEY]
    values = sorted(samples)
    if request.query.get("reset"):
        samples.clear()
    return web.json_response({
        "samples": len(values), "interval_ms": LAG_INTERVAL * 1000,
        "p50_ms": _percentile(values, 50) * 1000, "p99_ms": _percentile(values, 99) * 1000,
        "max_ms": (values[-1] * 1000) if values else float("nan"),
        "over_20ms": sum(1 for v in values if v > 0.020)})


_DIRECT: dict = {}


@public
async def bench_direct(request: web.Request) -> web.Response:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runs"))
    from direct import direct_graph, direct_run

    body = await request.json()
    key = (body["base_url"], body["model"])
    graph = _DIRECT.get(key)
    if graph is None:
        graph = _DIRECT[key] = direct_graph(body["base_url"], body["api_key"], body["model"])
    ms, cpu0 = [], time.process_time()
    for _ in range(int(body["n"])):
        ms.append((await direct_run(graph))["ms"])
    return web.json_response({"ms": ms, "cpu_ms": (time.process_time() - cpu0) / max(1, len(ms)) * 1000})


@public
async def bench_gc(request: web.Request) -> web.Response:
    return web.json_response({"collected": gc.collect()})


async def _lag_monitor(samples: list) -> None:
    # perf_counter, not loop.time(): uvloop's clock has millisecond resolution.
    while True:
        t = time.perf_counter()
        await asyncio.sleep(LAG_INTERVAL)
        samples.append(max(0.0, time.perf_counter() - t - LAG_INTERVAL))
        if len(samples) > 200_000:       # bounded: the oldest half goes
            del samples[:100_000]


def _with_bench_routes(create_app):
    def create(settings):
        app = create_app(settings)
        app.router.add_post("/bench/publish", bench_publish)
        app.router.add_post("/bench/append", bench_append)
        app.router.add_get("/bench/lag", bench_lag)
        app.router.add_post("/bench/gc", bench_gc)
        app.router.add_post("/bench/direct", bench_direct)
        app[LAG_KEY] = []

        async def lag_ctx(app):
            task = asyncio.create_task(_lag_monitor(app[LAG_KEY]), name="bench-lag-monitor")
            yield
            task.cancel()
        app.cleanup_ctx.append(lag_ctx)
        return app
    return create


def _variant_db_synchronous_normal() -> None:
    from agentstead.store import db as db_module

    original = db_module.pragmas

    def pragmas(busy_timeout_ms, *, readonly):
        return [p.replace("synchronous = FULL", "synchronous = NORMAL") for p in original(busy_timeout_ms,
                                                                                         readonly=readonly)]
    db_module.pragmas = pragmas


def _variant_no_deltas() -> None:
    from agentstead.runner import runner as runner_module

    def stream(self, run, text):
        self.live[run.id].partial.append(text)
    runner_module.Runner._stream = stream


def _variant_deltas_at_end() -> None:
    from agentstead.runner import runner as runner_module

    def stream(self, run, text):
        live = self.live[run.id]
        live.partial.append(text)
        live.pending.append(text)   # sent by the run's next event (_flush_deltas)
    runner_module.Runner._stream = stream


def _variant_switch_interval() -> None:
    sys.setswitchinterval(0.0005)


def _variant_gc_freeze() -> None:
    original = agentstead_server.create_app

    def create(settings):
        app = original(settings)

        async def freeze(app):
            gc.collect()
            gc.freeze()
        app.on_startup.append(freeze)
        return app
    agentstead_server.create_app = create


def _variant_no_yield() -> None:
    from agentstead.runner import graph as graphs
    graphs.YIELD.YIELD_EVERY = math.inf


VARIANTS = {"db-synchronous-normal": _variant_db_synchronous_normal, "no-yield": _variant_no_yield,
            "gc-freeze": _variant_gc_freeze, "no-deltas": _variant_no_deltas, "deltas-at-end": _variant_deltas_at_end,
            "switch-interval": _variant_switch_interval}


def main() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    for name in filter(None, os.environ.get("BENCH_VARIANTS", "").split(",")):
        VARIANTS[name]()       # KeyError on an unknown name: refuse rather than measure the wrong thing
    agentstead_server.create_app = _with_bench_routes(agentstead_server.create_app)
    return cli.main(["serve"])


if __name__ == "__main__":
    sys.exit(main())
