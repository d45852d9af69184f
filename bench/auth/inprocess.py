#!/usr/bin/env python3
"""Where authentication's microseconds go, without the network: the same three requests as
bench/auth/run.py (GET /healthz anonymous, with `Authorization: Bearer ast_…`, with the access
cookie) handed straight to the application (`Application._handle`: routing and every
middleware: request id, access log, metrics, JSON errors, body limit, authentication, then the
handler), in one process, many times, alternating.

wrk on a shared 2-core machine moves req/s by ±20 % between rounds; this measures only the
server's own CPU for a request (time.process_time), so the difference between the variants
is what authenticating costs. Not measured here, and the same for all three: HTTP parsing
and writing the response to the socket (≈ 40 % of a request's CPU under wrk).

The app is the real one (`create_app`) on a real SQLite file; the credentials are made the way
the product makes them (a sign-in link spent for a session, an API token created by the user).
The access log writes to /dev/null. Runs against whatever `agentstead` is importable, so the
same script measures an older tree too: PYTHONPATH=/path/to/old/src python bench/auth/inprocess.py

Usage: .venv/bin/python bench/auth/inprocess.py [--rounds 15] [--batch 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

VARIANTS = ("anonymous", "api-token", "cookie")


class _Transport:
    """What a request asks of its transport: the peer address."""

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 50000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


async def _credentials(app) -> dict[str, dict[str, str]]:
    from agentstead.auth.access import ROLE_SCOPES, Principal
    from agentstead.keys import IDENTITY
    from agentstead.services.identity import Context

    service = app[IDENTITY]
    user = await service.create_user("bench-inprocess@example.org", "member", Context())
    link = await service.login_link(user.email, Context())
    issued = await service.use_login_link(link.rsplit("/", 1)[1], Context())
    creator = Principal(user.id, user.email, user.role, ROLE_SCOPES[user.role], "session",
                        session_id=issued.session_id)
    _, plain = await service.create_api_token(creator, "bench", {"read", "write"}, None, Context())
    return {"anonymous": {}, "api-token": {"Authorization": f"Bearer {plain}"},
            "cookie": {"Cookie": f"as_access={issued.access_token}"}}


async def _batch(app, headers: dict, n: int) -> tuple[float, dict]:
    """CPU seconds per request over n fresh requests (each parses its own headers/cookies)."""
    from agentstead.keys import PRINCIPAL

    transport = _Transport()
    requests = [make_mocked_request("GET", "/healthz", headers=dict(headers, **{"User-Agent": "bench"}),
                                    app=app, transport=transport) for _ in range(n)]
    start = time.process_time()
    for request in requests:
        response = await app._handle(request)
    elapsed = time.process_time() - start
    assert response.status == 200, response.status
    principal = requests[-1].get(PRINCIPAL)
    return elapsed / n, {"via": principal.via if principal else None}


async def main_async(args) -> int:
    from agentstead.app import create_app
    from agentstead.settings import Settings

    tmp = tempfile.mkdtemp(prefix="agentstead-bench-auth-inprocess-")
    settings = Settings(state_dir=tmp, secret_key="k" * 48, log_format="json", log_level="info",
                        rate_limit_api_per_minute=1_000_000, access_token_ttl_seconds=3600)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    real_stderr = sys.stderr
    try:
        headers = await _credentials(app)
        sys.stderr = open(os.devnull, "w")  # the access log, batched to stderr as in production
        for v in VARIANTS:                   # warm-up: first use resolves and remembers
            _, seen = await _batch(app, headers[v], 500)
            expected = {"anonymous": None, "api-token": "token", "cookie": "session"}[v]
            if seen["via"] != expected:
                raise RuntimeError(f"{v}: authenticated as {seen['via']!r}, expected {expected!r}")
        results: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for i in range(args.rounds):
            order = VARIANTS[i % 3:] + VARIANTS[:i % 3]
            for v in order:
                per_request, _ = await _batch(app, headers[v], args.batch)
                results[v].append(per_request * 1e6)
    finally:
        from agentstead.keys import ACCESS_LOG

        app[ACCESS_LOG].flush()
        sys.stderr = real_stderr
        await runner.cleanup()
    import agentstead
    print(f"agentstead from {os.path.dirname(agentstead.__file__)}; {args.rounds} rounds × {args.batch} "
          f"requests per variant, order rotating; CPU µs per request (time.process_time)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    base = results["anonymous"]
    print("| request | median µs/req | min µs/req | added µs/req (median of per-round differences) |")
    print("|---|---:|---:|---:|")
    for v in VARIANTS:
        diffs = [x - y for x, y in zip(results[v], base)]
        print(f"| {v} | {statistics.median(results[v]):.1f} | {min(results[v]):.1f} | "
              f"{statistics.median(diffs):+.1f} |")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--batch", type=int, default=3000)
    args = p.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
