#!/usr/bin/env python3
"""What a page drawn by the app (GET /page/agents, src/agentstead/first_page) costs the server,
against the three API calls a page load made before it, which it answers in-process (baseline, the
same run): `agentstead serve` on loopback with AGENTSTEAD_FRONTEND_DIR, one signed-in person with
N agents; rounds alternate the two, each a burst of sequential requests over one connection.
Reports ms per page load (median of rounds) and server CPU per page load (the server's
/proc/<pid>/stat over each burst), both as a ratio to the baseline.

Usage: .venv/bin/python bench/frontend/first_page.py [--agents 20] [--rounds 7] [--requests 200]"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import statistics
import sys
import tempfile
import time

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.procs import Server, login_link  # noqa: E402
from tests.support.spa import spa_for_first_pages  # noqa: E402

API = ("/api/me", "/api/agents?limit=200", "/api/models")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def burst(session, base: str, paths, n: int, pid: int) -> tuple[float, float]:
    cpu, start = cpu_seconds(pid), time.perf_counter()
    for _ in range(n):
        for path in paths:
            async with session.get(base + path) as resp:
                assert resp.status == 200, (path, resp.status)
                await resp.read()
    return (time.perf_counter() - start) / n * 1000, (cpu_seconds(pid) - cpu) / n * 1000


async def main(args) -> None:
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-first-page-"))
    spa = spa_for_first_pages(tmp / "spa")
    server = Server(tmp / "state", AGENTSTEAD_FRONTEND_DIR=str(spa), AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE="1000000",
                    AGENTSTEAD_LOG_LEVEL="warning").start()
    try:
        link = login_link(server.state_dir, "bench@example.org")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(server.url + link, allow_redirects=False) as resp:
                assert resp.status == 302
            async with session.get(server.url + "/api/me") as resp:
                csrf = (await resp.json())["csrf_token"]
            for i in range(args.agents):
                async with session.post(server.url + "/api/agents", json={"name": f"Agent {i}", "instructions": "x"},
                                        headers={"X-CSRF-Token": csrf, "Origin": "http://localhost:47294"}) as resp:
                    assert resp.status == 201, await resp.text()
            async with session.get(server.url + "/page/agents") as resp:
                assert 'id="agentstead-early"' in await resp.text(), "the page was not drawn"
            variants = {"page": ("/page/agents",), "api": API}
            out: dict[str, list] = {k: [] for k in variants}
            for r in range(args.rounds + 1):           # round 0 warms up
                for label in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
                    got = await burst(session, server.url, variants[label], args.requests, server.proc.pid)
                    if r:
                        out[label].append(got)
    finally:
        server.stop()
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in out.items()}
    print(f"{args.agents} agents, {args.rounds} rounds of {args.requests} page loads each")
    print(f"drawn page (GET /page/agents): {med['page'][0]:.2f} ms, server CPU {med['page'][1]:.2f} ms per load")
    print(f"the three API calls (baseline): {med['api'][0]:.2f} ms, server CPU {med['api'][1]:.2f} ms per load")
    print(f"ratio page / API calls: time {med['page'][0] / med['api'][0]:.2f}, CPU {med['page'][1] / med['api'][1]:.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--requests", type=int, default=200)
    asyncio.run(main(ap.parse_args()))
