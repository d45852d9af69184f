-- 0012 (issue 19, scale out): single-use WebSocket tickets in the database, so that a
-- ticket issued by one instance is redeemed on whichever instance the upgrade reaches
-- (Caddy spreads requests over the instances). Only the ticket's digest is kept.
CREATE TABLE ws_tickets (
    digest      TEXT PRIMARY KEY,   -- sha256 of the ticket
    user_id     TEXT NOT NULL,
    via         TEXT NOT NULL,      -- session or token: how the caller who asked for it signed in
    session_id  TEXT,
    token_id    TEXT,
    expires_at  REAL NOT NULL       -- epoch seconds
) STRICT, WITHOUT ROWID;
CREATE INDEX ws_tickets_expires ON ws_tickets (expires_at);
CREATE INDEX ws_tickets_user ON ws_tickets (user_id);
