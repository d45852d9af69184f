"""Schemathesis against the running app's /api/openapi.json: every operation, every check
(`--checks all`: no 5xx, status codes, content types, headers and bodies as documented,
schema-valid data accepted and schema-violating data refused, auth enforced, ...), positive
and negative data, as an administrator's API token and anonymously. Zero failures.

The app is the real one (create_app on a temp SQLite file, listening on loopback); the
schemathesis CLI runs as a subprocess against it, the way its documentation describes.
Bounded: a fixed number of examples per operation and a fixed seed, so CI is repeatable
(AGENTSTEAD_FUZZ_SEED and AGENTSTEAD_FUZZ_EXAMPLES explore further by hand).
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys

import pytest
from aiohttp.test_utils import TestServer

from agentstead.app import create_app

from ..support.auth import api_token, make_user

SEED = int(os.environ.get("AGENTSTEAD_FUZZ_SEED", "17"))
# Examples per operation and phase; the coverage phase adds its own boundary cases (~1,300).
EXAMPLES = {"admin-token": int(os.environ.get("AGENTSTEAD_FUZZ_EXAMPLES", "10")), "anonymous": 10}
RUN_LIMIT = 300.0   # seconds for one run: ~2.5 min (token) and under a minute (anonymous) on 2 shared cores

# Operations whose schema-valid bodies may still be refused with 422 for what a JSON Schema
# cannot say: a workflow's steps must exist and be reachable, its input must match its own
# declared inputs; an agent's provider and model must be configured on this host, a thread's agent
# must exist and be yours.
# And every operation taking an Idempotency-Key: the coverage phase repeats one schema-valid key
# with other bodies without passing through the hook below, and a key is one action (422
# idempotency_key_reused, which test_idempotency.py checks). editMessage refuses a message that is not
# yours to edit (an answer) with 422 too.
SEMANTIC_422 = ["createWorkflow", "updateWorkflow", "startWorkflowRun", "createAgent", "updateAgent", "createThread",
                "resumeRun", "postMessage", "createToken", "regenerateAnswer", "editMessage"]


def _config(token: str | None, examples: int) -> str:
    auth = f'\n[auth.openapi.bearer]\nbearer = "{token}"\n' if token else ""
    operations = ", ".join(f'"{op}"' for op in SEMANTIC_422)
    return f"""
workers = 1
request-timeout = 10
max-stream-events = 1
[cache]
enabled = false
[generation]
mode = "all"
max-examples = {examples}
database = "none"
[checks]
enabled = true
{auth}
[[operations]]
include-operation-id = [{operations}]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", 401, 403, 404, 409, 422, 429]
[[operations]]
# /mcp: the body is any JSON object to the contract, but the MCP server accepts only a real
# JSON-RPC message with an Accept of JSON and SSE (406/415/400 from the `mcp` package otherwise);
# tests/integration/test_mcp_endpoint.py speaks the protocol itself with the `mcp` client.
include-operation-id = "mcp"
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 403, 406, 413, 415, 429]
[[operations]]
# /api/search: q must hold a word (letters or digits of any script, as FTS5 tokenizes them);
# punctuation alone is schema-valid text that finds nothing to match, refused with 400.
include-operation-id = "search"
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 403, 429]
[[operations]]
# The WebSocket handshake: schemathesis speaks HTTP only (tests/integration/test_fuzz_ws.py
# fuzzes the protocol itself); a schema-valid GET without Upgrade is refused with 400.
include-operation-id = "websocket"
checks.positive_data_acceptance.expected-statuses = [400, 401, 403, 429]
"""


# In the fuzzing phase a schema-valid Idempotency-Key becomes a fresh one on every request: the fuzzer repeats values
# across different bodies, which the server rightly refuses (422 idempotency_key_reused: one key is
# one action); keys that are schema-invalid stay as generated, so their refusal is still checked.
# Reuse itself is tested in test_idempotency.py.
HOOKS = r"""
import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@schemathesis.hook
def map_headers(context, headers):
    key = (headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.fullmatch(key):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    return headers
"""


@pytest.fixture
async def served(settings, tmp_path):
    """The app on a loopback port, with rate limits out of the fuzzer's way."""
    app = create_app(settings.replace(rate_limit_api_per_minute=1_000_000, rate_limit_auth_per_minute=100_000,
                                      log_level="warning"))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield app, f"http://127.0.0.1:{server.port}"
    await server.close()


async def _schemathesis(url: str, config: pathlib.Path) -> tuple[int, str]:
    st = pathlib.Path(sys.executable).with_name("st")
    proc = await asyncio.create_subprocess_exec(
        str(st), "--config-file", str(config), "--no-color", "run", f"{url}/api/openapi.json",
        "--checks", "all", "--mode", "all", "--seed", str(SEED), "--output-truncate", "false",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=config.parent,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")},
             "SCHEMATHESIS_HOOKS": "fuzz_hooks"})
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_LIMIT)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -1, out.decode(errors="replace") + f"\n(stopped after {RUN_LIMIT:g} s)"
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.timeout(RUN_LIMIT + 60)
@pytest.mark.parametrize("who", ["admin-token", "anonymous"])
async def test_schemathesis_finds_nothing(served, tmp_path, who):
    app, url = served
    token = None
    if who == "admin-token":
        token = await api_token(app, await make_user(app, "root@example.org", "admin"), scopes=("admin",))
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(token, EXAMPLES[who]))
    (tmp_path / "fuzz_hooks.py").write_text(HOOKS)
    code, report = await _schemathesis(url, config)
    print(report)
    assert code == 0, report[-20_000:]
    assert " passed" in report or "No issues found" in report, report[-5_000:]
