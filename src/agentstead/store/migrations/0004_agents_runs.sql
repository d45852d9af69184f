-- 0004: agents (versioned), threads and messages, runs as tracked tasks,
-- tool calls, token usage and budgets, and LangGraph's checkpoint tables.

CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    owner_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    current_version INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    deleted_at      TEXT                      -- kept for the runs that used it
) STRICT;
CREATE INDEX agents_owner ON agents (owner_id, created_at);

-- Every edit is a new version; a run records the version it used.
CREATE TABLE agent_versions (
    agent_id     TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    name         TEXT NOT NULL,
    instructions TEXT NOT NULL,
    provider     TEXT NOT NULL,
    model        TEXT NOT NULL,
    temperature  REAL NOT NULL,
    tools        TEXT NOT NULL,               -- JSON array of tool names
    max_steps    INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (agent_id, version)
) STRICT;

CREATE TABLE threads (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    title       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE INDEX threads_owner ON threads (owner_id, updated_at);

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    thread_id       TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    owner_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id        TEXT NOT NULL,
    agent_version   INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'waiting_for_input', 'succeeded',
                                                    'failed', 'cancelled', 'interrupted')),
    input_message_id TEXT NOT NULL,
    error_code      TEXT,
    error_message   TEXT,
    waiting_prompt  TEXT,                     -- the ask_human question while waiting
    prompt_tokens   INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    model           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT
) STRICT;
CREATE INDEX runs_owner ON runs (owner_id, created_at);
CREATE INDEX runs_status ON runs (status, created_at);
CREATE INDEX runs_thread ON runs (thread_id, created_at);

CREATE TABLE messages (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,   -- order within and across threads
    id          TEXT NOT NULL UNIQUE,
    thread_id   TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    run_id      TEXT,
    role        TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content     TEXT NOT NULL,
    tool_calls  TEXT,                                -- JSON, assistant messages that call tools
    tool_call_id TEXT,                               -- tool messages: the call they answer
    partial     INTEGER NOT NULL DEFAULT 0,          -- 1: cut short (cancelled, failed)
    created_at  TEXT NOT NULL
);
CREATE INDEX messages_thread ON messages (thread_id, seq);

-- Tool calls as they happen: a call 'started' at a crash is 'unverified' and never re-run silently.
CREATE TABLE tool_calls (
    id          TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('started', 'finished', 'failed', 'unverified')),
    result      TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT
) STRICT;
CREATE INDEX tool_calls_run ON tool_calls (run_id);

CREATE TABLE usage_daily (
    user_id     TEXT NOT NULL,
    day         TEXT NOT NULL,                       -- YYYY-MM-DD (UTC)
    model       TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    runs        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day, model)
) STRICT;

CREATE TABLE user_budgets (
    user_id     TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    daily_tokens INTEGER NOT NULL CHECK (daily_tokens >= 0)
) STRICT;

-- LangGraph's SQLite checkpointer tables (langgraph-checkpoint-sqlite), created
-- here so they are migrated and replicated like everything else.
CREATE TABLE checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    type TEXT,
    checkpoint BLOB,
    metadata BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE TABLE writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT,
    value BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
