-- 0001: bookkeeping for the store itself.
-- Applied migrations, with a checksum so an edited migration file is noticed.
CREATE TABLE schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    checksum   TEXT    NOT NULL,
    applied_at TEXT    NOT NULL
) STRICT;

-- One row that /readyz writes and reads back to prove the database works.
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    token      TEXT    NOT NULL,
    written_at TEXT    NOT NULL
) STRICT;
