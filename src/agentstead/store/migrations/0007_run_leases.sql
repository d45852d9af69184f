-- 0007: a running run's row names the process that runs it and until when that
-- process vouches for it (a lease it renews). A running row whose lease has run
-- out has no task anywhere: the watchdog settles it. Several app processes
-- sharing the file (scale-out) use the same columns to tell their runs apart.
ALTER TABLE runs ADD COLUMN owner_instance TEXT;
ALTER TABLE runs ADD COLUMN lease_until TEXT;      -- UTC ISO 8601, fixed width like every timestamp
