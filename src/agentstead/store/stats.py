"""SQL for what /metrics reads at scrape time: active runs, usage by model."""

from __future__ import annotations

import sqlite3


_ACTIVE = "('queued', 'running', 'waiting_for_input')"


def gather(conn: sqlite3.Connection) -> tuple[dict[str, int], dict[str, tuple[int, int, int]]]:
    """(runs not yet ended by status, {model: (prompt tokens, completion tokens, runs)}), one read."""
    active = conn.execute(f"SELECT status, count(*) FROM runs WHERE status IN {_ACTIVE} GROUP BY status").fetchall()
    # usage_daily is never deleted from, so its sums only grow: counters.
    usage = conn.execute("SELECT model, sum(prompt_tokens), sum(completion_tokens), sum(runs) FROM usage_daily "
                         "GROUP BY model").fetchall()
    return ({status: n for status, n in active},
            {model: (prompt, completion, runs) for model, prompt, completion, runs in usage})
