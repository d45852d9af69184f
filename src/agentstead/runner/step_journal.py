"""A workflow run's step rows, written in LangGraph's own checkpoint transactions.

A step's outcome is durable when LangGraph stores the step's writes (its output)
for the checkpoint. Writing the step's row in a transaction of its own would cost
one more commit (an fsync) per step; instead the row goes into the journal and
is written in the same transaction as those writes: the row and the output it
describes commit together, and the step.* events are published after that
commit ("written first, then published"). Anything still in the journal when the
run changes status is written in that status change's transaction.

The saver is the store's LangGraph saver (store/checkpoints.py: one round trip per
write on the single writer), one per workflow run.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from typing import Any, Callable, Sequence

import aiosqlite

from ..bus import events as ev
from ..store import runs as run_store
from ..store.checkpoints import Saver
from ..store.db import Database
from ..timeutil import now_iso

Statement = tuple[str, tuple]
MAX_EVENT_OUTPUT = 16 * 1024


def event_output(output: Any) -> tuple[Any, bool]:
    """A step's output for an event: as it is, or cut to MAX_EVENT_OUTPUT characters of text."""
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    if len(text) <= MAX_EVENT_OUTPUT:
        return output, False
    return text[:MAX_EVENT_OUTPUT], True


@dataclasses.dataclass
class Finished:
    """What the executor knows of a work step that returned, until its row is written."""
    kind: str
    attempt: int
    started_at: str
    duration_ms: float
    usage: tuple[int, int, str | None]


class Journal:
    """Rows waiting for the run's next transaction, and the events to publish after it."""

    def __init__(self, run: run_store.Run, publish: Callable[[ev.Event], None], kinds: dict[str, str]):
        self.run = run
        self.publish = publish
        self.kinds = kinds                      # step name -> kind
        self.finished: dict[str, Finished] = {}  # work steps that returned, by name
        self.started_at: dict[str, tuple[str, float]] = {}  # other steps: when they began
        self.statements: list[Statement] = []
        self.events: list[ev.Event] = []

    def outputs_written(self, writes: Sequence[tuple[str, Any]]) -> None:
        """LangGraph is about to store a task's writes: the steps whose outputs they hold succeeded."""
        for channel, value in writes:
            if channel != "outputs" or not isinstance(value, dict):
                continue
            for name, output in value.items():
                kind = self.kinds.get(name)
                if kind is not None:
                    self._succeeded(name, kind, output)

    def _succeeded(self, name: str, kind: str, output: Any) -> None:
        run, now = self.run, now_iso()
        done = self.finished.pop(name, None)
        if done is None:  # branch, approval, parallel group: no work of their own
            started_at, began = self.started_at.pop(name, (now, time.perf_counter()))
            done = Finished(kind, 1, started_at, round((time.perf_counter() - began) * 1000, 3), (0, 0, None))
        prompt, completion, model = done.usage
        self.statements += run_store.step_finished_statements(
            run.id, name, kind, "succeeded", attempt=done.attempt, started_at=done.started_at, finished_at=now,
            output=output, prompt_tokens=prompt, completion_tokens=completion)
        if prompt or completion:
            self.statements += run_store.usage_statements(run, prompt, completion, model=model)
        shown, truncated = event_output(output)
        self.events.append(ev.StepSucceeded(run.id, name, kind, done.attempt, done.started_at, now,
                                            done.duration_ms, shown, truncated))

    def take(self) -> tuple[list[Statement], list[ev.Event]]:
        taken = (self.statements, self.events)
        self.statements, self.events = [], []
        return taken

    async def write(self, conn: aiosqlite.Connection) -> tuple[list[Statement], list[ev.Event]]:
        """The waiting rows, in the caller's (async) transaction; publish with `committed` after it."""
        taken = self.take()
        try:
            for sql, args in taken[0]:
                await conn.execute(sql, args)
        except BaseException:
            self.rolled_back(taken)
            raise
        return taken

    def committed(self, taken: tuple[list[Statement], list[ev.Event]]) -> None:
        for event in taken[1]:
            self.publish(event)

    def rolled_back(self, taken: tuple[list[Statement], list[ev.Event]]) -> None:
        self.statements[:0], self.events[:0] = taken


def _writes_and_rows(conn: sqlite3.Connection, sql: str, rows: list[tuple], statements: list[Statement]) -> None:
    conn.executemany(sql, rows)
    for statement, args in statements:
        conn.execute(statement, args)


class StepSaver(Saver):
    """The store's saver for workflow runs: a task's writes that carry step outputs commit
    in one transaction with those steps' rows (the run's journal, by LangGraph thread id)."""

    def __init__(self, db: Database):
        super().__init__(db)
        self.journals: dict[str, Journal] = {}

    async def aput_writes(self, config, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        journal = self.journals.get(str(config["configurable"]["thread_id"]))
        if journal is None:
            await super().aput_writes(config, writes, task_id, task_path)
            return
        journal.outputs_written(writes)
        sql, rows = self.writes_statement(config, writes, task_id, task_path)
        taken = journal.take()
        try:
            await self.db.transact(_writes_and_rows, sql, rows, taken[0])
        except BaseException:
            journal.rolled_back(taken)
            raise
        journal.committed(taken)
