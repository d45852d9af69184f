-- 0006: one row per event, its topics referenced, not copied.
-- Before, an event published on three topics (users/{id}, runs/{id}, threads/{id})
-- was stored three times, each copy with its own seq. Now the event is one row with
-- one seq, and `event_topics` links it to each topic by a small integer id: a cursor
-- on one topic still means one point in the log, replay reads (topic, seq) in order.

CREATE TABLE topics (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE events_new (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    type   TEXT NOT NULL,
    data   TEXT NOT NULL,   -- JSON object
    at     TEXT NOT NULL
);

-- Replay reads a topic's events by (topic, seq); retention deletes by seq.
CREATE TABLE event_topics (
    topic  INTEGER NOT NULL,   -- topics.id
    seq    INTEGER NOT NULL,   -- events.seq
    PRIMARY KEY (topic, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX event_topics_seq ON event_topics (seq);

-- Every stored copy becomes an event on its one topic, under its old seq, so
-- cursors that clients hold keep their meaning.
INSERT INTO topics (name) SELECT DISTINCT topic FROM events ORDER BY topic;
INSERT INTO events_new (seq, type, data, at) SELECT seq, type, data, at FROM events ORDER BY seq;
INSERT INTO event_topics (topic, seq) SELECT t.id, e.seq FROM events e JOIN topics t ON t.name = e.topic;

-- The sequence never goes back, even when retention deleted the newest rows:
-- carry the old table's counter over to the new one.
INSERT INTO event_log_meta (key, value)
    SELECT 'carried_seq', coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0);
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
DELETE FROM sqlite_sequence WHERE name = 'events';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'events', max(coalesce((SELECT max(seq) FROM events), 0), value)
    FROM event_log_meta WHERE key = 'carried_seq';
DELETE FROM event_log_meta WHERE key = 'carried_seq';
CREATE INDEX events_at ON events (at);

-- Deleting an event deletes its topic links (retention, delta compaction).
CREATE TRIGGER events_unlink AFTER DELETE ON events BEGIN
    DELETE FROM event_topics WHERE seq = old.seq;
END;

-- The log as clients see it: one row per (topic, event). For reading and debugging.
CREATE VIEW topic_events (seq, topic, type, data, at) AS
    SELECT e.seq, t.name, e.type, e.data, e.at
    FROM event_topics et JOIN topics t ON t.id = et.topic JOIN events e ON e.seq = et.seq;
