"""One person's whole day with the SPA, end to end through the real parts: the built
frontend behind the real Caddy, the real app (a subprocess on a real SQLite file),
the tests' OIDC provider and LLM server, Debian chromium driven by Playwright.

Signs in with the provider's button; creates an agent with tools; chats and watches
tokens stream; reloads mid-stream (nothing lost or doubled); answers an ask_human
question inline; cancels a run; restarts the server mid-stream and resumes the run
(the reply ends up whole, once); watches the runs page update live from another tab;
creates an API token (shown once, works), revokes it (stops working); sees the admin
page's health, users, audit log and usage chart; logs out everywhere.

Every page's console errors are collected and must be none (the only ones allowed:
the browser's own network lines while the server is deliberately down, and its 401
lines before signing in, when the app asks /api/me who is there). Screenshots of every page in light and dark, and at
phone width (375 px), go to $AGENTSTEAD_ARTIFACTS/e2e (default tests/artifacts/e2e)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess

import pytest

from ..support.llm_server import ToolCall, Turn, last_user_text
from ..support.oidc_provider import OIDCProvider
from ..support.procs import VENV_BIN, clean_env
from . import appliance
from .appliance import shoot

HELLO = " ".join(f"hello{i}" for i in range(40))
STORY = " ".join(f"story{i}" for i in range(400))
RESTART = " ".join(f"again{i}" for i in range(90))
PAGES = ("agents", "chat", "workflows", "runs", "account", "admin")


# every form control needs an accessible name: a <label>, aria-label(ledby), or a button's text
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => !(e.labels?.length || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')
                 || (e.tagName === 'BUTTON' && e.textContent.trim())))
  .map(e => e.outerHTML.slice(0, 100))"""


def reply(body: dict) -> Turn:
    """The model: a question for 'ask me', a long story to cancel, a reply to restart in."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return Turn(f"You chose {last.get('content')}.")
    text = last_user_text(messages)
    if "ask me" in text:
        return Turn(tool_calls=[ToolCall("ask_human", {"question": "Which city shall it be?"}, id="call_city")])
    if "long story" in text:
        return Turn(STORY)
    if "restart" in text:
        return Turn(RESTART)
    return Turn(HELLO)


class Console:
    """Console errors of every page, with the windows in which network errors are expected."""

    def __init__(self):
        self.errors: list[str] = []
        self.server_down = False
        self.signed_out = True
        self.expected: set[str] = set()     # network lines a step provokes on purpose (e.g. a 422)

    def watch(self, page, name: str) -> None:
        def on_console(m):
            if m.type != "error":
                return
            text = m.text
            if self.server_down and ("Failed to load resource" in text or "WebSocket" in text):
                return          # the server is deliberately stopped: the browser logs the failed requests
            if "Failed to load resource" in text and any(e in text for e in self.expected):
                return          # a request the test made fail on purpose
            if "status of 401" in text and (self.signed_out or "/signin" in page.url):
                return          # the browser's line for /api/me (and the page's first fetch) before signing in
            self.errors.append(f"[{name} {page.url}] {text}")
        page.on("console", on_console)
        page.on("pageerror", lambda e: self.errors.append(f"[{name} {page.url}] pageerror: {e}"))


async def streamed_text(page) -> str:
    return await page.evaluate("() => document.querySelector('.msg.streaming .body')?.textContent ?? ''")


async def wait_streamed_words(page, n: int, timeout: float = 20.0) -> str:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        text = await streamed_text(page)
        if len(text.split()) >= n:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {n} words streamed: {await streamed_text(page)!r}")


async def assistant_texts(page) -> list[str]:
    return await page.evaluate(
        "() => [...document.querySelectorAll('.transcript .msg.assistant:not(.streaming) .body')]"
        ".map(e => e.textContent)")


@pytest.mark.timeout(420)
async def test_spa_journey(dist, tmp_path):
    from playwright.async_api import expect

    idp = OIDCProvider(client_id="agentstead", client_secret="s3cret")
    await idp.start()
    (tmp_path / "oidc_secret").write_text("s3cret")
    oidc = json.dumps([{"name": "corp", "issuer": idp.issuer, "client_id": "agentstead",
                        "client_secret_file": str(tmp_path / "oidc_secret"), "display_name": "Corp SSO"}])
    console = Console()
    try:
        async with appliance.running(tmp_path, dist, reply, tokens_per_second=30,
                                     AGENTSTEAD_OIDC_PROVIDERS=oidc) as app:
            llm, server, browser, base = app.llm, app.server, app.browser, app.caddy.url
            idp.redirect_uris = [base + "/auth/callback/corp"]
            subprocess.run([str(VENV_BIN / "agentstead"), "admin", "create-user", "--email", "ada@example.org",
                            "--role", "admin"], env=clean_env(AGENTSTEAD_STATE_DIR=str(server.state_dir)),
                           check=True, capture_output=True)
            context = await browser.new_context(viewport={"width": 1200, "height": 860}, color_scheme="light")
            page = await context.new_page()
            console.watch(page, "main")

            # ---- sign in with the provider's button; land where we were going
            await page.goto(base + "/runs")
            await page.wait_for_url("**/signin?next=/runs")
            button = page.get_by_role("link", name="Sign in with Corp SSO")
            await expect(button).to_be_visible()
            await shoot(page, "light-signin")
            await button.click()
            await page.wait_for_url("**/runs")
            await expect(page.get_by_role("heading", name="Runs")).to_be_visible()
            console.signed_out = False
            nav = page.get_by_role("navigation", name="Main")
            await expect(nav.get_by_role("link", name="Admin")).to_be_visible()      # ada is an admin

            # ---- keyboard: the first Tab reaches the skip link, and focus is visible
            await page.keyboard.press("Tab")
            focused = await page.evaluate("() => [document.activeElement.textContent, "
                                          "getComputedStyle(document.activeElement).outlineStyle]")
            assert focused[0] == "Skip to content" and focused[1] != "none", focused

            # ---- create an agent with tools
            await nav.get_by_role("link", name="Agents").click()
            await expect(page.get_by_text("No agents yet")).to_be_visible()
            assert await page.evaluate("() => document.activeElement.id") == "main"   # focus follows navigation
            await page.get_by_label("Name").fill("Helper")
            await page.get_by_label("Instructions").fill("Be brief.")
            await page.get_by_role("checkbox", name="ask_human").check()
            await page.get_by_role("checkbox", name="calculator").check()
            await page.get_by_role("button", name="Create agent").click()
            agents = page.get_by_role("list", name="Agents")
            await expect(agents.get_by_text("Tools: calculator, ask_human")).to_be_visible()
            await shoot(page, "light-agents")

            # ---- chat: tokens stream; a reload mid-stream loses and doubles nothing
            await page.get_by_role("button", name="Chat with Helper").click()
            await page.wait_for_url("**/chat/*")
            thread_url = page.url
            composer = page.get_by_role("textbox", name="Message")
            transcript = page.get_by_role("log", name="Transcript")
            await composer.fill("Hello there")
            await composer.press("Enter")
            first = await wait_streamed_words(page, 3)
            growing = [first]
            for _ in range(8):
                await asyncio.sleep(0.08)
                growing.append(await streamed_text(page))
            assert len(set(growing)) >= 3, f"the reply did not grow token by token: {growing}"
            before_reload = await streamed_text(page)
            await page.reload()
            after_reload = await wait_streamed_words(page, len(before_reload.split()))
            assert after_reload.startswith(before_reload), (before_reload, after_reload)   # the replay: nothing lost
            await expect(transcript.locator(".msg.assistant:not(.streaming) .body")).to_have_text(HELLO, timeout=20000)
            assert (await assistant_texts(page)).count(HELLO) == 1

            # ---- ask_human: the question appears inline and the answer resumes the run
            await composer.fill("Please ask me something")
            await composer.press("Enter")
            ask = page.get_by_role("form", name="Answer the agent")
            await expect(ask).to_contain_text("Which city shall it be?", timeout=20000)
            await ask.get_by_label("Your answer").fill("Paris")
            await ask.get_by_role("button", name="Answer").click()
            await expect(transcript.get_by_text("You chose Paris.")).to_be_visible(timeout=20000)
            await expect(ask).to_have_count(0)
            await expect(transcript.get_by_text("Called ask_human")).to_be_visible()

            # ---- cancel a run: streaming stops, the partial text stays, marked cut short
            await composer.fill("Tell me a long story")
            await composer.press("Enter")
            await wait_streamed_words(page, 5)
            await transcript.get_by_role("button", name="Cancel").click()
            await expect(transcript.get_by_text("Cancelled.")).to_be_visible(timeout=10000)
            await expect(transcript.get_by_text("(cut short)")).to_be_visible()
            await llm.wait_cancelled(timeout=5)
            cut = [t for t in await assistant_texts(page) if t.startswith("story0")]
            assert len(cut) == 1 and len(cut[0].split()) < 400, cut
            firsts = await page.evaluate(           # each question above its answer, in the order sent
                "() => [...document.querySelectorAll('.transcript .msg.user .body, .transcript .msg.assistant .body')]"
                ".map(e => e.textContent.split(' ')[0])")
            assert firsts == ["Hello", "hello0", "Please", "You", "Tell", "story0"], firsts
            await shoot(page, "light-chat")

            # ---- restart the server mid-stream: the page goes offline, comes back, resumes whole
            await composer.fill("Now restart while you talk")
            await composer.press("Enter")
            await wait_streamed_words(page, 10)
            console.server_down = True
            await asyncio.to_thread(server.stop)
            await expect(page.get_by_role("status").filter(has_text="Offline")).to_be_visible(timeout=10000)
            await asyncio.to_thread(server.start)
            await expect(page.get_by_role("status").filter(has_text="Offline")).to_have_count(0, timeout=30000)
            console.server_down = False
            resume = transcript.get_by_role("button", name="Resume")
            await expect(resume).to_be_visible(timeout=10000)
            await resume.click()
            await expect(transcript.locator(".msg.assistant:not(.streaming) .body").filter(
                has_text="again0 ")).to_have_text(RESTART, timeout=30000)
            texts = await assistant_texts(page)
            assert texts.count(RESTART) == 1 and sum("again1 " in t for t in texts) == 1, texts
            assert await page.evaluate(      # the transcript followed the reply down the page
                "() => innerHeight + scrollY >= document.documentElement.scrollHeight - 80")
            await page.reload()                         # and the stored transcript agrees
            await expect(page.get_by_role("log", name="Transcript").get_by_text("You chose Paris.")).to_be_visible()
            texts = await assistant_texts(page)
            assert texts.count(RESTART) == 1 and texts.count(HELLO) == 1, texts

            # ---- rename this thread; start another one and delete it. Another tab on /chat
            # sees its thread list follow each change without a reload (users/{id}).
            lister = await context.new_page()
            console.watch(lister, "lister")
            following = asyncio.get_running_loop().create_future()

            def on_socket(ws):
                def on_frame(payload):
                    if '"subscribed"' in str(payload) and '"users/' in str(payload) and not following.done():
                        following.set_result(True)
                ws.on("framereceived", on_frame)
            lister.on("websocket", on_socket)
            await lister.goto(base + "/chat")
            listed = lister.get_by_role("navigation", name="Threads").get_by_role("list")
            await expect(listed.get_by_role("link")).to_have_count(1)
            await asyncio.wait_for(following, 10)     # the list follows users/{id} from here on
            await page.get_by_role("button", name="Rename").click()
            await page.get_by_label("Title", exact=True).fill("Trip planning")
            await page.get_by_label("Title", exact=True).press("Enter")
            await expect(page.get_by_role("heading", name="Trip planning")).to_be_visible()
            threads = page.get_by_role("navigation", name="Threads").get_by_role("list")
            await expect(threads.get_by_role("link", name="Trip planning")).to_be_visible()
            await expect(listed.get_by_role("link", name="Trip planning")).to_be_visible(timeout=10000)
            await page.get_by_role("navigation", name="Main").get_by_role("link", name="Agents").click()
            await page.get_by_role("button", name="Chat with Helper").click()
            await page.wait_for_url(lambda url: "/chat/" in url and url != thread_url)
            await expect(threads.get_by_role("link")).to_have_count(2)
            await expect(listed.get_by_role("link")).to_have_count(2, timeout=10000)
            await page.get_by_role("button", name="Delete…").click()
            await page.get_by_role("group", name="Delete the thread").get_by_role("button", name="Delete").click()
            await page.wait_for_url(re.compile(r".*/chat$"))
            await expect(threads.get_by_role("link")).to_have_count(1)
            await expect(threads.get_by_role("link", name="Trip planning")).to_be_visible()
            await expect(listed.get_by_role("link")).to_have_count(1, timeout=10000)
            await expect(listed.get_by_role("link", name="Trip planning")).to_be_visible()
            await lister.close()

            # ---- runs page: a run started in another tab appears and finishes without a reload
            await page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
            table = page.get_by_role("table", name="Runs")
            await expect(table.locator("tbody tr")).to_have_count(4, timeout=10000)
            await expect(table).to_contain_text("Cancelled")
            await expect(page.get_by_text("Live", exact=True)).to_be_visible(timeout=10000)
            other = await context.new_page()
            console.watch(other, "other")
            await other.goto(thread_url)
            await other.get_by_role("textbox", name="Message").fill("Hello from another tab")
            await other.get_by_role("textbox", name="Message").press("Enter")
            await expect(table.locator("tbody tr")).to_have_count(5, timeout=15000)
            await expect(table.locator("tbody tr").first).to_have_attribute("data-status", "succeeded", timeout=20000)
            await other.close()
            await page.get_by_label("Status").select_option("cancelled")
            await page.wait_for_url("**/runs?status=cancelled")
            await expect(table.locator("tbody tr")).to_have_count(1)
            await page.get_by_label("Status").select_option("")
            await expect(table.locator("tbody tr")).to_have_count(5)
            await shoot(page, "light-runs")

            # ---- workflows: save the example (an agent step, an approval, an agent step), a bad
            # definition's problem pointed at; run it with an input; approve inline; steps finish live
            await page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
            editor = page.get_by_label("Definition (JSON)")
            await expect(editor).to_have_value(re.compile('"agent_id": "[0-9a-f-]{8,}"'))
            good = await editor.input_value()
            await editor.fill(good.replace('"on_approve": "polish"', '"on_approve": "nowhere"'))
            console.expected.add("status of 422")
            await page.get_by_role("button", name="Save workflow").click()
            await expect(page.get_by_role("alert")).to_contain_text("/definition/steps/review/on_approve")
            console.expected.clear()
            await editor.fill(good)
            await page.get_by_role("button", name="Save workflow").click()
            await page.wait_for_url("**/workflows/*")
            await expect(page.get_by_role("heading", name="Draft and review")).to_be_visible()
            await page.get_by_label("topic").fill("cats")
            await page.get_by_role("button", name="Start run").click()
            approval = page.get_by_role("form", name="Approval")
            await expect(approval).to_contain_text("Publish this draft?", timeout=20000)
            steps = page.get_by_role("table", name="Steps")
            await expect(steps.locator("tr[data-status=succeeded]")).to_have_count(1)
            await approval.get_by_label("Comment (optional)").fill("Looks good")
            await approval.get_by_role("button", name="Approve").click()
            await expect(page.locator("#wf-run-status")).to_contain_text("Succeeded", timeout=20000)
            await expect(steps.locator("tr[data-status=succeeded]")).to_have_count(3)
            await shoot(page, "light-workflow")
            workflow_url = page.url

            # ---- account: an API token is shown once, works, and stops working once revoked
            await page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
            await page.get_by_label("Name").fill("ci script")
            await page.get_by_role("checkbox", name="write").check()
            await page.get_by_label("Expires after").select_option("7")
            await page.get_by_role("button", name="Create token").click()
            value = await page.get_by_label("Token value").input_value()
            assert value.startswith("ast_"), value
            me = await page.request.get(base + "/api/me", headers={"Authorization": "Bearer " + value})
            assert me.status == 200 and (await me.json())["auth"]["scopes"] == ["read", "write"]
            tokens = page.get_by_role("table", name="API tokens")
            await expect(tokens).to_contain_text("ci script")
            await shoot(page, "light-account")
            await page.get_by_role("button", name="I have copied it").click()
            await expect(page.get_by_label("Token value")).to_have_count(0)
            await page.reload()
            await expect(page.get_by_role("table", name="API tokens")).to_contain_text("read, write")
            assert value not in await page.content()
            await page.get_by_role("button", name="Revoke token ci script").click()
            await page.get_by_role("button", name="Confirm: revoke token ci script").click()
            await expect(page.get_by_text("No API tokens.")).to_be_visible()
            gone = await page.request.get(base + "/api/me", headers={"Authorization": "Bearer " + value})
            assert gone.status == 401

            # ---- admin: health, users (and their sign-in identities), audit log (filtered, paged), usage chart
            await page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
            await expect(page.get_by_role("table", name="Health checks")).to_contain_text("database")
            await expect(page.locator(".status-line")).to_contain_text(re.compile("ready|Degraded"))
            await expect(page.get_by_role("table", name="Users")).to_contain_text("ada@example.org")
            await page.get_by_role("button", name="Sign-in identities of ada@example.org").click()
            await expect(page.get_by_role("table", name="Sign-in identities")).to_contain_text("corp")
            await page.get_by_role("button", name="Sign-in identities of ada@example.org").click()   # hides it
            await expect(page.get_by_role("table", name="Sign-in identities")).to_have_count(0)
            audit = page.get_by_role("table", name="Audit log")
            await expect(audit).to_contain_text("token.revoked")
            chart = page.get_by_role("img", name="Tokens per day")
            await expect(chart).to_be_visible()
            assert await chart.locator("rect").count() >= 2
            await page.get_by_label("Action").fill("token.created")
            await page.get_by_role("button", name="Filter").click()
            await expect(audit.locator("tbody tr")).to_have_count(1)
            await shoot(page, "light-admin")

            # ---- dark theme and phone width: every page, no sideways scrolling at 375 px
            state = await context.storage_state()
            for scheme, viewport, prefix in (("dark", {"width": 1200, "height": 860}, "dark"),
                                             ("light", {"width": 375, "height": 740}, "phone")):
                ctx = await browser.new_context(viewport=viewport, color_scheme=scheme, storage_state=state,
                                                is_mobile=prefix == "phone", has_touch=prefix == "phone")
                p = await ctx.new_page()
                console.watch(p, prefix)
                for name in PAGES:
                    path = {"chat": thread_url, "workflows": workflow_url}.get(name, base + "/" + name)
                    await p.goto(path)
                    await expect(p.locator(f"main[data-page={name}]")).to_be_visible()
                    await expect(p.locator("main").get_by_text(re.compile("Loading|Checking"))).to_have_count(0)
                    await shoot(p, f"{prefix}-{name}")
                    unlabelled = await p.evaluate(UNLABELLED)
                    assert unlabelled == [], f"{name}: controls without a label: {unlabelled}"
                    if prefix == "phone":
                        width = await p.evaluate("() => document.documentElement.scrollWidth")
                        assert width <= 375, f"{name} scrolls sideways at 375 px ({width} px)"
                    else:
                        bg = await p.evaluate("() => getComputedStyle(document.body).backgroundColor")
                        assert bg == "rgb(22, 23, 21)", bg        # the dark palette's --bg
                await ctx.close()

            # ---- log out everywhere: back to sign-in, and the old session is gone
            await page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
            await page.get_by_role("button", name="Log out everywhere").click()
            await page.wait_for_url("**/signin**")
            await expect(page.get_by_role("link", name="Sign in with Corp SSO")).to_be_visible()
            again = await page.request.get(base + "/api/me")
            assert again.status == 401
        assert console.errors == [], "\n".join(console.errors)
    finally:
        if console.errors:
            print("browser console errors:\n" + "\n".join(console.errors))
        await idp.stop()
        print(f"\nscreenshots: {appliance.ARTIFACTS}")
