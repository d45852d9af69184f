"""A page the app drew (docs/architecture.md, "First page") in Debian chromium through the real
Caddy and app: with the SPA held back, the drawn /agents shows the person's data at once, inert
(no click reaches it), an agent's hostile name as text (no script runs); let go, the SPA takes
the page over with the same DOM it would have drawn itself, asks for none of the page's answers
again, and the page works; the same for /chat, /runs and /workflows; no console error.
Screenshots of the drawn page in light, dark and at 375 px wide."""

from __future__ import annotations

import pytest

from . import appliance

HOSTILE = '<img src=x onerror="window.__pwned = 1">"&amp;</script>'
# The page's tree, as a string that does not depend on how it was made: attributes sorted (the
# runtime's dicts keep no order), adjacent text joined (the HTML parser joins it), form state by
# its live value (the SPA sets value, checked and selected as properties, the app writes them as
# markup), the drawn page's inert left out.
CANONICAL = """() => {
  const root = document.getElementById('app-root').cloneNode(true);
  root.normalize();
  const skip = ['value', 'checked', 'selected', 'inert'];
  const live = document.getElementById('app-root').querySelectorAll('input, textarea, select');
  const state = new Map([...root.querySelectorAll('input, textarea, select')].map((el, i) =>
    [el, ' .value=' + JSON.stringify(live[i].value) + ' .checked=' + live[i].checked]));
  const walk = (n) => n.nodeType === 3 ? JSON.stringify(n.data) : n.nodeType !== 1 ? '' :
    '<' + n.localName + [...n.attributes].filter((a) => !skip.includes(a.name))
      .map((a) => ' ' + a.name + '=' + JSON.stringify(a.value)).sort().join('') + (state.get(n) ?? '') + '>' +
    (n.localName === 'textarea' ? '' : [...n.childNodes].map(walk).join('')) + '</' + n.localName + '>';
  return walk(root);
}"""


async def _app_html(page) -> str:
    return await page.evaluate(CANONICAL)


@pytest.mark.timeout(300)
async def test_a_drawn_page_shows_at_once_and_the_spa_takes_it_over(dist, tmp_path):
    from playwright.async_api import expect

    async with appliance.running(tmp_path, dist, tokens_per_second=50) as app:
        context = await app.browser.new_context(viewport={"width": 1100, "height": 800})
        page = await context.new_page()
        # the SPA held back below: its module's load fails, as it should; the empty form: 422
        errors = appliance.console_errors(page, expected=("status of 401", "status of 422", "net::ERR_FAILED"))
        await page.goto(app.signin("ada@example.org"))
        await expect(page.locator("#app-root:not([inert])")).to_have_count(1, timeout=20000)
        status = await page.evaluate("""async (name) => {
            const me = await (await fetch('/api/me')).json();
            const r = await fetch('/api/agents', {method: 'POST', headers: {'Content-Type': 'application/json',
                'X-CSRF-Token': me.csrf_token}, body: JSON.stringify({name, instructions: 'x'})});
            return r.status; }""", HOSTILE)
        assert status == 201

        for path, ready in (("/agents", ".agent"), ("/chat", "main[data-page=chat]"), ("/runs", "main[data-page=runs]"),
                            ("/workflows", "main[data-page=workflows]")):
            # the SPA held back: only what the app drew
            await page.route("**/assets/boot.*", lambda route: route.abort())
            await page.goto(app.caddy.url + path)
            await expect(page.locator(ready).first).to_be_visible()
            assert await page.locator("#app-root[inert]").count() == 1, path
            drawn = await _app_html(page)
            if path == "/agents":
                await expect(page.locator(".agent strong")).to_have_text(HOSTILE)
                # inert until the SPA has it: no click reaches a button (nor submits its form natively)
                hit = await page.evaluate("""() => {
                    const b = [...document.querySelectorAll('button')].find((x) => x.textContent === 'Create agent');
                    const r = b.getBoundingClientRect();
                    return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === b; }""")
                assert hit is False
                await appliance.light_dark_phone(page, "first-page-drawn")
                await page.emulate_media(color_scheme="light")
                await page.set_viewport_size({"width": 1100, "height": 800})
            await page.unroute("**/assets/boot.*")
            # the SPA takes over: the same page, and it works
            asked: list[str] = []

            def api(request, asked=asked):
                if "/api/" in request.url:
                    asked.append(request.url)
            page.on("request", api)
            await page.goto(app.caddy.url + path)
            await expect(page.locator("#app-root:not([inert])")).to_have_count(1, timeout=20000)
            taken = await _app_html(page)
            if taken != drawn:
                at = next(i for i, (a, b) in enumerate(zip(taken + "$", drawn + "$")) if a != b)
                raise AssertionError(f"{path}: the SPA's page differs from the drawn one at {at}:\n"
                                     f"SPA:   {taken[max(0, at - 200):at + 200]}\ndrawn: {drawn[max(0, at - 200):at + 200]}")
            assert not [u for u in asked if "/api/agents" in u or "/api/me" in u], asked
            page.remove_listener("request", api)
        await page.goto(app.caddy.url + "/agents")
        await page.get_by_role("button", name="Create agent").click()
        await expect(page.locator("#agent-name-error")).to_contain_text("characters")
        assert await page.evaluate("() => window.__pwned") is None
    assert errors == [], errors
