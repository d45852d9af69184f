"""What the browser tests start before a page opens: the app (`agentstead serve`) behind the real
Caddy serving the built SPA, its provider the tests' model server, and a page whose console
errors are collected."""

from __future__ import annotations

import json
import pathlib

from ..support.caddy import Caddy
from ..support.llm_server import LLMServer
from ..support.procs import Server


def start(tmp_path: pathlib.Path, dist: pathlib.Path, llm: LLMServer, models=("gpt-test",),
          caddy_env: dict | None = None, **env: str) -> tuple[Caddy, Server]:
    """Caddy and the app, started, with `llm` as the provider `local` (its key in a file);
    `env`: more of the app's settings. The caller stops both."""
    key = tmp_path / "llm_key"
    key.write_text("sk-test")
    caddy = Caddy(tmp_path / "caddy", upstream="127.0.0.1:0", frontend_root=dist, **(caddy_env or {}))
    server = Server(tmp_path / "state", AGENTSTEAD_PUBLIC_URL=caddy.url, AGENTSTEAD_LLM_PROVIDERS=json.dumps(
        [{"name": "local", "base_url": llm.base_url, "models": list(models), "api_key_file": str(key)}]), **env)
    caddy.placeholders["CADDY_UPSTREAM"] = f"127.0.0.1:{server.port}"
    server.start()
    caddy.start()
    return caddy, server


def console_errors(page, expected=("status of 401",)) -> list[str]:
    """The page's console errors and uncaught exceptions from now on, but for the `expected`
    failed requests the browser logs as errors (a 401 before sign-in, a refused save)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text)
            if m.type == "error" and not any(e in m.text for e in expected) else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors
