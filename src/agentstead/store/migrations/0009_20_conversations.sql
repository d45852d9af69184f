-- 0009 (issue 20): the OpenAI-compatible endpoint's conversations. A client of
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
