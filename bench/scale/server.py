#!/usr/bin/env python3
"""`agentstead serve` unchanged, plus one bench-only route: POST /bench/publish {topic, n,
interval?} publishes `n` bench.tick events (at once, or one every `interval` s) with
`Bus.publish` (each carries time.monotonic() at publish, so bench/ws/client.py measures
delivery latency on the same clock)."""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from aiohttp import web  # noqa: E402

from agentstead import cli  # noqa: E402
from agentstead import server as agentstead_server  # noqa: E402
from agentstead.auth.access import public  # noqa: E402
from agentstead.bus.events import Event, event  # noqa: E402
from agentstead.keys import BUS  # noqa: E402


@event("bench.tick")
class Tick(Event):
    """Bench only: a numbered tick with its publish time (time.monotonic())."""
    i: int
    t: float


@public
async def bench_publish(request: web.Request) -> web.Response:
    body = await request.json()
    bus = request.app[BUS]
    interval = float(body.get("interval", 0))   # 0: a burst; else one event every `interval` s
    futures = []
    for i in range(int(body["n"])):
        futures.append(bus.publish(body["topic"], Tick(i, time.monotonic())))
        if interval:
            await asyncio.sleep(interval)
    await asyncio.gather(*futures)
    return web.json_response({"n": len(futures)})


def main() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    create = agentstead_server.create_app

    def with_route(settings):
        app = create(settings)
        app.router.add_post("/bench/publish", bench_publish)
        return app
    agentstead_server.create_app = with_route
    return cli.main(["serve"])


if __name__ == "__main__":
    sys.exit(main())
