-- 0015 (issue 22): the model a thread's turns use "from now on" (PATCH /api/threads/{id}); NULL:
-- its agent's own model (the agent's current version's, so an edit of the agent carries over).
-- The thread's agent "from now on" is threads.agent_id itself.
ALTER TABLE threads ADD COLUMN model TEXT;
