-- A gapless stream per chat: every message gets its position in its chat (`seq`: 1, 2, 3, ...
-- in commit order), and a message sent with a `client_id` is stored once per sender and chat.
-- `chats.last_seq` is the seq of the chat's newest message; an insert takes the next one by
-- incrementing it, and the row lock that increment takes keeps writers of one chat in line
-- until they commit.

ALTER TABLE chats ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;

ALTER TABLE messages ADD COLUMN seq BIGINT;
ALTER TABLE messages ADD COLUMN client_id TEXT;

-- Messages stored before this migration are numbered in id order, which is the order they
-- were listed in.
UPDATE messages m
SET seq = numbered.seq
FROM (
    SELECT id, ROW_NUMBER() OVER (PARTITION BY chat_id ORDER BY id) AS seq
    FROM messages
) AS numbered
WHERE numbered.id = m.id;

ALTER TABLE messages ALTER COLUMN seq SET NOT NULL;

UPDATE chats c
SET last_seq = newest.seq
FROM (SELECT chat_id, max(seq) AS seq FROM messages GROUP BY chat_id) AS newest
WHERE newest.chat_id = c.id;

-- One message per position, and the index that reads a chat's stream by seq range.
CREATE UNIQUE INDEX messages_chat_seq_key ON messages (chat_id, seq);
-- A resent message is recognised by its sender's client_id; the adapter maps this name to
-- "already stored" when two sends of one message race.
CREATE UNIQUE INDEX messages_client_id_key ON messages (chat_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
