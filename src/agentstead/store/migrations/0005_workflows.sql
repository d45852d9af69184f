-- 0005: workflows (versioned like agents), workflow runs beside chat runs, and
-- per-step accounting of workflow runs.

CREATE TABLE workflows (
    id              TEXT PRIMARY KEY,
    owner_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    current_version INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    deleted_at      TEXT                      -- kept for the runs that used it
) STRICT;
CREATE INDEX workflows_owner ON workflows (owner_id, created_at);

-- Every edit is a new version; a run records the version it used.
CREATE TABLE workflow_versions (
    workflow_id  TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    name         TEXT NOT NULL,
    definition   TEXT NOT NULL,               -- the validated definition document (JSON)
    created_at   TEXT NOT NULL,
    PRIMARY KEY (workflow_id, version)
) STRICT;

-- Runs of either kind. SQLite cannot relax NOT NULL in place, so the table is
-- rebuilt (create, copy, drop, rename, indexes). Migrations run with foreign
-- keys off, so dropping the old table leaves tool_calls untouched.
CREATE TABLE runs_new (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL DEFAULT 'chat' CHECK (kind IN ('chat', 'workflow')),
    thread_id       TEXT REFERENCES threads (id) ON DELETE CASCADE,
    owner_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id        TEXT,
    agent_version   INTEGER,
    workflow_id     TEXT,
    workflow_version INTEGER,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'waiting_for_input', 'succeeded',
                                                    'failed', 'cancelled', 'interrupted')),
    input_message_id TEXT,
    input           TEXT,                     -- workflow runs: the run's input (JSON object)
    output          TEXT,                     -- workflow runs: every step's output (JSON object)
    pins            TEXT,                     -- workflow runs: {agent_id: version} pinned when queued
    error_code      TEXT,
    error_message   TEXT,
    waiting_prompt  TEXT,                     -- the ask_human question or the approval prompt while waiting
    prompt_tokens   INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    model           TEXT,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    CHECK (kind = 'workflow' OR (thread_id IS NOT NULL AND agent_id IS NOT NULL AND agent_version IS NOT NULL
                                 AND input_message_id IS NOT NULL AND model IS NOT NULL)),
    CHECK (kind = 'chat' OR (workflow_id IS NOT NULL AND workflow_version IS NOT NULL AND input IS NOT NULL))
) STRICT;
INSERT INTO runs_new (id, kind, thread_id, owner_id, agent_id, agent_version, status, input_message_id, error_code,
                      error_message, waiting_prompt, prompt_tokens, completion_tokens, model, created_at, started_at,
                      finished_at)
    SELECT id, 'chat', thread_id, owner_id, agent_id, agent_version, status, input_message_id, error_code,
           error_message, waiting_prompt, prompt_tokens, completion_tokens, model, created_at, started_at, finished_at
    FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX runs_owner ON runs (owner_id, created_at);
CREATE INDEX runs_status ON runs (status, created_at);
CREATE INDEX runs_thread ON runs (thread_id, created_at);
CREATE INDEX runs_workflow ON runs (workflow_id, created_at);

-- One row per step of a workflow run: its latest attempt, timing, output or error.
CREATE TABLE run_steps (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'retrying', 'waiting', 'succeeded', 'failed',
                                                'cancelled', 'interrupted')),
    attempt     INTEGER NOT NULL DEFAULT 1,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    output      TEXT,                         -- JSON
    error       TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, step)
) STRICT;
