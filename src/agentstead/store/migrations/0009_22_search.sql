-- 0009 (issue 22): full-text search over a user's own threads and messages (SQLite FTS5).
-- External-content indexes over messages (user and assistant text; tool output is not what
-- people look for) and thread titles, kept by triggers: every insert, update and delete of a
-- message or a thread (a thread's or user's deletion cascades here too) changes its index
-- in the same transaction, so a search never finds what is gone nor misses what was
-- acknowledged. Ownership is not indexed: a search joins threads and filters on owner_id.
-- unicode61 with remove_diacritics 2: "café" finds "cafe"; the query's last word is a prefix
-- ("w"*), which the prefix indexes of 2 and 3 characters keep cheap.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content = 'messages', content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.role IN ('user', 'assistant') BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.role IN ('user', 'assistant') BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, role ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        SELECT 'delete', old.seq, old.content WHERE old.role IN ('user', 'assistant');
    INSERT INTO messages_fts (rowid, content) SELECT new.seq, new.content WHERE new.role IN ('user', 'assistant');
END;
INSERT INTO messages_fts (rowid, content) SELECT seq, content FROM messages WHERE role IN ('user', 'assistant');

CREATE VIRTUAL TABLE threads_fts USING fts5(
    title, content = 'threads', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER threads_fts_insert AFTER INSERT ON threads BEGIN
    INSERT INTO threads_fts (rowid, title) VALUES (new.rowid, new.title);
END;
CREATE TRIGGER threads_fts_delete AFTER DELETE ON threads BEGIN
    INSERT INTO threads_fts (threads_fts, rowid, title) VALUES ('delete', old.rowid, old.title);
END;
CREATE TRIGGER threads_fts_update AFTER UPDATE OF title ON threads BEGIN
    INSERT INTO threads_fts (threads_fts, rowid, title) VALUES ('delete', old.rowid, old.title);
    INSERT INTO threads_fts (rowid, title) VALUES (new.rowid, new.title);
END;
INSERT INTO threads_fts (rowid, title) SELECT rowid, title FROM threads;
