"""Conversation controls: regenerate the last answer, edit a sent message and run again.

Both TRUNCATE the thread rather than branch it: the messages after the point of change are
deleted in the same transaction that queues the new run (with `messages.removed` announced
before `run.queued`). Why not branches: a thread here is one line everywhere it is used (the
model's context is the newest messages before the run's input, by seq; the transcript, the
event log's replay, search and the LangGraph journal of a resumed run all read it as a line),
so a branch would need a tree in each of them, and a hidden branch could still leak into a
later turn's context. Truncating keeps one rule true: what the page shows is what the model
sees. The runs that wrote the removed answers stay (GET /api/runs), with their token usage."""

from __future__ import annotations

import sqlite3

from ..auth.access import Principal
from ..bus import events as ev
from ..errors import Refused, invalid, not_found
from ..runner.runner import Runner
from ..store import threads as thread_store
from ..store.runs import Run
from .agents import Record
from .threads import open_for_turn, queue_turn
from .turn_choice import NONE, Choice, resolve


def _regenerate(conn: sqlite3.Connection, owner_id: str, thread_id: str, removed: dict, choice: Choice,
                providers: dict) -> Run:
    """Everything after the last user message goes; a new run answers that message (by the
    turn's agent and model: turn_choice.py)."""
    thread, agent = open_for_turn(conn, owner_id, thread_id)
    agent, model = resolve(conn, owner_id, agent, choice, providers, thread.model)
    last = thread_store.last_of_role(conn, thread.id, "user")
    if last is None:
        raise Refused(409, "nothing_to_regenerate", "the thread has no message to answer")
    removed["from_seq"] = last.seq + 1
    thread_store.remove_from(conn, thread.id, last.seq + 1)
    return queue_turn(conn, owner_id, thread, agent, last, model)


def _edit(conn: sqlite3.Connection, owner_id: str, thread_id: str, message_id: str, content: str,
          removed: dict, choice: Choice, providers: dict) -> Run:
    """The edited message and everything after it go; the new text is sent in its place."""
    thread, agent = open_for_turn(conn, owner_id, thread_id)
    agent, model = resolve(conn, owner_id, agent, choice, providers, thread.model)
    old = thread_store.message_in(conn, thread.id, message_id)
    if old is None:
        raise not_found("message")
    if old.role != "user":
        raise invalid("/message_id", "only your own messages can be edited")
    removed["from_seq"] = old.seq
    thread_store.remove_from(conn, thread.id, old.seq)
    return queue_turn(conn, owner_id, thread, agent, thread_store.add_message(conn, thread.id, "user", content),
                      model)


class ConversationService:
    def __init__(self, runner: Runner):
        self.runner = runner

    async def _submit(self, p: Principal, create, removed: dict, record: Record | None) -> Run:
        def before(run: Run) -> list:
            return [((f"threads/{run.thread_id}",), ev.MessagesRemoved(run.id, run.thread_id, removed["from_seq"]))]
        return await self.runner.submit(p.user_id, create, record, before=before)

    async def regenerate(self, p: Principal, thread_id: str, record: Record | None = None,
                         choice: Choice = NONE) -> Run:
        """The last answer again: a new run on the last user message, the old answer removed."""
        removed: dict = {}
        providers = self.runner.tools.providers
        return await self._submit(p, lambda conn: _regenerate(conn, p.user_id, thread_id, removed, choice, providers),
                                  removed, record)

    async def edit(self, p: Principal, thread_id: str, message_id: str, content: str,
                   record: Record | None = None, choice: Choice = NONE) -> Run:
        """A sent message replaced by `content` and run again from there (later messages removed)."""
        removed: dict = {}
        providers = self.runner.tools.providers
        return await self._submit(p, lambda conn: _edit(conn, p.user_id, thread_id, message_id, content, removed,
                                                        choice, providers), removed, record)
