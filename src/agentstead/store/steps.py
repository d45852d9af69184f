"""SQL for the steps of workflow runs (run_steps)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from ..timeutil import now_iso
from .connection import inline


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


_COLUMNS = ", ".join(f.name for f in dataclasses.fields(RunStep))


def started(conn: sqlite3.Connection, run_id: str, step: str, kind: str, attempt: int, started_at: str,
            status: str = "running", input: object = None) -> None:
    conn.execute(
        f"INSERT INTO run_steps ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, 0, 0, ?) "
        "ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status, attempt = excluded.attempt, "
        "started_at = excluded.started_at, finished_at = NULL, error = NULL, input = excluded.input",
        (run_id, step, kind, status, attempt, started_at, _json(input)))


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


def _json(value: object) -> str | None:
    return json.dumps(value, default=str) if value is not None else None


def ended(conn: sqlite3.Connection, run_id: str, status: str) -> None:
    """Steps still running or waiting when the run ended (cancelled, interrupted, failed elsewhere)."""
    conn.execute("UPDATE run_steps SET status = ?, finished_at = ? WHERE run_id = ? "
                 "AND status IN ('running', 'retrying', 'waiting')", (status, now_iso(), run_id))


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


@inline
def of_run(conn: sqlite3.Connection, run_id: str) -> list[RunStep]:
    out = []
    for row in conn.execute(f"SELECT {_COLUMNS} FROM run_steps WHERE run_id = ? ORDER BY started_at, step",
                            (run_id,)):
        values = dict(zip(row.keys(), row))
        for column in ("output", "input"):
            values[column] = json.loads(values[column]) if values[column] is not None else None
        out.append(RunStep(**values))
    return out
