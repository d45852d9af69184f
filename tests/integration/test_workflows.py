"""Workflows through the real app: definitions validated at save time, versions, and
runs driven by the runner through LangGraph, against the tests' own OpenAI-compatible
server over HTTP. Every response is checked against openapi.yaml, every event
against asyncapi.yaml."""

from __future__ import annotations

import asyncio
import json

import pytest

from ..support.auth import api_token, bearer, make_user, token_user
from ..support.live import Live
from ..support.llm_server import ToolCall, Turn

FINAL = {"succeeded", "failed", "cancelled", "waiting_for_input", "interrupted"}


@pytest.fixture
async def app(make_client, settings, llm):
    """make(**overrides) -> (client, headers of a member with an API token)."""
    async def make(**overrides):
        providers = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": "sk-test",
                      "models": ("gpt-test",), "default_model": "gpt-test"},)
        client = await make_client(settings.replace(llm_providers=providers, llm_max_retries=0,
                                                    rate_limit_api_per_minute=10**6, **overrides))
        _, headers = await token_user(client, "ada@example.org")
        return client, headers
    return make


def by_instructions(answers: dict[str, str]):
    """A script answering each agent (known by its instructions) with its own text."""
    def answer(body):
        system = body["messages"][0]["content"] if body["messages"][0]["role"] == "system" else ""
        return Turn(answers.get(system, f"echo: {body['messages'][-1]['content']}"))
    return answer


async def agent(client, headers, instructions: str, **fields) -> dict:
    resp = await client.post("/api/agents", json={"name": instructions[:20], "instructions": instructions, **fields},
                             headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def save(client, headers, definition: dict, status: int = 201) -> dict:
    resp = await client.post("/api/workflows", json={"definition": definition}, headers=headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def start(client, headers, workflow_id: str, run_input: dict | None = None) -> dict:
    resp = await client.post(f"/api/workflows/{workflow_id}/runs", json={"input": run_input or {}}, headers=headers)
    assert resp.status == 202, await resp.text()
    return await resp.json()


async def settle(client, headers, run_id: str, until=FINAL, timeout: float = 20.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            run = await (await client.get(f"/api/runs/{run_id}", headers=headers, validate_contract=False)).json()
            if run["status"] in until:
                return run
            await asyncio.sleep(0.05)


async def events_until(live: Live, last: set[str], timeout: float = 20.0) -> list[dict]:
    out: list[dict] = []
    async with asyncio.timeout(timeout):
        while not out or out[-1]["type"] not in last:
            out.append(await live.until("event", timeout=timeout))
    return out


def article(research: str, facts: str, writer: str) -> dict:
    """Three working steps after a parallel pair, with an approval gate before the last."""
    return {
        "name": "Article",
        "inputs": {"topic": {"type": "string"}},
        "start": "gather",
        "steps": {
            "gather": {"kind": "parallel", "steps": ["research", "facts"], "next": "draft"},
            "research": {"kind": "agent", "agent_id": research, "input": "Research {{ input.topic }}"},
            "facts": {"kind": "agent", "agent_id": facts, "input": "Facts on {{ input.topic }}"},
            "draft": {"kind": "agent", "agent_id": writer, "next": "gate",
                      "input": "Write from {{ steps.research.output }} and {{ steps.gather.output.facts }}"},
            "gate": {"kind": "approval", "prompt": "Publish? {{ steps.draft.output }}", "on_approve": "count"},
            "count": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "6 * 7"}},
        },
    }


# ---- definitions ----------------------------------------------------------------------

async def test_create_read_list_version_and_delete(app, llm):
    client, headers = await app()
    a = await agent(client, headers, "Research.")
    doc = {"name": "One", "start": "ask", "steps": {"ask": {"kind": "agent", "agent_id": a["id"], "input": "hi"}}}
    wf = await save(client, headers, doc)
    assert wf["version"] == 1 and wf["name"] == "One" and wf["definition"] == doc
    got = await (await client.get(f"/api/workflows/{wf['id']}", headers=headers)).json()
    assert got == wf
    run = await start(client, headers, wf["id"])
    assert run["kind"] == "workflow" and run["workflow_version"] == 1 and run["thread_id"] is None
    assert run["pinned_agents"] == {a["id"]: 1}
    await settle(client, headers, run["id"])

    doc2 = {**doc, "name": "One, renamed"}
    resp = await client.patch(f"/api/workflows/{wf['id']}", json={"definition": doc2}, headers=headers)
    assert resp.status == 200 and (await resp.json())["version"] == 2
    listed = (await (await client.get("/api/workflows", headers=headers)).json())["workflows"]
    assert [(w["id"], w["version"], w["name"]) for w in listed] == [(wf["id"], 2, "One, renamed")]
    # the run keeps the version it used
    assert (await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json())["workflow_version"] == 1

    assert (await client.delete(f"/api/workflows/{wf['id']}", headers=headers)).status == 204
    assert (await client.get(f"/api/workflows/{wf['id']}", headers=headers)).status == 404
    assert (await client.post(f"/api/workflows/{wf['id']}/runs", json={}, headers=headers)).status == 404
    assert (await client.delete(f"/api/workflows/{wf['id']}", headers=headers)).status == 404
    # past runs stay readable after the delete
    past = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    assert past["status"] == "succeeded" and past["workflow_id"] == wf["id"]


def _invalid_cases(mine: str, theirs: str) -> list[tuple[str, dict, str, str]]:
    def wf(steps, start="a", **extra):
        return {"name": "W", "start": start, "steps": steps, **extra}

    def ag(**kw):
        return {"kind": "agent", "agent_id": mine, "input": "x", **kw}
    return [
        ("unknown step reference", wf({"a": ag(next="nope")}), "/definition/steps/a/next", "unknown step 'nope'"),
        ("unknown start", wf({"a": ag()}, start="b"), "/definition/start", "unknown step 'b'"),
        ("unreachable step", wf({"a": ag(), "b": ag()}), "/definition/steps/b", "unreachable"),
        ("cycle", wf({"a": ag(next="b"), "b": ag(next="a")}), "/definition/steps/b/next", "cycle: a → b → a"),
        ("unknown agent", wf({"a": {**ag(), "agent_id": "no-such-agent"}}), "/definition/steps/a/agent_id",
         "unknown agent 'no-such-agent'"),
        ("another user's agent", wf({"a": {**ag(), "agent_id": theirs}}), "/definition/steps/a/agent_id",
         f"unknown agent '{theirs}'"),
        ("unknown tool", wf({"a": {"kind": "tool", "tool": "rm_rf", "arguments": {}}}), "/definition/steps/a/tool",
         "unknown tool 'rm_rf'"),
        ("ask_human is no tool step", wf({"a": {"kind": "tool", "tool": "ask_human", "arguments": {}}}),
         "/definition/steps/a/tool", "unknown tool 'ask_human'"),
        ("step not guaranteed to have run",
         wf({"a": {"kind": "branch", "cases": [{"when": "input.n > 1", "next": "b"}], "default": "c"},
             "b": ag(next="d"), "c": ag(next="d"), "d": ag(input="{{ steps.b.output }}")},
            inputs={"n": {"type": "number"}}),
         "/definition/steps/d/input", "'b' is not guaranteed to have run before 'd'"),
        ("undeclared input", wf({"a": ag(input="About {{ input.topic }}")}), "/definition/steps/a/input",
         "'topic' is not a declared input"),
        ("missing field", {"name": "W", "steps": {"a": ag()}}, "/definition/start", "is required"),
        ("unsafe condition", wf({"a": {"kind": "branch", "cases": [{"when": "__import__('os')", "next": "b"}],
                                       "default": "b"}, "b": ag()}), "/definition/steps/a/cases/0/when", ""),
    ]


async def test_every_invalid_definition_is_refused_with_a_pointer(app, llm):
    client, headers = await app()
    mine = await agent(client, headers, "Mine.")
    _, mallory = await token_user(client, "mallory@example.org")
    theirs = await agent(client, mallory, "Theirs.")
    for label, doc, pointer, message in _invalid_cases(mine["id"], theirs["id"]):
        resp = await client.post("/api/workflows", json={"definition": doc}, headers=headers)
        assert resp.status == 422, (label, await resp.text())
        errors = (await resp.json())["error"]["details"]["errors"]
        assert any(e["pointer"] == pointer and message in e["message"] for e in errors), (label, errors)
        wf_list = (await (await client.get("/api/workflows", headers=headers)).json())["workflows"]
        assert wf_list == [], label  # nothing was saved
    # the same checks on an edit; the stored version is unchanged
    good = await save(client, headers, {"name": "G", "start": "a",
                                        "steps": {"a": {"kind": "agent", "agent_id": mine["id"], "input": "x"}}})
    resp = await client.patch(f"/api/workflows/{good['id']}", headers=headers,
                              json={"definition": _invalid_cases(mine["id"], theirs["id"])[0][1]})
    assert resp.status == 422
    assert (await (await client.get(f"/api/workflows/{good['id']}", headers=headers)).json())["version"] == 1


async def test_run_input_is_checked_against_the_declared_inputs(app, llm):
    client, headers = await app()
    a = await agent(client, headers, "A.")
    wf = await save(client, headers, {"name": "W", "inputs": {"topic": {"type": "string"},
                                                                "n": {"type": "number", "required": False}},
                                      "start": "a", "steps": {"a": {"kind": "agent", "agent_id": a["id"],
                                                                    "input": "{{ input.topic }} {{ input.n }}"}}})
    for body, pointer in [({"input": {}}, "/input/topic"), ({"input": {"topic": 1}}, "/input/topic"),
                          ({"input": {"topic": "x", "n": True}}, "/input/n"),
                          ({"input": {"topic": "x", "extra": 1}}, "/input/extra"),
                          ({"input": "text"}, "/input"), ({"colour": 1}, "/colour")]:
        resp = await client.post(f"/api/workflows/{wf['id']}/runs", json=body, headers=headers)
        assert resp.status == 422, body
        assert (await resp.json())["error"]["details"]["errors"][0]["pointer"] == pointer, body
    assert (await (await client.get("/api/runs?kind=workflow", headers=headers)).json())["runs"] == []


async def test_malformed_oversized_and_unauthorized_bodies(app, llm):
    client, headers = await app(max_body_size=4096)
    cases = [
        (dict(data=b"{not json", headers={**headers, "Content-Type": "application/json"}), 400, "malformed_json"),
        (dict(data=b"{}", headers={**headers, "Content-Type": "text/plain"}), 415, "unsupported_media_type"),
        (dict(json=[1, 2], headers=headers), 422, "validation_failed"),
        (dict(json={}, headers=headers), 422, "validation_failed"),
        (dict(json={"definition": {}, "extra": 1}, headers=headers), 422, "validation_failed"),
        (dict(json={"definition": {"name": "x" * 5000}}, headers=headers), 413, "payload_too_large"),
        (dict(json={"definition": {}}), 401, "unauthorized"),
    ]
    for kwargs, status, code in cases:
        resp = await client.post("/api/workflows", **kwargs)
        assert resp.status == status, (kwargs, await resp.text())
        assert (await resp.json())["error"]["code"] == code
    reader = await make_user(client.app, "reader@example.org")
    read_only = bearer(await api_token(client.app, reader, scopes=("read",)))
    resp = await client.post("/api/workflows", json={"definition": {}}, headers=read_only)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "insufficient_scope"
    assert (await client.get("/api/workflows", headers=read_only)).status == 200
    assert (await (await client.get("/api/workflows", headers=headers)).json())["workflows"] == []
    assert (await client.get("/api/runs?kind=robot", headers=headers)).status == 400


async def test_another_users_workflows_and_runs_are_invisible(app, llm):
    client, headers = await app()
    a = await agent(client, headers, "A.")
    wf = await save(client, headers, {"name": "W", "start": "a",
                                      "steps": {"a": {"kind": "agent", "agent_id": a["id"], "input": "x"}}})
    run = await settle(client, headers, (await start(client, headers, wf["id"]))["id"])
    _, mallory = await token_user(client, "mallory@example.org")
    for method, path, body in [
        ("GET", f"/api/workflows/{wf['id']}", None),
        ("PATCH", f"/api/workflows/{wf['id']}", {"definition": {"name": "x", "start": "a", "steps": {}}}),
        ("DELETE", f"/api/workflows/{wf['id']}", None),
        ("POST", f"/api/workflows/{wf['id']}/runs", {"input": {}}),
        ("GET", f"/api/runs/{run['id']}", None), ("POST", f"/api/runs/{run['id']}/cancel", None),
        ("POST", f"/api/runs/{run['id']}/resume", {"answer": {"approved": True}}),
    ]:
        resp = await client.request(method, path, json=body, headers=mallory)
        assert resp.status == 404, (method, path, resp.status)
    assert (await (await client.get("/api/workflows", headers=mallory)).json())["workflows"] == []
    assert (await (await client.get(f"/api/runs?workflow_id={wf['id']}", headers=mallory)).json())["runs"] == []
    live = Live(await client.raw.ws_connect("/ws", headers=mallory))
    await live.send({"op": "subscribe", "topic": f"runs/{run['id']}"})
    assert (await live.until("error"))["code"] == "forbidden"
    # nothing changed for the owner
    assert (await (await client.get(f"/api/workflows/{wf['id']}", headers=headers)).json())["version"] == 1


# ---- runs -------------------------------------------------------------------------------

async def test_parallel_pair_and_approval_gate_run_to_completion(app, llm):
    client, headers = await app()
    research = await agent(client, headers, "You research.")
    facts = await agent(client, headers, "You find facts.", tools=["ask_human", "calculator"])
    writer = await agent(client, headers, "You write.")
    llm.script = by_instructions({"You research.": "Bees dance.", "You find facts.": "Bees have 5 eyes.",
                                  "You write.": "A draft about bees."})
    wf = await save(client, headers, article(research["id"], facts["id"], writer["id"]))
    run = await start(client, headers, wf["id"], {"topic": "bees"})
    assert run["status"] == "queued" and run["input"] == {"topic": "bees"}
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"runs/{run['id']}", "after": 0})
    events = await events_until(live, {"run.waiting", "run.failed"})
    types = [e["type"] for e in events]
    assert types[0] == "run.queued" and types[1] == "run.started" and types[-1] == "run.waiting", types
    started = [e["data"]["step"] for e in events if e["type"] == "step.started"]
    assert started[0] == "gather" and set(started[1:3]) == {"research", "facts"} and started[3] == "draft"
    given = {e["data"]["step"]: e["data"]["input"] for e in events if e["type"] == "step.started"}
    assert given == {"gather": None, "research": "Research bees", "facts": "Facts on bees",
                     "draft": "Write from Bees dance. and Bees have 5 eyes."}     # what each step was given
    succeeded = {e["data"]["step"]: e["data"] for e in events if e["type"] == "step.succeeded"}
    assert succeeded["research"]["output"] == "Bees dance." and succeeded["research"]["duration_ms"] > 0
    assert succeeded["gather"]["output"] == {"research": "Bees dance.", "facts": "Bees have 5 eyes."}
    waiting = [e["data"] for e in events if e["type"] == "step.waiting"]
    assert waiting == [{"run_id": run["id"], "step": "gate", "prompt": "Publish? A draft about bees."}]

    held = await settle(client, headers, run["id"])
    assert held["status"] == "waiting_for_input" and held["waiting_prompt"] == "Publish? A draft about bees."
    # what the writer was given: both members' outputs, through the templates
    sent = [r for r in llm.requests if r["messages"][0]["content"] == "You write."]
    assert sent[0]["messages"][-1]["content"] == "Write from Bees dance. and Bees have 5 eyes."
    for answer, pointer in [("yes", "/answer"), ({"approved": "yes"}, "/answer/approved"),
                            ({"approved": True, "comment": 5}, "/answer/comment"),
                            ({"approved": True, "why": "x"}, "/answer/why")]:
        resp = await client.post(f"/api/runs/{run['id']}/resume", json={"answer": answer}, headers=headers)
        assert resp.status == 422, answer
        assert (await resp.json())["error"]["details"]["errors"][0]["pointer"] == pointer
    resp = await client.post(f"/api/runs/{run['id']}/resume", json={"answer": {"approved": True, "comment": "ship"}},
                             headers=headers)
    assert resp.status == 202, await resp.text()
    rest = await events_until(live, {"run.succeeded", "run.failed"})
    assert rest[-1]["type"] == "run.succeeded", rest
    gate = [e["data"] for e in rest if e["type"] == "step.succeeded" and e["data"]["step"] == "gate"]
    assert gate[0]["output"] == {"approved": True, "comment": "ship"}

    done = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    assert done["status"] == "succeeded" and done["output"]["count"] == "42"
    assert done["output"]["draft"] == "A draft about bees." and done["prompt_tokens"] > 0
    steps = {s["step"]: s for s in done["steps"]}
    assert set(steps) == {"gather", "research", "facts", "draft", "gate", "count"}
    assert all(s["status"] == "succeeded" and s["finished_at"] for s in steps.values())
    assert steps["research"]["completion_tokens"] > 0 and steps["count"]["output"] == "42"
    assert steps["research"]["input"] == "Research bees" and steps["count"]["input"] == {"expression": "6 * 7"}
    assert steps["gate"]["input"] == "Publish? A draft about bees." and steps["gather"]["input"] is None
    assert len(llm.requests) == 3  # each agent step called the model once; the approval repeated nothing
    # the agent steps ran with a fresh message list: their instructions and the rendered input only
    assert all(len(r["messages"]) == 2 for r in llm.requests)
    usage = (await (await client.get("/api/usage", headers=headers)).json())["usage"]
    assert {u["model"]: u["runs"] for u in usage} == {"workflow": 1, "gpt-test": 0}
    listed = (await (await client.get(f"/api/runs?kind=workflow&workflow_id={wf['id']}",
                                      headers=headers)).json())["runs"]
    assert [r["id"] for r in listed] == [run["id"]]
    assert (await (await client.get("/api/runs?kind=chat", headers=headers)).json())["runs"] == []


async def test_a_rejection_without_on_reject_ends_the_run(app, llm):
    client, headers = await app()
    a = await agent(client, headers, "A.")
    wf = await save(client, headers, {"name": "W", "start": "gate", "steps": {
        "gate": {"kind": "approval", "prompt": "Go?", "on_approve": "a"},
        "a": {"kind": "agent", "agent_id": a["id"], "input": "x"}}})
    run = await start(client, headers, wf["id"])
    assert (await settle(client, headers, run["id"]))["status"] == "waiting_for_input"
    resp = await client.post(f"/api/runs/{run['id']}/resume", json={"answer": {"approved": False}}, headers=headers)
    assert resp.status == 202
    done = await settle(client, headers, run["id"], until={"succeeded", "failed"})
    assert done["status"] == "succeeded" and done["output"] == {"gate": {"approved": False, "comment": ""}}
    assert llm.requests == []


async def test_a_failing_step_retries_then_fails_the_run_naming_it(app, llm):
    client, headers = await app()
    wf = await save(client, headers, {"name": "W", "start": "calc", "steps": {
        "calc": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "1 / 0"},
                 "retry": {"max_attempts": 3, "backoff_seconds": 0.05}}}})
    run = await start(client, headers, wf["id"])
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"runs/{run['id']}", "after": 0})
    events = await events_until(live, {"run.failed", "run.succeeded"})
    kinds = [(e["type"], e["data"].get("attempt")) for e in events if e["type"].startswith("step.")]
    assert kinds == [("step.started", 1), ("step.retrying", 1), ("step.started", 2), ("step.retrying", 2),
                     ("step.started", 3), ("step.failed", 3)], kinds
    retrying = [e["data"]["retry_in_seconds"] for e in events if e["type"] == "step.retrying"]
    assert retrying == [0.05, 0.1]  # exponential backoff
    failed = events[-1]["data"]
    assert failed["code"] == "step_failed" and failed["message"].startswith("step 'calc': failed after 3 attempts")
    done = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    assert done["status"] == "failed" and done["error"]["code"] == "step_failed"
    assert done["steps"][0]["status"] == "failed" and done["steps"][0]["attempt"] == 3
    assert "Traceback" not in done["error"]["message"]
    # scripts following the run over SSE get the same step events, then the stream ends
    resp = await client.get(f"/api/runs/{run['id']}/stream", headers={**headers, "Last-Event-ID": "0"},
                            validate_contract=False)
    text = await resp.text()
    names = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert names.count("step.retrying") == 2 and names[-2:] == ["step.failed", "run.failed"], names


async def test_cancel_in_the_middle_stops_the_model_call(app, llm):
    client, headers = await app()
    a = await agent(client, headers, "Slow.")
    b = await agent(client, headers, "Never.")
    llm.tokens_per_second = 10
    llm.script = lambda body: Turn(" ".join(f"w{i}" for i in range(200)))
    wf = await save(client, headers, {"name": "W", "start": "a", "steps": {
        "a": {"kind": "agent", "agent_id": a["id"], "input": "talk", "next": "b"},
        "b": {"kind": "agent", "agent_id": b["id"], "input": "{{ steps.a.output }}"}}})
    run = await start(client, headers, wf["id"])
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"runs/{run['id']}", "after": 0})
    await live.until("event", type="step.started")
    await asyncio.sleep(0.3)
    resp = await client.post(f"/api/runs/{run['id']}/cancel", headers=headers)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    await llm.wait_cancelled(1, timeout=1.0)  # the provider's stream stopped within a second
    done = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    assert [(s["step"], s["status"]) for s in done["steps"]] == [("a", "cancelled")]
    assert len(llm.requests) == 1
    assert (await client.post(f"/api/runs/{run['id']}/cancel", headers=headers)).status == 409
    resp = await client.post(f"/api/runs/{run['id']}/resume", headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_resumable"


async def test_cancel_a_run_waiting_for_approval(app, llm):
    client, headers = await app()
    a = await agent(client, headers, "A.")
    wf = await save(client, headers, {"name": "W", "start": "gate", "steps": {
        "gate": {"kind": "approval", "prompt": "Go?", "on_approve": "a"},
        "a": {"kind": "agent", "agent_id": a["id"], "input": "x"}}})
    run = await start(client, headers, wf["id"])
    await settle(client, headers, run["id"])
    resp = await client.post(f"/api/runs/{run['id']}/cancel", headers=headers)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    done = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    assert [(s["step"], s["status"]) for s in done["steps"]] == [("gate", "cancelled")]
    resp = await client.post(f"/api/runs/{run['id']}/resume", json={"answer": {"approved": True}}, headers=headers)
    assert resp.status == 409


async def test_ask_human_inside_a_step_is_refused_and_the_agent_goes_on(app, llm):
    client, headers = await app()
    a = await agent(client, headers, "Asker.", tools=["ask_human"])
    llm.script = [Turn(tool_calls=[ToolCall("ask_human", {"question": "Which?"})]), Turn("Decided myself.")]
    wf = await save(client, headers, {"name": "W", "start": "a", "steps": {
        "a": {"kind": "agent", "agent_id": a["id"], "input": "choose"}}})
    done = await settle(client, headers, (await start(client, headers, wf["id"]))["id"])
    assert done["status"] == "succeeded" and done["output"] == {"a": "Decided myself."}
    tool_reply = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert "ask_human is not available inside a workflow step" in tool_reply and "approval" in tool_reply


async def test_budget_is_honoured_by_agent_steps(app, llm):
    client, headers = await app(daily_token_budget=5)
    a = await agent(client, headers, "A.")
    wf = await save(client, headers, {"name": "W", "start": "a", "steps": {
        "a": {"kind": "agent", "agent_id": a["id"], "input": "hello there",
              "retry": {"max_attempts": 3}}}})
    first = await settle(client, headers, (await start(client, headers, wf["id"]))["id"])
    assert first["status"] == "succeeded" and first["prompt_tokens"] + first["completion_tokens"] > 5
    calls = len(llm.requests)
    second = await settle(client, headers, (await start(client, headers, wf["id"]))["id"])
    assert second["status"] == "failed" and second["error"]["code"] == "budget_exceeded"
    assert len(llm.requests) == calls  # refused before calling the provider, and not retried


async def test_a_deleted_agent_is_reported_when_a_run_starts(app, llm):
    client, headers = await app()
    a = await agent(client, headers, "A.")
    wf = await save(client, headers, {"name": "W", "start": "a", "steps": {
        "a": {"kind": "agent", "agent_id": a["id"], "input": "x"}}})
    assert (await client.delete(f"/api/agents/{a['id']}", headers=headers)).status == 204
    resp = await client.post(f"/api/workflows/{wf['id']}/runs", json={}, headers=headers)
    assert resp.status == 409
    body = await resp.json()
    assert body["error"]["code"] == "agent_deleted" and "step 'a'" in body["error"]["message"]


async def test_chat_runs_are_unchanged_beside_workflow_runs(app, llm):
    client, headers = await app()
    a = await agent(client, headers, "Chat.")
    llm.script = [Turn("hello")]
    thread = await (await client.post("/api/threads", json={"agent_id": a["id"]}, headers=headers)).json()
    run = await (await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "hi"},
                                   headers=headers)).json()
    done = await settle(client, headers, run["id"])
    assert done["kind"] == "chat" and done["status"] == "succeeded" and done["steps"] == []
    assert done["workflow_id"] is None and done["input"] is None and done["model"] == "gpt-test"


async def test_served_openapi_resolves_the_workflow_schema(app, llm):
    client, _ = await app()
    doc = await (await client.get("/api/openapi.json")).json()
    schema = doc["components"]["schemas"]["WorkflowDefinition"]
    assert schema["title"] == "Agentstead workflow definition"
    refs = json.dumps(doc)
    assert '"workflow.schema.json"' not in refs and "#/components/schemas/WorkflowDefinition/$defs/step" in refs


async def test_graceful_shutdown_interrupts_and_resume_skips_completed_steps(app, llm, settings):
    from agentstead.keys import RUNNER

    client, headers = await app()
    fast = await agent(client, headers, "Fast.")
    slow = await agent(client, headers, "Slow.")
    llm.tokens_per_second = 20
    llm.script = lambda body: Turn("done" if body["messages"][0]["content"] == "Fast." else
                                   " ".join(f"w{i}" for i in range(100)))
    wf = await save(client, headers, {"name": "W", "start": "a", "steps": {
        "a": {"kind": "agent", "agent_id": fast["id"], "input": "one", "next": "b"},
        "b": {"kind": "agent", "agent_id": slow["id"], "input": "{{ steps.a.output }}"}}})
    run = await start(client, headers, wf["id"])
    await _started_at(client, headers, run["id"], "b")
    await asyncio.sleep(0.2)  # b is streaming (about 5 s of tokens)
    await client.app[RUNNER].stop()
    stopped = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    assert stopped["status"] == "interrupted"
    assert {s["step"]: s["status"] for s in stopped["steps"]} == {"a": "succeeded", "b": "interrupted"}
    llm.tokens_per_second = 0
    await client.app[RUNNER].start()  # what a restart does
    resp = await client.post(f"/api/runs/{run['id']}/resume", headers=headers)
    assert resp.status == 202, await resp.text()
    done = await settle(client, headers, run["id"], until={"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    prompts = [r["messages"][0]["content"] for r in llm.requests]
    assert prompts.count("Fast.") == 1 and prompts.count("Slow.") == 2  # a ran once; b again after the stop


async def _started_at(client, headers, run_id: str, step: str) -> str:
    async with asyncio.timeout(10):
        while True:
            run = await (await client.get(f"/api/runs/{run_id}", headers=headers, validate_contract=False)).json()
            rows = {s["step"]: s for s in run["steps"]}
            if step in rows:
                return rows[step]["started_at"]
            await asyncio.sleep(0.02)


async def test_an_approval_nobody_answers_in_time_fails_the_run_also_across_a_restart(app, llm):
    from agentstead.keys import RUNNER

    client, headers = await app()
    a = await agent(client, headers, "A.")

    def gated(timeout):
        return {"name": "W", "start": "gate", "steps": {
            "gate": {"kind": "approval", "prompt": "Go?", "on_approve": "a", "timeout_seconds": timeout},
            "a": {"kind": "agent", "agent_id": a["id"], "input": "x"}}}
    quick = await save(client, headers, gated(0.3))
    run = await start(client, headers, quick["id"])
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"runs/{run['id']}", "after": 0})
    events = await events_until(live, {"run.failed", "run.succeeded"})
    assert [e["type"] for e in events][-3:] == ["run.waiting", "step.failed", "run.failed"]
    failed = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    assert failed["status"] == "failed" and failed["error"] == {
        "code": "approval_timed_out", "message": "step 'gate': no answer within 0.3 s"}
    assert failed["steps"][0]["status"] == "failed"
    resp = await client.post(f"/api/runs/{run['id']}/resume", json={"answer": {"approved": True}}, headers=headers)
    assert resp.status == 409

    # answered in time: the deadline does nothing
    # 2 s: enough for the answer to arrive in time on a loaded machine (1 s flaked under load > 10)
    patient = await save(client, headers, gated(2.0))
    answered = await start(client, headers, patient["id"])
    await settle(client, headers, answered["id"])
    resp = await client.post(f"/api/runs/{answered['id']}/resume", json={"answer": {"approved": False}},
                             headers=headers)
    assert resp.status == 202
    await asyncio.sleep(2.3)
    assert (await settle(client, headers, answered["id"]))["status"] == "succeeded"

    # the deadline survives a restart of the runner
    later = await start(client, headers, patient["id"])
    assert (await settle(client, headers, later["id"]))["status"] == "waiting_for_input"
    await client.app[RUNNER].stop()
    await client.app[RUNNER].start()
    done = await settle(client, headers, later["id"], until={"failed", "succeeded"}, timeout=10)
    assert done["error"]["code"] == "approval_timed_out"
    assert llm.requests == []


async def test_tokens_of_failed_attempts_count_towards_usage(app, llm):
    client, headers = await app()
    looper = await agent(client, headers, "Loop.", tools=["calculator"], max_steps=2)
    llm.script = lambda body: Turn(tool_calls=[ToolCall("calculator", {"expression": "1 + 1"})])
    wf = await save(client, headers, {"name": "W", "start": "a", "steps": {
        "a": {"kind": "agent", "agent_id": looper["id"], "input": "loop forever", "retry": {"max_attempts": 2}}}})
    done = await settle(client, headers, (await start(client, headers, wf["id"]))["id"])
    assert done["status"] == "failed" and "used all its steps" in done["error"]["message"]
    assert done["error"]["message"].startswith("step 'a': failed after 2 attempts")
    calls = len(llm.requests)
    assert calls == 6  # three model calls per attempt (max_steps 2, as for chat runs), two attempts
    assert done["prompt_tokens"] > 0 and done["completion_tokens"] > 0
    assert done["steps"][0]["completion_tokens"] > 0
    usage = (await (await client.get("/api/usage", headers=headers)).json())["usage"]
    assert sum(u["completion_tokens"] for u in usage) == done["completion_tokens"]


async def test_a_step_timeout_fails_the_attempt_and_stops_the_model_call(app, llm):
    client, headers = await app()
    slow = await agent(client, headers, "Slow.")
    llm.tokens_per_second = 10
    llm.script = lambda body: Turn(" ".join(f"w{i}" for i in range(100)))
    wf = await save(client, headers, {"name": "W", "start": "a", "steps": {
        "a": {"kind": "agent", "agent_id": slow["id"], "input": "talk", "timeout_seconds": 0.5}}})
    done = await settle(client, headers, (await start(client, headers, wf["id"]))["id"])
    assert done["status"] == "failed" and done["error"] == {
        "code": "step_failed", "message": "step 'a': failed after 1 attempt (timed out)"}
    await llm.wait_cancelled(1, timeout=1.0)


async def test_many_workflow_runs_at_once_without_lock_errors(app, llm, caplog):
    client, headers = await app(runs_max_concurrent=20, runs_max_per_user=20)
    a = await agent(client, headers, "A.")
    b = await agent(client, headers, "B.")
    llm.tokens_per_second = 200
    llm.script = lambda body: Turn("a short answer " * 3)
    wf = await save(client, headers, {"name": "W", "start": "both", "steps": {
        "both": {"kind": "parallel", "steps": ["x", "y"], "next": "z"},
        "x": {"kind": "agent", "agent_id": a["id"], "input": "x"},
        "y": {"kind": "tool", "tool": "calculator", "arguments": {"expression": "2 ** 10"}},
        "z": {"kind": "agent", "agent_id": b["id"], "input": "{{ steps.x.output }} {{ steps.y.output }}"}}})
    runs = await asyncio.gather(*(start(client, headers, wf["id"]) for _ in range(20)))
    done = await asyncio.gather(*(settle(client, headers, r["id"], timeout=60) for r in runs))
    assert [d["status"] for d in done] == ["succeeded"] * 20
    assert all(d["output"]["y"] == "1024" and len(d["steps"]) == 4 for d in done)
    assert len(llm.requests) == 40
    assert "database is locked" not in caplog.text


async def test_edit_and_run_refuse_bad_bodies_and_change_nothing(app, llm):
    client, headers = await app(max_body_size=4096)
    a = await agent(client, headers, "A.")
    doc = {"name": "W", "start": "gate", "steps": {"gate": {"kind": "approval", "prompt": "Go?", "on_approve": "a"},
                                                   "a": {"kind": "agent", "agent_id": a["id"], "input": "x"}}}
    wf = await save(client, headers, doc)
    reader = await make_user(client.app, "reader@example.org")
    read_only = bearer(await api_token(client.app, reader, scopes=("read",)))
    json_headers = {**headers, "Content-Type": "application/json"}
    for path, method in [(f"/api/workflows/{wf['id']}", "PATCH"), (f"/api/workflows/{wf['id']}/runs", "POST")]:
        for kwargs, status, code in [
            (dict(data=b"{oops", headers=json_headers), 400, "malformed_json"),
            (dict(data=b"{}", headers={**headers, "Content-Type": "text/plain"}), 415, "unsupported_media_type"),
            (dict(data=json.dumps({"x": "y" * 5000}).encode(), headers=json_headers), 413, "payload_too_large"),
            (dict(json=["not", "an", "object"], headers=headers), 422, "validation_failed"),
            (dict(json={"definition": doc, "input": {}}, headers=headers), 422, "validation_failed"),
            (dict(json={}, headers=read_only), 403, "insufficient_scope"),
            (dict(json={}), 401, "unauthorized"),
        ]:
            resp = await client.request(method, path, **kwargs)
            assert resp.status == status, (method, kwargs, await resp.text())
            assert (await resp.json())["error"]["code"] == code
    assert (await (await client.get(f"/api/workflows/{wf['id']}", headers=headers)).json())["version"] == 1
    assert (await (await client.get("/api/runs?kind=workflow", headers=headers)).json())["runs"] == []

    run = await start(client, headers, wf["id"])
    await settle(client, headers, run["id"])
    for kwargs, status in [(dict(data=b"{oops", headers=json_headers), 400),
                           (dict(json={"answer": {"approved": True}, "extra": 1}, headers=headers), 422),
                           (dict(json={"answer": ["yes"]}, headers=headers), 422),
                           (dict(headers=headers), 422)]:  # a waiting approval needs its answer
        resp = await client.post(f"/api/runs/{run['id']}/resume", **kwargs)
        assert resp.status == status, (kwargs, await resp.text())
    still = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    assert still["status"] == "waiting_for_input" and [s["status"] for s in still["steps"]] == ["waiting"]
