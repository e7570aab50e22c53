-- What people do with a message once it is posted: edit it, delete it, answer it, react to it.
--
-- Every such change to a chat's messages takes the chat's next change number
-- (`chats.last_change`, incremented in the transaction of the change, whose row lock keeps the
-- changes of one chat in line as `last_seq` keeps its messages), and the message keeps the
-- number of its latest change in `change_seq`: a client that has seen change N asks for the
-- messages with `change_seq` > N to learn what it missed.

ALTER TABLE chats ADD COLUMN last_change BIGINT NOT NULL DEFAULT 0;

ALTER TABLE messages ADD COLUMN edited_at TIMESTAMPTZ;
-- A deleted message keeps its row (and its seq) with its body overwritten by ''.
ALTER TABLE messages ADD COLUMN deleted_at TIMESTAMPTZ;
ALTER TABLE messages ADD COLUMN reply_to BIGINT REFERENCES messages (id) ON DELETE SET NULL;
ALTER TABLE messages ADD COLUMN change_seq BIGINT;

CREATE INDEX messages_chat_change_idx ON messages (chat_id, change_seq)
    WHERE change_seq IS NOT NULL;

-- One row per member and emoji on a message; `id` keeps the order they were given in.
CREATE TABLE message_reactions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT   NOT NULL,
    CONSTRAINT message_reactions_key UNIQUE (message_id, user_id, emoji)
);
