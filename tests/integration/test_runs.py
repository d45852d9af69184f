"""Agents, threads and runs through the real langchain-openai client and LangGraph,
against the tests' own OpenAI-compatible server over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3

import pytest

from ..support.auth import token_user
from ..support.live import Live
from ..support.llm_server import Fault, LLMServer, ToolCall, Turn

N_RUNS = int(__import__("os").environ.get("TEST_CONCURRENT_RUNS", "50"))
FINAL = {"succeeded", "failed", "cancelled", "waiting_for_input", "interrupted"}


@pytest.fixture
async def llm():
    server = LLMServer(api_key="sk-test", models=("gpt-test", "gpt-other"))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def chat(make_client, settings, llm):
    """make(**overrides) -> (client, headers of a member with an API token)."""
    async def make(api_key: str = "sk-test", providers=None, **overrides):
        if providers is None:
            providers = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": api_key,
                          "models": ("gpt-test", "gpt-other"), "default_model": "gpt-test"},)
        client = await make_client(settings.replace(llm_providers=providers, llm_max_retries=2,
                                                    http_get_allowed_hosts=("localhost",), **overrides))
        _, headers = await token_user(client, "ada@example.org")
        return client, headers
    return make


async def agent_and_thread(client, headers, **agent_fields) -> tuple[dict, dict]:
    body = {"name": "Helper", "instructions": "Be brief.", "tools": ["calculator", "http_get", "ask_human",
                                                                     "current_time"], **agent_fields}
    resp = await client.post("/api/agents", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    agent = await resp.json()
    resp = await client.post("/api/threads", json={"agent_id": agent["id"], "title": "Test"}, headers=headers)
    assert resp.status == 201, await resp.text()
    return agent, await resp.json()


async def send(client, headers, thread_id: str, content: str) -> dict:
    resp = await client.post(f"/api/threads/{thread_id}/messages", json={"content": content}, headers=headers)
    assert resp.status == 202, await resp.text()
    return await resp.json()


async def settle(client, headers, run_id: str, timeout: float = 20.0, until=FINAL) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            # polling is not validated against the contract (openapi-core costs ~20 ms a response)
            resp = await client.get(f"/api/runs/{run_id}", headers=headers, validate_contract=False)
            run = await resp.json()
            if run["status"] in until:
                return run
            await asyncio.sleep(0.05)


async def thread_messages(client, headers, thread_id: str) -> list[dict]:
    return (await (await client.get(f"/api/threads/{thread_id}", headers=headers)).json())["messages"]


async def test_the_owners_user_topic_carries_every_run_status_but_no_deltas(chat, llm):
    """users/{id} is one subscription for all of a user's runs (the runs page): run.* events
    of a thread the subscriber never opened, in order, and nothing for another user."""
    client, headers = await chat()
    me = await (await client.get("/api/me", headers=headers)).json()
    user_id = me["user"]["id"]
    _, other = await token_user(client, "bob@example.org")
    bob = Live(await client.raw.ws_connect("/ws", headers=other))
    await bob.send({"op": "subscribe", "topic": f"users/{user_id}"})
    assert (await bob.until("error"))["code"] == "forbidden"
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"users/{user_id}"})
    await live.until("subscribed")
    llm.script = [Turn("Fine, thanks.")]
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "How are you?")
    types = []
    async with asyncio.timeout(20):
        while not types or types[-1] != "run.succeeded":
            event = await live.until("event")
            assert event["topic"] == f"users/{user_id}"
            if event["data"].get("run_id") == run["id"]:
                types.append(event["type"])
    assert types == ["run.queued", "run.started", "run.succeeded"]


async def deltas_until_done(live: Live) -> list[str]:
    """The texts of the message.delta events on a subscription, until run.succeeded."""
    deltas = []
    async with asyncio.timeout(20):
        while True:
            event = await live.until("event")
            if event["type"] == "message.delta":
                deltas.append(event["data"]["text"])
            if event["type"] == "run.succeeded":
                return deltas


async def test_slow_tokens_stream_one_delta_each(chat, llm):
    """Coalescing adds no latency: when tokens come slower than one per DELTA_GAP (30 ms),
    every token goes out as its own delta as soon as it arrives."""
    client, headers = await chat()
    llm.tokens_per_second = 12.0
    llm.script = [Turn("one two three four five six")]
    _, thread = await agent_and_thread(client, headers)
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"threads/{thread['id']}"})
    await live.until("subscribed")
    await send(client, headers, thread["id"], "Count")
    deltas = await deltas_until_done(live)
    assert "".join(deltas) == "one two three four five six"
    assert len(deltas) >= 5, deltas


async def test_fast_tokens_coalesce_into_few_deltas(chat, llm):
    """A provider sending as fast as it can: at most one delta per run per DELTA_GAP, and
    the deltas together are the whole text, in order."""
    from agentstead.runner.stream import DELTA_GAP
    client, headers = await chat()
    words = [f"w{i}" for i in range(300)]
    llm.tokens_per_second = 0
    llm.script = [Turn(" ".join(words))]
    _, thread = await agent_and_thread(client, headers)
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"threads/{thread['id']}"})
    await live.until("subscribed")
    t0 = asyncio.get_running_loop().time()
    await send(client, headers, thread["id"], "Talk")
    deltas = await deltas_until_done(live)
    elapsed = asyncio.get_running_loop().time() - t0
    assert "".join(deltas) == " ".join(words)
    assert 1 <= len(deltas) <= elapsed / DELTA_GAP + 2, (len(deltas), elapsed)


async def test_streamed_chat_turn_end_to_end(chat, llm):
    client, headers = await chat()
    llm.script = [Turn("Hello there, Ada! How can I help?")]
    _, thread = await agent_and_thread(client, headers)
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"threads/{thread['id']}"})
    await live.until("subscribed")
    run = await send(client, headers, thread["id"], "Hi!")
    assert run["status"] in ("queued", "running") and run["agent_version"] == 1   # started in the same transaction when a slot is free
    types, deltas = [], []
    async with asyncio.timeout(20):
        while not types or types[-1] != "run.succeeded":
            event = await live.until("event")
            types.append(event["type"])
            if event["type"] == "message.delta":
                deltas.append(event["data"]["text"])
    assert types[0] == "run.queued" and types[1] == "run.started"
    assert types.index("message.created") > types.index("message.delta")
    # 1000 tokens/s is faster than the event log commits: pieces coalesce, nothing is lost.
    assert len(deltas) >= 2 and "".join(deltas) == "Hello there, Ada! How can I help?"
    messages = await thread_messages(client, headers, thread["id"])
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Hi!"), ("assistant", "Hello there, Ada! How can I help?")]
    done = await settle(client, headers, run["id"])
    assert done["status"] == "succeeded" and done["completion_tokens"] > 0 and done["prompt_tokens"] > 0
    # the model saw the instructions and the user's message
    sent = llm.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."} and sent[-1]["content"] == "Hi!"
    usage = (await (await client.get("/api/usage", headers=headers)).json())["usage"]
    assert usage[0]["model"] == "gpt-test" and usage[0]["runs"] == 1


async def test_tool_call_round_trip(chat, llm):
    client, headers = await chat()
    llm.script = [Turn(tool_calls=[ToolCall("calculator", {"expression": "6 * 7"})]), Turn("It is 42.")]
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "6 times 7?"))["id"])
    assert run["status"] == "succeeded", run
    messages = await thread_messages(client, headers, thread["id"])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1]["tool_calls"][0]["name"] == "calculator" and messages[2]["content"] == "42"
    assert llm.requests[0]["tools"][0]["function"]["name"] in {"calculator", "http_get", "ask_human", "current_time"}
    tool_msg = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_msg and tool_msg[0]["content"] == "42"


async def test_http_get_refuses_a_private_address(chat, llm):
    client, headers = await chat()
    llm.script = [Turn(tool_calls=[ToolCall("http_get", {"url": f"http://localhost:{llm.port}/v1/models"})]),
                  Turn("Could not fetch it.")]
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "fetch"))["id"])
    assert run["status"] == "succeeded"
    tool = [m for m in await thread_messages(client, headers, thread["id"]) if m["role"] == "tool"][0]
    assert "non-public address" in tool["content"] and "127.0.0.1" in tool["content"]
    assert not any(r for r in llm.requests if "models" in str(r.get("path", "")))


async def test_http_get_refuses_hosts_off_the_allow_list(chat, llm):
    client, headers = await chat()
    llm.script = [Turn(tool_calls=[ToolCall("http_get", {"url": "https://example.com/"})]), Turn("ok")]
    _, thread = await agent_and_thread(client, headers)
    await settle(client, headers, (await send(client, headers, thread["id"], "fetch"))["id"])
    tool = [m for m in await thread_messages(client, headers, thread["id"]) if m["role"] == "tool"][0]
    assert "not on the administrator's allow-list" in tool["content"]


async def test_ask_human_waits_then_resumes_with_the_answer(chat, llm, settings):
    client, headers = await chat()
    llm.script = [Turn(tool_calls=[ToolCall("ask_human", {"question": "Which city?"})]), Turn("Paris it is.")]
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "Book a trip")
    waiting = await settle(client, headers, run["id"])
    assert waiting["status"] == "waiting_for_input" and waiting["waiting_prompt"] == "Which city?"
    # a waiting run's checkpoint is on disk (written with the waiting status); a finished run has none
    with sqlite3.connect(settings.db_file) as conn:
        assert conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", (f"run:{run['id']}",)).fetchone()[0] > 0
    resp = await client.post(f"/api/runs/{run['id']}/resume", json={}, headers=headers)
    assert resp.status == 422  # an answer is needed
    resp = await client.post(f"/api/runs/{run['id']}/resume", json={"answer": "Paris"}, headers=headers)
    assert resp.status == 202
    done = await settle(client, headers, run["id"], until={"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    messages = await thread_messages(client, headers, thread["id"])
    assert [(m["role"], m["content"]) for m in messages][-2:] == [("tool", "Paris"), ("assistant", "Paris it is.")]
    assert len(llm.requests) == 2
    with sqlite3.connect(settings.db_file) as conn:
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 0


async def test_an_acknowledged_answer_survives_a_crash_before_the_run_uses_it(chat, llm, settings):
    """The resume that accepts the human's answer stores it, as the question's result, in
    the transaction that sets the run running. A crash right after (the run's task never
    ran a step): the run is interrupted, and resuming it uses the stored answer instead of
    asking again."""
    from agentstead.keys import RUNNER
    from agentstead.store import runs as run_store
    client, headers = await chat()
    llm.script = [Turn(tool_calls=[ToolCall("ask_human", {"question": "Which city?"})]), Turn("Paris it is.")]
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "Book a trip"))["id"])
    assert run["status"] == "waiting_for_input"
    runner = client.app[RUNNER]
    await runner.resume(await runner.db.read(run_store.get, run["id"]), "Paris")
    runner.tasks[run["id"]].cancel()          # the crash: the launched task never runs
    await asyncio.sleep(0)
    await _restart(client, settings.db_file, [])
    assert (await settle(client, headers, run["id"]))["status"] == "interrupted"
    assert (await client.post(f"/api/runs/{run['id']}/resume", headers=headers)).status == 202
    done = await settle(client, headers, run["id"], until={"succeeded", "failed", "waiting_for_input"})
    assert done["status"] == "succeeded", done
    assert [(m["role"], m["content"]) for m in await thread_messages(client, headers, thread["id"])] == [
        ("user", "Book a trip"), ("assistant", ""), ("tool", "Paris"), ("assistant", "Paris it is.")]
    assert len(llm.requests) == 2


async def test_cancel_mid_stream_keeps_partial_output(chat, llm):
    client, headers = await chat()
    llm.tokens_per_second = 20
    llm.script = [Turn(" ".join(f"word{i}" for i in range(200)))]
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "Talk a lot")
    async with asyncio.timeout(10):
        while not any(m["role"] == "assistant" for m in await thread_messages(client, headers, thread["id"])):
            if (await settle(client, headers, run["id"], until={"running"}))["status"] == "running":
                await asyncio.sleep(0.3)
                break
    resp = await client.post(f"/api/runs/{run['id']}/cancel", headers=headers)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    await llm.wait_cancelled(1, timeout=1.0)  # the stream to the provider stopped within 1 s
    partial = [m for m in await thread_messages(client, headers, thread["id"]) if m["role"] == "assistant"]
    assert len(partial) == 1 and partial[0]["partial"] is True and partial[0]["content"].startswith("word0")
    assert (await client.post(f"/api/runs/{run['id']}/cancel", headers=headers)).status == 409


async def test_every_cancel_stops_the_stream_at_once(chat, llm):
    """A cancel landing at any moment of a fast stream stops it. Python 3.11's
    asyncio.wait_for returns the result and drops the cancel when both arrive together;
    langchain-openai wrapped every chunk in one, so about one cancel in ten of a fast
    stream was lost and the model's reply ran to its end (this failed 2 runs in 3
    before runner/graph.py turned that wrapper off)."""
    client, headers = await chat()
    llm.tokens_per_second = 400
    llm.script = lambda body: Turn(" ".join(f"w{i}" for i in range(4000)))
    _, thread = await agent_and_thread(client, headers, tools=["calculator"])
    for i in range(20):
        run = await send(client, headers, thread["id"], f"talk {i}")
        await settle(client, headers, run["id"], until={"running"})
        # the stream has begun (a run's first model call can take longer than the pause below on a
        # loaded box, and a cancel before the request leaves is not a stream stopped)
        async with asyncio.timeout(5):
            while len(llm.requests) < i + 1:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.05 + 0.01 * i)
        resp = await client.post(f"/api/runs/{run['id']}/cancel", headers=headers)
        assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
        # the reply would run 10 s: 3 s tells a stopped stream from one run to its end on a loaded box
        try:
            await llm.wait_cancelled(i + 1, timeout=3.0)
        except TimeoutError:
            raise AssertionError(f"cancel {i} not seen by the model server: requests {len(llm.requests)}, "
                                 f"cancelled {llm.cancelled}, completed {llm.completed}, active {llm.active}")


@pytest.mark.parametrize("fault,code", [
    (Fault("drop", after_tokens=3), "provider_unreachable"),
    (Fault("stall", after_tokens=3, seconds=4.0), "provider_timeout"),   # llm_timeout_seconds=1
])
async def test_a_reply_cut_off_mid_stream_fails_clearly_and_keeps_its_partial_text(chat, llm, fault, code):
    client, headers = await chat(llm_timeout_seconds=1.0)
    llm.faults = [fault]
    llm.script = [Turn("one two three four five six")]
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    assert run["status"] == "failed" and run["error"]["code"] == code, run
    assert len(llm.requests) == 1       # a reply already under way is not asked for again
    reply = [m for m in await thread_messages(client, headers, thread["id"]) if m["role"] == "assistant"]
    assert [(m["content"], m["partial"]) for m in reply] == [("one two three", True)]


async def test_429_then_success(chat, llm):
    client, headers = await chat()
    llm.faults = [Fault("status", status=429, retry_after=0.2)]
    llm.script = [Turn("fine now")]
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    assert run["status"] == "succeeded" and len(llm.requests) == 2


@pytest.mark.parametrize("setup,code", [
    ({"api_key": "sk-wrong"}, "provider_auth_failed"),
    ({"providers": ()}, "provider_not_configured"),
])
async def test_provider_failures_are_clear(chat, llm, setup, code):
    client, headers = await chat(**setup)
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    assert run["status"] == "failed" and run["error"]["code"] == code
    assert "Traceback" not in run["error"]["message"]


async def test_unknown_model_fails_clearly(chat, llm):
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers, model="gpt-other")
    llm.models = ("gpt-test",)  # the provider no longer offers it
    run = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    assert run["status"] == "failed" and run["error"]["code"] == "model_not_found"


async def test_budget_exceeded_fails_before_calling_the_provider(chat, llm):
    client, headers = await chat(daily_token_budget=5)
    _, thread = await agent_and_thread(client, headers)
    first = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    assert first["status"] == "succeeded"
    calls = len(llm.requests)
    second = await settle(client, headers, (await send(client, headers, thread["id"], "again"))["id"])
    assert second["status"] == "failed" and second["error"]["code"] == "budget_exceeded"
    assert len(llm.requests) == calls


async def test_agent_versions_and_validation(chat, llm):
    client, headers = await chat()
    agent, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    resp = await client.patch(f"/api/agents/{agent['id']}", json={"instructions": "Be verbose."}, headers=headers)
    assert resp.status == 200 and (await resp.json())["version"] == 2
    assert (await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json())["agent_version"] == 1
    bad = [({"name": "x", "tools": ["rm_rf"]}, "/tools"), ({"name": "x", "model": "gpt-9"}, "/model"),
           ({"name": "x", "provider": "nope"}, "/provider"), ({"name": ""}, "/name"),
           ({"name": "x", "temperature": 5}, "/temperature"), ({"name": "x", "max_steps": 0}, "/max_steps"),
           ({"name": "x", "colour": 1}, "/colour")]
    for body, pointer in bad:
        resp = await client.post("/api/agents", json=body, headers=headers)
        assert resp.status == 422, body
        assert (await resp.json())["error"]["details"]["errors"][0]["pointer"] == pointer
    agents = (await (await client.get("/api/agents", headers=headers)).json())["agents"]
    assert len(agents) == 1


async def test_rename_a_thread_and_refuse_bad_titles(chat, llm, settings):
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers)
    _, newer = await agent_and_thread(client, headers)
    order = [t["id"] for t in (await (await client.get("/api/threads", headers=headers)).json())["threads"]]
    url = f"/api/threads/{thread['id']}"
    resp = await client.patch(url, json={"title": "  Trip to Paris  "}, headers=headers)
    assert resp.status == 200, await resp.text()
    renamed = await resp.json()
    assert renamed["title"] == "Trip to Paris" and renamed["updated_at"] == thread["updated_at"]
    assert (await (await client.get(url, headers=headers)).json())["title"] == "Trip to Paris"
    # the list keeps its order (by last message), with the new title
    listed = (await (await client.get("/api/threads", headers=headers)).json())["threads"]
    assert [t["id"] for t in listed] == order and {t["id"]: t["title"] for t in listed}[thread["id"]] == "Trip to Paris"
    for body, pointer in [({}, "/title"), ({"title": ""}, "/title"), ({"title": "   "}, "/title"),
                          ({"title": "x" * 201}, "/title"), ({"title": 7}, "/title"), ({"title": None}, "/title"),
                          ({"title": "ok", "owner_id": newer["id"]}, "/owner_id")]:   # agent_id/model: test_thread_choice
        resp = await client.patch(url, json=body, headers=headers, validate_contract=False)
        assert resp.status == 422, (body, resp.status)
        assert (await resp.json())["error"]["details"]["errors"][0]["pointer"] == pointer, body
    resp = await client.patch(url, data=b"{not json", headers={**headers, "Content-Type": "application/json"},
                              validate_contract=False)
    assert resp.status == 400
    resp = await client.patch(url, data=b'{"title": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                              headers={**headers, "Content-Type": "application/json"}, validate_contract=False)
    assert resp.status == 413
    resp = await client.patch(url, json={"title": "x"}, validate_contract=False)
    assert resp.status == 401
    resp = await client.patch("/api/threads/no-such-thread", json={"title": "x"}, headers=headers)
    assert resp.status == 404
    # nothing a refused request sent changed the thread
    assert (await (await client.get(url, headers=headers)).json())["title"] == "Trip to Paris"


async def test_renaming_and_deleting_a_thread_are_announced_on_its_topic(chat, llm):
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers)
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"threads/{thread['id']}"})
    await live.until("subscribed")
    assert (await client.patch(f"/api/threads/{thread['id']}", json={"title": "Renamed"}, headers=headers)).status == 200
    renamed = await live.until("event")
    assert (renamed["type"], renamed["data"]) == ("thread.renamed", {"thread_id": thread["id"], "title": "Renamed"})
    # a refused rename announces nothing
    assert (await client.patch(f"/api/threads/{thread['id']}", json={"title": ""}, headers=headers,
                               validate_contract=False)).status == 422
    assert (await client.delete(f"/api/threads/{thread['id']}", headers=headers)).status == 204
    deleted = await live.until("event")
    assert (deleted["type"], deleted["data"]) == ("thread.deleted", {"thread_id": thread["id"]})
    assert deleted["seq"] == renamed["seq"] + 1   # nothing in between (the rename is one event on both topics)
    again = Live(await client.raw.ws_connect("/ws", headers=headers))
    await again.send({"op": "subscribe", "topic": f"threads/{thread['id']}", "after": 0})
    assert (await again.until("error"))["code"] == "forbidden"



async def test_two_deletes_at_once_delete_and_announce_once(chat, llm, settings):
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers)
    statuses = sorted(r.status for r in await asyncio.gather(
        *(client.delete(f"/api/threads/{thread['id']}", headers=headers) for _ in range(2))))
    assert statuses == [204, 404]
    with sqlite3.connect(settings.db_file) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE type = 'thread.deleted'").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM topic_events WHERE type = 'thread.deleted'").fetchone()[0] == 2  # threads/, users/

async def test_creating_renaming_and_deleting_threads_are_announced_on_the_owners_user_topic(chat, llm):
    """users/{id} carries thread.created, thread.renamed and thread.deleted of all the owner's
    threads (the chat page's list in every tab), in order; a refused create announces nothing,
    and another user's users/{id} gets none of it."""
    client, headers = await chat()
    user_id = (await (await client.get("/api/me", headers=headers)).json())["user"]["id"]
    bob_user, bob_headers = await token_user(client, "bob@example.org")
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"users/{user_id}"})
    start = (await live.until("subscribed"))["seq"]
    bob = Live(await client.raw.ws_connect("/ws", headers=bob_headers))
    await bob.send({"op": "subscribe", "topic": f"users/{bob_user.id}"})
    bob_start = (await bob.until("subscribed"))["seq"]

    resp = await client.post("/api/threads", json={"agent_id": "no-such-agent", "title": "x"}, headers=headers)
    assert resp.status == 422 and (await resp.json())["error"]["details"]["errors"][0]["pointer"] == "/agent_id"
    agent, thread = await agent_and_thread(client, headers)
    assert (await client.patch(f"/api/threads/{thread['id']}", json={"title": "Renamed"},
                               headers=headers)).status == 200
    assert (await client.delete(f"/api/threads/{thread['id']}", headers=headers)).status == 204
    # the refused create came first: had it announced anything, that would be the first event
    events = await live.events(3)
    assert [(e["topic"], e["type"], e["data"]) for e in events] == [
        (f"users/{user_id}", "thread.created", {"thread_id": thread["id"], "agent_id": agent["id"],
                                                "title": "Test", "created_at": thread["created_at"]}),
        (f"users/{user_id}", "thread.renamed", {"thread_id": thread["id"], "title": "Renamed"}),
        (f"users/{user_id}", "thread.deleted", {"thread_id": thread["id"]})]
    assert start < events[0]["seq"] < events[1]["seq"] < events[2]["seq"]
    # the log holds exactly these on the topic (a replay), and nothing for bob
    again = Live(await client.raw.ws_connect("/ws", headers=headers))
    await again.send({"op": "subscribe", "topic": f"users/{user_id}", "after": start})
    replayed = []
    while (message := await again.recv())["op"] != "subscribed":
        replayed.append(message)
    assert [e["seq"] for e in replayed] == [e["seq"] for e in events]
    await bob.send({"op": "ping", "id": "p"})
    assert await bob.recv() == {"op": "pong", "id": "p"}
    bob_again = Live(await client.raw.ws_connect("/ws", headers=bob_headers))
    await bob_again.send({"op": "subscribe", "topic": f"users/{bob_user.id}", "after": bob_start})
    assert (await bob_again.recv())["op"] == "subscribed"



async def test_an_administrator_reads_no_one_elses_threads_live(chat, llm):
    """As the REST routes: runs/* and threads/* are nobody's, and on another user's users/{id}
    (or users/*) an administrator gets their run statuses but not their threads' events."""
    client, headers = await chat()
    user_id = (await (await client.get("/api/me", headers=headers)).json())["user"]["id"]
    _, admin_headers = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    admin = Live(await client.raw.ws_connect("/ws", headers=admin_headers))
    for topic in ("threads/*", "runs/*"):
        await admin.send({"op": "subscribe", "topic": topic})
        assert (await admin.until("error"))["code"] == "forbidden"
    for topic in (f"users/{user_id}", "users/*"):
        await admin.send({"op": "subscribe", "topic": topic})
        assert (await admin.until("subscribed"))["topic"] == topic
    _, thread = await agent_and_thread(client, headers)
    await admin.send({"op": "subscribe", "topic": f"threads/{thread['id']}"})
    assert (await admin.until("error"))["code"] == "forbidden"
    run = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    assert (await client.patch(f"/api/threads/{thread['id']}", json={"title": "Private"},
                               headers=headers)).status == 200
    assert (await client.delete(f"/api/threads/{thread['id']}", headers=headers)).status == 204
    mine = Live(await client.raw.ws_connect("/ws", headers=headers))
    await mine.send({"op": "subscribe", "topic": f"users/{user_id}", "after": 0})
    owner_saw = []
    while (message := await mine.recv())["op"] != "subscribed":
        owner_saw.append(message["type"])
    assert owner_saw.count("thread.created") == 1 and "thread.renamed" in owner_saw and "thread.deleted" in owner_saw
    # live: the run's statuses on both subscriptions, and nothing of the thread
    live = await admin.events(6)       # run.queued, run.started, run.succeeded; users/{id} and users/*
    assert sorted({e["type"] for e in live}) == ["run.queued", "run.started", "run.succeeded"]
    assert {e["data"]["run_id"] for e in live} == {run["id"]}
    await admin.send({"op": "ping", "id": "p"})
    assert await admin.recv() == {"op": "pong", "id": "p"}     # no thread.* behind them
    # replayed from the log: the same
    again = Live(await client.raw.ws_connect("/ws", headers=admin_headers))
    await again.send({"op": "subscribe", "topic": f"users/{user_id}", "after": 0})
    replayed = []
    while (message := await again.recv())["op"] != "subscribed":
        replayed.append(message["type"])
    assert replayed and not [t for t in replayed if t.startswith("thread.")]

async def test_one_run_at_a_time_per_thread(chat, llm):
    client, headers = await chat()
    llm.tokens_per_second = 20
    llm.script = [Turn(" ".join(["slow"] * 50))]
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "one")
    resp = await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "two"}, headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "run_in_progress"
    await client.post(f"/api/runs/{run['id']}/cancel", headers=headers)


async def test_other_users_cannot_see_agents_threads_or_runs(chat, llm):
    client, headers = await chat()
    agent, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "secret"))["id"])
    _, mallory = await token_user(client, "mallory@example.org")
    for method, path, body in [
        ("GET", f"/api/agents/{agent['id']}", None), ("PATCH", f"/api/agents/{agent['id']}", {"name": "x"}),
        ("DELETE", f"/api/agents/{agent['id']}", None), ("GET", f"/api/threads/{thread['id']}", None),
        ("PATCH", f"/api/threads/{thread['id']}", {"title": "mine now"}),
        ("DELETE", f"/api/threads/{thread['id']}", None),
        ("POST", f"/api/threads/{thread['id']}/messages", {"content": "x"}),
        ("GET", f"/api/runs/{run['id']}", None), ("POST", f"/api/runs/{run['id']}/cancel", None),
        ("POST", f"/api/runs/{run['id']}/resume", {"answer": "x"}), ("GET", f"/api/runs/{run['id']}/stream", None),
        ("GET", f"/api/threads/{thread['id']}/stream", None),
    ]:
        resp = await client.request(method, path, json=body, headers=mallory)
        assert resp.status == 404, (method, path, resp.status)
    assert (await (await client.get(f"/api/threads/{thread['id']}", headers=headers)).json())["title"] == "Test"
    assert (await (await client.get("/api/runs", headers=mallory)).json())["runs"] == []
    assert (await (await client.get("/api/threads", headers=mallory)).json())["threads"] == []
    resp = await client.post("/api/threads", json={"agent_id": agent["id"]}, headers=mallory)
    assert resp.status == 422
    live = Live(await client.raw.ws_connect("/ws", headers=mallory))
    for topic in (f"runs/{run['id']}", f"threads/{thread['id']}"):
        await live.send({"op": "subscribe", "topic": topic})
        assert (await live.until("error"))["code"] == "forbidden"


async def test_fifty_concurrent_runs_without_lock_errors(chat, llm, caplog):
    client, headers = await chat(runs_max_concurrent=50, runs_max_per_user=50, rate_limit_api_per_minute=10**6)
    llm.tokens_per_second = 200
    llm.script = lambda body: Turn("a short answer from the model " * 3)
    agent, _ = await agent_and_thread(client, headers)
    threads = []
    for i in range(N_RUNS):
        resp = await client.post("/api/threads", json={"agent_id": agent["id"]}, headers=headers)
        threads.append((await resp.json())["id"])
    runs = await asyncio.gather(*(send(client, headers, t, f"hello {i}") for i, t in enumerate(threads)))
    done = await asyncio.gather(*(settle(client, headers, r["id"], timeout=60) for r in runs))
    assert [d["status"] for d in done] == ["succeeded"] * N_RUNS
    assert "database is locked" not in caplog.text


async def test_sse_stream_with_last_event_id(chat, llm):
    client, headers = await chat()
    llm.script = [Turn("one two three four")]
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "count")
    await settle(client, headers, run["id"])
    resp = await client.get(f"/api/runs/{run['id']}/stream", headers={**headers, "Last-Event-ID": "0"},
                            validate_contract=False)
    text = await resp.text()
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    # a moment after the run ended its deltas are compacted (runner/compaction.py, with other runs'
    # that end meanwhile); the stored message carries the whole text
    async with asyncio.timeout(15):
        while "event: message.delta" in text:
            await asyncio.sleep(0.2)
            resp = await client.get(f"/api/runs/{run['id']}/stream", headers={**headers, "Last-Event-ID": "0"},
                                    validate_contract=False)
            text = await resp.text()
    ids = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
    assert ids == sorted(ids) and "event: run.succeeded" in text and '"content":"one two three four"' in text
    resume_from = ids[1]
    resp = await client.get(f"/api/runs/{run['id']}/stream", headers={**headers, "Last-Event-ID": str(resume_from)},
                            validate_contract=False)
    later = [int(line[4:]) for line in (await resp.text()).splitlines() if line.startswith("id: ")]
    assert later == [i for i in ids if i > resume_from]
    bad = await client.get(f"/api/runs/{run['id']}/stream", headers={**headers, "Last-Event-ID": "abc"})
    assert bad.status == 400


async def test_startup_marks_running_runs_interrupted(make_client, settings, llm, chat):
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    with sqlite3.connect(settings.db_file) as conn:
        conn.execute("UPDATE runs SET status = 'running' WHERE id = ?", (run["id"],))
    from agentstead.keys import RUNNER
    await client.app[RUNNER].start()  # what a restart does
    again = await (await client.get(f"/api/runs/{run['id']}", headers=headers)).json()
    assert again["status"] == "interrupted" and again["error"]["code"] == "interrupted"


async def _restart(client, db_file: str, sql: list[tuple[str, tuple]]) -> None:
    """Put the store in the state a crash leaves (the given writes), then do what a
    restart does: the runner's start marks running runs interrupted."""
    with sqlite3.connect(db_file) as conn:
        for statement, args in sql:
            conn.execute(statement, args)
    from agentstead.keys import RUNNER
    await client.app[RUNNER].start()


async def test_resume_after_the_reply_was_stored_finishes_without_calling_the_model(chat, llm, settings):
    """Cut off between storing the reply and finishing the run: resume finishes it from
    the stored messages, with no second model call and no duplicated message."""
    client, headers = await chat()
    llm.script = [Turn("All done.")]
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    assert run["status"] == "succeeded"
    await _restart(client, settings.db_file, [("UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?",
                                               (run["id"],))])
    assert (await settle(client, headers, run["id"]))["status"] == "interrupted"
    requests = len(llm.requests)
    assert (await client.post(f"/api/runs/{run['id']}/resume", headers=headers)).status == 202
    done = await settle(client, headers, run["id"], until={"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert len(llm.requests) == requests
    assert [(m["role"], m["content"]) for m in await thread_messages(client, headers, thread["id"])] == [
        ("user", "hi"), ("assistant", "All done.")]


async def test_resume_with_a_tool_call_in_flight_does_not_run_it_again(chat, llm, settings):
    """Cut off while a tool ran: the call is recorded unverified; resume goes on from the
    stored reply that called it, answers it 'unverified' without running it, and asks the
    model once more."""
    client, headers = await chat()
    llm.script = [Turn(tool_calls=[ToolCall("calculator", {"expression": "6 * 7"})]), Turn("It is 42."),
                  Turn("I could not check that.")]
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "6*7?"))["id"])
    assert run["status"] == "succeeded"
    messages = await thread_messages(client, headers, thread["id"])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    call_id = messages[1]["tool_calls"][0]["id"]
    # the state of a crash while the calculator ran: started, no result, no later messages
    await _restart(client, settings.db_file, [
        ("UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?", (run["id"],)),
        ("UPDATE tool_calls SET status = 'started', result = NULL WHERE id = ?", (call_id,)),
        ("DELETE FROM messages WHERE id IN (?, ?)", (messages[2]["id"], messages[3]["id"]))])
    with sqlite3.connect(settings.db_file) as conn:
        assert conn.execute("SELECT status FROM tool_calls WHERE id = ?", (call_id,)).fetchone()[0] == "unverified"
    requests = len(llm.requests)
    assert (await client.post(f"/api/runs/{run['id']}/resume", headers=headers)).status == 202
    done = await settle(client, headers, run["id"], until={"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert len(llm.requests) == requests + 1
    after = await thread_messages(client, headers, thread["id"])
    assert [m["role"] for m in after] == ["user", "assistant", "tool", "assistant"]
    assert after[2]["content"].startswith("unverified") and after[3]["content"] == "I could not check that."


async def test_a_free_slot_starts_the_run_in_the_transaction_that_queues_it(chat, llm):
    """With a slot free the POST's one transaction queues and starts the run (both events,
    adjacent); with the user's slot taken the next run waits queued, then runs."""
    client, headers = await chat(runs_max_per_user=1)
    llm.tokens_per_second = 20
    llm.script = lambda body: Turn("one two three four five six")
    _, first = await agent_and_thread(client, headers)
    _, second = await agent_and_thread(client, headers)
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"threads/{first['id']}"})
    await live.until("subscribed")
    a = await send(client, headers, first["id"], "hi")
    b = await send(client, headers, second["id"], "hi")
    assert a["status"] == "running" and b["status"] == "queued"
    queued, started = await live.until("event"), await live.until("event")
    assert (queued["type"], started["type"]) == ("run.queued", "run.started")
    # one transaction: run.started (one row on users/, runs/, threads/) right after run.queued, one timestamp
    assert started["seq"] == queued["seq"] + 1 and started["at"] == queued["at"]
    for run in (a, b):
        assert (await settle(client, headers, run["id"]))["status"] == "succeeded"


async def test_a_late_cancel_or_shutdown_leaves_a_finished_run_as_it_is(chat, llm, settings):
    """A cancel or a shutdown that catches a run's last transaction in flight ends it after
    that transaction: the finished run keeps its status, and nothing more is announced."""
    client, headers = await chat()
    llm.script = [Turn("Done.")]
    _, thread = await agent_and_thread(client, headers)
    run = await settle(client, headers, (await send(client, headers, thread["id"], "hi"))["id"])
    assert run["status"] == "succeeded"
    from agentstead.keys import RUNNER
    from agentstead.store import runs as run_store
    runner = client.app[RUNNER]
    stored = await runner.db.read(run_store.get, run["id"])
    with sqlite3.connect(settings.db_file) as conn:
        events_before = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    chat_runs = runner.kinds["chat"]
    await chat_runs.ending(stored, "cancelled", None)()     # the ends a cancel and a shutdown write
    await chat_runs.ending(stored, "interrupted", None)()
    with sqlite3.connect(settings.db_file) as conn:
        assert conn.execute("SELECT status FROM runs WHERE id = ?", (run["id"],)).fetchone()[0] == "succeeded"
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == events_before


async def test_a_run_launched_twice_runs_once(chat, llm):
    """A stale launch (a queue read from before the run started) does not run it again."""
    client, headers = await chat()
    llm.script = [Turn("Once."), Turn("Twice?")]
    _, thread = await agent_and_thread(client, headers)
    posted = await send(client, headers, thread["id"], "hi")
    assert (await settle(client, headers, posted["id"]))["status"] == "succeeded"
    from agentstead.keys import RUNNER
    from agentstead.store import runs as run_store
    runner = client.app[RUNNER]
    stale = dataclasses.replace(await runner.db.read(run_store.get, posted["id"]), status="queued")
    runner.launch(stale)
    assert stale.id in runner.tasks          # it was launched again (nothing queued before it)
    await asyncio.gather(*runner.tasks.values())
    assert len(llm.requests) == 1
    assert [m["content"] for m in await thread_messages(client, headers, thread["id"])] == ["hi", "Once."]


async def test_admin_sets_a_per_user_budget(chat, llm):
    client, headers = await chat()
    me = await (await client.get("/api/me", headers=headers)).json()
    _, admin = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    resp = await client.patch(f"/api/admin/users/{me['user']['id']}", json={"daily_token_budget": 1}, headers=admin)
    assert resp.status == 200
    _, thread = await agent_and_thread(client, headers)
    assert (await settle(client, headers, (await send(client, headers, thread["id"], "a"))["id"]))["status"] == "succeeded"
    second = await settle(client, headers, (await send(client, headers, thread["id"], "b"))["id"])
    assert second["error"]["code"] == "budget_exceeded"
    resp = await client.patch(f"/api/admin/users/{me['user']['id']}", json={"daily_token_budget": None}, headers=admin)
    assert resp.status == 200
    third = await settle(client, headers, (await send(client, headers, thread["id"], "c"))["id"])
    assert third["status"] == "succeeded"  # back to the global setting (unlimited)
    resp = await client.patch(f"/api/admin/users/{me['user']['id']}", json={"daily_token_budget": -1}, headers=admin)
    assert resp.status == 422


async def test_models_lists_configured_and_offered_models(chat, llm):
    client, headers = await chat()
    body = await (await client.get("/api/models", headers=headers)).json()
    provider = body["providers"][0]
    assert provider["provider"] == "local" and provider["reachable"] is True
    assert provider["configured_models"] == ["gpt-test", "gpt-other"]
    assert provider["available_models"] == ["gpt-other", "gpt-test"]
    assert {t["name"] for t in body["tools"]} == {"current_time", "calculator", "http_get", "ask_human"}
    llm.api_key = "sk-rotated"  # the provider no longer accepts our key
    body = await (await client.get("/api/models", headers=headers)).json()
    assert body["providers"][0]["reachable"] is False and body["providers"][0]["available_models"] is None


async def test_graceful_shutdown_interrupts_runs_instead_of_cancelling(chat, llm, settings):
    client, headers = await chat()
    llm.tokens_per_second = 10
    llm.script = [Turn(" ".join(["slow"] * 100))]
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "go")
    await settle(client, headers, run["id"], until={"running"})
    from agentstead.keys import RUNNER
    await client.app[RUNNER].stop()
    with sqlite3.connect(settings.db_file) as conn:
        status = conn.execute("SELECT status FROM runs WHERE id = ?", (run["id"],)).fetchone()[0]
    assert status == "interrupted"
