-- 0003: the event log. Everything a client may miss is here, in order.
-- AUTOINCREMENT: a sequence number is never reused, even after retention
-- deletes the newest rows, so a client's cursor always means one point in time.
CREATE TABLE events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    topic  TEXT NOT NULL,
    type   TEXT NOT NULL,
    data   TEXT NOT NULL,   -- JSON object
    at     TEXT NOT NULL
);
CREATE INDEX events_topic_seq ON events (topic, seq);
CREATE INDEX events_at ON events (at);

-- Bookkeeping: `floor` is the highest sequence number retention has deleted;
-- a cursor below it cannot be replayed (cursor_expired).
CREATE TABLE event_log_meta (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) STRICT;
INSERT INTO event_log_meta (key, value) VALUES ('floor', 0);
