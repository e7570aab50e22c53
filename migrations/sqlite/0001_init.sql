-- Users, chats (direct and group), memberships, messages and revoked sessions.
-- Timestamps are RFC 3339 text in UTC, which sorts in time order.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen     TEXT
);
-- Unique without regard to case, as in PostgreSQL (SQLite's lower() folds ASCII only).
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE chats (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    name        TEXT,
    visibility  TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public')),
    direct_low  INTEGER REFERENCES users (id),
    direct_high INTEGER REFERENCES users (id),
    created_at  TEXT NOT NULL,
    CONSTRAINT chats_direct_shape CHECK (
        (kind = 'direct' AND direct_low < direct_high AND name IS NULL)
        OR (kind = 'group' AND direct_low IS NULL AND direct_high IS NULL AND name IS NOT NULL)
    ),
    CONSTRAINT chats_direct_pair_key UNIQUE (direct_low, direct_high)
);

CREATE TABLE chat_members (
    -- Numbers memberships in joining order (a rowid alias); joined_at cannot, since a group's
    -- owner and first members join at the same instant.
    seq                  INTEGER PRIMARY KEY,
    chat_id              INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id              INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role                 TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
    joined_at            TEXT NOT NULL,
    last_read_message_id INTEGER,
    CONSTRAINT chat_members_pkey UNIQUE (chat_id, user_id)
);
CREATE INDEX chat_members_user_idx ON chat_members (user_id);

CREATE TABLE messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id    INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender_id  INTEGER NOT NULL REFERENCES users (id),
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX messages_chat_id_idx ON messages (chat_id, id);

CREATE TABLE revoked_sessions (
    jti        TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
