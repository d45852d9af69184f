"""Migration 0005 on a database with chat runs in it: the runs table is rebuilt for both
kinds of run without losing a row, a tool call or a foreign key, and its checks hold."""

from __future__ import annotations

import sqlite3

import pytest

from agentstead.store import migrate as M

T = "2026-01-01T00:00:00Z"


def _at_v4(path) -> None:
    M.migrate(path, migrations=M.available()[:4])
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO users (id, email, created_at, updated_at) VALUES ('u1', 'a@x.org', ?, ?)", (T, T))
        conn.execute("INSERT INTO agents VALUES ('a1', 'u1', 1, ?, ?, NULL)", (T, T))
        conn.execute("INSERT INTO threads VALUES ('t1', 'u1', 'a1', 'T', ?, ?)", (T, T))
        conn.execute("INSERT INTO runs (id, thread_id, owner_id, agent_id, agent_version, status, input_message_id, "
                     "prompt_tokens, completion_tokens, model, created_at) "
                     "VALUES ('r1', 't1', 'u1', 'a1', 1, 'succeeded', 'm1', 3, 4, 'gpt', ?)", (T,))
        conn.execute("INSERT INTO tool_calls VALUES ('c1', 'r1', 'calculator', '{}', 'finished', '4', ?, ?)", (T, T))


def test_chat_runs_survive_the_rebuild(tmp_path):
    db = tmp_path / "a.db"
    _at_v4(db)
    report = M.migrate(db)
    assert report.applied == tuple(range(5, M.latest_version() + 1)) and report.snapshot is not None
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        row = conn.execute("SELECT kind, thread_id, agent_id, model, prompt_tokens, workflow_id, input FROM runs "
                           "WHERE id = 'r1'").fetchone()
        assert row == ("chat", "t1", "a1", "gpt", 3, None, None)
        assert conn.execute("SELECT run_id, result FROM tool_calls").fetchall() == [("r1", "4")]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index' "
                                              "AND tbl_name = 'runs' AND name NOT LIKE 'sqlite_%'")}
        assert indexes == {"runs_owner", "runs_status", "runs_thread", "runs_workflow"}
        # tool_calls still cascades from runs (its foreign key names the rebuilt table)
        conn.execute("DELETE FROM runs WHERE id = 'r1'")
        assert conn.execute("SELECT count(*) FROM tool_calls").fetchone() == (0,)


@pytest.mark.parametrize("columns,values", [
    ("(id, kind, owner_id, status, created_at)", "('x', 'chat', 'u1', 'queued', 'T')"),           # chat, no thread
    ("(id, kind, owner_id, status, created_at)", "('x', 'workflow', 'u1', 'queued', 'T')"),       # no workflow
    ("(id, kind, owner_id, status, created_at, workflow_id, workflow_version, input)",
     "('x', 'robot', 'u1', 'queued', 'T', 'w', 1, '{}')"),                                         # unknown kind
])
def test_the_checks_refuse_half_runs(tmp_path, columns, values):
    db = tmp_path / "a.db"
    _at_v4(db)
    M.migrate(db)
    with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(f"INSERT INTO runs {columns} VALUES {values}")


def test_a_workflow_run_row_is_accepted(tmp_path):
    db = tmp_path / "a.db"
    _at_v4(db)
    M.migrate(db)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO runs (id, kind, owner_id, status, created_at, workflow_id, workflow_version, input) "
                     "VALUES ('w1', 'workflow', 'u1', 'queued', ?, 'wf', 1, '{}')", (T,))
        conn.execute("INSERT INTO run_steps (run_id, step, kind, status, started_at) VALUES ('w1', 's', 'tool', "
                     "'running', ?)", (T,))
        assert conn.execute("SELECT thread_id, model FROM runs WHERE id = 'w1'").fetchone() == (None, None)
