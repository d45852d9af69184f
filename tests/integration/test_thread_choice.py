"""The thread's agent and model "from now on" (PATCH /api/threads/{id}: services/turn_choice.py,
choose), through the real runner and the tests' LLM server over HTTP (the model name in the LLM
request says which model ran): every turn that names nothing uses it (messages, regenerate,
edit, the /v1 and /lg adapters), a turn that names one still applies to that turn only; the
change is announced (thread.updated on threads/{id} and users/{id}); a refused change (malformed,
oversized, unknown agent or model, another user's thread, unauthenticated) changes and
announces nothing."""

from __future__ import annotations

import sqlite3

import pytest

from ..support.auth import token_user
from ..support.live import Live
from .test_runs import agent_and_thread, chat, llm, send, settle, thread_messages  # noqa: F401 (fixtures)
from .test_turn_choice import _recorder, _system


async def _patch(client, headers, thread_id: str, body, **kw):
    return await client.patch(f"/api/threads/{thread_id}", json=body, headers=headers, **kw)


async def _thread_event(live: Live) -> dict:
    """The next thread.* event (users/{id} carries run.* events too)."""
    while True:
        event = await live.until("event")
        if event["type"].startswith("thread."):
            return event


async def _turn(client, headers, thread_id: str, body: dict | None = None, path: str = "/messages") -> dict:
    resp = await client.post(f"/api/threads/{thread_id}{path}", json=body, headers=headers)
    assert resp.status == 202, await resp.text()
    run = await resp.json()
    assert (await settle(client, headers, run["id"]))["status"] == "succeeded"
    return run


async def test_the_threads_choice_is_kept_and_announced_and_a_turns_own_choice_is_for_that_turn(chat, llm):
    client, headers = await chat()
    seen = _recorder(llm)
    me = (await (await client.get("/api/me", headers=headers)).json())["user"]["id"]
    agent, thread = await agent_and_thread(client, headers)
    pirate, _ = await agent_and_thread(client, headers, name="Pirate", instructions="Talk like a pirate.")
    tid = thread["id"]
    assert thread["model"] is None                 # the agent's own, until chosen
    mine = Live(await client.raw.ws_connect("/ws", headers=headers))
    await mine.send({"op": "subscribe", "topic": f"users/{me}"})
    await mine.until("subscribed")

    resp = await _patch(client, headers, tid, {"model": "gpt-other"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["model"] == "gpt-other"
    event = await _thread_event(mine)
    assert (event["type"], event["data"]) == ("thread.updated", {"thread_id": tid, "agent_id": agent["id"],
                                                                 "model": "gpt-other"})
    got = await (await client.get(f"/api/threads/{tid}", headers=headers)).json()
    assert (got["agent_id"], got["model"], got["title"]) == (agent["id"], "gpt-other", "Test")

    # a turn naming nothing: the thread's model, again and again
    for text in ("one", "two"):
        run = await _turn(client, headers, tid, {"content": text})
        assert run["model"] == "gpt-other" and seen[-1]["model"] == "gpt-other"
    # a turn's own model is for that turn only
    run = await _turn(client, headers, tid, {"content": "three", "model": "gpt-test"})
    assert run["model"] == "gpt-test" and seen[-1]["model"] == "gpt-test"
    # another agent for one turn answers with its own model, not the thread's
    run = await _turn(client, headers, tid, {"content": "four", "agent_id": pirate["id"]})
    assert (run["agent_id"], run["model"]) == (pirate["id"], "gpt-test") and _system(seen[-1]) == "Talk like a pirate."
    # regenerate and edit without a choice: the thread's
    run = await _turn(client, headers, tid, None, "/regenerate")
    assert (run["agent_id"], run["model"], seen[-1]["model"]) == (agent["id"], "gpt-other", "gpt-other")
    first = (await thread_messages(client, headers, tid))[0]
    run = await _turn(client, headers, tid, {"content": "one again"}, f"/messages/{first['id']}/edit")
    assert seen[-1]["model"] == "gpt-other" and _system(seen[-1]) == "Be brief."

    # another agent from now on: its own model (the thread's model was for the old agent)
    resp = await _patch(client, headers, tid, {"agent_id": pirate["id"]})
    assert resp.status == 200 and ((await resp.json())["agent_id"], (await resp.json())["model"]) == (pirate["id"], None)
    event = await _thread_event(mine)
    assert (event["type"], event["data"]) == ("thread.updated", {"thread_id": tid, "agent_id": pirate["id"],
                                                                 "model": None})
    run = await _turn(client, headers, tid, {"content": "five"})
    assert (run["agent_id"], seen[-1]["model"], _system(seen[-1])) == (pirate["id"], "gpt-test", "Talk like a pirate.")
    # agent, model and title at once; then back to the agent's own model with null
    resp = await _patch(client, headers, tid, {"agent_id": agent["id"], "model": "gpt-other", "title": "Both"})
    assert resp.status == 200
    assert [e["type"] for e in [await _thread_event(mine), await _thread_event(mine)]] == [
        "thread.updated", "thread.renamed"]
    await _turn(client, headers, tid, {"content": "six"})
    assert seen[-1]["model"] == "gpt-other" and _system(seen[-1]) == "Be brief."
    resp = await _patch(client, headers, tid, {"model": None})
    assert resp.status == 200 and (await resp.json())["model"] is None
    await _turn(client, headers, tid, {"content": "seven"})
    assert seen[-1]["model"] == "gpt-test"
    assert (await _thread_event(mine))["data"]["model"] is None
    # the same choice again changes nothing and announces nothing
    assert (await _patch(client, headers, tid, {"model": None, "agent_id": agent["id"]})).status == 200
    assert (await _patch(client, headers, tid, {"title": "Renamed"})).status == 200
    renamed = await _thread_event(mine)
    assert (renamed["type"], renamed["data"]["title"]) == ("thread.renamed", "Renamed")


@pytest.mark.parametrize("body, status, code", [
    ({}, 422, "validation_failed"),
    ([], 422, "validation_failed"),
    ({"agent_id": "nope"}, 404, "agent_not_found"),
    ({"agent_id": "BOBS"}, 404, "agent_not_found"),
    ({"agent_id": "BOBS", "model": "gpt-other"}, 404, "agent_not_found"),
    ({"model": "gpt-unknown"}, 422, "validation_failed"),
    ({"agent_id": "PIRATE", "model": "gpt-unknown"}, 422, "validation_failed"),
    ({"model": "gpt-other", "title": ""}, 422, "validation_failed"),
    ({"model": ""}, 422, "validation_failed"),
    ({"model": "   "}, 422, "validation_failed"),
    ({"model": 5}, 422, "validation_failed"),
    ({"model": "m" * 201}, 422, "validation_failed"),
    ({"agent_id": "a" * 65}, 422, "validation_failed"),
    ({"agent_id": None}, 422, "validation_failed"),
    ({"agent": "x"}, 422, "validation_failed"),
])
async def test_a_refused_change_changes_and_announces_nothing(chat, llm, settings, body, status, code):
    client, headers = await chat()
    seen = _recorder(llm)
    agent, thread = await agent_and_thread(client, headers)
    pirate, _ = await agent_and_thread(client, headers, name="Pirate")
    _, bob = await token_user(client, "bob@example.org")
    bobs_agent, _ = await agent_and_thread(client, bob)
    names = {"BOBS": bobs_agent["id"], "PIRATE": pirate["id"]}
    if isinstance(body, dict) and body.get("agent_id") in names:
        body = {**body, "agent_id": names[body["agent_id"]]}
    before = await (await client.get(f"/api/threads/{thread['id']}", headers=headers)).json()
    resp = await _patch(client, headers, thread["id"], body, validate_contract=False)
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == code and error["message"] and error["request_id"]
    assert await (await client.get(f"/api/threads/{thread['id']}", headers=headers)).json() == before
    await _turn(client, headers, thread["id"], {"content": "hi"})
    assert seen[-1]["model"] == "gpt-test" and _system(seen[-1]) == "Be brief."
    with sqlite3.connect(settings.db_file) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE type IN ('thread.updated', 'thread.renamed')"
                            ).fetchone()[0] == 0


async def test_other_users_oversized_and_unauthenticated_changes_are_refused(chat, llm, settings):
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers)
    _, bob = await token_user(client, "bob@example.org")
    bobs_agent, _ = await agent_and_thread(client, bob)
    url = f"/api/threads/{thread['id']}"
    before = await (await client.get(url, headers=headers)).json()
    # another user's thread is not there for them, even naming their own agent
    for body in ({"model": "gpt-other"}, {"agent_id": bobs_agent["id"]}):
        resp = await client.patch(url, json=body, headers=bob)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await client.patch(url, data=b'{"model": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                              headers={**headers, "Content-Type": "application/json"}, validate_contract=False)
    assert resp.status == 413
    resp = await client.patch(url, data=b'{"model": ', headers={**headers, "Content-Type": "application/json"},
                              validate_contract=False)
    assert resp.status == 400
    assert (await client.patch(url, json={"model": "gpt-other"}, validate_contract=False)).status == 401
    assert await (await client.get(url, headers=headers)).json() == before
    with sqlite3.connect(settings.db_file) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE type = 'thread.updated'").fetchone()[0] == 0


async def test_a_thread_model_its_provider_no_longer_offers_refuses_the_turn(chat, llm, make_client, settings):
    """The provider's list changed since the model was chosen (another instance on the same file,
    configured without it): a turn naming nothing is refused (409) and stores nothing; a turn
    naming a model, or a PATCH back to the agent's own, goes on."""
    client, headers = await chat()
    seen = _recorder(llm)
    _, thread = await agent_and_thread(client, headers)
    assert (await _patch(client, headers, thread["id"], {"model": "gpt-other"})).status == 200
    narrow = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": "sk-test",
               "models": ("gpt-test",), "default_model": "gpt-test"},)
    other = await make_client(settings.replace(llm_providers=narrow, llm_max_retries=0))
    resp = await other.post(f"/api/threads/{thread['id']}/messages", json={"content": "hi"}, headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "thread_model_unavailable"
    assert await thread_messages(other, headers, thread["id"]) == []
    run = await _turn(other, headers, thread["id"], {"content": "hi", "model": "gpt-test"})
    assert run["model"] == "gpt-test" and seen[-1]["model"] == "gpt-test"
    resp = await _patch(other, headers, thread["id"], {"model": "gpt-other"})
    assert resp.status == 422
    assert (await _patch(other, headers, thread["id"], {"model": None})).status == 200
    await _turn(other, headers, thread["id"], {"content": "again"})
    assert seen[-1]["model"] == "gpt-test"


async def test_a_thread_whose_agent_was_deleted_is_renamed_or_given_another_agent(chat, llm):
    client, headers = await chat()
    seen = _recorder(llm)
    agent, thread = await agent_and_thread(client, headers)
    pirate, _ = await agent_and_thread(client, headers, name="Pirate", instructions="Talk like a pirate.")
    assert (await client.delete(f"/api/agents/{agent['id']}", headers=headers)).status == 204
    resp = await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "hi"}, headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "agent_deleted"
    assert (await _patch(client, headers, thread["id"], {"title": "Still here"})).status == 200
    resp = await _patch(client, headers, thread["id"], {"model": "gpt-other"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "agent_deleted"
    resp = await _patch(client, headers, thread["id"], {"agent_id": pirate["id"], "model": "gpt-other"})
    assert resp.status == 200, await resp.text()
    run = await _turn(client, headers, thread["id"], {"content": "hi"})
    assert run["agent_id"] == pirate["id"] and seen[-1]["model"] == "gpt-other"


async def _v1(client, headers, model: str, messages: list[dict]):
    resp = await client.post("/v1/chat/completions", json={"model": model, "messages": messages}, headers=headers)
    assert resp.status == 200, await resp.text()
    return resp.headers["x-agentstead-thread-id"], (await resp.json())["choices"][0]["message"]["content"]


async def test_the_openai_adapter_continues_with_the_threads_model(chat, llm):
    """/v1 names the agent (`model`) on every request: that agent answers; on a thread whose agent
    it is, with the thread's model from now on; on a thread switched to another agent since,
    with its own model (the request's agent is that turn's choice)."""
    client, headers = await chat()
    seen = _recorder(llm)
    agent, _ = await agent_and_thread(client, headers)
    pirate, _ = await agent_and_thread(client, headers, name="Pirate", instructions="Talk like a pirate.")
    talk = [{"role": "user", "content": "Hi"}]
    tid, reply = await _v1(client, headers, agent["id"], talk)
    assert seen[-1]["model"] == "gpt-test"
    assert (await _patch(client, headers, tid, {"model": "gpt-other"})).status == 200
    talk += [{"role": "assistant", "content": reply}, {"role": "user", "content": "More"}]
    same, reply = await _v1(client, headers, agent["id"], talk)
    assert same == tid and seen[-1]["model"] == "gpt-other" and _system(seen[-1]) == "Be brief."
    assert (await _patch(client, headers, tid, {"agent_id": pirate["id"], "model": "gpt-other"})).status == 200
    talk += [{"role": "assistant", "content": reply}, {"role": "user", "content": "Again"}]
    same, _ = await _v1(client, headers, agent["id"], talk)
    assert same == tid and seen[-1]["model"] == "gpt-test" and _system(seen[-1]) == "Be brief."


async def test_the_langgraph_adapter_uses_the_threads_choice(chat, llm):
    """/lg binds a thread to one assistant: after PATCH the thread's agent is the one to name (the
    old one gets 409 assistant_mismatch), and its runs use the thread's model."""
    client, headers = await chat()
    seen = _recorder(llm)
    agent, _ = await agent_and_thread(client, headers)
    pirate, _ = await agent_and_thread(client, headers, name="Pirate", instructions="Talk like a pirate.")
    tid = (await (await client.post("/lg/threads", json={}, headers=headers)).json())["thread_id"]

    async def run(assistant: str):
        return await client.post(f"/lg/threads/{tid}/runs/wait", headers=headers, json={
            "assistant_id": assistant, "input": {"messages": [{"role": "user", "content": "hi"}]}})
    assert (await run(agent["id"])).status == 200 and seen[-1]["model"] == "gpt-test"
    assert (await _patch(client, headers, tid, {"model": "gpt-other"})).status == 200
    assert (await run(agent["id"])).status == 200 and seen[-1]["model"] == "gpt-other"
    assert (await _patch(client, headers, tid, {"agent_id": pirate["id"], "model": "gpt-other"})).status == 200
    resp = await run(agent["id"])
    assert resp.status == 409
    asked = len(seen)
    assert (await run(pirate["id"])).status == 200
    assert len(seen) == asked + 1 and seen[-1]["model"] == "gpt-other" and _system(seen[-1]) == "Talk like a pirate."
