-- Members are listed in the order they joined. `joined_at` cannot tell that order: a group's
-- owner and first members join at the same instant, and so can two members added at once. `seq`
-- numbers memberships in insertion order; existing rows keep the order they were listed in.

ALTER TABLE chat_members ADD COLUMN seq BIGINT;
UPDATE chat_members m SET seq = o.n
FROM (
    SELECT chat_id, user_id, row_number() OVER (ORDER BY joined_at, user_id) AS n
    FROM chat_members
) o
WHERE m.chat_id = o.chat_id AND m.user_id = o.user_id;
ALTER TABLE chat_members ALTER COLUMN seq SET NOT NULL;
ALTER TABLE chat_members ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('chat_members', 'seq'), COALESCE(max(seq), 0) + 1, false)
FROM chat_members;
CREATE INDEX chat_members_chat_seq_idx ON chat_members (chat_id, seq);
