"""Runs of every kind, as their owners see them: read, cancel, resume; and token usage.
Every query is scoped by owner; changes go through the runner's doors."""

from __future__ import annotations

import datetime as dt

from ..auth.access import Principal
from ..errors import Refused, invalid, not_found
from ..runner.runner import Runner
from ..store import runs as run_store
from ..store import steps as step_store
from ..store import usage as usage_store
from ..store.db import Database
from ..store.runs import Run
from ..store.steps import RunStep

STATUSES = run_store.ACTIVE + run_store.FINISHED + ("interrupted",)


def approval_answer(answer: object) -> dict:
    """The answer to a workflow's approval step, checked field by field."""
    if not isinstance(answer, dict):
        raise invalid("/answer", 'answer the approval: {"approved": true|false, "comment": "…"}')
    unknown = sorted(set(answer) - {"approved", "comment"})
    if unknown:
        raise invalid(f"/answer/{unknown[0]}", "is not a known field")
    if not isinstance(answer.get("approved"), bool):
        raise invalid("/answer/approved", "must be true or false")
    comment = answer.get("comment")
    if comment is None:
        comment = ""
    if not isinstance(comment, str) or len(comment) > 20_000:
        raise invalid("/answer/comment", "must be a string of at most 20000 characters")
    return {"approved": answer["approved"], "comment": comment}


def _since(days: int) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days - 1)).strftime("%Y-%m-%d")


class RunService:
    def __init__(self, db: Database, runner: Runner):
        self.db = db
        self.runner = runner

    async def get(self, p: Principal, run_id: str) -> Run:
        run = await self.db.read(run_store.get_owned, run_id, p.user_id)
        if run is None:
            raise not_found("run")
        return run

    async def detail(self, p: Principal, run_id: str) -> tuple[Run, list[RunStep]]:
        """A run and (a workflow run's) steps."""
        run = await self.get(p, run_id)
        return run, (await self.db.read(step_store.of_run, run.id) if run.kind == "workflow" else [])

    async def list(self, p: Principal, *, limit: int, before: str | None = None, status: str | None = None,
                   kind: str | None = None, **filters: str | None) -> list[Run]:
        """Newest first; `filters`: agent_id, thread_id, workflow_id."""
        if status is not None and status not in STATUSES:
            raise Refused(400, "bad_request", "unknown status filter")
        if kind is not None and kind not in ("chat", "workflow"):
            raise Refused(400, "bad_request", "unknown kind filter; use chat or workflow")
        return await self.db.read(run_store.list_owned, p.user_id, limit=limit, before=before, status=status,
                                  kind=kind, **filters)

    async def cancel(self, p: Principal, run_id: str) -> Run:
        return await self.runner.cancel(await self.get(p, run_id))

    async def resume(self, p: Principal, run_id: str, answer: str | dict | None) -> Run:
        """An interrupted run goes on from where it was; a waiting one needs the answer: text
        for a chat run's question, {"approved": bool, "comment": str} for a workflow's approval."""
        run = await self.get(p, run_id)
        if run.status == "waiting_for_input":
            if run.kind == "workflow":
                answer = approval_answer(answer)
            elif answer is None:
                raise invalid("/answer", "answer the agent's question")
            elif not isinstance(answer, str):
                raise invalid("/answer", "must be a string: the answer to the agent's question")
        else:
            answer = None
        return await self.runner.resume(run, answer)

    async def usage(self, p: Principal | None, *, days: int) -> list[dict]:
        """Tokens and runs by day and model over the last `days`: one user's, or (None) everyone's."""
        rows = await self.db.read(usage_store.by_day, p.user_id if p is not None else None, since=_since(days))
        if p is not None:
            for row in rows:
                row.pop("user_id")
        return rows

    async def readable(self, p: Principal, run_id: str) -> bool:
        """Who may follow runs/{id}: its owner (bus/topics.py)."""
        return await self.db.read(run_store.get_owned, run_id, p.user_id) is not None
