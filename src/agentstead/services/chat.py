"""Agents, threads and runs: the rules. Every query is scoped by owner."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any, Callable

from ..agents.tools import REGISTRY
from ..auth.access import Principal
from ..bus import events as ev
from ..bus.bus import Bus
from ..runner.runner import Runner, start_in
from ..settings import Settings
from ..store import agents as agent_store
from ..store import runs as run_store
from ..store import threads as thread_store
from ..store.db import Database, in_thread
from ..timeutil import now_iso

# Called inside a change's transaction with its result: stores the request's Idempotency-Key
# and response (http/idempotency.py recorder).
Record = Callable[[Any, Any], None]


class ChatError(Exception):
    def __init__(self, status: int, code: str, message: str, pointer: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.pointer = status, code, message, pointer


def _post_message(conn, owner_id: str, thread_id: str, content: str, start, record: Record | None):
    """In the writer's thread (Bus.commit): the checks, the message and the run; with
    `start` (the runner reserved a slot) the run's start too (runner.start_in); with
    `record`, the request's Idempotency-Key and response (http/idempotency.py)."""
    thread = thread_store.get_owned_sync(conn, thread_id, owner_id)
    if thread is None:
        raise ChatError(404, "not_found", "no such thread")
    agent = agent_store.get_owned_sync(conn, thread.agent_id, owner_id)
    if agent is None:
        raise ChatError(409, "agent_deleted", "the thread's agent was deleted")
    latest = run_store.latest_of_thread_sync(conn, thread.id)
    if latest is not None and latest.status in run_store.ACTIVE + ("interrupted",):
        raise ChatError(409, "run_in_progress", "wait for the current run (or cancel it) before sending more")
    message = thread_store.add_message_sync(conn, thread.id, "user", content)
    run = run_store.Run(str(uuid.uuid4()), thread.id, owner_id, agent.id, agent.current.version, "queued",
                        message.id, None, None, None, 0, 0, agent.current.model, now_iso(), None, None)
    conn.execute(*run_store.create_statement(run))
    started = start_in(conn, run, *start) if start is not None else None
    if started is not None:
        run = dataclasses.replace(run, status="running", started_at=run.created_at)
    if record is not None:
        record(conn, run)
    return run, started


def _create_thread(conn, owner_id: str, agent_id: str, title: str, record: Record | None) -> thread_store.Thread:
    """In the writer's thread (Bus.commit): the agent's check and the thread."""
    if agent_store.get_owned_sync(conn, agent_id, owner_id) is None:
        raise ChatError(422, "validation_failed", "no such agent", "/agent_id")
    thread = thread_store.create_sync(conn, owner_id, agent_id, title)
    if record is not None:
        record(conn, thread)
    return thread


def _delete_thread(conn, thread_id: str) -> run_store.Run | bool:
    """In the writer's thread: the thread, unless a run of it is going (one started by a
    message sent after the delete cancelled the one before): then that run, to cancel first.
    False when the thread was gone already."""
    latest = run_store.latest_of_thread_sync(conn, thread_id)
    if latest is not None and latest.status in run_store.ACTIVE:
        return latest
    return thread_store.delete_sync(conn, thread_id)


def _thread_event(thread: thread_store.Thread, event: ev.Event) -> list[tuple[str, ev.Event]]:
    """A thread's change goes on its topic (the tabs showing it) and on its owner's
    users/{id} (the thread list in every tab)."""
    return [(f"threads/{thread.id}", event), (f"users/{thread.owner_id}", event)]


AGENT_DEFAULTS = {"instructions": "", "temperature": 0.7, "tools": (), "max_steps": 10}


class ChatService:
    def __init__(self, db: Database, bus: Bus, settings: Settings, runner: Runner):
        self.db = db
        self.bus = bus
        self.settings = settings
        self.runner = runner
        self.providers = {p["name"]: p for p in settings.llm_providers}

    # ---- agents ---------------------------------------------------------------

    def _check_model(self, provider: str | None, model: str | None) -> tuple[str, str]:
        if not self.providers:
            # Agents can be defined before a provider exists; their runs fail with provider_not_configured.
            return provider or "default", model or "default"
        name = provider or next(iter(self.providers))
        chosen = self.providers.get(name)
        if chosen is None:
            raise ChatError(422, "validation_failed", f"unknown provider {name!r}", "/provider")
        model = model or chosen["default_model"]
        if not model:
            raise ChatError(422, "validation_failed", "choose a model", "/model")
        if chosen["models"] and model not in chosen["models"]:
            raise ChatError(422, "validation_failed",
                            f"model {model!r} is not allowed for {name}; allowed: {', '.join(chosen['models'])}",
                            "/model")
        return name, model

    def _fields(self, body: dict, base: dict) -> dict:
        fields = {**base, **{k: v for k, v in body.items() if v is not None}}
        unknown = [t for t in fields["tools"] if t not in REGISTRY]
        if unknown:
            raise ChatError(422, "validation_failed", f"unknown tool {unknown[0]!r}; available: "
                            f"{', '.join(sorted(REGISTRY))}", "/tools")
        fields["provider"], fields["model"] = self._check_model(body.get("provider") or base.get("provider"),
                                                                body.get("model") or base.get("model"))
        fields["tools"] = tuple(dict.fromkeys(fields["tools"]))
        return fields

    async def create_agent(self, p: Principal, body: dict, record: Record | None = None) -> agent_store.Agent:
        fields = self._fields(body, {**AGENT_DEFAULTS, "provider": None, "model": None})
        agent_id = str(uuid.uuid4())
        async with self.db.write() as conn:
            await agent_store.create(conn, agent_id, p.user_id, fields)
            agent = await agent_store.get_owned(conn, agent_id, p.user_id)
            if record is not None:
                await in_thread(conn, record, agent)
        return agent

    async def get_agent(self, p: Principal, agent_id: str) -> agent_store.Agent:
        agent = await agent_store.get(self.db, agent_id, p.user_id)
        if agent is None:
            raise ChatError(404, "not_found", "no such agent")
        return agent

    async def update_agent(self, p: Principal, agent_id: str, body: dict) -> agent_store.Agent:
        async with self.db.write() as conn:
            agent = await agent_store.get_owned(conn, agent_id, p.user_id)
            if agent is None:
                raise ChatError(404, "not_found", "no such agent")
            base = dataclasses.asdict(agent.current)
            await agent_store.new_version(conn, agent, self._fields(body, base))
        return await self.get_agent(p, agent_id)

    async def delete_agent(self, p: Principal, agent_id: str) -> None:
        async with self.db.write() as conn:
            if await agent_store.get_owned(conn, agent_id, p.user_id) is None:
                raise ChatError(404, "not_found", "no such agent")
            await agent_store.soft_delete(conn, agent_id)

    async def list_agents(self, p: Principal, *, limit: int, before: str | None) -> list[agent_store.Agent]:
        return await agent_store.list_owned(self.db, p.user_id, limit=limit, before=before)

    # ---- threads and messages -------------------------------------------------

    async def create_thread(self, p: Principal, agent_id: str, title: str,
                            record: Record | None = None) -> thread_store.Thread:
        """The thread and its thread.created (on the owner's users/{id} only: nobody can
        follow the thread's own topic yet) in one transaction."""
        return await self.bus.commit(
            _create_thread, p.user_id, agent_id, title, record,
            events=lambda t: [(f"users/{t.owner_id}", ev.ThreadCreated(t.id, t.agent_id, t.title, t.created_at))])

    async def get_thread(self, p: Principal, thread_id: str) -> thread_store.Thread:
        thread = await thread_store.get(self.db, thread_id, p.user_id)
        if thread is None:
            raise ChatError(404, "not_found", "no such thread")
        return thread

    async def rename_thread(self, p: Principal, thread_id: str, title: str) -> thread_store.Thread:
        thread = await self.bus.commit(
            thread_store.rename_sync, thread_id, p.user_id, title,
            events=lambda t: _thread_event(t, ev.ThreadRenamed(t.id, t.title)) if t else [])
        if thread is None:
            raise ChatError(404, "not_found", "no such thread")
        return thread

    async def delete_thread(self, p: Principal, thread_id: str) -> None:
        """Cancels the thread's run if one is going, then deletes the thread with its
        thread.deleted in one transaction that checks no run has started meanwhile (so
        nothing is announced on threads/{id} after thread.deleted)."""
        thread = await self.get_thread(p, thread_id)
        for _ in range(5):
            done = await self.bus.commit(_delete_thread, thread.id,
                                         events=lambda r: _thread_event(thread, ev.ThreadDeleted(thread.id))
                                         if r is True else [])
            if isinstance(done, run_store.Run):
                await self.runner.cancel(done)
                continue
            if not done:
                raise ChatError(404, "not_found", "no such thread")   # another delete got there first
            return
        raise ChatError(409, "run_in_progress", "runs keep starting in this thread: try the delete again")

    async def post_message(self, p: Principal, thread_id: str, content: str,
                           record: Record | None = None) -> run_store.Run:
        """The user's message, a queued run and run.queued: one transaction. When the runner
        has a slot for it, the same transaction starts the run (run.started) too."""
        runner = self.runner
        start = (self.settings.daily_token_budget, runner.providers, runner.leases.lease()) \
            if runner.reserve(p.user_id) else None
        try:
            run, started = await self.bus.commit(
                _post_message, p.user_id, thread_id, content, start, record,
                events=lambda result: runner.announce(result[0], [ev.RunQueued(result[0].id, result[0].thread_id,
                                                                               result[0].agent_id)]
                                                      + ([ev.RunStarted(result[0].id, result[0].thread_id, False)]
                                                         if result[1] else [])))
        except BaseException:
            if start is not None:
                runner.unreserve(p.user_id)
            raise
        if started is not None:
            runner.launch_started(run, started)
        else:
            if start is not None:
                runner.unreserve(p.user_id)
            runner.submit(run)
        return run

    # ---- runs -------------------------------------------------------------------

    async def get_run(self, p: Principal, run_id: str) -> run_store.Run:
        run = await run_store.get(self.db, run_id)
        if run is None or run.owner_id != p.user_id:
            raise ChatError(404, "not_found", "no such run")
        return run

    async def cancel_run(self, p: Principal, run_id: str) -> run_store.Run:
        run = await self.get_run(p, run_id)
        if run.status not in run_store.ACTIVE + ("interrupted",):
            raise ChatError(409, "run_finished", f"the run is already {run.status}")
        await self.runner.cancel(run)
        if run_id in self.runner.endings.pending:
            raise ChatError(503, "database_unavailable", "the run has stopped; the database could not record it "
                            "yet and it will as soon as writes work again")
        return await self.get_run(p, run_id)

    async def resume_run(self, p: Principal, run_id: str, answer: str | dict | None) -> run_store.Run:
        """An interrupted run goes on from its checkpoint; a waiting one needs the answer: text
        for a chat run's question, {"approved": bool, "comment": str} for a workflow's approval."""
        run = await self.get_run(p, run_id)
        if run.status == "waiting_for_input":
            if run.kind == "workflow":
                answer = approval_answer(answer)
            elif answer is None:
                raise ChatError(422, "validation_failed", "answer the agent's question", "/answer")
            elif not isinstance(answer, str):
                raise ChatError(422, "validation_failed", "must be a string: the answer to the agent's question",
                                "/answer")
        elif run.status == "interrupted":
            answer = None
        else:
            raise ChatError(409, "not_resumable", f"only interrupted or waiting runs resume (this one is {run.status})")
        task = self.runner.tasks.get(run.id)
        if task is not None:
            # The task that recorded "waiting" may still be wrapping up; it ends on its own.
            try:
                async with asyncio.timeout(5):
                    await asyncio.shield(task)
            except Exception:   # TimeoutError among them
                raise ChatError(409, "not_resumable", "the run is still running") from None
        return await self.runner.resume(run, answer)


def approval_answer(answer: object) -> dict:
    """The answer to a workflow's approval step, checked field by field."""
    if not isinstance(answer, dict):
        raise ChatError(422, "validation_failed", 'answer the approval: {"approved": true|false, "comment": "…"}',
                        "/answer")
    unknown = sorted(set(answer) - {"approved", "comment"})
    if unknown:
        raise ChatError(422, "validation_failed", "is not a known field", f"/answer/{unknown[0]}")
    if not isinstance(answer.get("approved"), bool):
        raise ChatError(422, "validation_failed", "must be true or false", "/answer/approved")
    comment = answer.get("comment")
    if comment is None:
        comment = ""
    if not isinstance(comment, str) or len(comment) > 20_000:
        raise ChatError(422, "validation_failed", "must be a string of at most 20000 characters", "/answer/comment")
    return {"approved": answer["approved"], "comment": comment}


async def can_read_run(db: Database, p: Principal, run_id: str) -> bool:
    run = await run_store.get(db, run_id)
    return run is not None and run.owner_id == p.user_id


async def can_read_thread(db: Database, p: Principal, thread_id: str) -> bool:
    return await thread_store.get(db, thread_id, p.user_id) is not None
