-- Who is online across every instance sharing this database. Each running instance holds a
-- lease it renews; an instance that stops renewing (killed, cut off) is expired by the others,
-- and its users go offline unless another instance holds a socket of theirs.
CREATE TABLE presence_instances (
    id         TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);

-- How many sockets each instance holds for each user.
CREATE TABLE presence (
    instance TEXT   NOT NULL REFERENCES presence_instances (id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL,
    sockets  INT    NOT NULL CHECK (sockets > 0),
    PRIMARY KEY (instance, user_id)
);
CREATE INDEX presence_user_idx ON presence (user_id);
