-- Server sessions: one row per login, kept alive by use and ended by logout, from another
-- session, or by a password change (timestamps are RFC 3339 text in UTC). An access token
-- names its session, so ending the row ends the token; `revoked_sessions` is no longer
-- needed. Tokens issued before this migration name no session and stop working: their
-- holders log in again.

CREATE TABLE sessions (
    id                      TEXT        PRIMARY KEY,
    user_id                 INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at              TEXT        NOT NULL,
    last_used_at            TEXT        NOT NULL,
    -- Moves forward with every use (sliding expiry).
    expires_at              TEXT        NOT NULL,
    user_agent              TEXT,
    address                 TEXT        NOT NULL,
    -- SHA-256 digests of the refresh token that works now and of the one it replaced.
    refresh_digest          TEXT        NOT NULL,
    previous_refresh_digest TEXT,
    refreshed_at            TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

DROP TABLE revoked_sessions;
