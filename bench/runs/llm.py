#!/usr/bin/env python3
"""The OpenAI-compatible test server (tests/support/llm_server.py) in its own process, for
bench/runs/run.py: two instances on free 127.0.0.1 ports, one streaming as fast as it can
(tokens_per_second=0: for overhead measurements) and one at --slow-tps tokens/s.

The reply length is chosen by the model name: model `tok-N` answers N word tokens
("w0 w1 … w{N-1}", one chunk per token, usage included). Prints {"fast": port, "slow": port}
on stdout once both listen; stops when stdin closes or on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.llm_server import LLMServer, Script, Turn  # noqa: E402


def reply(body: dict) -> Turn:
    n = int(str(body.get("model", "tok-10")).rsplit("-", 1)[1])
    return Turn(" ".join(f"w{i}" for i in range(n)))


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--api-key", required=True)
    p.add_argument("--models", required=True, help="comma-separated, e.g. tok-10,tok-200")
    p.add_argument("--slow-tps", type=float, default=30.0)
    args = p.parse_args()
    models = [m for m in args.models.split(",") if m]
    servers = {"fast": LLMServer(args.api_key, models, tokens_per_second=0),
               "slow": LLMServer(args.api_key, models, tokens_per_second=args.slow_tps)}
    for s in servers.values():
        s.script = Script(reply)
        # Keep memory bounded on long runs: the bench never reads the request log.
        s.requests = _Discard()
        await s.start()
    print(json.dumps({k: s.port for k, s in servers.items()}), flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def eof():
        await reader.read()
        stop.set()
    watcher = asyncio.create_task(eof())
    await stop.wait()
    watcher.cancel()
    for s in servers.values():
        await s.stop()
    return 0


@contextlib.contextmanager
def spawned(api_key: str, models: list[str]):
    """This script in its own process (for the benchmarks that import it): yields
    (process, {"fast": port, "slow": port}) and stops it on the way out."""
    proc = subprocess.Popen([sys.executable, __file__, "--api-key", api_key, "--models", ",".join(models)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, start_new_session=True)
    try:
        yield proc, json.loads(proc.stdout.readline())
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class _Discard(list):
    def append(self, item) -> None:
        pass


if __name__ == "__main__":
    try:
        import uvloop
        sys.exit(uvloop.run(main()))
    except ImportError:
        sys.exit(asyncio.run(main()))
