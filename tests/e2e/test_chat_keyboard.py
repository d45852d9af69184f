"""The chat by keyboard, another agent and model for one turn, and images the administrator
allows, end to end: the real app (AGENTSTEAD_CHAT_IMAGE_ORIGINS naming a loopback image
server), Caddy (its CSP img-src listing that origin through CADDY_IMG_SRC) and Debian chromium.

Without a mouse: `i` focuses the composer, Enter sends, `?` opens the shortcut list (focus on its
Close button and kept there by Tab, Escape closes it and focus comes back), `a` opens the picker
where the next message goes to another agent with another model (the LLM server sees that
model and that agent's instructions; the transcript names both), `r` regenerates (back to the
thread's agent: the choice was for one message); "from now on" makes it the thread's (PATCH): a
second tab follows it live, and after a reload it is still shown and the next reply is from it.
An image from the allowed origin loads, one
from elsewhere is a link and is never requested. No console error. Screenshots in light, dark
and at 375 px wide."""

from __future__ import annotations

import struct
import zlib

import pytest
from aiohttp import web

from ..support.llm_server import Turn
from . import appliance

def _png(size: int = 48) -> bytes:
    """A size x size PNG (a diagonal band), enough to see in the screenshots."""
    rows = b"".join(b"\0" + b"".join(bytes((40, 120, 200) if abs(x - y) < 8 else (250, 200, 60)) for x in range(size))
                    for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = _png()


async def _image_server() -> tuple[web.AppRunner, str, list[str]]:
    seen: list[str] = []

    async def image(request: web.Request) -> web.Response:
        seen.append(request.path + " referer=" + request.headers.get("Referer", ""))
        return web.Response(body=PNG, content_type="image/png")
    app = web.Application()
    app.router.add_get("/{name}.png", image)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}", seen


async def _create_agent(page, name: str, instructions: str, model: str | None = None) -> None:
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Instructions").fill(instructions)
    if model:
        await page.get_by_label("Model").select_option(model)
    await page.get_by_role("button", name="Create agent").click()
    await page.get_by_role("list", name="Agents").get_by_text(name, exact=True).wait_for()


async def _focused(page) -> str:
    return await page.evaluate("() => document.activeElement.id || document.activeElement.textContent")


@pytest.mark.timeout(300)
async def test_keyboard_turn_choice_and_allowed_images(dist, tmp_path):  # noqa: F811
    from playwright.async_api import expect

    images, origin, requested = await _image_server()
    seen: list[dict] = []

    def script(body):
        seen.append(body)
        return Turn(f"Answer {len(seen)} by **{body['model']}**: ![a cat]({origin}/cat.png) "
                    f"![elsewhere](http://127.0.0.1:9/other.png)")
    loaded: list[str] = []
    try:
        async with appliance.running(tmp_path, dist, script, tokens_per_second=200, models=("gpt-test", "gpt-other"),
                                     caddy_env={"CADDY_IMG_SRC": origin}, AGENTSTEAD_CHAT_IMAGE_ORIGINS=origin) as app:
            context = await app.browser.new_context(viewport={"width": 1100, "height": 800})
            page = await context.new_page()
            errors = appliance.console_errors(page)
            page.on("request", lambda r: loaded.append(r.url) if r.resource_type == "image" else None)

            await page.goto(app.signin("ada@example.org"))
            await page.wait_for_url("**/agents", timeout=20000)
            await _create_agent(page, "Helper", "Be brief.")
            await _create_agent(page, "Pirate", "Talk like a pirate.")
            await page.get_by_role("button", name="Chat with Helper").click()
            await page.wait_for_url("**/chat/*")
            log = page.get_by_role("log", name="Transcript")
            await expect(page.get_by_text("Next answer: Helper · gpt-test")).to_be_visible(timeout=20000)

            # ---- keyboard only: i, type, Enter sends
            await page.locator("body").press("i")
            await expect(page.locator("#composer")).to_be_focused()
            await page.keyboard.type("first question")
            await page.keyboard.press("Enter")
            answer = log.locator(".msg.assistant:not(.streaming)")
            await expect(answer.locator("strong")).to_have_text("gpt-test", timeout=20000)
            await expect(answer.locator(".who")).to_have_text("Helper · gpt-test")

            # the image from the allowed origin loads (no referrer, lazily); the other is a link
            img = answer.locator("img.md-img")
            await expect(img).to_have_attribute("src", origin + "/cat.png")
            await expect(img).to_have_attribute("referrerpolicy", "no-referrer")
            await expect(img).to_have_attribute("loading", "lazy")
            await page.wait_for_function("() => { const i = document.querySelector('img.md-img');"
                                         " return i && i.complete && i.naturalWidth === 48; }", timeout=10000)
            assert requested and all(r == "/cat.png referer=" for r in requested), requested
            await expect(answer.locator("a.md-image")).to_have_attribute("href", "http://127.0.0.1:9/other.png")
            assert not [u for u in loaded if "other.png" in u], loaded

            # ---- ? opens the list: focus on Close, kept there by Tab; Escape closes, focus comes back
            await page.keyboard.press("Tab")                       # out of the composer, onto Send
            before = await _focused(page)
            await page.keyboard.press("?")
            dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
            await expect(dialog).to_be_visible()
            await expect(page.locator("#shortcuts-close")).to_be_focused()
            await page.keyboard.press("Tab")
            await page.keyboard.press("Shift+Tab")
            assert await _focused(page) == "shortcuts-close"
            await appliance.shoot(page, "keys-light", full_page=False)
            await page.keyboard.press("Escape")
            await expect(dialog).to_have_count(0)
            await page.wait_for_function("id => (document.activeElement.id || document.activeElement.textContent)"
                                         " === id", arg=before, timeout=5000)

            # ---- a: another agent and model for the next message only
            await page.keyboard.press("a")
            await expect(page.get_by_role("group", name="Who answers next")).to_be_visible()
            await expect(page.locator("#turn-agent")).to_be_focused()
            await page.get_by_label("Agent", exact=True).select_option(label="Pirate")
            await page.get_by_label("Model", exact=True).select_option("gpt-other")
            await page.keyboard.press("Escape")
            await expect(page.get_by_text("Next answer: Pirate · gpt-other")).to_be_visible()
            await page.locator("body").press("i")
            await expect(page.locator("#composer")).to_be_focused()
            await page.keyboard.type("second question")
            await page.keyboard.press("Enter")
            await expect(answer.nth(1).locator(".who")).to_have_text("Pirate · gpt-other", timeout=20000)
            await expect(answer.nth(1).locator("strong")).to_have_text("gpt-other")
            assert seen[-1]["model"] == "gpt-other"
            assert seen[-1]["messages"][0] == {"role": "system", "content": "Talk like a pirate."}
            await expect(page.get_by_text("Next answer: Helper · gpt-test")).to_be_visible()   # spent

            # ---- r regenerates the last answer: the thread's agent again
            await page.keyboard.press("Tab")
            await page.keyboard.press("r")
            await expect(answer.nth(1).locator(".who")).to_have_text("Helper · gpt-test", timeout=20000)
            await expect(answer.nth(1).locator("strong")).to_have_text("gpt-test")
            assert seen[-1]["messages"][0]["content"] == "Be brief."
            await expect(answer).to_have_count(2)

            # ---- from now on: the thread's choice, on the server: another tab follows it live, a
            # reload still shows it, and the next reply is from that agent and model
            other_tab = await context.new_page()
            await other_tab.goto(page.url)
            await expect(other_tab.get_by_text("Next answer: Helper · gpt-test")).to_be_visible(timeout=20000)
            await page.keyboard.press("a")
            await page.get_by_label("Agent", exact=True).select_option(label="Pirate")
            await page.get_by_label("Model", exact=True).select_option("gpt-other")
            await page.get_by_role("checkbox", name="From now on").check()
            await page.keyboard.press("Escape")
            await expect(page.get_by_text("Next answer: Pirate · gpt-other", exact=True)).to_be_visible()
            await expect(other_tab.get_by_text("Next answer: Pirate · gpt-other")).to_be_visible(timeout=10000)
            await other_tab.close()
            await page.reload()
            await expect(page.get_by_text("Next answer: Pirate · gpt-other")).to_be_visible(timeout=20000)
            await expect(answer).to_have_count(2, timeout=20000)
            await page.keyboard.press("a")                          # the picker says it is the thread's
            await expect(page.get_by_role("checkbox", name="From now on")).to_be_checked()
            await page.keyboard.press("Escape")
            await expect(page.get_by_role("group", name="Who answers next")).to_have_count(0)
            await page.locator("body").press("i")
            await page.keyboard.type("third question")
            await page.keyboard.press("Enter")
            await expect(answer.nth(2).locator(".who")).to_have_text("Pirate · gpt-other", timeout=20000)
            assert seen[-1]["model"] == "gpt-other"
            assert seen[-1]["messages"][0] == {"role": "system", "content": "Talk like a pirate."}
            await expect(page.get_by_text("Next answer: Pirate · gpt-other")).to_be_visible()   # kept

            await page.keyboard.press("a")
            await appliance.shoot(page, "keys-picker-light")
            await page.emulate_media(color_scheme="dark")
            await page.keyboard.press("Escape")
            await page.keyboard.press("Tab")
            await page.keyboard.press("?")
            await appliance.shoot(page, "keys-dark", full_page=False)
            await page.keyboard.press("Escape")
            await appliance.shoot(page, "keys-chat-dark")
            await page.set_viewport_size({"width": 375, "height": 800})
            await appliance.shoot(page, "keys-375")
        assert not errors, errors
    finally:
        await images.cleanup()       # started first, stopped last
