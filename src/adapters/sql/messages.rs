//! [`MessageRepo`](crate::ports::MessageRepo) over SQL: a chat's history, paged by message id.

use chrono::{DateTime, Utc};

use crate::domain::{ChatId, Message, MessageBody, MessageId, UserId, Username};

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

/// The select of [`MessageRow`] from `messages m` with its sender `u`, as a macro so that
/// queries stay `&'static str` literals built with `concat!`.
macro_rules! message_select {
    () => {
        "SELECT m.id, m.chat_id, m.sender_id, u.username, m.body, m.created_at \
         FROM messages m JOIN users u ON u.id = m.sender_id "
    };
}
pub(crate) use message_select;

/// Implements [`MessageRepo`](crate::ports::MessageRepo) for `$store` over `$db`.
macro_rules! message_repo {
    ($store:ty, $db:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use $crate::adapters::sql::messages::{MessageRow, message_select};
            use $crate::adapters::sql::{is_foreign_key_violation, only_row};
            use $crate::domain::error::{Error, Result};
            use $crate::domain::{ChatId, HistoryPage, Message, MessageId, NewMessage};
            use $crate::ports::MessageRepo;

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
                        Err(e) if is_foreign_key_violation(&e) => Err(self
                            .missing_chat_or_user(message.chat_id, message.sender_id)
                            .await),
                        Err(e) => Err(Error::unexpected(e)),
                    }
                }

                async fn list(&self, chat: ChatId, page: HistoryPage) -> Result<Vec<Message>> {
                    let oldest_first = page.after.is_some() && page.before.is_none();
                    let sql = if oldest_first {
                        concat!(
                            message_select!(),
                            "WHERE m.chat_id = $1 \
                               AND ($2 IS NULL OR m.id < $2) AND ($3 IS NULL OR m.id > $3) \
                             ORDER BY m.id ASC LIMIT $4"
                        )
                    } else {
                        concat!(
                            message_select!(),
                            "WHERE m.chat_id = $1 \
                               AND ($2 IS NULL OR m.id < $2) AND ($3 IS NULL OR m.id > $3) \
                             ORDER BY m.id DESC LIMIT $4"
                        )
                    };
                    let mut rows: Vec<Message> = sqlx::query_as::<_, MessageRow>(sql)
                        .bind(chat.0)
                        .bind(page.before.map(|m| m.0))
                        .bind(page.after.map(|m| m.0))
                        .bind(i64::from(page.limit))
                        .fetch_all(&self.read)
                        .await
                        .map_err(Error::unexpected)?
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
                    .map_err(Error::unexpected)
                }
            }
        };
    };
}
pub(crate) use message_repo;
