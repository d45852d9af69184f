"""A Markdown answer end to end: the tests' LLM server streams Markdown with code, a table and
hostile HTML through the real app and Caddy into Debian chromium. The page shows it formatted
while it streams and once stored (code highlighted, a table, a task list), the hostile parts
inert (no script runs, no handler fires, no image loads, no javascript: link), no console
error; a code block's Copy button puts the code on the clipboard. Screenshots in light, dark
and at 375 px wide. Then regenerate, edit and run again, and search the thread."""

from __future__ import annotations

import pytest

from ..support.llm_server import Turn
from . import appliance

CODE = "def greet(name):\n    return f\"Hello, {name}!\"  # a comment\n"
ANSWER = ("## Result\n\nHere is **bold**, *emphasis* and `inline code`.\n\n"
          "```python\n" + CODE + "```\n\n"
          "| tool | stars |\n|:--|--:|\n| markdown-it | 19k |\n| prism | 12k |\n\n"
          "- [x] parse\n- [ ] render\n\n"
          "<script>window.__pwned = 'script'</script>\n\n"
          "<img src=\"x\" onerror=\"window.__pwned = 'img'\"> "
          "[click](javascript:window.__pwned='link') [docs](https://example.org/docs) "
          "![cat](http://127.0.0.1:9/cat.png)\n")


@pytest.mark.timeout(300)
async def test_markdown_answer_streams_formatted_and_inert(dist, tmp_path):
    from playwright.async_api import expect

    images: list[str] = []
    async with appliance.running(tmp_path, dist, [Turn(ANSWER)], tokens_per_second=40) as app:
        context = await app.browser.new_context(viewport={"width": 1100, "height": 800})
        await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app.caddy.url)
        page = await context.new_page()
        errors = appliance.console_errors(page)
        page.on("request", lambda r: images.append(r.url) if r.resource_type == "image" else None)

        await page.goto(app.signin("ada@example.org"))
        await page.wait_for_url("**/agents", timeout=20000)
        await page.get_by_label("Name").fill("Writer")
        await page.get_by_role("button", name="Create agent").click()
        await page.get_by_role("list", name="Agents").get_by_text("Writer").wait_for()
        await page.get_by_role("button", name="Chat").click()
        await page.wait_for_url("**/chat/*")
        composer = page.get_by_role("textbox", name="Message")
        await composer.fill("Show me Markdown")
        await composer.press("Enter")
        log = page.get_by_role("log", name="Transcript")

        # formatted while it streams: the heading and bold text are elements before the end
        streaming = log.locator(".msg.streaming .body.markdown")
        await expect(streaming.locator("strong")).to_have_text("bold", timeout=20000)
        await expect(streaming.locator("h2")).to_have_text("Result")

        answer = log.locator(".msg.assistant:not(.streaming)")
        await expect(answer.locator("a[href='https://example.org/docs']")).to_be_visible(timeout=30000)
        await expect(answer.locator("h2")).to_have_text("Result")
        await expect(answer.locator("em")).to_have_text("emphasis")
        await expect(answer.locator("table th")).to_have_text(["tool", "stars"])
        await expect(answer.locator("td.align-right").first).to_have_text("19k")
        await expect(answer.locator("input[type=checkbox]")).to_have_count(2)
        code = answer.locator(".code-block code.language-python")
        assert await code.text_content() == CODE
        assert await code.locator("span.tok-keyword").count() >= 2          # def, return
        assert await code.locator("span.tok-comment").count() == 1

        # hostile parts: text, never markup; nothing ran or loaded
        body = answer.locator(".body.markdown")
        assert await body.locator("script, img, iframe").count() == 0
        await expect(body).to_contain_text("<script>window.__pwned = 'script'</script>")
        await expect(body).to_contain_text("[image: cat]")
        hrefs = await body.locator("a").evaluate_all("els => els.map(a => [a.href, a.rel, a.target])")
        assert all(h.startswith("https://") or h.startswith("http://") for h, _, _ in hrefs), hrefs
        assert all(rel == "noopener noreferrer" and target == "_blank" for _, rel, target in hrefs), hrefs
        assert await page.evaluate("() => window.__pwned") is None
        assert not [u for u in images if "cat.png" in u], images

        # copy a code block
        await answer.locator(".code-block button", has_text="Copy").click()
        await page.wait_for_function("code => navigator.clipboard.readText().then(t => t === code)", arg=CODE,
                                     timeout=5000)

        await expect(log.locator(".msg.note.usage")).to_contain_text("tokens")      # time and usage

        # regenerate: the answer is replaced (a second reply from the LLM server)
        app.llm.script = [Turn("A **fresh** answer about zeppelins."), Turn("Edited answer on **dirigibles**.")]
        await page.get_by_role("button", name="Regenerate answer").click()
        await expect(answer.locator("strong")).to_have_text("fresh", timeout=20000)
        await expect(log.locator(".msg.assistant")).to_have_count(1)

        # edit the question and run again: question and answer replaced
        await log.get_by_role("button", name="Edit message").click()
        form = page.get_by_role("form", name="Edit your message")
        await form.locator("textarea").fill("Tell me about airships")
        await form.get_by_role("button", name="Save and run").click()
        await expect(answer.locator("strong")).to_have_text("dirigibles", timeout=20000)
        await expect(log.locator(".msg.user .body")).to_have_text(["Tell me about airships"])

        # search finds the thread's message, highlighted; the removed answer is gone
        search = page.get_by_role("searchbox", name="Search your chats")
        await search.fill("dirigib")
        results = page.get_by_role("list", name="Search results")
        await expect(results.locator("mark")).to_have_text(["dirigibles"], timeout=10000)
        await search.fill("zeppelins")
        await expect(page.get_by_text("Nothing found")).to_be_visible(timeout=10000)
        await search.fill("")

        await appliance.light_dark_phone(page, "markdown")
    assert not errors, errors
