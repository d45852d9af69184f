"""The LangGraph API's rules (http/compat_langgraph*.py), over the same services.

An assistant is an agent (its id, its current version). A LangGraph thread may be
created before it knows its assistant: its row (store/compat.py: lg_threads) keeps
its metadata, and its first run creates Agentstead's thread, which belongs to that
agent, under the same id. A thread's runs are the runs of that thread; a run's input
is one user message, or `Command(resume=…)`, the answer to the agent's `ask_human`
question. Every check and every change goes through the doors the REST API uses
(ThreadService, RunService, the runner's submit/cancel/resume).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid

from ..auth.access import Principal
from ..bus.bus import Bus
from ..errors import Refused, not_found
from ..runner.runner import Runner
from ..store import agents as agent_store
from ..store import compat as compat_store
from ..store import runs as run_store
from ..store import threads as thread_store
from ..store.agents import Agent
from ..store.runs import Run
from ..store.threads import Message
from .compat_openai import Started
from .runs import RunService
from .threads import DEFAULT_TITLE, ThreadService, created, title_from, turn
from .turn_choice import NONE

STATE_MESSAGES = 1000   # the newest messages a thread's state holds
BUSY = ("queued", "running")


@dataclasses.dataclass(frozen=True)
class View:
    """A thread as LangGraph sees it: its messages and its newest run."""
    id: str
    created_at: str
    updated_at: str
    metadata: dict
    agent_id: str | None
    messages: list[Message]
    latest: Run | None

    @property
    def status(self) -> str:
        status = self.latest.status if self.latest is not None else None
        if status in BUSY:
            return "busy"
        # interrupted (a restart cut the run off): resume it with POST /api/runs/{id}/resume
        return {"waiting_for_input": "interrupted", "failed": "error", "interrupted": "error"}.get(status, "idle")


def _view(conn: sqlite3.Connection, thread_id: str, owner_id: str) -> View | None:
    thread = thread_store.get_owned(conn, thread_id, owner_id)
    lg = compat_store.lg_get(conn, thread_id, owner_id)
    if thread is None:
        return View(lg.id, lg.created_at, lg.updated_at, lg.metadata, None, [], None) if lg else None
    metadata = {**(lg.metadata if lg else {}), "graph_id": "agent", "assistant_id": thread.agent_id}
    return View(thread.id, thread.created_at, thread.updated_at, metadata, thread.agent_id,
                thread_store.newest(conn, thread.id, limit=STATE_MESSAGES)[::-1],
                run_store.latest_of_thread(conn, thread.id))


def _views(conn: sqlite3.Connection, owner_id: str, limit: int) -> list[View]:
    """The owner's threads, newest first: Agentstead's and the LangGraph ones no run has bound yet."""
    ids = [t.id for t in thread_store.list_owned(conn, owner_id, limit=limit, before=None)]
    ids += [t.id for t in compat_store.lg_list(conn, owner_id, limit) if t.id not in ids]
    views = [_view(conn, i, owner_id) for i in ids]
    return sorted((v for v in views if v is not None), key=lambda v: v.updated_at, reverse=True)


def _agent(conn: sqlite3.Connection, owner_id: str, assistant_id: str) -> Agent:
    """The agent an assistant id names: its id, or its name when no other agent of the
    caller's has that name (as LangGraph takes a graph's name for its assistant)."""
    agent = agent_store.get_owned(conn, assistant_id, owner_id)
    if agent is None:
        named = compat_store.agents_named(conn, owner_id, assistant_id)
        if len(named) != 1:
            raise Refused(404, "not_found", f"no such assistant {assistant_id!r}" + (
                " (several agents have that name: use an id)" if named else ""))
        agent = named[0]
    return agent


def _turn(conn: sqlite3.Connection, owner_id: str, thread_id: str, assistant_id: str, text: str,
          create: bool, news: list, providers: dict) -> Run:
    """The user's message and its run; the thread is bound to the assistant by its first run
    (and created first, with if_not_exists=create; a thread switched to another agent with
    PATCH /api/threads/{id} is bound to that one), answered with the thread's model from now on;
    titled as /api titles a thread (its first message); `news` gets its thread.created."""
    agent = _agent(conn, owner_id, assistant_id)
    thread = thread_store.get_owned(conn, thread_id, owner_id)
    if thread is None:
        if compat_store.lg_get(conn, thread_id, owner_id) is None:
            if not create or compat_store.lg_create(conn, thread_id, owner_id, {}) is None:
                raise not_found("thread")
        thread = thread_store.create(conn, owner_id, agent.id, title_from(text) or DEFAULT_TITLE, thread_id=thread_id)
        news.extend(created(thread))
    elif thread.agent_id != agent.id:
        raise Refused(409, "assistant_mismatch", f"this thread belongs to assistant {thread.agent_id}; an "
                      "Agentstead thread keeps one agent (start a new thread for another)")
    return turn(conn, owner_id, thread.id, text, news, NONE, providers)


class LangGraphService:
    def __init__(self, bus: Bus, runner: Runner, threads: ThreadService, runs: RunService):
        self.db, self.bus, self.runner, self.threads, self.runs = bus.db, bus, runner, threads, runs

    async def assistants(self, p: Principal, *, name: str | None, limit: int, offset: int) -> list[Agent]:
        agents = await self.db.read(agent_store.list_owned, p.user_id, limit=offset + limit, before=None)
        return [a for a in agents if name is None or name.lower() in a.current.name.lower()][offset:]

    async def assistant(self, p: Principal, assistant_id: str) -> Agent:
        return await self.db.read(_agent, p.user_id, assistant_id)

    async def create_thread(self, p: Principal, thread_id: str | None, metadata: dict, if_exists: str) -> View:
        tid = thread_id or str(uuid.uuid4())
        if await self.db.write(compat_store.lg_create, tid, p.user_id, metadata) is None:
            if if_exists != "do_nothing":
                raise Refused(409, "conflict", f"thread {tid} already exists")
        return await self.thread(p, tid)

    async def thread(self, p: Principal, thread_id: str) -> View:
        view = await self.db.read(_view, thread_id, p.user_id)
        if view is None:
            raise not_found("thread")
        return view

    async def search(self, p: Principal, *, metadata: dict, status: str | None, limit: int,
                     offset: int) -> list[View]:
        views = await self.db.read(_views, p.user_id, 1000)
        chosen = [v for v in views if all(v.metadata.get(k) == value for k, value in metadata.items())
                  and (status is None or v.status == status)]
        return chosen[offset:offset + limit]

    async def update_thread(self, p: Principal, thread_id: str, metadata: dict) -> View:
        view = await self.thread(p, thread_id)
        if await self.db.read(compat_store.lg_get, thread_id, p.user_id) is None:
            await self.db.write(compat_store.lg_create_bound, thread_id, p.user_id)
        lg = await self.db.read(compat_store.lg_get, thread_id, p.user_id)
        await self.db.write(compat_store.lg_update, thread_id, p.user_id, {**lg.metadata, **metadata})
        return await self.thread(p, view.id)

    async def delete_thread(self, p: Principal, thread_id: str) -> None:
        view = await self.thread(p, thread_id)
        if view.agent_id is not None:
            await self.threads.delete(p, thread_id)   # its LangGraph row goes with it (a trigger)
        elif not await self.db.write(compat_store.lg_delete, thread_id, p.user_id):
            raise not_found("thread")

    async def start(self, p: Principal, thread_id: str | None, assistant_id: str, *, text: str | None,
                    resume: str | None, strategy: str, if_not_exists: str) -> Started:
        """The run of a new message (after the multitask strategy has had its say), or the
        waiting run resumed with the answer."""
        tid = thread_id or str(uuid.uuid4())
        create = thread_id is None or if_not_exists == "create"
        view = await self.db.read(_view, tid, p.user_id)
        if view is None and not create:
            raise not_found("thread")
        latest = view.latest if view is not None else None
        after = await self.bus.head()
        if resume is not None:
            if latest is None or latest.status != "waiting_for_input":
                raise Refused(409, "not_resumable", "nothing to resume: the thread's run is not waiting for an answer")
            if latest.agent_id != (await self.assistant(p, assistant_id)).id:
                raise Refused(409, "assistant_mismatch", f"this thread belongs to assistant {latest.agent_id}")
            return Started(await self.runner.resume(latest, resume), after)
        if latest is not None and latest.status in run_store.ACTIVE + ("interrupted",):
            if strategy == "interrupt":
                await self.runs.cancel(p, latest.id)
            elif strategy == "enqueue":
                raise Refused(409, "run_in_progress", "multitask_strategy enqueue is honoured on an idle thread only: "
                              "Agentstead runs one turn of a thread at a time and queues none behind it")
            else:
                raise Refused(409, "run_in_progress", "the thread has a run going (or waiting for an answer): wait, "
                              "cancel it, resume it with Command(resume=…), or use multitask_strategy interrupt")
        news: list = []
        providers = self.runner.tools.providers
        run = await self.runner.submit(p.user_id, lambda conn: _turn(conn, p.user_id, tid, assistant_id, text, create,
                                                                     news, providers), before=lambda run: news)
        return Started(run, after)

    async def run(self, p: Principal, thread_id: str, run_id: str) -> Run:
        run = await self.runs.get(p, run_id)
        if run.thread_id != thread_id:
            raise not_found("run")
        return run

    async def list_runs(self, p: Principal, thread_id: str, *, limit: int, offset: int, status: str | None) -> list[Run]:
        await self.thread(p, thread_id)
        rows = await self.runs.list(p, limit=min(offset + limit, 200), thread_id=thread_id, status=status)
        return rows[offset:]

    async def cancel(self, p: Principal, thread_id: str, run_id: str) -> Run:
        run = await self.run(p, thread_id, run_id)
        if run.status in run_store.FINISHED:
            return run
        return await self.runs.cancel(p, run.id)
