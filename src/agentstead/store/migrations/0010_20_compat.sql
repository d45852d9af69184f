-- 0009 (issue 20): the protocol adapters. The OpenAI-compatible endpoint's
-- conversations: a client of
-- /v1/chat/completions sends the whole conversation each time; the key of what it
-- sent (sha256 of the agent and the messages, docs/protocols.md) names the thread and
-- the run that answered it, so the next request, which repeats it with the reply and
-- one more message, goes on in the same thread. Written with the run it names.
CREATE TABLE conversations (
    owner_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest     TEXT NOT NULL,
    thread_id  TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    run_id     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (owner_id, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX conversations_thread ON conversations (thread_id);

-- The LangGraph API's threads (http/compat_langgraph*.py). A LangGraph thread is
-- created before it knows its assistant (agent); Agentstead's thread, which
-- belongs to one agent, is created under the same id by its first run. The row
-- keeps the thread's metadata (searchable, returned as given) for its whole life.
CREATE TABLE lg_threads (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    metadata    TEXT NOT NULL,      -- JSON object
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE INDEX lg_threads_owner ON lg_threads (owner_id, updated_at);
-- A thread deleted through any door takes its LangGraph row with it.
CREATE TRIGGER threads_delete_lg AFTER DELETE ON threads BEGIN
    DELETE FROM lg_threads WHERE id = OLD.id;
END;
