-- Members are listed in the order they joined. `joined_at` cannot tell that order: a group's
-- owner and first members join at the same instant, and so can two members added at once. `seq`
-- numbers memberships in insertion order (a rowid alias is always above every existing row's);
-- existing rows keep the order they were listed in. SQLite cannot add such a column in place,
-- so the table is rebuilt; nothing references it.

CREATE TABLE chat_members_new (
    seq                  INTEGER PRIMARY KEY,
    chat_id              INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id              INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role                 TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
    joined_at            TEXT NOT NULL,
    last_read_message_id INTEGER,
    CONSTRAINT chat_members_pkey UNIQUE (chat_id, user_id)
);
INSERT INTO chat_members_new (chat_id, user_id, role, joined_at, last_read_message_id)
SELECT chat_id, user_id, role, joined_at, last_read_message_id
FROM chat_members
ORDER BY joined_at, user_id;
DROP TABLE chat_members;
ALTER TABLE chat_members_new RENAME TO chat_members;
CREATE INDEX chat_members_user_idx ON chat_members (user_id);
