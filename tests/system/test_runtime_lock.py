"""The runtime lock alone runs the app. A venv made from requirements.txt only (wheels, no
dev lock; scripts/runtime-venv, cached per lock) holds exactly the lock's distributions
and agentstead; its `agentstead serve` completes a chat run against the tests' OpenAI-
compatible server and validates a workflow (jsonschema) over HTTP."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import subprocess

import aiohttp
import pytest
from packaging.utils import canonicalize_name

from ..support import locks
from ..support.llm_server import LLMServer, Turn
from ..support.procs import Server, clean_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
ORIGIN = "http://localhost:47294"


@pytest.fixture(scope="module")
def runtime_bin() -> pathlib.Path:
    done = subprocess.run([str(ROOT / "scripts" / "runtime-venv")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return pathlib.Path(done.stdout.strip().splitlines()[-1]) / "bin"


def _cli(bin_dir: pathlib.Path, state_dir: pathlib.Path, *args: str) -> str:
    done = subprocess.run([str(bin_dir / "agentstead"), *args], env=clean_env(AGENTSTEAD_STATE_DIR=str(state_dir)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_runtime_venv_holds_the_lock_and_nothing_else(runtime_bin):
    listed = subprocess.run([str(runtime_bin / "python"), "-m", "pip", "list", "--format", "json",
                             "--disable-pip-version-check"], capture_output=True, text=True, check=True).stdout
    installed = {canonicalize_name(p["name"]): p["version"] for p in json.loads(listed)}
    installed.pop("pip", None)
    installed.pop("setuptools", None)  # the venv's own installer tools, as python -m venv makes them
    assert installed.pop("agentstead") == locks.project()["version"]
    assert installed == locks.runtime_pins()


def _expand(python: str, abi: str, platform: str) -> set[str]:
    """A compressed tag set (cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64) as single tags."""
    return {f"{p}-{a}-{x}" for p in python.split(".") for a in abi.split(".") for x in platform.split(".")}


def test_the_nix_build_fetches_the_wheels_this_venv_installed(runtime_bin):
    """nixos/python-lock.json names, per distribution, the wheel pip chose here (CI's
    platform): the same version and the same tags (from each installed WHEEL file)."""
    lock = json.loads((ROOT / "nixos" / "python-lock.json").read_text())["packages"]
    site = next((runtime_bin.parent / "lib").glob("python3.*/site-packages"))
    installed = {}
    for wheel in site.glob("*.dist-info/WHEEL"):
        meta = (wheel.parent / "METADATA").read_text()
        name = canonicalize_name(re.search(r"^Name: (.+)$", meta, re.M).group(1))
        version = re.search(r"^Version: (.+)$", meta, re.M).group(1)
        tags = set().union(*(_expand(*tag.split("-")) for tag in re.findall(r"^Tag: (.+)$", wheel.read_text(), re.M)))
        installed[name] = (version, tags)
    for name, entry in lock.items():
        assert installed[name] == (entry["version"], _expand(entry["python"], entry["abi"], entry["platform"])), name


async def test_serve_from_the_runtime_lock_completes_a_chat_run(runtime_bin, tmp_path):
    async with LLMServer(api_key=None, models=("gpt-test",)) as llm:
        llm.script = [Turn("Hello from the runtime lock")]
        providers = json.dumps([{"name": "local", "base_url": llm.base_url, "models": ["gpt-test"]}])
        with Server(tmp_path / "state", bin_dir=runtime_bin, AGENTSTEAD_LLM_PROVIDERS=providers) as server:
            _cli(runtime_bin, server.state_dir, "admin", "create-user", "--email", "ada@example.org")
            link = _cli(runtime_bin, server.state_dir, "admin", "login-link", "--email", "ada@example.org")
            async with aiohttp.ClientSession(base_url=server.url,
                                             cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                resp = await http.get("/auth/link/" + link.split()[0].rsplit("/", 1)[1], allow_redirects=False)
                assert resp.status == 302, server.logs()
                me = await (await http.get("/api/me")).json()
                unsafe = {"Origin": ORIGIN, "X-CSRF-Token": me["csrf_token"]}
                agent = await (await http.post("/api/agents", json={"name": "A"}, headers=unsafe)).json()
                thread = await (await http.post("/api/threads", json={"agent_id": agent["id"]},
                                                headers=unsafe)).json()
                resp = await http.post(f"/api/threads/{thread['id']}/messages", json={"content": "hi"},
                                       headers=unsafe)
                assert resp.status == 202, await resp.text()
                run_id = (await resp.json())["id"]
                async with asyncio.timeout(30):
                    while (run := await (await http.get(f"/api/runs/{run_id}")).json())["status"] not in (
                            "succeeded", "failed"):
                        await asyncio.sleep(0.05)
                assert run["status"] == "succeeded", (run, server.logs()[-3000:])
                body = await (await http.get(f"/api/threads/{thread['id']}")).json()
                assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
                assert body["messages"][-1]["content"] == "Hello from the runtime lock"
                assert len(llm.requests) == 1

                # Workflow definitions are checked against their JSON Schema (jsonschema).
                resp = await http.post("/api/workflows", json={"definition": {"steps": "not a list"}},
                                       headers=unsafe)
                assert resp.status == 422, await resp.text()
                assert (await resp.json())["error"]["code"] == "validation_failed"
