-- Counters every instance shares when PostgreSQL alone ties them together: failed logins and
-- the windows of the HTTP rate limits. Unlogged: they are worth nothing after a crash, and
-- need no WAL.
CREATE UNLOGGED TABLE login_failures (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    last_at TIMESTAMPTZ NOT NULL,
    until TIMESTAMPTZ NOT NULL
);

CREATE UNLOGGED TABLE rate_windows (
    key TEXT PRIMARY KEY,
    count BIGINT NOT NULL,
    until TIMESTAMPTZ NOT NULL
);
