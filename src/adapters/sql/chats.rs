//! [`ChatRepo`](crate::ports::ChatRepo) over SQL: direct chats (one per pair, as the
//! constraint `chats_direct_pair_key` decides), groups, memberships, read markers, and the
//! lists a user sees.

use chrono::{DateTime, Utc};

use crate::domain::error::Error;
use crate::domain::{
    ChangeSeq, Chat, ChatAccess, ChatId, ChatKind, ChatName, ChatSummary, ClientId, Member,
    Message, MessageBody, MessageId, Peer, Role, RoomSummary, Seq, UserId, Username, Visibility,
};

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

/// A chat with the role of one user in it, if any.
#[derive(sqlx::FromRow)]
pub(crate) struct AccessRow {
    #[sqlx(flatten)]
    chat: ChatRow,
    role: Option<String>,
}

impl TryFrom<AccessRow> for ChatAccess {
    type Error = Error;

    fn try_from(r: AccessRow) -> Result<Self, Error> {
        let chat = Chat::try_from(r.chat)?;
        Ok(match r.role {
            Some(role) => Self::Member(chat, parse_role(&role)?),
            None => Self::Outsider(chat),
        })
    }
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

/// A chat as its member lists it: the peer of a direct chat, the unread count and the last
/// message (`lm_`).
#[derive(sqlx::FromRow)]
pub(crate) struct SummaryRow {
    #[sqlx(flatten)]
    chat: ChatRow,
    peer_id: Option<i64>,
    peer_username: Option<String>,
    peer_last_seen: Option<DateTime<Utc>>,
    unread: i64,
    lm_id: Option<i64>,
    lm_seq: Option<i64>,
    lm_sender_id: Option<i64>,
    lm_username: Option<String>,
    lm_body: Option<String>,
    lm_created_at: Option<DateTime<Utc>>,
    lm_client_id: Option<String>,
    lm_edited_at: Option<DateTime<Utc>>,
    lm_deleted_at: Option<DateTime<Utc>>,
    lm_change_seq: Option<i64>,
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
            r.lm_seq,
            r.lm_sender_id,
            r.lm_username,
            r.lm_body,
            r.lm_created_at,
        ) {
            (Some(id), Some(seq), Some(sender), Some(username), Some(body), Some(created_at)) => {
                Some(Message {
                    id: MessageId(id),
                    chat_id: chat.id,
                    seq: Seq(seq),
                    sender_id: UserId(sender),
                    sender_username: Username::from_trusted(username),
                    body: MessageBody::from_trusted(body),
                    created_at,
                    client_id: r.lm_client_id.map(ClientId::from_trusted),
                    edited_at: r.lm_edited_at,
                    deleted: r.lm_deleted_at.is_some(),
                    // The chat list shows the last message's text, not what it answers or
                    // its reactions.
                    reply_to: None,
                    reactions: Vec::new(),
                    change_seq: r.lm_change_seq.map(ChangeSeq),
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

fn parse_role(s: &str) -> Result<Role, Error> {
    Role::parse(s).ok_or_else(|| corrupt("chat_members.role", s))
}

fn corrupt(column: &str, value: &str) -> Error {
    Error::unexpected(anyhow::anyhow!("unexpected value {value:?} in {column}"))
}

/// The columns of [`ChatRow`] from `chats c`, as a macro so that queries stay `&'static str`
/// literals built with `concat!`.
macro_rules! chat_columns {
    () => {
        "c.id, c.kind, c.name, c.visibility, c.created_at"
    };
}
pub(crate) use chat_columns;

/// Implements [`ChatRepo`](crate::ports::ChatRepo) for `$store` over `$db`.
macro_rules! chat_repo {
    ($store:ty, $db:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use chrono::{DateTime, Utc};

            use $crate::adapters::sql::chats::{
                AccessRow, ChatRow, MemberRow, RoomRow, SummaryRow, chat_columns,
            };
            use $crate::adapters::sql::{is_foreign_key_violation, on_foreign_key};
            use $crate::domain::error::{Error, Result};
            use $crate::domain::{
                Chat, ChatAccess, ChatId, ChatSummary, Member, MessageId, NewGroup, Role,
                RoomSummary, UserId,
            };
            use $crate::ports::ChatRepo;

            impl $store {
                /// A chat just written, read on the writer so that it is there.
                async fn chat_by_id(&self, id: i64) -> Result<Chat> {
                    let sql = concat!("SELECT ", chat_columns!(), " FROM chats c WHERE c.id = $1");
                    sqlx::query_as::<_, ChatRow>(sql)
                        .bind(id)
                        .fetch_one(&self.write)
                        .await
                        .map_err(Error::unexpected)?
                        .try_into()
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
                    let mut tx = self.write.begin().await.map_err(Error::unexpected)?;
                    // Its only foreign keys name the two users.
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
                    .map_err(|e| on_foreign_key(e, Error::UserNotFound))?;
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
                            .map_err(|e| on_foreign_key(e, Error::UserNotFound))?;
                            id
                        }
                        None => sqlx::query_scalar(
                            "SELECT id FROM chats WHERE direct_low = $1 AND direct_high = $2",
                        )
                        .bind(low)
                        .bind(high)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(Error::unexpected)?,
                    };
                    tx.commit().await.map_err(Error::unexpected)?;
                    Ok((self.chat_by_id(id).await?, created.is_some()))
                }

                async fn create_group(&self, group: &NewGroup) -> Result<Chat> {
                    let mut tx = self.write.begin().await.map_err(Error::unexpected)?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO chats (kind, name, visibility, created_at) \
                         VALUES ('group', $1, $2, $3) RETURNING id",
                    )
                    .bind(group.name.as_str())
                    .bind(group.visibility.as_str())
                    .bind(group.created_at)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(Error::unexpected)?;
                    let everyone = std::iter::once((group.owner, Role::Owner))
                        .chain(group.members.iter().map(|m| (*m, Role::Member)));
                    for (user, role) in everyone {
                        // The chat is this transaction's own: a missing row is a user.
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
                        .map_err(|e| on_foreign_key(e, Error::UserNotFound))?;
                    }
                    tx.commit().await.map_err(Error::unexpected)?;
                    self.chat_by_id(id).await
                }

                async fn access(&self, chat: ChatId, user: UserId) -> Result<ChatAccess> {
                    let sql = concat!(
                        "SELECT ",
                        chat_columns!(),
                        ", m.role FROM chats c \
                         LEFT JOIN chat_members m ON m.chat_id = c.id AND m.user_id = $2 \
                         WHERE c.id = $1"
                    );
                    sqlx::query_as::<_, AccessRow>(sql)
                        .bind(chat.0)
                        .bind(user.0)
                        .fetch_optional(&self.read)
                        .await
                        .map_err(Error::unexpected)?
                        .map_or(Ok(ChatAccess::NoSuchChat), ChatAccess::try_from)
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
                    .map_err(Error::unexpected)?;
                    rows.into_iter().map(Member::try_from).collect()
                }

                async fn list_for_user(&self, user: UserId) -> Result<Vec<ChatSummary>> {
                    let sql = concat!(
                        "SELECT ",
                        chat_columns!(),
                        ", \
                         p.id AS peer_id, p.username AS peer_username, \
                         p.last_seen AS peer_last_seen, \
                         (SELECT count(*) FROM messages x \
                            WHERE x.chat_id = c.id AND x.sender_id <> $1 \
                              AND x.id > COALESCE(me.last_read_message_id, 0)) AS unread, \
                         lm.id AS lm_id, lm.seq AS lm_seq, lm.sender_id AS lm_sender_id, \
                         lu.username AS lm_username, lm.body AS lm_body, \
                         lm.created_at AS lm_created_at, lm.client_id AS lm_client_id, \
                         lm.edited_at AS lm_edited_at, lm.deleted_at AS lm_deleted_at, \
                         lm.change_seq AS lm_change_seq \
                         FROM chat_members me \
                         JOIN chats c ON c.id = me.chat_id \
                         LEFT JOIN users p ON c.kind = 'direct' AND p.id = \
                           CASE WHEN c.direct_low = $1 THEN c.direct_high ELSE c.direct_low END \
                         LEFT JOIN messages lm ON lm.id = \
                           (SELECT max(y.id) FROM messages y WHERE y.chat_id = c.id) \
                         LEFT JOIN users lu ON lu.id = lm.sender_id \
                         WHERE me.user_id = $1 \
                         ORDER BY lm.id DESC NULLS LAST, c.id DESC"
                    );
                    let rows = sqlx::query_as::<_, SummaryRow>(sql)
                        .bind(user.0)
                        .fetch_all(&self.read)
                        .await
                        .map_err(Error::unexpected)?;
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
                    .map_err(Error::unexpected)
                }

                async fn list_public(&self, viewer: UserId) -> Result<Vec<RoomSummary>> {
                    sqlx::query_as::<_, RoomRow>(
                        "SELECT c.id, c.name, \
                           (SELECT count(*) FROM chat_members m WHERE m.chat_id = c.id) \
                             AS members_count, \
                           EXISTS (SELECT 1 FROM chat_members m \
                                   WHERE m.chat_id = c.id AND m.user_id = $1) AS is_member \
                         FROM chats c WHERE c.kind = 'group' AND c.visibility = 'public' \
                         ORDER BY lower(c.name), c.id",
                    )
                    .bind(viewer.0)
                    .fetch_all(&self.read)
                    .await
                    .map(|rows| rows.into_iter().map(RoomSummary::from).collect())
                    .map_err(Error::unexpected)
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
                        Err(e) if is_foreign_key_violation(&e) => {
                            Err(self.missing_chat_or_user(chat, user).await)
                        }
                        Err(e) => Err(Error::unexpected(e)),
                    }
                }

                async fn remove_member(&self, chat: ChatId, user: UserId) -> Result<bool> {
                    sqlx::query("DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2")
                        .bind(chat.0)
                        .bind(user.0)
                        .execute(&self.write)
                        .await
                        .map(|r| r.rows_affected() == 1)
                        .map_err(Error::unexpected)
                }

                async fn set_role(&self, chat: ChatId, user: UserId, role: Role) -> Result<()> {
                    let changed = sqlx::query(
                        "UPDATE chat_members SET role = $3 WHERE chat_id = $1 AND user_id = $2",
                    )
                    .bind(chat.0)
                    .bind(user.0)
                    .bind(role.as_str())
                    .execute(&self.write)
                    .await
                    .map_err(Error::unexpected)?
                    .rows_affected();
                    if changed == 0 {
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
                    .map_err(Error::unexpected)?
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
                    .map_err(Error::unexpected)?;
                    member.map(|_| false).ok_or(Error::NotAMember)
                }
            }
        };
    };
}
pub(crate) use chat_repo;
