-- An administrator may disable an account (`parley admin disable-user`): it can no longer log
-- in and its tokens stop authenticating. Existing accounts stay enabled.
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
