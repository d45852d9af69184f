-- 0014 (issue 22): every attempt of a workflow step, not only its latest (run_steps keeps the
-- latest, as before, for everything that reads it). An attempt is numbered `n` in the order the
-- store saw it start, across retries and resumes of the run (the runner's own `attempt` counter
-- starts again at 1 when an interrupted run is resumed). Only the last 20 attempts of a step are
-- kept (store/steps.py: ATTEMPTS_KEPT), so a step retried without end cannot grow the file.
CREATE TABLE run_step_attempts (
    run_id      TEXT NOT NULL,
    step        TEXT NOT NULL,
    n           INTEGER NOT NULL CHECK (n >= 1),
    status      TEXT NOT NULL CHECK (status IN ('running', 'waiting', 'succeeded', 'failed', 'cancelled',
                                                'interrupted')),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    input       TEXT,                         -- JSON
    output      TEXT,                         -- JSON
    error       TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, step, n),
    FOREIGN KEY (run_id, step) REFERENCES run_steps (run_id, step) ON DELETE CASCADE
) STRICT;

-- The rows written before: their latest attempt, as it was (a step between two attempts, status
-- 'retrying', had its latest attempt fail).
INSERT INTO run_step_attempts (run_id, step, n, status, started_at, finished_at, input, output, error,
                               prompt_tokens, completion_tokens)
SELECT run_id, step, attempt, CASE status WHEN 'retrying' THEN 'failed' ELSE status END, started_at,
       finished_at, input, output, error, prompt_tokens, completion_tokens
FROM run_steps;
