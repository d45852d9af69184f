"""SQL for the steps of workflow runs (run_steps)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from ..timeutil import now_iso
from .connection import inline

ATTEMPTS_KEPT = 20   # a step's attempts kept (the latest ones): retries and resumes cannot grow a run without end


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One attempt of a step, numbered in the order it started (across retries and resumes)."""
    attempt: int
    status: str
    started_at: str
    finished_at: str | None
    input: object
    output: object
    error: str | None
    prompt_tokens: int
    completion_tokens: int


@dataclasses.dataclass(frozen=True)
class RunStep:
    run_id: str
    step: str
    kind: str
    status: str
    attempt: int
    started_at: str
    finished_at: str | None
    output: object
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    input: object = None  # what the step was given (rendered input, tool arguments, approval prompt)
    attempts: tuple[Attempt, ...] = ()   # the last ATTEMPTS_KEPT attempts, oldest first


_COLUMNS = ", ".join(f.name for f in dataclasses.fields(RunStep) if f.name != "attempts")
_ATTEMPT_COLUMNS = ("n AS attempt, status, started_at, finished_at, input, output, error, prompt_tokens, "
                    "completion_tokens")


def started(conn: sqlite3.Connection, run_id: str, step: str, kind: str, attempt: int, started_at: str,
            status: str = "running", input: object = None) -> None:
    conn.execute(
        f"INSERT INTO run_steps ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, 0, 0, ?) "
        "ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status, attempt = excluded.attempt, "
        "started_at = excluded.started_at, finished_at = NULL, error = NULL, input = excluded.input",
        (run_id, step, kind, status, attempt, started_at, _json(input)))
    _new_attempt(conn, run_id, step, status, started_at, input=_json(input))


def _new_attempt(conn: sqlite3.Connection, run_id: str, step: str, status: str, started_at: str,
                 finished_at: str | None = None, input: str | None = None, output: str | None = None,
                 error: str | None = None, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
    """A new attempt, numbered after the step's last; the oldest beyond ATTEMPTS_KEPT go."""
    n = conn.execute("INSERT INTO run_step_attempts (run_id, step, n, status, started_at, finished_at, input, "
                     "output, error, prompt_tokens, completion_tokens) "
                     "SELECT ?, ?, COALESCE(MAX(n), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ? FROM run_step_attempts "
                     "WHERE run_id = ? AND step = ? RETURNING n",
                     (run_id, step, status, started_at, finished_at, input, output, error, prompt_tokens,
                      completion_tokens, run_id, step)).fetchone()[0]
    if n > ATTEMPTS_KEPT:
        conn.execute("DELETE FROM run_step_attempts WHERE run_id = ? AND step = ? AND n <= ?",
                     (run_id, step, n - ATTEMPTS_KEPT))


def finished(conn: sqlite3.Connection, run_id: str, step: str, kind: str, status: str, *, attempt: int = 1,
             started_at: str, finished_at: str, output: object = None, error: str | None = None,
             prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
    """The outcome of a step (an upsert: branch, approval and group steps have no start row)."""
    conn.execute(
        f"INSERT INTO run_steps ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) "
        "ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status, attempt = excluded.attempt, "
        "finished_at = excluded.finished_at, output = excluded.output, error = excluded.error, "
        "prompt_tokens = run_steps.prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = run_steps.completion_tokens + excluded.completion_tokens",
        (run_id, step, kind, status, attempt, started_at, finished_at,
         _json(output), error, prompt_tokens, completion_tokens))
    # the attempt's own outcome: a retried attempt failed (the step is 'retrying' until the next starts)
    outcome = "failed" if status == "retrying" else status
    closed = conn.execute(
        "UPDATE run_step_attempts SET status = ?, finished_at = ?, output = ?, error = ?, prompt_tokens = ?, "
        "completion_tokens = ? WHERE run_id = ? AND step = ? AND finished_at IS NULL "
        "AND n = (SELECT MAX(n) FROM run_step_attempts WHERE run_id = ? AND step = ?)",
        (outcome, finished_at, _json(output), error, prompt_tokens, completion_tokens, run_id, step, run_id, step))
    if closed.rowcount == 0:   # a step with no start of its own (a branch): one attempt, begun and ended
        _new_attempt(conn, run_id, step, outcome, started_at, finished_at, output=_json(output), error=error,
                     prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def _json(value: object) -> str | None:
    return json.dumps(value, default=str) if value is not None else None


def ended(conn: sqlite3.Connection, run_id: str, status: str) -> None:
    """Steps still running or waiting when the run ended (cancelled, interrupted, failed elsewhere)."""
    now = now_iso()
    conn.execute("UPDATE run_steps SET status = ?, finished_at = ? WHERE run_id = ? "
                 "AND status IN ('running', 'retrying', 'waiting')", (status, now, run_id))
    conn.execute("UPDATE run_step_attempts SET status = ?, finished_at = ? WHERE run_id = ? "
                 "AND finished_at IS NULL", (status, now, run_id))


def waiting(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(run id, step, started_at) of every approval waiting in a waiting workflow run."""
    return [tuple(r) for r in conn.execute(
        "SELECT s.run_id, s.step, s.started_at FROM run_steps s JOIN runs r "
        "ON r.id = s.run_id WHERE r.status = 'waiting_for_input' AND s.status = 'waiting'")]


def status_of(conn: sqlite3.Connection, run_id: str, step: str) -> tuple[str, str] | None:
    """(status, started_at) of one step of a run."""
    row = conn.execute("SELECT status, started_at FROM run_steps WHERE run_id = ? AND step = ?",
                       (run_id, step)).fetchone()
    return (row[0], row[1]) if row else None


def _values(row: sqlite3.Row) -> dict:
    values = dict(zip(row.keys(), row))
    for column in ("output", "input"):
        values[column] = json.loads(values[column]) if values[column] is not None else None
    return values


@inline
def of_run(conn: sqlite3.Connection, run_id: str) -> list[RunStep]:
    """A run's steps in the order they started, each with its kept attempts (oldest first)."""
    attempts: dict[str, list[Attempt]] = {}
    for row in conn.execute(f"SELECT step, {_ATTEMPT_COLUMNS} FROM run_step_attempts WHERE run_id = ? "
                            "ORDER BY step, n", (run_id,)):
        values = _values(row)
        attempts.setdefault(values.pop("step"), []).append(Attempt(**values))
    return [RunStep(**_values(row), attempts=tuple(attempts.get(row["step"], ())))
            for row in conn.execute(f"SELECT {_COLUMNS} FROM run_steps WHERE run_id = ? ORDER BY started_at, step",
                                    (run_id,))]
