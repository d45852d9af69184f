"""A large workflow (40 steps) stays usable, and a retried step shows its attempts: in Debian
chromium through the real Caddy and app. The drawing is fitted on load (every step inside the
box), zooms with its buttons, with + / − / 0 and with ctrl + wheel, and pans with a drag that does
not open the step it started on. The first step's model call fails once (the tests' LLM server's
Fault) and is retried: its details list both attempts, latest first, the first failed with its
error. Screenshots in light, dark and at 375 px; no console error."""

from __future__ import annotations

import json
import re

import pytest

from ..support.llm_server import Fault, Turn
from . import appliance
from .test_workflow_diagram import fits_a_phone

STEPS = 40


def large(agent_id: str) -> dict:
    """An agent step retried once, a parallel pair half way, and a chain of calculator steps."""
    steps: dict = {"s0": {"kind": "agent", "agent_id": agent_id, "input": "Begin", "next": "s1",
                          "retry": {"max_attempts": 2, "backoff_seconds": 0.05}}}
    for i in range(1, STEPS - 3):
        steps[f"s{i}"] = {"kind": "tool", "tool": "calculator", "arguments": {"expression": f"{i} * 2"},
                          "next": f"s{i + 1}" if i + 1 < STEPS - 3 else None}
    steps["s18"]["next"] = "fan"
    steps["fan"] = {"kind": "parallel", "steps": ["left", "right"], "next": "s19"}
    steps["left"] = {"kind": "tool", "tool": "calculator", "arguments": {"expression": "1 + 1"}}
    steps["right"] = {"kind": "tool", "tool": "calculator", "arguments": {"expression": "2 + 2"}}
    steps[f"s{STEPS - 4}"].pop("next")
    assert len(steps) == STEPS
    return {"name": "Long", "start": "s0", "steps": steps}


async def view_box(diagram) -> list[float]:
    return [float(v) for v in (await diagram.get_attribute("viewBox")).split()]


@pytest.mark.timeout(300)
async def test_a_large_workflow_fits_zooms_and_pans_and_shows_a_retried_steps_attempts(dist, tmp_path):
    from playwright.async_api import expect

    async with appliance.running(tmp_path, dist, lambda body: Turn("begun"), tokens_per_second=0) as app:
        context = await app.browser.new_context(viewport={"width": 1100, "height": 900})
        page = await context.new_page()
        errors = appliance.console_errors(page)
        await page.goto(app.signin("ada@example.org"))
        await page.wait_for_url("**/agents", timeout=20000)
        await page.get_by_label("Name").fill("Worker")
        await page.get_by_role("button", name="Create agent").click()
        await page.get_by_role("list", name="Agents").get_by_text("Worker").wait_for()
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
        editor = page.get_by_label("Definition (JSON)")
        await expect(editor).to_have_value(re.compile('"agent_id": "[0-9a-f-]{8,}"'), timeout=20000)
        agent_id = json.loads(await editor.input_value())["steps"]["draft"]["agent_id"]
        await editor.fill(json.dumps(large(agent_id)))
        await page.get_by_role("button", name="Save workflow").click()
        await page.wait_for_url("**/workflows/*", timeout=10000)
        diagram = page.locator("svg.wf-graph")
        await expect(diagram.locator("g[data-step]")).to_have_count(STEPS + 1)      # and the join

        # fitted on load: the whole drawing is the viewBox and every step is inside the box
        x, y, w, h = await view_box(diagram)
        assert (x, y) == (0, 0) and h > 2000, (x, y, w, h)
        outside = await page.evaluate("""() => {
            const box = document.querySelector('svg.wf-graph').getBoundingClientRect();
            return [...document.querySelectorAll('svg.wf-graph g[data-step]')].filter((g) => {
                const r = g.getBoundingClientRect();
                return r.top < box.top - 1 || r.bottom > box.bottom + 1 || r.left < box.left - 1
                    || r.right > box.right + 1; }).map((g) => g.dataset.step); }""")
        assert outside == [], outside
        box = await diagram.bounding_box()
        assert box and box["height"] <= 560.5, box
        small = (await diagram.locator("g[data-step=s5]").bounding_box())["width"]

        # the buttons: in, and the steps grow; the zoom shown
        zoom = page.get_by_role("toolbar", name="Zoom")
        await zoom.get_by_role("button", name="Zoom in").click()
        await expect(zoom.locator("[data-zoom]")).to_have_text("125%")
        assert abs((await view_box(diagram))[3] - h / 1.25) < 0.02
        assert (await diagram.locator("g[data-step=s5]").bounding_box())["width"] > small * 1.2
        await zoom.get_by_role("button", name="Zoom out").click()
        await expect(zoom.locator("[data-zoom]")).to_have_text("100%")

        # the keyboard on the drawing: + zooms in, − out, 0 fits again
        await page.locator(".wf-canvas").focus()
        for key, shown in (("+", "125%"), ("+", "156%"), ("-", "125%"), ("+", "156%"), ("+", "195%"),
                           ("+", "244%"), ("0", "100%"), ("+", "125%"), ("+", "156%"), ("+", "195%")):
            await page.keyboard.press(key)
            await expect(zoom.locator("[data-zoom]")).to_have_text(shown)
        await appliance.shoot(page, "workflow-zoom-in")

        # a drag pans the drawing with the pointer, and the press it began with opens no step
        before = await view_box(diagram)
        box = await diagram.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await page.mouse.move(cx, cy)
        await page.mouse.down()
        await page.mouse.move(cx, cy - 200, steps=8)
        await page.mouse.up()
        after = await view_box(diagram)
        assert after[1] > before[1] + 50 and after[2:] == before[2:], (before, after)
        await expect(page.locator("#wf-step-title")).to_have_count(0)

        # ctrl + wheel zooms at the pointer; a plain wheel scrolls the page, not the drawing
        await page.mouse.move(cx, cy)
        await page.keyboard.down("Control")
        await page.mouse.wheel(0, -100)
        await page.keyboard.up("Control")
        await expect(zoom.locator("[data-zoom]")).to_have_text("244%")
        await zoom.get_by_role("button", name="Fit").click()
        await expect(zoom.locator("[data-zoom]")).to_have_text("100%")

        # a run: its first step fails once and is retried; the details list both attempts
        app.llm.faults = [Fault("status", status=422)]   # not retried by the model client: by the step
        await page.get_by_role("button", name="Start run").click()
        await expect(page.locator("#wf-run-status")).to_contain_text("Succeeded", timeout=30000)
        await expect(diagram.locator("g[data-step=s36]")).to_have_attribute("data-state", "succeeded")
        await diagram.locator("g[data-step=s0]").focus()
        await page.keyboard.press("Enter")
        attempts = page.locator("section.wf-attempts li")
        await expect(attempts).to_have_count(2)
        await expect(attempts.nth(0)).to_have_attribute("data-status", "succeeded")
        await expect(attempts.nth(0)).to_contain_text("Attempt 2")
        await expect(attempts.nth(1)).to_have_attribute("data-status", "failed")
        await expect(attempts.nth(1)).to_contain_text("the model provider answered 422")
        await expect(page.locator("section.wf-details")).to_contain_text("Attempts2")

        await appliance.light_dark_phone(page, "workflow-zoom", lambda: fits_a_phone(page, diagram))
    assert not errors, errors
