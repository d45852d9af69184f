"""Threads and their messages: the rules. Every query is scoped by owner; a message
starts a run (through the runner's one door, `submit`)."""

from __future__ import annotations

import sqlite3
import uuid

from ..auth.access import Principal
from ..bus import events as ev
from ..errors import Refused, found, invalid, not_found
from ..runner.runner import Runner
from ..store import agents as agent_store
from ..store import runs as run_store
from ..store import threads as thread_store
from ..store.db import Database
from ..store.runs import Run
from ..store.threads import Message, Thread
from ..timeutil import now_iso
from .agents import Record
from .turn_choice import NONE, UNSET, Choice, choose, resolve


def _create(conn: sqlite3.Connection, owner_id: str, agent_id: str, title: str, record: Record | None) -> Thread:
    """The agent's check and the thread."""
    if agent_store.get_owned(conn, agent_id, owner_id) is None:
        raise invalid("/agent_id", "no such agent")
    thread = thread_store.create(conn, owner_id, agent_id, title)
    if record is not None:
        record(conn, thread)
    return thread


def _delete(conn: sqlite3.Connection, thread_id: str) -> Run | bool:
    """The thread, unless a run of it is going (one started by a message sent after the delete
    cancelled the one before): then that run, to cancel first. False when the thread was
    gone already."""
    latest = run_store.latest_of_thread(conn, thread_id)
    if latest is not None and latest.status in run_store.ACTIVE:
        return latest
    return thread_store.delete(conn, thread_id)


def open_for_turn(conn: sqlite3.Connection, owner_id: str, thread_id: str) -> tuple[Thread, agent_store.Agent]:
    """The thread and its agent when a new turn may start: owned, agent there, no run going."""
    thread = thread_store.get_owned(conn, thread_id, owner_id)
    if thread is None:
        raise not_found("thread")
    agent = agent_store.get_owned(conn, thread.agent_id, owner_id)
    if agent is None:
        raise Refused(409, "agent_deleted", "the thread's agent was deleted")
    latest = run_store.latest_of_thread(conn, thread.id)
    if latest is not None and latest.status in run_store.ACTIVE + ("interrupted",):
        raise Refused(409, "run_in_progress", "wait for the current run (or cancel it) before sending more")
    return thread, agent


def queue_turn(conn: sqlite3.Connection, owner_id: str, thread: Thread, agent: agent_store.Agent,
               message: Message, model: str | None = None) -> Run:
    """The queued run answering a user message (with `model` instead of the agent's, when given:
    services/turn_choice.py checked it)."""
    run = Run(id=str(uuid.uuid4()), owner_id=owner_id, status="queued", created_at=now_iso(), kind="chat",
              thread_id=thread.id, agent_id=agent.id, agent_version=agent.current.version,
              input_message_id=message.id, model=model or agent.current.model)
    run_store.create(conn, run)
    return run


DEFAULT_TITLE = "New conversation"
TITLE_WORDS = 60      # characters of the first message that name an untitled thread


def title_from(content: str) -> str:
    """A thread's automatic title: its first message's first line, cut at a word near 60 characters."""
    line = " ".join(content.split("\n", 1)[0].split())
    if len(line) <= TITLE_WORDS:
        return line
    cut = line[:TITLE_WORDS].rsplit(" ", 1)[0] or line[:TITLE_WORDS]
    return cut + "…"


def turn(conn: sqlite3.Connection, owner_id: str, thread_id: str, content: str, news: list,
         choice: Choice, providers: dict) -> Run:
    """The checks, the user's message and its queued run (by the turn's agent and model:
    turn_choice.py), for /api and the protocol adapters (services/compat_*.py) alike. An untitled
    thread's first message names it, in the same transaction: its thread.renamed goes into `news`
    ((topic, event) pairs to announce). `providers` is required: without it a thread's chosen model
    could not be checked and would be refused as unoffered."""
    thread, agent = open_for_turn(conn, owner_id, thread_id)
    agent, model = resolve(conn, owner_id, agent, choice, providers, thread.model)
    if thread.title == DEFAULT_TITLE and thread_store.last_of_role(conn, thread.id, "user") is None:
        renamed = thread_store.rename(conn, thread.id, owner_id, title_from(content) or DEFAULT_TITLE)
        if renamed is not None:
            news.extend(_announced(renamed, ev.ThreadRenamed(renamed.id, renamed.title)))
    return queue_turn(conn, owner_id, thread, agent, thread_store.add_message(conn, thread.id, "user", content),
                      model)


def _update(conn: sqlite3.Connection, owner_id: str, thread_id: str, title: str | None, agent_id, model,
            providers: dict, news: list) -> Thread:
    thread = choose(conn, owner_id, thread_id, agent_id, model, providers, news)
    if title is not None:
        thread = thread_store.rename(conn, thread.id, owner_id, title)
        news.append(ev.ThreadRenamed(thread.id, thread.title))
    return thread


def created(thread: Thread) -> list[tuple[str, ev.Event]]:
    """A new thread's thread.created: on its owner's users/{id} only (nobody can follow the
    thread's own topic yet)."""
    return [(f"users/{thread.owner_id}", ev.ThreadCreated(thread.id, thread.agent_id, thread.title, thread.created_at))]


def _page(conn: sqlite3.Connection, thread_id: str, after: int | None, before: int | None,
          limit: int) -> tuple[list[Message], dict]:
    rows = thread_store.page(conn, thread_id, after_seq=after, before_seq=before, limit=limit)
    return rows, run_store.answered_by(conn, [m.run_id for m in rows if m.run_id])


def _announced(thread: Thread, event: ev.Event) -> list[tuple[str, ev.Event]]:
    """A thread's change goes on its topic (the tabs showing it) and on its owner's
    users/{id} (the thread list in every tab)."""
    return [(f"threads/{thread.id}", event), (f"users/{thread.owner_id}", event)]


class ThreadService:
    def __init__(self, db: Database, runner: Runner):
        self.db = db
        self.runner = runner

    async def create(self, p: Principal, agent_id: str, title: str, record: Record | None = None) -> Thread:
        """The thread and its thread.created in one transaction."""
        return await self.db.write(
            _create, p.user_id, agent_id, title, record, events=created)

    async def get(self, p: Principal, thread_id: str) -> Thread:
        thread = found(await self.db.read(thread_store.get_owned, thread_id, p.user_id), "thread")
        return thread

    async def list(self, p: Principal, *, limit: int, before: str | None) -> list[Thread]:
        return await self.db.read(thread_store.list_owned, p.user_id, limit=limit, before=before)

    async def messages(self, p: Principal, thread_id: str, *, after: int | None, before: int | None,
                       limit: int) -> tuple[Thread, list[Message], dict]:
        """The thread, a page of its messages, oldest first (store/threads.py: page), and who
        wrote the page's replies ({run id: (agent id, model)}: a turn may choose another)."""
        thread = await self.get(p, thread_id)
        rows, by = await self.db.read(_page, thread.id, after, before, limit)
        return thread, rows, by

    async def update(self, p: Principal, thread_id: str, title: str | None = None, agent_id=UNSET,
                     model=UNSET) -> Thread:
        """A new title (thread.renamed) and/or who answers its turns from now on (thread.updated:
        services/turn_choice.py: choose), checked and written in one transaction."""
        news: list = []
        providers = self.runner.tools.providers
        thread = await self.db.write(_update, p.user_id, thread_id, title, agent_id, model, providers, news,
                                     events=lambda t: [pair for e in news for pair in _announced(t, e)])
        return thread

    async def delete(self, p: Principal, thread_id: str) -> None:
        """Cancels the thread's run if one is going, then deletes the thread with its
        thread.deleted in one transaction that checks no run has started meanwhile (so
        nothing is announced on threads/{id} after thread.deleted)."""
        thread = await self.get(p, thread_id)
        for _ in range(5):
            done = await self.db.write(_delete, thread.id, events=lambda r: _announced(
                thread, ev.ThreadDeleted(thread.id)) if r is True else [])
            if isinstance(done, Run):
                await self.runner.cancel(done)
                continue
            if not done:
                raise not_found("thread")   # another delete got there first
            return
        raise Refused(409, "run_in_progress", "runs keep starting in this thread: try the delete again")

    async def post(self, p: Principal, thread_id: str, content: str, record: Record | None = None,
                   choice: Choice = NONE) -> Run:
        """The user's message, a queued run and run.queued: one transaction (the runner starts
        the run in it too when it has a slot: runner.submit). An untitled thread ("New
        conversation") takes its first message's first line as its title (thread.renamed).
        `choice`: another agent or model for this turn (turn_choice.py)."""
        news: list = []
        providers = self.runner.tools.providers
        return await self.runner.submit(
            p.user_id, lambda conn: turn(conn, p.user_id, thread_id, content, news, choice, providers), record,
            before=lambda run: news)

    async def readable(self, p: Principal, thread_id: str) -> bool:
        """Who may follow threads/{id}: its owner (bus/topics.py)."""
        return await self.db.read(thread_store.get_owned, thread_id, p.user_id) is not None
