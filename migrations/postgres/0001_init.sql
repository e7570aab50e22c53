-- Users, chats (direct and group), memberships, messages and revoked sessions.

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT        NOT NULL,
    email         TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_seen     TIMESTAMPTZ
);
-- Usernames and emails are unique without regard to case; the adapter maps these names to
-- UsernameTaken and EmailTaken.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE chats (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT        NOT NULL CHECK (kind IN ('direct', 'group')),
    name        TEXT,
    visibility  TEXT        NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public')),
    -- For a direct chat, its two members with the smaller id first; NULL for groups.
    direct_low  BIGINT REFERENCES users (id),
    direct_high BIGINT REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT chats_direct_shape CHECK (
        (kind = 'direct' AND direct_low < direct_high AND name IS NULL)
        OR (kind = 'group' AND direct_low IS NULL AND direct_high IS NULL AND name IS NOT NULL)
    ),
    -- One direct chat per pair, whoever opens it and however many ask at once.
    CONSTRAINT chats_direct_pair_key UNIQUE (direct_low, direct_high)
);
CREATE INDEX chats_public_idx ON chats (visibility) WHERE kind = 'group';

CREATE TABLE chat_members (
    chat_id              BIGINT      NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id              BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role                 TEXT        NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
    joined_at            TIMESTAMPTZ NOT NULL,
    -- Numbers memberships in joining order: joined_at cannot, since a group's owner and first
    -- members join at the same instant.
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY,
    last_read_message_id BIGINT,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user_idx ON chat_members (user_id);
CREATE INDEX chat_members_chat_seq_idx ON chat_members (chat_id, seq);

CREATE TABLE messages (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id    BIGINT      NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender_id  BIGINT      NOT NULL REFERENCES users (id),
    body       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX messages_chat_id_idx ON messages (chat_id, id);

CREATE TABLE revoked_sessions (
    jti        TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX revoked_sessions_expires_idx ON revoked_sessions (expires_at);

-- Events too large for a NOTIFY payload (8000 bytes) travel between instances through this
-- table; the notification carries the row id. Rows older than a minute are deleted.
CREATE TABLE bus_payloads (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload    TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
