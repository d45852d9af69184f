-- 0002: people, how they sign in, their sessions and API tokens, and the audit log.
-- Timestamps are UTC ISO 8601 with a fixed width (YYYY-MM-DDTHH:MM:SS.ffffffZ),
-- so text comparison is time comparison.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name        TEXT NOT NULL DEFAULT '',
    role        TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    disabled    INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

-- An account at an identity provider, bound to one user: (provider, subject) is
-- the stable key; the email may change at the provider.
CREATE TABLE identities (
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    last_login_at TEXT NOT NULL,
    PRIMARY KEY (provider, subject)
) STRICT;
CREATE INDEX identities_user ON identities (user_id);

-- A sign-in on one device. Its refresh tokens rotate; reuse of a rotated one
-- revokes the whole family.
CREATE TABLE session_families (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    revoked_at  TEXT,
    revoked_reason TEXT,
    ip          TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX session_families_user ON session_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,          -- sha256 of the cookie value; the value is never stored
    family_id   TEXT NOT NULL REFERENCES session_families (id) ON DELETE CASCADE,
    issued_at   TEXT NOT NULL,
    rotated_at  TEXT                       -- set when exchanged for the next one
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,             -- space-separated: read write admin
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    last_used_at TEXT,
    revoked_at  TEXT
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- An OpenID Connect sign-in in progress (state, nonce, PKCE verifier); single use.
CREATE TABLE login_states (
    state_hash  TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    next_path   TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT;

-- Single-use sign-in links printed by `agentstead admin login-link`.
CREATE TABLE login_links (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
) STRICT;

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    action      TEXT NOT NULL,             -- e.g. auth.signin, token.created, user.updated
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    actor_id    TEXT,                      -- the user who acted, when known
    target      TEXT NOT NULL DEFAULT '',  -- what was acted on (user id, token id, provider)
    ip          TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    details     TEXT NOT NULL DEFAULT '{}' -- JSON object
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at);
CREATE INDEX audit_log_action ON audit_log (action, at);
