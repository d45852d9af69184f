"""The SPA end to end: the built frontend served by the real Caddy in front of
the real app, driven in Debian chromium by Playwright: sign in with a link,
list and create agents (a validation error shown at its field), chat with a
reply streamed token by token from the tests' LLM server, reload and keep the
transcript. Prints the boot time and the gzipped transfer size."""

from __future__ import annotations

import asyncio
import json
import pathlib

import pytest

from ..support.llm_server import Turn
from . import appliance


def _gzipped_size(dist: pathlib.Path) -> int:
    """Bytes a first visit downloads with gzip: index.html and every asset it names."""
    total = (dist / "index.html.gz").stat().st_size
    for name in json.loads((dist / "manifest.json").read_text()).values():
        total += (dist / "assets" / (name + ".gz")).stat().st_size
    return total


async def _boot_ms(page) -> float:
    return await page.evaluate("""() => {
        const mark = performance.getEntriesByName('agentstead:first-render').at(-1);
        return mark ? mark.startTime : -1;
    }""")


@pytest.mark.timeout(300)
async def test_spa_agents_and_streamed_chat(dist, tmp_path):
    from playwright.async_api import expect

    words = [f"word{i}" for i in range(30)]
    answer = " ".join(words)
    errors: list[str] = []
    try:
        async with appliance.running(tmp_path, dist, [Turn(answer)], tokens_per_second=12) as app:
            context = await app.browser.new_context(viewport={"width": 1100, "height": 800})
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            # signed out: the app sends you to /signin, which explains a ?error= code
            await page.goto(app.caddy.url + "/signin?error=link_invalid")
            await expect(page.get_by_role("alert")).to_contain_text("sign-in link is invalid")
            await page.goto(app.caddy.url + "/agents")
            await page.wait_for_url("**/signin?next=/agents", timeout=20000)
            await expect(page.get_by_role("heading", name="Sign in to Agentstead")).to_be_visible()

            # sign in through a single-use link: lands on / -> /agents
            await page.goto(app.signin("ada@example.org"))
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
            # a page load comes with the page drawn in by the app (the list is in the HTML, inert) and
            # the answers it was drawn from, which boot.mjs hands to the SPA: none is asked for again,
            # and the SPA takes the page over
            asked = []
            page.on("request", lambda r: asked.append(r.url.split("/", 3)[3]) if "/api/" in r.url else None)
            document = await page.reload()
            drawn = await document.text()
            assert '<div id="app-root" inert>' in drawn and "Helper" in drawn and 'id="agentstead-early"' in drawn
            await expect(page.get_by_role("list", name="Agents").get_by_text("Helper")).to_be_visible(timeout=20000)
            await expect(page.locator("#app-root:not([inert])")).to_have_count(1, timeout=20000)
            for url in ("api/me", "api/agents?limit=200", "api/models"):
                assert url not in asked, asked

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
            await appliance.shoot(page, "link-chat")

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
        # the browser's own network lines: 401 for /api/me asked while signed out, 422 for the
        # deliberately empty agent name; anything else is a defect
        assert not [e for e in errors if "status of 401" not in e and "status of 422" not in e], errors
    finally:
        if errors:
            print("browser console errors:\n" + "\n".join(errors))
