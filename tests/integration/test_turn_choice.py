"""Another agent or model for one turn of a thread (services/turn_choice.py), through the real
runner and the tests' LLM server: the run uses the chosen agent's instructions and the chosen
model, the thread keeps its agent, the next turn without a choice is back to the thread's, the
page of messages says who wrote each reply; refusals (another user's agent, an unknown model,
malformed choices, a turn while one is going) change nothing."""

from __future__ import annotations

import pytest

from ..support.auth import token_user
from ..support.llm_server import Turn
from .test_runs import agent_and_thread, chat, llm, send, settle, thread_messages  # noqa: F401 (fixtures)


def _recorder(llm):
    seen: list[dict] = []

    def script(body):
        seen.append(body)
        return Turn(f"answer {len(seen)} by {body['model']}")
    llm.script = script
    return seen


def _system(body: dict) -> str:
    return next((m["content"] for m in body["messages"] if m["role"] == "system"), "")


async def _post(client, headers, path: str, body: dict | None):
    return await client.post(path, json=body, headers=headers) if body is not None else \
        await client.post(path, headers=headers)


async def test_a_turn_with_another_agent_and_model_then_back_to_the_threads(chat, llm):
    client, headers = await chat()
    seen = _recorder(llm)
    agent, thread = await agent_and_thread(client, headers)
    other, _ = await agent_and_thread(client, headers, name="Pirate", instructions="Talk like a pirate.")
    base = f"/api/threads/{thread['id']}"

    resp = await client.post(base + "/messages", json={"content": "hi", "agent_id": other["id"],
                                                       "model": "gpt-other"}, headers=headers)
    assert resp.status == 202, await resp.text()
    run = await resp.json()
    assert run["agent_id"] == other["id"] and run["model"] == "gpt-other"
    assert (await settle(client, headers, run["id"]))["status"] == "succeeded"
    assert seen[-1]["model"] == "gpt-other" and _system(seen[-1]) == "Talk like a pirate."

    # the next turn without a choice: the thread's own agent and model again
    plain = await send(client, headers, thread["id"], "and you?")
    assert plain["agent_id"] == agent["id"] and plain["model"] == "gpt-test"
    await settle(client, headers, plain["id"])
    assert seen[-1]["model"] == "gpt-test" and _system(seen[-1]) == "Be brief."
    thread_now = await (await client.get(base, headers=headers)).json()
    assert thread_now["agent_id"] == agent["id"]

    # the page of messages names who wrote each reply
    by = [(m["role"], m["agent_id"], m["model"]) for m in await thread_messages(client, headers, thread["id"])]
    assert by == [("user", None, None), ("assistant", other["id"], "gpt-other"),
                  ("user", None, None), ("assistant", agent["id"], "gpt-test")]

    # regenerate with another model (a body is optional there)
    resp = await client.post(base + "/regenerate", json={"model": "gpt-other"}, headers=headers)
    assert resp.status == 202, await resp.text()
    again = await resp.json()
    assert again["agent_id"] == agent["id"] and again["model"] == "gpt-other"
    await settle(client, headers, again["id"])
    assert seen[-1]["model"] == "gpt-other" and _system(seen[-1]) == "Be brief."

    # edit and run again with the other agent
    first = (await thread_messages(client, headers, thread["id"]))[0]
    resp = await client.post(f"{base}/messages/{first['id']}/edit", json={"content": "hello", "agent_id": other["id"]},
                             headers=headers)
    assert resp.status == 202, await resp.text()
    edited = await resp.json()
    assert edited["agent_id"] == other["id"] and edited["model"] == "gpt-test"   # that agent's own model
    await settle(client, headers, edited["id"])
    assert _system(seen[-1]) == "Talk like a pirate."


@pytest.mark.parametrize("path", ["/messages", "/regenerate", "/edit"])
@pytest.mark.parametrize("choice, status, code", [
    ({"agent_id": "nope"}, 404, "agent_not_found"),
    ({"agent_id": "BOBS"}, 404, "agent_not_found"),
    ({"model": "gpt-unknown"}, 422, "validation_failed"),
    ({"model": ""}, 422, "validation_failed"),
    ({"model": 5}, 422, "validation_failed"),
    ({"agent_id": None}, 422, "validation_failed"),
    ({"agent": "x"}, 422, "validation_failed"),
])
async def test_refused_choices_change_nothing(chat, llm, path, choice, status, code):
    client, headers = await chat()
    llm.script = lambda body: Turn("ok")
    _, thread = await agent_and_thread(client, headers)
    _, bob = await token_user(client, "bob@example.org")
    bobs_agent, _ = await agent_and_thread(client, bob)
    await settle(client, headers, (await send(client, headers, thread["id"], "first"))["id"])
    before = await thread_messages(client, headers, thread["id"])
    runs_before = (await (await client.get("/api/runs", headers=headers)).json())["runs"]
    if choice.get("agent_id") == "BOBS":
        choice = {"agent_id": bobs_agent["id"]}
    base = f"/api/threads/{thread['id']}"
    target = {"/messages": base + "/messages", "/regenerate": base + "/regenerate",
              "/edit": f"{base}/messages/{before[0]['id']}/edit"}[path]
    body = dict(choice) if path == "/regenerate" else {"content": "again", **choice}
    resp = await _post(client, headers, target, body)
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == code and error["message"]
    assert await thread_messages(client, headers, thread["id"]) == before
    assert (await (await client.get("/api/runs", headers=headers)).json())["runs"] == runs_before


async def test_a_choice_while_a_run_is_going_is_refused(chat, llm):
    client, headers = await chat()
    llm.tokens_per_second = 5
    llm.script = [Turn("slow words " * 20)]
    _, thread = await agent_and_thread(client, headers)
    other, _ = await agent_and_thread(client, headers, name="Other")
    run = await send(client, headers, thread["id"], "first")
    resp = await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "x", "agent_id": other["id"]},
                             headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "run_in_progress"
    await client.post(f"/api/runs/{run['id']}/cancel", headers=headers)
    await settle(client, headers, run["id"])
    assert [m["content"] for m in await thread_messages(client, headers, thread["id"]) if m["role"] == "user"] == [
        "first"]


async def test_an_unauthenticated_choice_is_refused(chat, llm):
    client, headers = await chat()
    _, thread = await agent_and_thread(client, headers)
    resp = await client.post(f"/api/threads/{thread['id']}/messages", json={"content": "x", "model": "gpt-other"})
    assert resp.status == 401
    assert await thread_messages(client, headers, thread["id"]) == []
