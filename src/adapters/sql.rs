//! What the PostgreSQL and SQLite adapters share: row types, the mapping of rows and
//! constraint violations to the domain, and [`sql_store!`], which implements every storage
//! port over one SQL dialect. The schema of both databases is the same by design, and the
//! queries are written in the SQL both understand, so the two adapters cannot drift apart.

use chrono::{DateTime, Utc};

use crate::domain::error::Error;
use crate::domain::{
    Chat, ChatId, ChatKind, ChatName, ChatSummary, Email, Member, Message, MessageBody, MessageId,
    Peer, Role, RoomSummary, User, UserId, Username, Visibility,
};

/// Maps a database error to the domain: unique violations by constraint name, the rest as
/// unexpected.
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e {
        let names = [db.constraint().unwrap_or_default(), db.message()];
        let mentions = |name: &str| names.iter().any(|n| n.contains(name));
        if mentions("users_username_key") {
            return Error::UsernameTaken;
        }
        if mentions("users_email_key") {
            return Error::EmailTaken;
        }
        if db.is_foreign_key_violation() {
            if mentions("user") {
                return Error::UserNotFound;
            }
            return Error::ChatNotFound;
        }
    }
    Error::unexpected(e)
}

/// The one row of an autocommit write with `RETURNING`, which must be run with `fetch_all`.
///
/// On SQLite such a statement stopped after its first row (as `fetch_one` stops it) commits
/// only when it is reset, and a commit made by a reset never calls the write-ahead log's hook:
/// the automatic checkpoint never runs and the log grows by every write, without bound. Run to
/// its end, the statement commits inside its last step, where the hook is called.
pub(crate) fn only_row<T>(rows: Vec<T>) -> Result<T, sqlx::Error> {
    rows.into_iter().next().ok_or(sqlx::Error::RowNotFound)
}

/// [`db_error`] for a statement whose only foreign keys name users.
pub(crate) fn user_fk_error(e: sqlx::Error) -> Error {
    match db_error(e) {
        Error::ChatNotFound => Error::UserNotFound,
        other => other,
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    username: String,
    email: String,
    password_hash: String,
    created_at: DateTime<Utc>,
    last_seen: Option<DateTime<Utc>>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            id: UserId(r.id),
            username: Username::from_trusted(r.username),
            email: Email::from_trusted(r.email),
            password_hash: r.password_hash,
            created_at: r.created_at,
            last_seen: r.last_seen,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChatRow {
    id: i64,
    kind: String,
    name: Option<String>,
    visibility: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<ChatRow> for Chat {
    type Error = Error;

    fn try_from(r: ChatRow) -> Result<Self, Error> {
        Ok(Self {
            id: ChatId(r.id),
            kind: ChatKind::parse(&r.kind).ok_or_else(|| corrupt("chats.kind", &r.kind))?,
            name: r.name.map(ChatName::from_trusted),
            visibility: Visibility::parse(&r.visibility)
                .ok_or_else(|| corrupt("chats.visibility", &r.visibility))?,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccessRow {
    #[sqlx(flatten)]
    chat: ChatRow,
    role: Option<String>,
}

impl AccessRow {
    pub(crate) fn into_access(self) -> Result<crate::ports::ChatAccess, Error> {
        let chat = Chat::try_from(self.chat)?;
        Ok(match self.role {
            Some(role) => crate::ports::ChatAccess::Member(chat, parse_role(&role)?),
            None => crate::ports::ChatAccess::Outsider(chat),
        })
    }
}

fn parse_role(s: &str) -> Result<Role, Error> {
    Role::parse(s).ok_or_else(|| corrupt("chat_members.role", s))
}

fn corrupt(column: &str, value: &str) -> Error {
    Error::unexpected(anyhow::anyhow!("unexpected value {value:?} in {column}"))
}

#[derive(sqlx::FromRow)]
pub(crate) struct MemberRow {
    id: i64,
    username: String,
    last_seen: Option<DateTime<Utc>>,
    role: String,
    last_read_message_id: Option<i64>,
}

impl TryFrom<MemberRow> for Member {
    type Error = Error;

    fn try_from(r: MemberRow) -> Result<Self, Error> {
        Ok(Self {
            user_id: UserId(r.id),
            username: Username::from_trusted(r.username),
            last_seen: r.last_seen,
            role: parse_role(&r.role)?,
            last_read: r.last_read_message_id.map(MessageId),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: i64,
    chat_id: i64,
    sender_id: i64,
    username: String,
    body: String,
    created_at: DateTime<Utc>,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Self {
            id: MessageId(r.id),
            chat_id: ChatId(r.chat_id),
            sender_id: UserId(r.sender_id),
            sender_username: Username::from_trusted(r.username),
            body: MessageBody::from_trusted(r.body),
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SummaryRow {
    #[sqlx(flatten)]
    chat: ChatRow,
    peer_id: Option<i64>,
    peer_username: Option<String>,
    peer_last_seen: Option<DateTime<Utc>>,
    unread: i64,
    lm_id: Option<i64>,
    lm_sender_id: Option<i64>,
    lm_username: Option<String>,
    lm_body: Option<String>,
    lm_created_at: Option<DateTime<Utc>>,
}

impl TryFrom<SummaryRow> for ChatSummary {
    type Error = Error;

    fn try_from(r: SummaryRow) -> Result<Self, Error> {
        let chat = Chat::try_from(r.chat)?;
        let peer = match (r.peer_id, r.peer_username) {
            (Some(id), Some(username)) => Some(Peer {
                id: UserId(id),
                username: Username::from_trusted(username),
                last_seen: r.peer_last_seen,
            }),
            _ => None,
        };
        let last_message = match (
            r.lm_id,
            r.lm_sender_id,
            r.lm_username,
            r.lm_body,
            r.lm_created_at,
        ) {
            (Some(id), Some(sender), Some(username), Some(body), Some(created_at)) => {
                Some(Message {
                    id: MessageId(id),
                    chat_id: chat.id,
                    sender_id: UserId(sender),
                    sender_username: Username::from_trusted(username),
                    body: MessageBody::from_trusted(body),
                    created_at,
                })
            }
            _ => None,
        };
        Ok(Self {
            chat,
            peer,
            unread: r.unread,
            last_message,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RoomRow {
    id: i64,
    name: String,
    members_count: i64,
    is_member: bool,
}

impl From<RoomRow> for RoomSummary {
    fn from(r: RoomRow) -> Self {
        Self {
            chat_id: ChatId(r.id),
            name: ChatName::from_trusted(r.name),
            members_count: r.members_count,
            is_member: r.is_member,
        }
    }
}

// Column lists as macros, so queries stay `&'static str` literals built with `concat!`.
macro_rules! user_columns {
    () => {
        "id, username, email, password_hash, created_at, last_seen"
    };
}
macro_rules! chat_columns {
    () => {
        "c.id, c.kind, c.name, c.visibility, c.created_at"
    };
}
macro_rules! message_select {
    () => {
        "SELECT m.id, m.chat_id, m.sender_id, u.username, m.body, m.created_at \
         FROM messages m JOIN users u ON u.id = m.sender_id "
    };
}
pub(crate) use {chat_columns, message_select, user_columns};

/// Implements every storage port for `$store`, which has `read` and `write` pools of `$db`.
/// Reads go to `read`; every statement that writes goes to `write`, which SQLite keeps to a
/// single connection so writers queue instead of failing with `database is locked`.
macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};

        use $crate::adapters::sql::{
            chat_columns, db_error, message_select, user_columns, user_fk_error, AccessRow,
            ChatRow, MemberRow, MessageRow, RoomRow, SummaryRow, UserRow, only_row,
        };
        use $crate::domain::error::{Error, Result};
        use $crate::domain::{
            Chat, ChatId, ChatSummary, HistoryPage, Member, Message, MessageId, NewGroup,
            NewMessage, NewUser, Role, RoomSummary, SessionId, User, UserId,
        };
        use $crate::ports::{ChatAccess, ChatRepo, MessageRepo, SessionRepo, UserRepo};

        #[async_trait]
        impl UserRepo for $store {
            async fn create(&self, user: &NewUser) -> Result<User> {
                let sql = concat!("INSERT INTO users (username, email, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING ", user_columns!());
                sqlx::query_as::<_, UserRow>(sql)
                    .bind(user.username.as_str())
                    .bind(user.email.as_str())
                    .bind(&user.password_hash)
                    .bind(user.created_at)
                    .fetch_all(&self.write)
                    .await
                    .and_then(only_row)
                    .map(User::from)
                    .map_err(db_error)
            }

            async fn find(&self, id: UserId) -> Result<Option<User>> {
                let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
                sqlx::query_as::<_, UserRow>(sql)
                    .bind(id.0)
                    .fetch_optional(&self.read)
                    .await
                    .map(|r| r.map(User::from))
                    .map_err(db_error)
            }

            async fn find_by_login(&self, login: &str) -> Result<Option<User>> {
                let sql = concat!("SELECT ", user_columns!(), " FROM users \
                     WHERE lower(username) = lower($1) OR lower(email) = lower($1) \
                     ORDER BY lower(username) = lower($1) DESC LIMIT 1");
                sqlx::query_as::<_, UserRow>(sql)
                    .bind(login)
                    .fetch_optional(&self.read)
                    .await
                    .map(|r| r.map(User::from))
                    .map_err(db_error)
            }

            async fn list_except(&self, except: UserId) -> Result<Vec<User>> {
                let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id <> $1 ORDER BY lower(username), id");
                sqlx::query_as::<_, UserRow>(sql)
                    .bind(except.0)
                    .fetch_all(&self.read)
                    .await
                    .map(|rows| rows.into_iter().map(User::from).collect())
                    .map_err(db_error)
            }

            async fn touch_last_seen(&self, id: UserId, at: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE users SET last_seen = $1 WHERE id = $2")
                    .bind(at)
                    .bind(id.0)
                    .execute(&self.write)
                    .await
                    .map(drop)
                    .map_err(db_error)
            }
        }

        impl $store {
            async fn chat_by_id(&self, id: i64) -> Result<Chat> {
                let sql = concat!("SELECT ", chat_columns!(), " FROM chats c WHERE c.id = $1");
                sqlx::query_as::<_, ChatRow>(sql)
                    .bind(id)
                    .fetch_one(&self.write)
                    .await
                    .map_err(db_error)?
                    .try_into()
            }

            /// What a foreign-key violation on a row naming `chat` and `user` was about:
            /// SQLite does not say which key failed. The chat is checked first.
            async fn missing_chat_or_user(&self, chat: ChatId, user: UserId) -> Error {
                let exists = |sql: &'static str, id: i64| async move {
                    sqlx::query_scalar::<_, i64>(sql)
                        .bind(id)
                        .fetch_optional(&self.write)
                        .await
                        .map(|r| r.is_some())
                        .map_err(db_error)
                };
                match exists("SELECT id FROM chats WHERE id = $1", chat.0).await {
                    Ok(false) => return Error::ChatNotFound,
                    Ok(true) => {}
                    Err(e) => return e,
                }
                match exists("SELECT id FROM users WHERE id = $1", user.0).await {
                    Ok(false) => Error::UserNotFound,
                    Ok(true) => Error::unexpected(anyhow::anyhow!(
                        "foreign key violation, yet chat {chat} and user {user} exist"
                    )),
                    Err(e) => e,
                }
            }
        }

        #[async_trait]
        impl ChatRepo for $store {
            async fn get_or_create_direct(
                &self,
                a: UserId,
                b: UserId,
                at: DateTime<Utc>,
            ) -> Result<(Chat, bool)> {
                let (low, high) = if a < b { (a.0, b.0) } else { (b.0, a.0) };
                let mut tx = self.write.begin().await.map_err(db_error)?;
                let created: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO chats (kind, visibility, direct_low, direct_high, created_at) \
                     VALUES ('direct', 'private', $1, $2, $3) \
                     ON CONFLICT (direct_low, direct_high) DO NOTHING RETURNING id",
                )
                .bind(low)
                .bind(high)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await
                .map_err(user_fk_error)?;
                let id = match created {
                    Some(id) => {
                        sqlx::query(
                            "INSERT INTO chat_members (chat_id, user_id, role, joined_at) \
                             VALUES ($1, $2, 'member', $4), ($1, $3, 'member', $4)",
                        )
                        .bind(id)
                        .bind(low)
                        .bind(high)
                        .bind(at)
                        .execute(&mut *tx)
                        .await
                        .map_err(user_fk_error)?;
                        id
                    }
                    None => sqlx::query_scalar(
                        "SELECT id FROM chats WHERE direct_low = $1 AND direct_high = $2",
                    )
                    .bind(low)
                    .bind(high)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?,
                };
                tx.commit().await.map_err(db_error)?;
                Ok((self.chat_by_id(id).await?, created.is_some()))
            }

            async fn create_group(&self, group: &NewGroup) -> Result<Chat> {
                let mut tx = self.write.begin().await.map_err(db_error)?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO chats (kind, name, visibility, created_at) \
                     VALUES ('group', $1, $2, $3) RETURNING id",
                )
                .bind(group.name.as_str())
                .bind(group.visibility.as_str())
                .bind(group.created_at)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                let mut seen = std::collections::HashSet::new();
                let everyone = std::iter::once((group.owner, Role::Owner))
                    .chain(group.members.iter().map(|m| (*m, Role::Member)))
                    .filter(|(u, _)| seen.insert(*u));
                for (user, role) in everyone {
                    sqlx::query(
                        "INSERT INTO chat_members (chat_id, user_id, role, joined_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(id)
                    .bind(user.0)
                    .bind(role.as_str())
                    .bind(group.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(user_fk_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                self.chat_by_id(id).await
            }

            async fn access(&self, chat: ChatId, user: UserId) -> Result<ChatAccess> {
                let sql = concat!("SELECT ", chat_columns!(), ", m.role FROM chats c \
                     LEFT JOIN chat_members m ON m.chat_id = c.id AND m.user_id = $2 \
                     WHERE c.id = $1");
                match sqlx::query_as::<_, AccessRow>(sql)
                    .bind(chat.0)
                    .bind(user.0)
                    .fetch_optional(&self.read)
                    .await
                    .map_err(db_error)?
                {
                    Some(row) => row.into_access(),
                    None => Ok(ChatAccess::NoSuchChat),
                }
            }

            async fn members(&self, chat: ChatId) -> Result<Vec<Member>> {
                let rows = sqlx::query_as::<_, MemberRow>(
                    "SELECT u.id, u.username, u.last_seen, m.role, m.last_read_message_id \
                     FROM chat_members m JOIN users u ON u.id = m.user_id \
                     WHERE m.chat_id = $1 ORDER BY m.seq",
                )
                .bind(chat.0)
                .fetch_all(&self.read)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(Member::try_from).collect()
            }

            async fn list_for_user(&self, user: UserId) -> Result<Vec<ChatSummary>> {
                let sql = concat!("SELECT ", chat_columns!(), ", \
                       p.id AS peer_id, p.username AS peer_username, p.last_seen AS peer_last_seen, \
                       (SELECT count(*) FROM messages x WHERE x.chat_id = c.id AND x.sender_id <> $1 \
                          AND x.id > COALESCE(me.last_read_message_id, 0)) AS unread, \
                       lm.id AS lm_id, lm.sender_id AS lm_sender_id, lu.username AS lm_username, \
                       lm.body AS lm_body, lm.created_at AS lm_created_at \
                     FROM chat_members me \
                     JOIN chats c ON c.id = me.chat_id \
                     LEFT JOIN users p ON c.kind = 'direct' \
                       AND p.id = CASE WHEN c.direct_low = $1 THEN c.direct_high ELSE c.direct_low END \
                     LEFT JOIN messages lm ON lm.id = \
                       (SELECT max(y.id) FROM messages y WHERE y.chat_id = c.id) \
                     LEFT JOIN users lu ON lu.id = lm.sender_id \
                     WHERE me.user_id = $1 \
                     ORDER BY lm.id DESC NULLS LAST, c.id DESC");
                let rows = sqlx::query_as::<_, SummaryRow>(sql)
                    .bind(user.0)
                    .fetch_all(&self.read)
                    .await
                    .map_err(db_error)?;
                rows.into_iter().map(ChatSummary::try_from).collect()
            }

            async fn chat_ids_of(&self, user: UserId) -> Result<Vec<ChatId>> {
                sqlx::query_scalar::<_, i64>(
                    "SELECT chat_id FROM chat_members WHERE user_id = $1 ORDER BY chat_id",
                )
                .bind(user.0)
                .fetch_all(&self.read)
                .await
                .map(|ids| ids.into_iter().map(ChatId).collect())
                .map_err(db_error)
            }

            async fn list_public(&self, viewer: UserId) -> Result<Vec<RoomSummary>> {
                sqlx::query_as::<_, RoomRow>(
                    "SELECT c.id, c.name, \
                       (SELECT count(*) FROM chat_members m WHERE m.chat_id = c.id) AS members_count, \
                       EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = c.id AND m.user_id = $1) \
                         AS is_member \
                     FROM chats c WHERE c.kind = 'group' AND c.visibility = 'public' \
                     ORDER BY lower(c.name), c.id",
                )
                .bind(viewer.0)
                .fetch_all(&self.read)
                .await
                .map(|rows| rows.into_iter().map(RoomSummary::from).collect())
                .map_err(db_error)
            }

            async fn add_member(
                &self,
                chat: ChatId,
                user: UserId,
                role: Role,
                at: DateTime<Utc>,
            ) -> Result<bool> {
                let inserted = sqlx::query(
                    "INSERT INTO chat_members (chat_id, user_id, role, joined_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (chat_id, user_id) DO NOTHING",
                )
                .bind(chat.0)
                .bind(user.0)
                .bind(role.as_str())
                .bind(at)
                .execute(&self.write)
                .await;
                match inserted {
                    Ok(r) => Ok(r.rows_affected() == 1),
                    Err(e) => match db_error(e) {
                        Error::ChatNotFound | Error::UserNotFound => {
                            Err(self.missing_chat_or_user(chat, user).await)
                        }
                        other => Err(other),
                    },
                }
            }

            async fn remove_member(&self, chat: ChatId, user: UserId) -> Result<bool> {
                sqlx::query("DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2")
                    .bind(chat.0)
                    .bind(user.0)
                    .execute(&self.write)
                    .await
                    .map(|r| r.rows_affected() == 1)
                    .map_err(db_error)
            }

            async fn set_role(&self, chat: ChatId, user: UserId, role: Role) -> Result<()> {
                let r = sqlx::query(
                    "UPDATE chat_members SET role = $3 WHERE chat_id = $1 AND user_id = $2",
                )
                .bind(chat.0)
                .bind(user.0)
                .bind(role.as_str())
                .execute(&self.write)
                .await
                .map_err(db_error)?;
                if r.rows_affected() == 0 {
                    return Err(Error::NotAMember);
                }
                Ok(())
            }

            async fn mark_read(
                &self,
                chat: ChatId,
                user: UserId,
                message: MessageId,
            ) -> Result<bool> {
                let moved = sqlx::query(
                    "UPDATE chat_members SET last_read_message_id = $3 \
                     WHERE chat_id = $1 AND user_id = $2 \
                       AND (last_read_message_id IS NULL OR last_read_message_id < $3)",
                )
                .bind(chat.0)
                .bind(user.0)
                .bind(message.0)
                .execute(&self.write)
                .await
                .map_err(db_error)?
                .rows_affected()
                    == 1;
                if moved {
                    return Ok(true);
                }
                let member: Option<i64> = sqlx::query_scalar(
                    "SELECT user_id FROM chat_members WHERE chat_id = $1 AND user_id = $2",
                )
                .bind(chat.0)
                .bind(user.0)
                .fetch_optional(&self.read)
                .await
                .map_err(db_error)?;
                member.map(|_| false).ok_or(Error::NotAMember)
            }
        }

        #[async_trait]
        impl MessageRepo for $store {
            async fn insert(&self, message: &NewMessage) -> Result<MessageId> {
                let inserted = sqlx::query_scalar::<_, i64>(
                    "INSERT INTO messages (chat_id, sender_id, body, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(message.chat_id.0)
                .bind(message.sender_id.0)
                .bind(message.body.as_str())
                .bind(message.created_at)
                .fetch_all(&self.write)
                .await
                .and_then(only_row);
                match inserted {
                    Ok(id) => Ok(MessageId(id)),
                    Err(e) => match db_error(e) {
                        Error::ChatNotFound | Error::UserNotFound => Err(self
                            .missing_chat_or_user(message.chat_id, message.sender_id)
                            .await),
                        other => Err(other),
                    },
                }
            }

            async fn list(&self, chat: ChatId, page: HistoryPage) -> Result<Vec<Message>> {
                let oldest_first = page.after.is_some() && page.before.is_none();
                let sql = if oldest_first {
                    concat!(message_select!(), "WHERE m.chat_id = $1 \
                       AND ($2 IS NULL OR m.id < $2) AND ($3 IS NULL OR m.id > $3) \
                     ORDER BY m.id ASC LIMIT $4")
                } else {
                    concat!(message_select!(), "WHERE m.chat_id = $1 \
                       AND ($2 IS NULL OR m.id < $2) AND ($3 IS NULL OR m.id > $3) \
                     ORDER BY m.id DESC LIMIT $4")
                };
                let mut rows: Vec<Message> = sqlx::query_as::<_, MessageRow>(sql)
                    .bind(chat.0)
                    .bind(page.before.map(|m| m.0))
                    .bind(page.after.map(|m| m.0))
                    .bind(i64::from(page.limit))
                    .fetch_all(&self.read)
                    .await
                    .map_err(db_error)?
                    .into_iter()
                    .map(Message::from)
                    .collect();
                if !oldest_first {
                    rows.reverse();
                }
                Ok(rows)
            }

            async fn exists_in(&self, chat: ChatId, message: MessageId) -> Result<bool> {
                sqlx::query_scalar::<_, i64>(
                    "SELECT id FROM messages WHERE id = $1 AND chat_id = $2",
                )
                .bind(message.0)
                .bind(chat.0)
                .fetch_optional(&self.read)
                .await
                .map(|r| r.is_some())
                .map_err(db_error)
            }
        }

        #[async_trait]
        impl SessionRepo for $store {
            async fn revoke(&self, session: &SessionId, expires_at: DateTime<Utc>) -> Result<()> {
                let mut tx = self.write.begin().await.map_err(db_error)?;
                sqlx::query("DELETE FROM revoked_sessions WHERE expires_at < $1")
                    .bind(Utc::now())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                // Revoked twice, a session stays revoked until the later of the two expiries.
                sqlx::query(
                    "INSERT INTO revoked_sessions (jti, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at \
                     WHERE excluded.expires_at > revoked_sessions.expires_at",
                )
                .bind(&session.0)
                .bind(expires_at)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn is_revoked(&self, session: &SessionId) -> Result<bool> {
                sqlx::query_scalar::<_, String>("SELECT jti FROM revoked_sessions WHERE jti = $1")
                    .bind(&session.0)
                    .fetch_optional(&self.read)
                    .await
                    .map(|r| r.is_some())
                    .map_err(db_error)
            }
        }
    };
}

pub(crate) use sql_store;
