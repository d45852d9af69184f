"""nixos/tests/chat_check.py, the VM test's browser stand-in, run here against the real app
behind the real Caddy (TLS from Caddy's local CA, as in the VM): a sign-in link, a chat run
streamed over the WebSocket through Caddy, the reply the tests' model server echoes."""

from __future__ import annotations

import asyncio
import json
import pathlib
import subprocess
import sys

from ..support.caddy import Caddy, build_spa
from ..support.llm_server import LLMServer
from ..support.procs import VENV_BIN, Server, clean_env

ROOT = pathlib.Path(__file__).resolve().parents[2]


async def test_the_vm_tests_chat_check_passes_through_caddy(tmp_path):
    build_spa(tmp_path / "spa")
    async with LLMServer(api_key=None, models=("gpt-test",)) as llm:
        providers = json.dumps([{"name": "local", "base_url": llm.base_url, "models": ["gpt-test"]}])
        with Server(tmp_path / "state", AGENTSTEAD_LLM_PROVIDERS=providers) as app:
            caddy = Caddy(tmp_path / "caddy", upstream=f"127.0.0.1:{app.port}", frontend_root=tmp_path / "spa",
                          tls=True)
            app.stop()  # again with the public URL Caddy gives it (the Origin the API checks)
            app = Server(tmp_path / "state", port=app.port, AGENTSTEAD_LLM_PROVIDERS=providers,
                         AGENTSTEAD_PUBLIC_URL=caddy.url).start()
            try:
                with caddy:
                    env = clean_env(AGENTSTEAD_STATE_DIR=str(app.state_dir), AGENTSTEAD_PUBLIC_URL=caddy.url)
                    subprocess.run([str(VENV_BIN / "agentstead"), "admin", "create-user", "--email",
                                    "ada@example.org"], env=env, check=True, capture_output=True)
                    link = subprocess.run([str(VENV_BIN / "agentstead"), "admin", "login-link", "--email",
                                           "ada@example.org"], env=env, check=True, capture_output=True,
                                          text=True).stdout.split()[0]
                    assert link.startswith(caddy.url + "/auth/link/")
                    # In a thread: the model server runs on this event loop.
                    done = await asyncio.to_thread(
                        subprocess.run, [sys.executable, str(ROOT / "nixos" / "tests" / "chat_check.py"),
                                         caddy.url, link, str(caddy.root_ca)],
                        capture_output=True, text=True, timeout=120)
                    assert done.returncode == 0, done.stderr + app.logs()[-3000:]
                    result = json.loads(done.stdout)
                    assert result["reply"] == "echo: hello from the appliance"
                    assert {"run.started", "message.delta", "run.succeeded"} <= set(result["events"])
                    assert result["user"] == "ada@example.org"
                    # The same script fails, saying so, when the run cannot succeed (a used link).
                    again = await asyncio.to_thread(
                        subprocess.run, [sys.executable, str(ROOT / "nixos" / "tests" / "chat_check.py"),
                                         caddy.url, link, str(caddy.root_ca)],
                        capture_output=True, text=True, timeout=120)
                    assert again.returncode == 1 and "the sign-in link did not sign in" in again.stderr
            finally:
                app.stop()
