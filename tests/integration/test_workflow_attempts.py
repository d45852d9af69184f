"""Every attempt of a workflow step, kept and shown (issue 22): a step whose model call fails
once and then answers has two attempts in GET /api/runs/{id}, the first failed with its error,
and its step.retrying event says when that attempt ran. Through the real app, the real SQLite
file and the tests' LLM server over HTTP (its one-shot Fault)."""

from __future__ import annotations

from ..support.auth import token_user
from ..support.live import Live
from ..support.llm_server import Fault, Turn
from .test_workflows import agent, app, events_until, save, settle, start  # noqa: F401 (app: a fixture)


async def test_a_step_that_fails_once_then_succeeds_shows_both_attempts(app, llm):  # noqa: F811
    client, headers = await app()
    a = await agent(client, headers, "Write.")
    llm.script = lambda body: Turn("a fine answer")
    llm.faults = [Fault("status", status=500, message="the model fell over")]
    wf = await save(client, headers, {"name": "W", "start": "write", "inputs": {"topic": {"type": "string"}}, "steps": {
        "write": {"kind": "agent", "agent_id": a["id"], "input": "Write about {{ input.topic }}",
                  "retry": {"max_attempts": 3, "backoff_seconds": 0.05}}}})
    run = await start(client, headers, wf["id"], {"topic": "bees"})
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"runs/{run['id']}", "after": 0})
    events = await events_until(live, {"run.failed", "run.succeeded"})
    assert events[-1]["type"] == "run.succeeded", events[-1]
    retrying = next(e["data"] for e in events if e["type"] == "step.retrying")
    assert retrying["attempt"] == 1 and retrying["error"] == "the model provider answered 500"
    assert retrying["started_at"] <= retrying["finished_at"] and retrying["duration_ms"] >= 0

    done = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()   # checked against openapi
    (step,) = done["steps"]
    assert step["status"] == "succeeded" and step["output"] == "a fine answer"
    first, second = step["attempts"]
    assert (first["attempt"], first["status"], second["attempt"], second["status"]) == (1, "failed", 2, "succeeded")
    assert first["error"] == "the model provider answered 500" and first["output"] is None
    assert first["started_at"] == retrying["started_at"] and first["finished_at"] == retrying["finished_at"]
    assert second["error"] is None and second["output"] == "a fine answer"
    assert first["input"] == second["input"] == "Write about bees"
    assert first["finished_at"] <= second["started_at"] <= second["finished_at"]
    assert second["completion_tokens"] > 0 and step["completion_tokens"] >= second["completion_tokens"]
    assert len(llm.requests) == 2


async def test_steps_without_retries_have_one_attempt_each_and_others_still_cannot_see_them(app, llm):  # noqa: F811
    client, headers = await app()
    wf = await save(client, headers, {"name": "W", "start": "pick", "inputs": {"n": {"type": "number"}}, "steps": {
        "pick": {"kind": "branch", "cases": [{"when": "input.n > 1", "next": "calc"}], "default": "calc"},
        "calc": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "6 * 7"}}}})
    run = await start(client, headers, wf["id"], {"n": 2})
    assert (await settle(client, headers, run["id"]))["status"] == "succeeded"
    done = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    attempts = {s["step"]: [(x["attempt"], x["status"], x["output"]) for x in s["attempts"]] for s in done["steps"]}
    assert attempts == {"pick": [(1, "succeeded", "calc")], "calc": [(1, "succeeded", "42")]}, attempts
    # bad input keeps its answers: an unknown run is 404, another user's run is 404 (not revealed)
    resp = await client.get("/api/runs/no-such-run", headers=headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    _, other = await token_user(client, "eve@example.org")
    resp = await client.get(f"/api/runs/{run['id']}", headers=other)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
