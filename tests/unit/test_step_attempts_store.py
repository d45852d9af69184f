"""A workflow step's attempts in the real SQLite file (store/steps.py, migration 0014): rows
written before 0014 keep their latest attempt, retries add attempts, and a step retried without
end keeps only its last ATTEMPTS_KEPT."""

from __future__ import annotations

import sqlite3

from agentstead.store import migrate as M
from agentstead.store import steps

T = "2026-01-01T00:00:00Z"


def _run(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO users (id, email, created_at, updated_at) VALUES ('u1', 'a@x.org', ?, ?)", (T, T))
    conn.execute("INSERT INTO workflows (id, owner_id, current_version, created_at, updated_at) "
                 "VALUES ('w1', 'u1', 1, ?, ?)",
                 (T, T))
    conn.execute("INSERT INTO runs (id, owner_id, kind, workflow_id, workflow_version, input, status, prompt_tokens, "
                 "completion_tokens, created_at) VALUES ('r1', 'u1', 'workflow', 'w1', 1, '{}', 'running', 0, 0, ?)", (T,))


def _connect(path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def test_rows_written_before_0014_keep_their_latest_attempt(tmp_path):
    db = tmp_path / "a.db"
    M.migrate(db, migrations=[m for m in M.available() if m.version <= 13])
    with sqlite3.connect(db) as conn:
        _run(conn)
        conn.execute("INSERT INTO run_steps VALUES ('r1', 'calc', 'tool', 'retrying', 2, ?, ?, NULL, 'boom', 0, 0, "
                     "'{\"expression\": \"1/0\"}')", (T, T))
        conn.execute("INSERT INTO run_steps VALUES ('r1', 'a', 'agent', 'succeeded', 1, ?, ?, '\"hi\"', NULL, 3, 4, "
                     "'\"say hi\"')", (T, T))
    assert 14 in M.migrate(db).applied
    conn = _connect(db)
    got = {s.step: s.attempts for s in steps.of_run(conn, "r1")}
    assert got["calc"] == (steps.Attempt(2, "failed", T, T, {"expression": "1/0"}, None, "boom", 0, 0),)
    assert got["a"] == (steps.Attempt(1, "succeeded", T, T, "say hi", "hi", None, 3, 4),)
    # the next attempt of the migrated step is numbered after it
    steps.started(conn, "r1", "calc", "tool", 1, "2026-01-01T00:00:01Z", input={"expression": "1/0"})
    calc = next(s for s in steps.of_run(conn, "r1") if s.step == "calc")
    assert [(a.attempt, a.status) for a in calc.attempts] == [(2, "failed"), (3, "running")]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_step_retried_without_end_keeps_its_last_attempts_only(tmp_path):
    db = tmp_path / "a.db"
    M.migrate(db)
    conn = _connect(db)
    _run(conn)
    total = steps.ATTEMPTS_KEPT + 7
    for i in range(1, total + 1):
        at = "2026-01-01T00:00:%02dZ" % i
        steps.started(conn, "r1", "calc", "tool", i, at, input={"i": i})
        status = "failed" if i == total else "retrying"
        steps.finished(conn, "r1", "calc", "tool", status, attempt=i, started_at=at, finished_at=at, error=f"e{i}",
                       prompt_tokens=1, completion_tokens=2)
    (step,) = steps.of_run(conn, "r1")
    assert len(step.attempts) == steps.ATTEMPTS_KEPT == 20
    assert [a.attempt for a in step.attempts] == list(range(total - 19, total + 1))
    assert all(a.status == "failed" for a in step.attempts) and step.attempts[-1].error == f"e{total}"
    assert step.attempts[0].input == {"i": total - 19}
    assert conn.execute("SELECT COUNT(*) FROM run_step_attempts").fetchone()[0] == 20
    # the step's own row still counts every attempt's tokens
    assert (step.status, step.prompt_tokens, step.completion_tokens) == ("failed", total, 2 * total)
    # a run cut short closes its open attempt; deleting the run takes its attempts with it
    steps.started(conn, "r1", "calc", "tool", 1, "2026-01-01T00:01:00Z")
    steps.ended(conn, "r1", "interrupted")
    assert steps.of_run(conn, "r1")[0].attempts[-1].status == "interrupted"
    conn.execute("DELETE FROM runs WHERE id = 'r1'")
    assert conn.execute("SELECT COUNT(*) FROM run_step_attempts").fetchone()[0] == 0
