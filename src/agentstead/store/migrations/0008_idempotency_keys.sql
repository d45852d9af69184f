-- 0008: Idempotency-Key of creating POSTs. A key's row is written in the same
-- transaction as the change it made, with the response that announced it, so a
-- retry after an ambiguous failure (a 503, a dropped connection, a crash after
-- the commit) gets that first response instead of making a second resource.
CREATE TABLE idempotency_keys (
    scope       TEXT NOT NULL,      -- whose key: the user's id (keys of different users never meet)
    key         TEXT NOT NULL,      -- the client's Idempotency-Key
    fingerprint TEXT NOT NULL,      -- sha256 of method, path and body: the same key with another request is refused
    status      INTEGER NOT NULL,   -- the first response's status
    response    BLOB NOT NULL,      -- its body and headers, encrypted (a token's value is in it)
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
