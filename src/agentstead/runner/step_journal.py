"""A workflow run's step rows, written in LangGraph's own checkpoint transactions.

A step's outcome is durable when LangGraph stores the step's writes (its output)
for the checkpoint. Writing the step's row in a transaction of its own would cost
one more commit (an fsync) per step; instead the row goes into the journal and
is written in the same transaction as those writes: the row and the output it
describes commit together, and the step.* events are published after that
commit, in the same transaction. Anything still in the journal when the run
changes status is written in that status change's transaction.

The saver is the store's LangGraph saver (store/checkpoints.py: one write per
call through the one door).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import sqlite3
import time
from typing import Any, Callable, Sequence

from ..bus import events as ev
from ..store import steps as step_store
from ..store import usage as usage_store
from ..store.checkpoints import Saver
from ..store.db import Database
from ..store.runs import Run
from ..timeutil import now_iso
from .kinds import announce

WriteStep = Callable[[sqlite3.Connection], None]
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
    """Rows waiting for the run's next transaction, and the events that announce them."""

    def __init__(self, run: Run, kinds: dict[str, str]):
        self.run = run
        self.kinds = kinds                      # step name -> kind
        self.finished: dict[str, Finished] = {}  # work steps that returned, by name
        self.started_at: dict[str, tuple[str, float]] = {}  # other steps: when they began
        self.steps: list[WriteStep] = []
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
        self.steps.append(functools.partial(
            step_store.finished, run_id=run.id, step=name, kind=kind, status="succeeded", attempt=done.attempt,
            started_at=done.started_at, finished_at=now, output=output, prompt_tokens=prompt,
            completion_tokens=completion))
        if prompt or completion:
            self.steps.append(functools.partial(usage_store.add, run=run, prompt=prompt, completion=completion,
                                                model=model))
        shown, truncated = event_output(output)
        self.events.append(ev.StepSucceeded(run.id, name, kind, done.attempt, done.started_at, now,
                                            done.duration_ms, shown, truncated))

    def take(self) -> tuple[list[WriteStep], list[ev.Event]]:
        """What waits, for the caller's transaction: put it back with `rolled_back` if that fails."""
        taken = (self.steps, self.events)
        self.steps, self.events = [], []
        return taken

    def rolled_back(self, taken: tuple[list[WriteStep], list[ev.Event]]) -> None:
        self.steps[:0], self.events[:0] = taken

    async def settle(self, taken: tuple[list[WriteStep], list[ev.Event]], written: asyncio.Future) -> Any:
        """Await the write that carries `taken`: if it failed, what it carried waits here again
        for the next one. A cancelled caller still learns how the write ended."""
        try:
            return await asyncio.shield(written)
        except asyncio.CancelledError:
            try:
                await written
            except Exception:
                self.rolled_back(taken)
            raise
        except BaseException:
            self.rolled_back(taken)
            raise


def write_all(conn: sqlite3.Connection, steps: list[WriteStep]) -> None:
    for step in steps:
        step(conn)


class StepSaver(Saver):
    """The store's saver for workflow runs: a task's writes that carry step outputs commit
    in one transaction with those steps' rows and events (the run's journal, by LangGraph
    thread id)."""

    def __init__(self, db: Database):
        super().__init__(db)
        self.journals: dict[str, Journal] = {}

    async def aput_writes(self, config, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        journal = self.journals.get(str(config["configurable"]["thread_id"]))
        if journal is None:
            await super().aput_writes(config, writes, task_id, task_path)
            return
        journal.outputs_written(writes)
        taken = journal.take()
        await journal.settle(taken, self.db.write(
            write_all, [self._writes_step(config, writes, task_id, task_path), *taken[0]],
            events=announce(journal.run, taken[1])))
