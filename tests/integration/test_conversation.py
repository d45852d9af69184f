"""Conversation controls through the runner: regenerate the last answer and edit a message
and run again. Both truncate the thread in the transaction that queues the new run
(messages.removed, then run.queued, on threads/{id}); the model then sees exactly the
thread as shown; search follows; bad requests change nothing."""

from __future__ import annotations

import asyncio

from ..support.auth import token_user
from ..support.live import Live
from ..support.llm_server import Turn
from .test_runs import agent_and_thread, chat, llm, send, settle, thread_messages  # noqa: F401 (fixtures)


def texts(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]


async def test_regenerate_replaces_the_last_answer(chat, llm):
    client, headers = await chat()
    seen: list[list[dict]] = []

    def script(body):
        seen.append(body["messages"])
        return Turn(f"answer {len(seen)}")
    llm.script = script
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "first question")
    await settle(client, headers, run["id"])
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"threads/{thread['id']}"})
    await live.until("subscribed")

    resp = await client.post(f"/api/threads/{thread['id']}/regenerate", headers=headers)
    assert resp.status == 202, await resp.text()
    again = await resp.json()
    assert (await settle(client, headers, again["id"]))["status"] == "succeeded"
    assert texts(await thread_messages(client, headers, thread["id"])) == [("user", "first question"),
                                                                           ("assistant", "answer 2")]
    # the model saw the thread without the removed answer
    assert [(m["role"], m["content"]) for m in seen[1] if m["role"] != "system"] == [("user", "first question")]
    first = await live.until("event")
    assert first["type"] == "messages.removed"
    assert first["data"]["run_id"] == again["id"] and first["data"]["from_seq"] > 0
    assert (await live.until("event"))["type"] == "run.queued"
    # search no longer finds the removed answer
    found = await (await client.get("/api/search", params={"q": "answer"}, headers=headers)).json()
    assert ["".join(s["text"] for s in m["snippet"]) for m in found["messages"]] == ["answer 2"]


async def test_edit_truncates_from_the_message_and_runs_again(chat, llm):
    client, headers = await chat()
    seen: list[list[dict]] = []

    def script(body):
        seen.append(body["messages"])
        return Turn(f"answer {len(seen)}")
    llm.script = script
    _, thread = await agent_and_thread(client, headers)
    for q in ("one", "two", "three"):
        await settle(client, headers, (await send(client, headers, thread["id"], q))["id"])
    messages = await thread_messages(client, headers, thread["id"])
    second = next(m for m in messages if m["content"] == "two")
    resp = await client.post(f"/api/threads/{thread['id']}/messages/{second['id']}/edit", json={"content": "TWO!"},
                             headers=headers)
    assert resp.status == 202, await resp.text()
    await settle(client, headers, (await resp.json())["id"])
    assert texts(await thread_messages(client, headers, thread["id"])) == [
        ("user", "one"), ("assistant", "answer 1"), ("user", "TWO!"), ("assistant", "answer 4")]
    assert [(m["role"], m["content"]) for m in seen[-1] if m["role"] != "system"] == [
        ("user", "one"), ("assistant", "answer 1"), ("user", "TWO!")]


async def test_refusals_change_nothing(chat, llm):
    client, headers = await chat()
    llm.script = [Turn("ok")]
    _, thread = await agent_and_thread(client, headers)
    base = f"/api/threads/{thread['id']}"
    resp = await client.post(base + "/regenerate", headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "nothing_to_regenerate"
    await settle(client, headers, (await send(client, headers, thread["id"], "hello"))["id"])
    before = await thread_messages(client, headers, thread["id"])
    reply = next(m for m in before if m["role"] == "assistant")
    cases = [
        (base + f"/messages/{reply['id']}/edit", {"content": "x"}, 422),           # not a user message
        (base + "/messages/nope/edit", {"content": "x"}, 404),
        (base + f"/messages/{before[0]['id']}/edit", {"content": "   "}, 422),
        (base + f"/messages/{before[0]['id']}/edit", {"content": "x", "extra": 1}, 422),
        ("/api/threads/nope/regenerate", None, 404),
    ]
    for path, body, status in cases:
        resp = await client.post(path, json=body, headers=headers)
        assert resp.status == status, (path, body, await resp.text())
        assert (await resp.json())["error"]["request_id"]
    _, bob = await token_user(client, "bob@example.org")
    assert (await client.post(base + "/regenerate", headers=bob)).status == 404
    assert (await client.post(base + f"/messages/{before[0]['id']}/edit", json={"content": "x"},
                              headers=bob)).status == 404
    assert (await client.post(base + "/regenerate")).status == 401
    assert await thread_messages(client, headers, thread["id"]) == before

    # while a run is going: 409, nothing removed
    llm.tokens_per_second = 5
    llm.script = [Turn("slow words " * 20)]
    run = await send(client, headers, thread["id"], "again")
    await asyncio.sleep(0.1)
    resp = await client.post(base + "/regenerate", headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "run_in_progress"
    await client.post(f"/api/runs/{run['id']}/cancel", headers=headers)
    await settle(client, headers, run["id"])
    assert texts(await thread_messages(client, headers, thread["id"]))[:2] == texts(before)


async def test_an_untitled_thread_is_named_by_its_first_message(chat, llm):
    client, headers = await chat()
    llm.script = [Turn("ok"), Turn("ok")]
    agent, titled = await agent_and_thread(client, headers)
    resp = await client.post("/api/threads", json={"agent_id": agent["id"]}, headers=headers)
    thread = await resp.json()
    assert thread["title"] == "New conversation"
    me = (await (await client.get("/api/me", headers=headers)).json())["user"]["id"]
    live = Live(await client.raw.ws_connect("/ws", headers=headers))
    await live.send({"op": "subscribe", "topic": f"users/{me}"})
    await live.until("subscribed")
    first = "How do I   plan a week-long trip through the Alps by train with two children?\nDetails follow."
    await settle(client, headers, (await send(client, headers, thread["id"], first))["id"])
    renamed = await live.until("event")
    assert renamed["type"] == "thread.renamed"
    title = "How do I plan a week-long trip through the Alps by train…"
    assert renamed["data"] == {"thread_id": thread["id"], "title": title}
    assert (await (await client.get(f"/api/threads/{thread['id']}", headers=headers)).json())["title"] == title
    # only the first message names it, and a title given by someone is kept
    await settle(client, headers, (await send(client, headers, thread["id"], "second"))["id"])
    await settle(client, headers, (await send(client, headers, titled["id"], "named already"))["id"])
    threads = {t["id"]: t["title"] for t in (await (await client.get("/api/threads", headers=headers)).json())["threads"]}
    assert threads == {thread["id"]: title, titled["id"]: "Test"}
