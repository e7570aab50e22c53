-- A gapless stream per chat: every message gets its position in its chat (`seq`: 1, 2, 3, ...
-- in commit order), and a message sent with a `client_id` is stored once per sender and chat.
-- `chats.last_seq` is the seq of the chat's newest message; an insert takes the next one by
-- incrementing it, inside the transaction that stores the message.

ALTER TABLE chats ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;

-- SQLite cannot make a column NOT NULL after the fact, so the table is rebuilt with the new
-- columns, as SQLite's documentation for ALTER TABLE describes. No foreign key refers to
-- `messages`, so it may be dropped while foreign keys are enforced.
CREATE TABLE messages_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id    INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender_id  INTEGER NOT NULL REFERENCES users (id),
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    client_id  TEXT
);

-- Messages stored before this migration are numbered in id order, which is the order they
-- were listed in.
INSERT INTO messages_new (id, chat_id, sender_id, body, created_at, seq, client_id)
SELECT id, chat_id, sender_id, body, created_at,
       ROW_NUMBER() OVER (PARTITION BY chat_id ORDER BY id), NULL
FROM messages;

-- Ids are never reused, not even those of deleted messages: the new table's counter goes on
-- from the old one's.
UPDATE sqlite_sequence
SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'messages')
WHERE name = 'messages_new'
  AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages');
INSERT INTO sqlite_sequence (name, seq)
SELECT 'messages_new', seq FROM sqlite_sequence
WHERE name = 'messages'
  AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages_new');

DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;

CREATE INDEX messages_chat_id_idx ON messages (chat_id, id);

UPDATE chats
SET last_seq = (SELECT max(m.seq) FROM messages m WHERE m.chat_id = chats.id)
WHERE EXISTS (SELECT 1 FROM messages m WHERE m.chat_id = chats.id);

-- One message per position, and the index that reads a chat's stream by seq range.
CREATE UNIQUE INDEX messages_chat_seq_key ON messages (chat_id, seq);
-- A resent message is recognised by its sender's client_id; the adapter maps this name to
-- "already stored" when two sends of one message race.
CREATE UNIQUE INDEX messages_client_id_key ON messages (chat_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
