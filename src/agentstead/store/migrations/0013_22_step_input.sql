-- 0013 (issue 22): what a workflow step was given (the rendered input of an agent step, the
-- arguments of a tool step, the prompt of an approval), as JSON, for the step's details on the
-- workflow page. NULL for steps that take nothing of their own (branch, parallel) and for rows
-- written before this column existed.
ALTER TABLE run_steps ADD COLUMN input TEXT;
