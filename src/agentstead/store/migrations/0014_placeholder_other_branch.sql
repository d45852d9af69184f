-- PLACEHOLDER on branch issue-22t only: 0014 belongs to another branch of this session, and
-- migrations must be contiguous for 0015_22_thread_model.sql to apply. DELETE THIS FILE when
-- merging (the other branch's 0014 takes its place). It changes nothing.
SELECT 1;
