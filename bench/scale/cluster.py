"""Two instances on one SQLite file with nats-server between them, for the scale-out fault and
timing benchmarks (crossing.py, outage.py): the real parts, on 127.0.0.1, no Caddy (each
measurement names the instance it talks to)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.support.llm_server import LLMServer  # noqa: E402
from tests.support.nats import NatsServer  # noqa: E402
from tests.support.procs import VENV_BIN, Server, clean_env  # noqa: E402

ORIGIN = "http://localhost:47294"


class Pair:
    """nats-server and instances 1 and 2 (`a`, `b`), each pinned to its own CPU."""

    def __init__(self, work: Path, llm: LLMServer, **env: str):
        self.work = work
        self.nats = NatsServer(work / "nats")
        key = work / "llm_key"
        work.mkdir(parents=True, exist_ok=True)
        key.write_text("sk-test")
        self.env = {
            "AGENTSTEAD_LLM_PROVIDERS": json.dumps([{"name": "local", "base_url": llm.base_url,
                                                     "models": ["gpt-test"], "api_key_file": str(key)}]),
            "AGENTSTEAD_NATS_URL": self.nats.url, "AGENTSTEAD_INSTANCES": "2", "AGENTSTEAD_SECRET_KEY": "s" * 48,
            "AGENTSTEAD_RATE_LIMIT_API_PER_MINUTE": "1000000", "AGENTSTEAD_RATE_LIMIT_AUTH_PER_MINUTE": "100000",
            "AGENTSTEAD_LOG_LEVEL": "warning", **env,
        }
        self.a = Server(work / "state", AGENTSTEAD_INSTANCE="1", wrapper=("taskset", "-c", "0"), **self.env)
        self.b = Server(work / "state", AGENTSTEAD_INSTANCE="2", wrapper=("taskset", "-c", "1"), **self.env)

    def start(self) -> "Pair":
        self.nats.start()
        self.a.start(60)
        self.b.start(60)
        return self

    def stop(self) -> None:
        for part in (self.a, self.b, self.nats):
            part.stop()

    def cli(self, *args: str) -> str:
        env = clean_env(AGENTSTEAD_STATE_DIR=str(self.a.state_dir), **self.env)
        return subprocess.run([str(VENV_BIN / "agentstead"), *args], env=env, check=True, capture_output=True,
                              text=True).stdout

    async def sign_in(self, email: str, role: str = "member", *, create: bool = True) -> dict:
        """A cookie session for `email` (created with `role` first), as sessions on a and b."""
        if create:
            self.cli("admin", "create-user", "--email", email, "--role", role)
        link = self.cli("admin", "login-link", "--email", email).split()[0]
        jar = aiohttp.CookieJar(unsafe=True)
        s = {"a": aiohttp.ClientSession(base_url=self.a.url, cookie_jar=jar),
             "b": aiohttp.ClientSession(base_url=self.b.url, cookie_jar=jar)}
        resp = await s["a"].get("/auth/link/" + link.rsplit("/", 1)[1], allow_redirects=False)
        assert resp.status == 302, resp.status
        me = await (await s["a"].get("/api/me")).json()
        s["me"] = me
        s["unsafe"] = {"Origin": ORIGIN, "X-CSRF-Token": me["csrf_token"]}
        return s


async def close_all(sessions: dict) -> None:
    for value in sessions.values():
        if isinstance(value, aiohttp.ClientSession):
            await value.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]
