-- What people do with a message once it is posted: edit it, delete it, answer it, react to it.
--
-- Every such change to a chat's messages takes the chat's next change number
-- (`chats.last_change`, incremented in the transaction of the change, on the single writer),
-- and the message keeps the number of its latest change in `change_seq`: a client that has
-- seen change N asks for the messages with `change_seq` > N to learn what it missed.

ALTER TABLE chats ADD COLUMN last_change INTEGER NOT NULL DEFAULT 0;

ALTER TABLE messages ADD COLUMN edited_at TEXT;
-- A deleted message keeps its row (and its seq) with its body overwritten by ''.
ALTER TABLE messages ADD COLUMN deleted_at TEXT;
ALTER TABLE messages ADD COLUMN reply_to INTEGER REFERENCES messages (id) ON DELETE SET NULL;
ALTER TABLE messages ADD COLUMN change_seq INTEGER;

CREATE INDEX messages_chat_change_idx ON messages (chat_id, change_seq)
    WHERE change_seq IS NOT NULL;

-- One row per member and emoji on a message; `id` keeps the order they were given in.
CREATE TABLE message_reactions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT    NOT NULL,
    CONSTRAINT message_reactions_key UNIQUE (message_id, user_id, emoji)
);
