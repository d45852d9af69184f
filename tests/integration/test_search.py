"""GET /api/search: full-text search over the caller's own threads and messages (FTS5 kept by
triggers in the messages' own transactions): matches highlighted as segments, prefixes and
accents, renames and deletes reflected at once, other users' threads never found, bad
queries refused with the one error shape. Every response is checked against openapi.yaml."""

from __future__ import annotations

import sqlite3

from ..support.auth import token_user
from ..support.llm_server import Turn
from .test_runs import agent_and_thread, chat, llm, send, settle  # noqa: F401 (fixtures)


async def search(client, headers, q: str, **params) -> dict:
    resp = await client.get("/api/search", params={"q": q, **params}, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def marked(segments: list[dict]) -> str:
    return "".join(f"[{s['text']}]" if s["match"] else s["text"] for s in segments)


async def test_finds_own_messages_and_titles_with_highlights(chat, llm):
    client, headers = await chat()
    llm.script = [Turn("Paris is the capital of France; the café serves croissants.")]
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "What is the capital of France?")
    assert (await settle(client, headers, run["id"]))["status"] == "succeeded"

    found = await search(client, headers, "capital")
    assert sorted(m["role"] for m in found["messages"]) == ["assistant", "user"]
    reply = next(m for m in found["messages"] if m["role"] == "assistant")
    assert reply["thread_id"] == thread["id"] and reply["thread_title"] == "Test"
    assert "[capital]" in marked(reply["snippet"])
    assert "".join(s["text"] for s in reply["snippet"]) == \
        "Paris is the capital of France; the café serves croissants."

    # every word required, the last one a prefix, accents ignored
    assert len((await search(client, headers, "capital fran"))["messages"]) == 2
    assert (await search(client, headers, "capit france"))["messages"] == []     # only the last word is a prefix
    assert [marked(m["snippet"]) for m in (await search(client, headers, "cafe croissant"))["messages"]] == \
        ["Paris is the capital of France; the [café] serves [croissants]."]
    assert (await search(client, headers, "capital nowhere"))["messages"] == []
    # FTS5 syntax in q is just text
    assert len((await search(client, headers, 'capital AND "France" OR NEAR(x) -paris *'))["messages"]) == 0
    assert len((await search(client, headers, 'capital: "France"'))["messages"]) == 2

    # titles: found, and a rename is searchable at once (the trigger's transaction is the rename's)
    assert [marked(t["highlight"]) for t in (await search(client, headers, "test"))["threads"]] == ["[Test]"]
    resp = await client.patch(f"/api/threads/{thread['id']}", json={"title": "Geography homework"}, headers=headers)
    assert resp.status == 200
    assert (await search(client, headers, "test"))["threads"] == []
    assert [t["id"] for t in (await search(client, headers, "homework"))["threads"]] == [thread["id"]]


async def test_other_users_threads_are_never_found(chat, llm):
    client, headers = await chat()
    llm.script = [Turn("The secret word is zebra.")]
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "Tell me the zebra secret")
    await settle(client, headers, run["id"])
    assert len((await search(client, headers, "zebra"))["messages"]) == 2
    _, bob = await token_user(client, "bob@example.org")
    assert await search(client, bob, "zebra") == {"threads": [], "messages": []}
    assert await search(client, bob, "Test") == {"threads": [], "messages": []}


async def test_a_deleted_thread_leaves_the_index_in_the_same_transaction(chat, llm):
    client, headers = await chat()
    llm.script = [Turn("Remember the walrus.")]
    _, thread = await agent_and_thread(client, headers)
    run = await send(client, headers, thread["id"], "walrus please")
    await settle(client, headers, run["id"])
    assert len((await search(client, headers, "walrus"))["messages"]) == 2
    resp = await client.delete(f"/api/threads/{thread['id']}", headers=headers)
    assert resp.status == 204
    assert (await search(client, headers, "walrus"))["messages"] == []
    # the index holds nothing of the cascaded rows (an external-content index would return them
    # as stale rowids otherwise): its integrity check passes
    from agentstead.keys import DB
    path = client.app[DB].path
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
        conn.execute("INSERT INTO threads_fts (threads_fts, rank) VALUES ('integrity-check', 1)")


async def test_bad_queries_are_refused_and_unauthenticated_callers_too(chat, llm):
    client, headers = await chat()
    for params in ({}, {"q": ""}, {"q": "   "}, {"q": "!!! ---"}, {"q": "x" * 201}, {"q": "ok", "limit": "0"},
                   {"q": "ok", "limit": "51"}, {"q": "ok", "limit": "ten"}):
        resp = await client.get("/api/search", params=params, headers=headers)
        assert resp.status == 400, (params, await resp.text())
        body = await resp.json()
        assert body["error"]["code"] == "bad_request" and body["error"]["request_id"]
    resp = await client.get("/api/search", params={"q": "anything"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"]
