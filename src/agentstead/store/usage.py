"""SQL for token usage (per run and per user and day) and daily budgets."""

from __future__ import annotations

import sqlite3

from ..timeutil import now_iso
from .runs import Run

# Daily usage counts a workflow run under this model name (its tokens go under the agents' models).
WORKFLOW_USAGE_MODEL = "workflow"


def add(conn: sqlite3.Connection, run: Run, prompt: int, completion: int, *, model: str | None = None) -> None:
    """Tokens of one model call: on the run and on the owner's daily usage under `model`
    (default: the run's model; a workflow run's agent steps name their agent's)."""
    conn.execute("UPDATE runs SET prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ? "
                 "WHERE id = ?", (prompt, completion, run.id))
    conn.execute("INSERT INTO usage_daily (user_id, day, model, prompt_tokens, completion_tokens, runs) "
                 "VALUES (?, ?, ?, ?, ?, 0) "
                 "ON CONFLICT (user_id, day, model) DO UPDATE SET "
                 "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
                 "completion_tokens = completion_tokens + excluded.completion_tokens",
                 (run.owner_id, now_iso()[:10], model or run.model, prompt, completion))


def count_run(conn: sqlite3.Connection, run: Run) -> None:
    """A run started: one more on its owner's day."""
    conn.execute("INSERT INTO usage_daily (user_id, day, model, runs) VALUES (?, ?, ?, 1) "
                 "ON CONFLICT (user_id, day, model) DO UPDATE SET runs = runs + 1",
                 (run.owner_id, now_iso()[:10], run.model or WORKFLOW_USAGE_MODEL))


def tokens_of(conn: sqlite3.Connection, run_id: str) -> tuple[int, int]:
    """(prompt, completion) tokens of a run so far."""
    row = conn.execute("SELECT prompt_tokens, completion_tokens FROM runs WHERE id = ?", (run_id,)).fetchone()
    return (row[0], row[1]) if row else (0, 0)


def budget(conn: sqlite3.Connection, user_id: str, default: int) -> tuple[int, int]:
    """(the user's daily token budget: their own, else `default`; 0 means none,
    tokens they used today)."""
    row = conn.execute("SELECT daily_tokens FROM user_budgets WHERE user_id = ?", (user_id,)).fetchone()
    tokens = default if row is None else row[0]
    if not tokens:
        return tokens, 0
    # Indexed by the primary key's prefix (user_id, day): a handful of rows.
    used = conn.execute("SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM usage_daily "
                        "WHERE user_id = ? AND day = ?", (user_id, now_iso()[:10])).fetchone()[0]
    return tokens, used


def set_budget(conn: sqlite3.Connection, user_id: str, daily_tokens: int | None) -> None:
    """A per-user daily token budget; None falls back to the global setting."""
    if daily_tokens is None:
        conn.execute("DELETE FROM user_budgets WHERE user_id = ?", (user_id,))
    else:
        conn.execute("INSERT INTO user_budgets (user_id, daily_tokens) VALUES (?, ?) ON CONFLICT (user_id) "
                     "DO UPDATE SET daily_tokens = excluded.daily_tokens", (user_id, daily_tokens))


def by_day(conn: sqlite3.Connection, user_id: str | None, *, since: str) -> list[dict]:
    """Usage rows from `since` (a day), of one user or of everyone."""
    sql, args = "SELECT user_id, day, model, prompt_tokens, completion_tokens, runs FROM usage_daily WHERE day >= ?", [since]
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    return [dict(zip(r.keys(), r)) for r in conn.execute(sql + " ORDER BY day, user_id, model", args)]
