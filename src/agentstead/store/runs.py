"""SQL for runs, their tool calls, token usage and budgets."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import aiosqlite

from ..timeutil import now_iso
from .db import Database, Statement, fetch_all, fetch_one

ACTIVE = ("queued", "running", "waiting_for_input")
FINISHED = ("succeeded", "failed", "cancelled")


@dataclasses.dataclass(frozen=True)
class Run:
    """A chat run (thread, agent, input message, model) or a workflow run
    (workflow version, input, output, pinned agent versions); `kind` says which."""
    id: str
    thread_id: str | None
    owner_id: str
    agent_id: str | None
    agent_version: int | None
    status: str
    input_message_id: str | None
    error_code: str | None
    error_message: str | None
    waiting_prompt: str | None
    prompt_tokens: int
    completion_tokens: int
    model: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    kind: str = "chat"
    workflow_id: str | None = None
    workflow_version: int | None = None
    input: dict | None = None
    output: dict | None = None
    pins: dict | None = None


_R = ("id, thread_id, owner_id, agent_id, agent_version, status, input_message_id, error_code, error_message, "
      "waiting_prompt, prompt_tokens, completion_tokens, model, created_at, started_at, finished_at, "
      "kind, workflow_id, workflow_version, input, output, pins")
_JSON = (19, 20, 21)  # input, output, pins


def _run(row) -> Run:
    values = list(row)
    for i in _JSON:
        values[i] = json.loads(values[i]) if values[i] is not None else None
    return Run(*values)


def create_statement(run: Run) -> Statement:
    values = list(dataclasses.astuple(run))
    for i in _JSON:
        values[i] = json.dumps(values[i]) if values[i] is not None else None
    return f"INSERT INTO runs ({_R}) VALUES ({', '.join('?' * 22)})", tuple(values)


def latest_of_thread_sync(conn: sqlite3.Connection, thread_id: str) -> Run | None:
    row = conn.execute(f"SELECT {_R} FROM runs WHERE thread_id = ? ORDER BY created_at DESC LIMIT 1",
                       (thread_id,)).fetchone()
    return _run(row) if row else None


async def get_in(conn: aiosqlite.Connection, run_id: str) -> Run | None:
    row = await fetch_one(conn, f"SELECT {_R} FROM runs WHERE id = ?", (run_id,))
    return _run(row) if row else None


async def get(db: Database, run_id: str) -> Run | None:
    rows = await db.small(f"SELECT {_R} FROM runs WHERE id = ?", (run_id,))
    return _run(rows[0]) if rows else None


async def list_owned(db: Database, owner_id: str, *, status: str | None, agent_id: str | None,
                     thread_id: str | None, limit: int, before: str | None, kind: str | None = None,
                     workflow_id: str | None = None) -> list[Run]:
    sql, args = f"SELECT {_R} FROM runs WHERE owner_id = ?", [owner_id]
    for clause, value in (("status = ?", status), ("agent_id = ?", agent_id), ("thread_id = ?", thread_id),
                          ("kind = ?", kind), ("workflow_id = ?", workflow_id), ("created_at < ?", before)):
        if value is not None:
            sql += f" AND {clause}"
            args.append(value)
    async with db.read() as conn:
        rows = await fetch_all(conn, sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit))
    return [_run(r) for r in rows]


QUEUE_PAGE = 500   # queued runs the scheduler reads at a time


async def queued(db: Database, limit: int = QUEUE_PAGE) -> list[Run]:
    async with db.read() as conn:
        rows = await fetch_all(conn, f"SELECT {_R} FROM runs WHERE status = 'queued' ORDER BY created_at LIMIT ?",
                               (limit,))
    return [_run(r) for r in rows]


Lease = tuple[str, str]   # (instance id, lease_until): who runs a running run, and until when at least


def status_statement(run_id: str, status: str, *, error: tuple[str, str] | None = None,
                     waiting_prompt: str | None = None, started: bool = False, finished: bool = False,
                     lease: Lease | None = None) -> Statement:
    """A status change; `lease` (given when the run starts running here) names this process
    and the time until which it vouches for the run's task."""
    now = now_iso()
    return ("UPDATE runs SET status = ?, error_code = ?, error_message = ?, waiting_prompt = ?, "
            "started_at = CASE WHEN ? THEN coalesce(started_at, ?) ELSE started_at END, "
            "finished_at = CASE WHEN ? THEN ? ELSE finished_at END, "
            "owner_instance = coalesce(?, owner_instance), lease_until = coalesce(?, lease_until) WHERE id = ?",
            (status, error[0] if error else None, error[1] if error else None, waiting_prompt,
             int(started), now, int(finished), now, lease[0] if lease else None, lease[1] if lease else None,
             run_id))


def renew_leases_sync(conn: sqlite3.Connection, run_ids: list[str], lease: Lease) -> None:
    """The runs this process has a task (or an unwritten ending) for: still vouched for."""
    for i in range(0, len(run_ids), 500):
        chunk = run_ids[i:i + 500]
        conn.execute(f"UPDATE runs SET owner_instance = ?, lease_until = ? WHERE status = 'running' "
                     f"AND id IN ({','.join('?' * len(chunk))})", (*lease, *chunk))


def unleased_sync(conn: sqlite3.Connection, now: str, limit: int = 100) -> list[Run]:
    """Running rows nobody vouches for any more (their lease ran out, or they never had one)."""
    rows = conn.execute(f"SELECT {_R} FROM runs WHERE status = 'running' AND (lease_until IS NULL OR lease_until < ?) "
                        "ORDER BY created_at LIMIT ?", (now, limit)).fetchall()
    return [_run(r) for r in rows]


INTERRUPTED = ("interrupted", "the server stopped while this run was running; resume it")
ORPHANED = ("interrupted", "the run's task stopped without finishing it (its lease ran out); resume it")


def interrupt_unleased_sync(conn: sqlite3.Connection, run_id: str, now: str) -> bool:
    """In one transaction: a running row whose lease (still) ran out becomes interrupted, as
    at startup; its tool call in flight unverified, its running steps interrupted. False
    when it finished, or its lease was renewed, meanwhile."""
    changed = conn.execute("UPDATE runs SET status = 'interrupted', error_code = ?, error_message = ? "
                           "WHERE id = ? AND status = 'running' AND (lease_until IS NULL OR lease_until < ?)",
                           (*ORPHANED, run_id, now)).rowcount
    if not changed:
        return False
    conn.execute("UPDATE tool_calls SET status = 'unverified' WHERE run_id = ? AND status = 'started'", (run_id,))
    conn.execute("UPDATE run_steps SET status = 'interrupted', finished_at = ? "
                 "WHERE run_id = ? AND status IN ('running', 'retrying')", (now, run_id))
    return True


async def set_status(conn: aiosqlite.Connection, run_id: str, status: str, *, error: tuple[str, str] | None = None,
                     waiting_prompt: str | None = None, started: bool = False, finished: bool = False,
                     lease: Lease | None = None) -> None:
    await conn.execute(*status_statement(run_id, status, error=error, waiting_prompt=waiting_prompt,
                                         started=started, finished=finished, lease=lease))


def usage_statements(run: Run, prompt: int, completion: int, *, model: str | None = None) -> list[tuple[str, tuple]]:
    """Tokens of one model call: on the run and on the owner's daily usage under `model`
    (default: the run's model; a workflow run's agent steps name their agent's)."""
    return [
        ("UPDATE runs SET prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ? WHERE id = ?",
         (prompt, completion, run.id)),
        ("INSERT INTO usage_daily (user_id, day, model, prompt_tokens, completion_tokens, runs) "
         "VALUES (?, ?, ?, ?, ?, 0) "
         "ON CONFLICT (user_id, day, model) DO UPDATE SET prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
         "completion_tokens = completion_tokens + excluded.completion_tokens",
         (run.owner_id, now_iso()[:10], model or run.model, prompt, completion)),
    ]


async def add_usage(conn: aiosqlite.Connection, run: Run, prompt: int, completion: int, *,
                    model: str | None = None) -> None:
    for sql, args in usage_statements(run, prompt, completion, model=model):
        await conn.execute(sql, args)


# Daily usage counts a workflow run under this model name (its tokens go under the agents' models).
WORKFLOW_USAGE_MODEL = "workflow"


def count_run_statement(run: Run) -> Statement:
    return ("INSERT INTO usage_daily (user_id, day, model, runs) VALUES (?, ?, ?, 1) "
            "ON CONFLICT (user_id, day, model) DO UPDATE SET runs = runs + 1",
            (run.owner_id, now_iso()[:10], run.model or WORKFLOW_USAGE_MODEL))


async def count_run(conn: aiosqlite.Connection, run: Run) -> None:
    await conn.execute(*count_run_statement(run))


def tokens_today_sync(conn: sqlite3.Connection, user_id: str) -> int:
    # Indexed by the primary key's prefix (user_id, day): a handful of rows.
    return conn.execute("SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM usage_daily "
                        "WHERE user_id = ? AND day = ?", (user_id, now_iso()[:10])).fetchone()[0]


def budget_of_sync(conn: sqlite3.Connection, user_id: str) -> int | None:
    row = conn.execute("SELECT daily_tokens FROM user_budgets WHERE user_id = ?", (user_id,)).fetchone()
    return row[0] if row else None


def budget_sync(conn: sqlite3.Connection, user_id: str, default: int) -> tuple[int, int]:
    """(the user's daily token budget: their own, else `default`; 0 means none,
    tokens they used today)."""
    own = budget_of_sync(conn, user_id)
    budget = default if own is None else own
    return budget, (tokens_today_sync(conn, user_id) if budget else 0)


def tokens_of_sync(conn: sqlite3.Connection, run_id: str) -> tuple[int, int]:
    """(prompt, completion) tokens of a run so far."""
    row = conn.execute("SELECT prompt_tokens, completion_tokens FROM runs WHERE id = ?", (run_id,)).fetchone()
    return (row[0], row[1]) if row else (0, 0)


async def usage(db: Database, user_id: str | None, *, since: str) -> list[dict]:
    sql = ("SELECT user_id, day, model, prompt_tokens, completion_tokens, runs FROM usage_daily WHERE day >= ?")
    args: list = [since]
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    async with db.read() as conn:
        rows = await fetch_all(conn, sql + " ORDER BY day, user_id, model", tuple(args))
    return [dict(zip(("user_id", "day", "model", "prompt_tokens", "completion_tokens", "runs"), r)) for r in rows]


async def interrupt_running(conn: aiosqlite.Connection) -> list[str]:
    """At startup: runs the rows say were running did not finish; they become interrupted."""
    rows = await fetch_all(conn, "SELECT id FROM runs WHERE status = 'running'")
    ids = [r[0] for r in rows]
    await conn.execute("UPDATE runs SET status = 'interrupted', error_code = 'interrupted', "
                       "error_message = 'the server stopped while this run was running; resume it' "
                       "WHERE status = 'running'")
    await conn.execute("UPDATE tool_calls SET status = 'unverified' WHERE status = 'started'")
    await conn.execute("UPDATE run_steps SET status = 'interrupted', finished_at = ? "
                       "WHERE status IN ('running', 'retrying')", (now_iso(),))
    return ids


async def set_output(conn: aiosqlite.Connection, run_id: str, output: dict) -> None:
    await conn.execute("UPDATE runs SET output = ? WHERE id = ?", (json.dumps(output, default=str), run_id))


# ---- steps of workflow runs ---------------------------------------------------

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


_S = ("run_id, step, kind, status, attempt, started_at, finished_at, output, error, prompt_tokens, "
      "completion_tokens")


async def step_started(conn: aiosqlite.Connection, run_id: str, step: str, kind: str, attempt: int,
                       started_at: str, status: str = "running") -> None:
    await conn.execute(
        f"INSERT INTO run_steps ({_S}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, 0, 0) "
        "ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status, attempt = excluded.attempt, "
        "started_at = excluded.started_at, finished_at = NULL, error = NULL",
        (run_id, step, kind, status, attempt, started_at))


def step_finished_statements(run_id: str, step: str, kind: str, status: str, *, attempt: int = 1,
                             started_at: str, finished_at: str, output: object = None, error: str | None = None,
                             prompt_tokens: int = 0, completion_tokens: int = 0) -> list[tuple[str, tuple]]:
    """The outcome of a step (an upsert: branch, approval and group steps have no start row)."""
    return [(
        f"INSERT INTO run_steps ({_S}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status, attempt = excluded.attempt, "
        "finished_at = excluded.finished_at, output = excluded.output, error = excluded.error, "
        "prompt_tokens = run_steps.prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = run_steps.completion_tokens + excluded.completion_tokens",
        (run_id, step, kind, status, attempt, started_at, finished_at,
         json.dumps(output, default=str) if output is not None else None, error, prompt_tokens, completion_tokens))]


async def step_finished(conn: aiosqlite.Connection, run_id: str, step: str, kind: str, status: str,
                        **fields) -> None:
    for sql, args in step_finished_statements(run_id, step, kind, status, **fields):
        await conn.execute(sql, args)


def steps_ended_statement(run_id: str, status: str) -> Statement:
    """Steps still running or waiting when the run ended (cancelled, interrupted, failed elsewhere)."""
    return ("UPDATE run_steps SET status = ?, finished_at = ? WHERE run_id = ? "
            "AND status IN ('running', 'retrying', 'waiting')", (status, now_iso(), run_id))


async def steps_ended(conn: aiosqlite.Connection, run_id: str, status: str) -> None:
    await conn.execute(*steps_ended_statement(run_id, status))


async def waiting_steps(db: Database) -> list[tuple[str, str, str]]:
    """(run id, step, started_at) of every approval waiting in a waiting workflow run."""
    async with db.read() as conn:
        rows = await fetch_all(conn, "SELECT s.run_id, s.step, s.started_at FROM run_steps s JOIN runs r "
                                     "ON r.id = s.run_id WHERE r.status = 'waiting_for_input' AND s.status = 'waiting'")
    return [tuple(r) for r in rows]


async def step_status_in(conn: aiosqlite.Connection, run_id: str, step: str) -> tuple[str, str] | None:
    """(status, started_at) of one step of a run, inside the caller's transaction."""
    row = await fetch_one(conn, "SELECT status, started_at FROM run_steps WHERE run_id = ? AND step = ?",
                          (run_id, step))
    return (row[0], row[1]) if row else None


async def steps(db: Database, run_id: str) -> list[RunStep]:
    rows = await db.small(f"SELECT {_S} FROM run_steps WHERE run_id = ? ORDER BY started_at, step", (run_id,))
    out = []
    for row in rows:
        values = list(row)
        values[7] = json.loads(values[7]) if values[7] is not None else None
        out.append(RunStep(*values))
    return out


# ---- tool calls ------------------------------------------------------------

def tool_started_statement(call_id: str, run_id: str, name: str, arguments: dict) -> Statement:
    return ("INSERT OR REPLACE INTO tool_calls (id, run_id, name, arguments, status, result, started_at, "
            "finished_at) VALUES (?, ?, ?, ?, 'started', NULL, ?, NULL)",
            (call_id, run_id, name, json.dumps(arguments), now_iso()))


def tool_finished_statement(call_id: str, result: str, ok: bool) -> Statement:
    return ("UPDATE tool_calls SET status = ?, result = ?, finished_at = ? WHERE id = ?",
            ("finished" if ok else "failed", result, now_iso(), call_id))


def open_call_sync(conn: sqlite3.Connection, run_id: str, tool_name: str) -> tuple[str, dict] | None:
    """(id, arguments) of the run's `tool_name` call that has no result yet (a waiting
    run's question), from the run's last stored reply that called tools; or None."""
    row = conn.execute("SELECT tool_calls FROM messages WHERE run_id = ? AND role = 'assistant' "
                       "AND tool_calls IS NOT NULL ORDER BY seq DESC LIMIT 1", (run_id,)).fetchone()
    for call in json.loads(row[0]) if row else []:
        if call.get("name") == tool_name and conn.execute(
                "SELECT 1 FROM tool_calls WHERE id = ? AND status != 'started'", (call["id"],)).fetchone() is None:
            return call["id"], call.get("args") or {}
    return None


async def tool_call(db: Database, call_id: str) -> dict | None:
    async with db.read() as conn:
        row = await fetch_one(conn, "SELECT id, run_id, name, arguments, status, result FROM tool_calls WHERE id = ?",
                              (call_id,))
    return dict(zip(("id", "run_id", "name", "arguments", "status", "result"), row)) if row else None


# ---- checkpoints -------------------------------------------------------------

def drop_checkpoints_statements(graph_thread: str) -> list[Statement]:
    """A finished run needs no checkpoint: resume is only for unfinished runs."""
    return [("DELETE FROM checkpoints WHERE thread_id = ?", (graph_thread,)),
            ("DELETE FROM writes WHERE thread_id = ?", (graph_thread,))]


async def drop_checkpoints(conn: aiosqlite.Connection, graph_thread: str) -> None:
    for statement in drop_checkpoints_statements(graph_thread):
        await conn.execute(*statement)


async def set_budget(db: Database, user_id: str, daily_tokens: int | None) -> None:
    """A per-user daily token budget; None falls back to the global setting."""
    async with db.write() as conn:
        if daily_tokens is None:
            await conn.execute("DELETE FROM user_budgets WHERE user_id = ?", (user_id,))
        else:
            await conn.execute("INSERT INTO user_budgets (user_id, daily_tokens) VALUES (?, ?) ON CONFLICT (user_id) "
                               "DO UPDATE SET daily_tokens = excluded.daily_tokens", (user_id, daily_tokens))
