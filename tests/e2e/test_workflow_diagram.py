"""A workflow drawn end to end: in Debian chromium through the real Caddy and app, a definition
with a branch, a parallel group and its join, and an approval. A save the server refuses points
at its step in the drawing; the saved workflow is drawn as SVG; a run lights its steps up as its
events arrive (the model's answer is held until the test has seen the step running), the way
not taken ends skipped; a click, or Tab and Enter / Space, shows a step's details (what it was
given, its output, attempts, timing) with a visible focus ring; a reload draws the finished run
from its snapshot. Screenshots in light, dark and at 375 px; no console error."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from ..support.llm_server import Turn, last_user_text
from . import appliance


def definition(agent_id: str) -> dict:
    return {"name": "Ship it", "description": "Plan, fan out or take the quick way, ask, finish.",
            "inputs": {"topic": {"type": "string"}}, "start": "plan", "steps": {
                "plan": {"kind": "agent", "agent_id": agent_id, "input": "Plan {{ input.topic }}", "next": "route"},
                "route": {"kind": "branch", "cases": [{"when": "input.topic == 'cats'", "next": "fan"}],
                          "default": "quick"},
                "quick": {"kind": "tool", "tool": "current_time", "arguments": {}, "next": "review"},
                "fan": {"kind": "parallel", "steps": ["left", "right"], "next": "review"},
                "left": {"kind": "agent", "agent_id": agent_id, "input": "Left side of {{ input.topic }}"},
                "right": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "6 * 7"}},
                "review": {"kind": "approval", "prompt": "Ship {{ steps.plan.output }}?", "on_approve": "done"},
                "done": {"kind": "agent", "agent_id": agent_id, "input": "Finish {{ steps.plan.output }}"}}}


async def fits_a_phone(page, diagram) -> None:
    """At 375 px: the drawing is shown, fitted to the width, and nothing scrolls sideways."""
    from playwright.async_api import expect

    await expect(diagram).to_be_visible()
    box = await diagram.bounding_box()
    assert box and box["width"] <= 375, box                         # drawn to fit the phone
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, width


@pytest.mark.timeout(300)
async def test_a_workflow_is_drawn_lit_up_live_and_explained(dist, tmp_path):
    from playwright.async_api import expect

    gate = asyncio.Event()          # the plan step's answer waits for the test

    async def model(body: dict) -> Turn:
        text = last_user_text(body.get("messages") or [])
        if text.startswith("Plan "):
            await gate.wait()
            return Turn("a plan for cats")
        return Turn("done: " + text)

    async with appliance.running(tmp_path, dist, model, tokens_per_second=0) as app:
        try:
            context = await app.browser.new_context(viewport={"width": 1100, "height": 900})
            page = await context.new_page()
            # the refused save is logged by the browser as a failed request
            errors = appliance.console_errors(page, expected=("status of 422",))
            lazy: list[str] = []
            page.on("request", lambda r: lazy.append(r.url) if "/assets/lazy." in r.url else None)

            await page.goto(app.signin("ada@example.org"))
            await page.wait_for_url("**/agents", timeout=20000)
            await page.get_by_label("Name").fill("Worker")
            await page.get_by_role("button", name="Create agent").click()
            await page.get_by_role("list", name="Agents").get_by_text("Worker").wait_for()
            assert lazy == []                  # the workflows page is not part of the first load

            # the page arrives in its own bundle when first shown; the example is drawn at once
            await page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
            editor = page.get_by_label("Definition (JSON)")
            await expect(editor).to_have_value(re.compile('"agent_id": "[0-9a-f-]{8,}"'), timeout=20000)
            assert len(lazy) == 1, lazy
            agent_id = json.loads(await editor.input_value())["steps"]["draft"]["agent_id"]
            diagram = page.locator("svg.wf-graph")
            await expect(diagram.locator("g[data-step=review]")).to_have_class(re.compile("k-approval"))

            # a refused save: the step it is about is marked in the drawing, with the message
            bad = definition(agent_id)
            bad["steps"]["review"]["on_approve"] = "nowhere"
            await editor.fill(json.dumps(bad))
            await expect(diagram.locator("g[data-step=nowhere]")).to_have_class(re.compile("k-missing"))
            await page.get_by_role("button", name="Save workflow").click()
            review = diagram.locator("g[data-step=review]")
            await expect(review).to_have_class(re.compile(r"\binvalid\b"), timeout=10000)
            await expect(review).to_have_attribute("aria-label", re.compile("unknown step 'nowhere'"))
            problems = page.get_by_role("list", name="Problems at steps")
            await expect(problems).to_contain_text("review: unknown step 'nowhere'")
            await expect(diagram.locator("g[data-step=done]")).to_have_attribute("aria-label", re.compile("unreachable"))
            await expect(diagram.locator("g.invalid")).to_have_count(2)      # review, and done cut off by it
            await appliance.shoot(page, "workflow-diagram-invalid")

            await editor.fill(json.dumps(definition(agent_id)))
            await page.get_by_role("button", name="Save workflow").click()
            await page.wait_for_url("**/workflows/*", timeout=10000)
            await expect(page.get_by_role("heading", name="Ship it")).to_be_visible()
            await expect(diagram.locator("g[data-step]")).to_have_count(9)       # 8 steps and the join
            await expect(diagram.locator("g.invalid")).to_have_count(0)
            await expect(diagram.locator("path.edge")).to_have_count(10)

            # a run: the steps light up as its events come
            await page.get_by_label("topic").fill("cats")
            await page.get_by_role("button", name="Start run").click()

            def step(name):
                return diagram.locator(f"g[data-step={name}]")

            await expect(step("plan")).to_have_attribute("data-state", "running", timeout=20000)
            await expect(step("plan")).to_have_class(re.compile("st-running"))
            await expect(step("left")).to_have_attribute("data-state", "pending")
            gate.set()
            await expect(step("plan")).to_have_attribute("data-state", "succeeded", timeout=20000)
            for name in ("route", "fan", "left", "right", "fan-join"):
                await expect(step(name)).to_have_attribute("data-state", "succeeded", timeout=20000)
            await expect(step("review")).to_have_attribute("data-state", "waiting", timeout=20000)
            await expect(step("quick")).to_have_attribute("data-state", "pending")
            await expect(step("done")).to_have_attribute("data-state", "pending")
            assert await diagram.locator("path.edge.taken").count() >= 6

            # a click shows a step's details: what it was given, its output, attempts, timing
            await step("left").click()
            details = page.locator("section.wf-details")
            await expect(details).to_contain_text("Left side of cats")
            await expect(details).to_contain_text("done: Left side of cats")
            await expect(details).to_contain_text("Attempts1")
            await expect(details).to_contain_text(re.compile(r"Took\d"))
            await expect(step("left")).to_have_attribute("aria-pressed", "true")

            # the keyboard: Tab reaches the next step, with a focus ring; Enter and Space open it
            await page.keyboard.press("Tab")
            focused = await page.evaluate("() => document.activeElement.getAttribute('data-step')")
            assert focused == "right", focused
            ring = await page.evaluate("() => getComputedStyle(document.activeElement.querySelector('.shape'))"
                                       ".strokeWidth")
            assert ring == "3.5px", ring
            await page.keyboard.press("Enter")
            await expect(details).to_contain_text("6 * 7")                # the tool's arguments
            await expect(details).to_contain_text("42")
            await page.keyboard.press("Tab")
            await page.keyboard.press("Tab")
            focused = await page.evaluate("() => document.activeElement.getAttribute('data-step')")
            await page.keyboard.press(" ")
            await expect(page.locator("#wf-step-title")).to_contain_text(focused)
            await step("review").focus()
            await page.keyboard.press("Enter")
            await expect(details).to_contain_text("Ship a plan for cats?")
            await appliance.shoot(page, "workflow-diagram-waiting")

            approval = page.get_by_role("form", name="Approval")
            await approval.get_by_role("button", name="Approve").click()
            await expect(step("done")).to_have_attribute("data-state", "succeeded", timeout=20000)
            await expect(step("review")).to_have_attribute("data-state", "succeeded")
            await expect(page.locator("#wf-run-status")).to_contain_text("Succeeded", timeout=20000)
            await expect(step("quick")).to_have_attribute("data-state", "skipped")     # the way not taken

            # a fresh visit of the run draws it from its snapshot
            await page.reload()
            await expect(step("done")).to_have_attribute("data-state", "succeeded", timeout=20000)
            await expect(step("quick")).to_have_attribute("data-state", "skipped")
            await step("plan").click()
            await expect(details).to_contain_text("Plan cats")

            await appliance.light_dark_phone(page, "workflow-diagram", lambda: fits_a_phone(page, diagram))
        finally:
            gate.set()      # before the teardown: the plan step's answer is not held any more
    assert not errors, errors
