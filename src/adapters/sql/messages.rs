//! [`MessageRepo`](crate::ports::MessageRepo) over SQL: a chat's history, paged by message id
//! or by seq, and the insert that numbers each chat's messages without a gap.
//!
//! An insert runs in one transaction: `UPDATE chats SET last_seq = last_seq + 1 ... RETURNING`
//! takes the chat's next seq, then the message is inserted with it. On PostgreSQL the update
//! locks the chat's row until the transaction ends, so writers of one chat take their seqs one
//! after another, each only once the one before has committed: seq order is commit order, and
//! a transaction that rolls back gives its seq back. On SQLite all writes go through the one
//! writer connection, so transactions never overlap at all.
//!
//! Messages posted at about the same time are stored together ([`MessageRepo::insert_all`]):
//! one transaction advances each chat's seq once for all of its messages, in the order of chat
//! ids so that two batches never deadlock, and one multi-row `INSERT` stores them. When any
//! statement fails, the batch rolls back and its messages are inserted one by one, so that
//! each gets its own answer.
//!
//! [`MessageRepo::insert_all`]: crate::ports::MessageRepo::insert_all
//!
//! A message sent with a `client_id` is looked up first; when it is already stored, nothing is
//! written. Two sends of one message that both miss it meet at the unique index
//! `messages_client_id_key`: the second insert breaks it, rolls back (giving back its seq) and
//! answers the message the first one stored.

use chrono::{DateTime, Utc};

use crate::domain::{ChatId, ClientId, Message, MessageBody, MessageId, Seq, UserId, Username};

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: i64,
    chat_id: i64,
    seq: i64,
    sender_id: i64,
    username: String,
    body: String,
    created_at: DateTime<Utc>,
    client_id: Option<String>,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Self {
            id: MessageId(r.id),
            chat_id: ChatId(r.chat_id),
            seq: Seq(r.seq),
            sender_id: UserId(r.sender_id),
            sender_username: Username::from_trusted(r.username),
            body: MessageBody::from_trusted(r.body),
            created_at: r.created_at,
            client_id: r.client_id.map(ClientId::from_trusted),
        }
    }
}

/// The select of [`MessageRow`] from `messages m` with its sender `u`, as a macro so that
/// queries stay `&'static str` literals built with `concat!`.
macro_rules! message_select {
    () => {
        "SELECT m.id, m.chat_id, m.seq, m.sender_id, u.username, m.body, m.created_at, \
                m.client_id \
         FROM messages m JOIN users u ON u.id = m.sender_id "
    };
}
pub(crate) use message_select;

/// The bounds of a page, `$1` to `$6` of the list queries: the chat, then `before`, `after`,
/// `before_seq`, `after_seq` (each may be NULL) and the limit.
macro_rules! page_filter {
    () => {
        "WHERE m.chat_id = $1 \
           AND ($2 IS NULL OR m.id < $2) AND ($3 IS NULL OR m.id > $3) \
           AND ($4 IS NULL OR m.seq < $4) AND ($5 IS NULL OR m.seq > $5) "
    };
}
pub(crate) use page_filter;

/// The name of the unique index that recognises a resent message.
pub(crate) const CLIENT_ID_KEY: &str = "messages_client_id_key";

/// Implements [`MessageRepo`](crate::ports::MessageRepo) for `$store` over `$db`.
macro_rules! message_repo {
    ($store:ty, $db:ty) => {
        const _: () = {
            use std::collections::HashMap;

            use async_trait::async_trait;

            use $crate::adapters::sql::messages::{
                CLIENT_ID_KEY, MessageRow, message_select, page_filter,
            };
            use $crate::adapters::sql::{Dialect, on_foreign_key};
            use $crate::domain::error::{Error, Result};
            use $crate::domain::{
                ChatId, ClientId, HistoryPage, Inserted, Message, MessageId, NewMessage, Seq,
                UserId,
            };
            use $crate::ports::MessageRepo;

            impl $store {
                /// The message `sender` stored under `client_id` in `chat`, if any.
                async fn by_client_id(
                    &self,
                    pool: &sqlx::Pool<$db>,
                    chat: ChatId,
                    sender: UserId,
                    client_id: &ClientId,
                ) -> Result<Option<Message>> {
                    let sql = concat!(
                        message_select!(),
                        "WHERE m.chat_id = $1 AND m.sender_id = $2 AND m.client_id = $3"
                    );
                    sqlx::query_as::<_, MessageRow>(sql)
                        .bind(chat.0)
                        .bind(sender.0)
                        .bind(client_id.as_str())
                        .fetch_optional(pool)
                        .await
                        .map(|row| row.map(Message::from))
                        .map_err(Error::unexpected)
                }
            }

            impl $store {
                /// The messages of `messages` that their senders already stored under the same
                /// `client_id`, by chat, sender and `client_id`, in one query.
                async fn stored_resends(
                    &self,
                    messages: &[NewMessage],
                ) -> std::result::Result<HashMap<(ChatId, UserId, String), Message>, sqlx::Error>
                {
                    let keyed: Vec<_> = messages
                        .iter()
                        .filter_map(|m| Some((m.chat_id, m.sender_id, m.client_id.as_ref()?)))
                        .collect();
                    if keyed.is_empty() {
                        return Ok(HashMap::new());
                    }
                    let mut query = sqlx::QueryBuilder::<$db>::new(concat!(
                        message_select!(),
                        "WHERE (m.chat_id, m.sender_id, m.client_id) IN ("
                    ));
                    query.push_values(keyed, |mut row, (chat, sender, client_id)| {
                        row.push_bind(chat.0)
                            .push_bind(sender.0)
                            .push_bind(client_id.as_str().to_owned());
                    });
                    query.push(")");
                    let found = query
                        .build_query_as::<MessageRow>()
                        .fetch_all(&self.read)
                        .await?;
                    Ok(found
                        .into_iter()
                        .map(Message::from)
                        .filter_map(|m| {
                            let key = (m.chat_id, m.sender_id, m.client_id.as_ref()?.as_str().to_owned());
                            Some((key, m))
                        })
                        .collect())
                }

                /// Stores `messages` in one transaction: each chat's seq is advanced once for
                /// all its messages, then one statement inserts them all. Any failed statement
                /// rolls the whole batch back and is returned, so that the caller can store the
                /// messages one by one and learn which of them was at fault.
                async fn insert_batch(
                    &self,
                    messages: &[NewMessage],
                ) -> std::result::Result<Vec<Result<Inserted>>, sqlx::Error> {
                    let mut resends = self.stored_resends(messages).await?;
                    let mut done: Vec<Option<Result<Inserted>>> =
                        messages.iter().map(|_| None).collect();
                    for (i, m) in messages.iter().enumerate() {
                        if let Some(client_id) = &m.client_id
                            && let Some(found) = resends.remove(&(
                                m.chat_id,
                                m.sender_id,
                                client_id.as_str().to_owned(),
                            ))
                        {
                            done[i] = Some(Ok(Inserted::Existing(found)));
                        }
                    }
                    // Chats are locked in the order of their ids, so that two batches never
                    // wait for each other; within a chat, messages keep the order they came in.
                    let mut order: Vec<usize> = (0..messages.len())
                        .filter(|&i| done[i].is_none())
                        .collect();
                    order.sort_by_key(|&i| messages[i].chat_id);
                    let mut tx = self.write.begin().await?;
                    let mut rows: Vec<(usize, Seq)> = Vec::with_capacity(order.len());
                    for group in order.chunk_by(|&a, &b| messages[a].chat_id == messages[b].chat_id) {
                        let chat = messages[group[0]].chat_id;
                        let count = i64::try_from(group.len()).unwrap_or(i64::MAX);
                        let last: Option<i64> = sqlx::query_scalar(
                            "UPDATE chats SET last_seq = last_seq + $2 WHERE id = $1 \
                             RETURNING last_seq",
                        )
                        .bind(chat.0)
                        .bind(count)
                        .fetch_optional(&mut *tx)
                        .await?;
                        match last {
                            Some(last) => rows.extend(
                                group
                                    .iter()
                                    .zip(last - count + 1..)
                                    .map(|(&i, seq)| (i, Seq(seq))),
                            ),
                            None => {
                                for &i in group {
                                    done[i] = Some(Err(Error::ChatNotFound));
                                }
                            }
                        }
                    }
                    if !rows.is_empty() {
                        let mut insert = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO messages \
                               (chat_id, seq, sender_id, body, created_at, client_id) ",
                        );
                        insert.push_values(&rows, |mut row, &(i, seq)| {
                            let m = &messages[i];
                            row.push_bind(m.chat_id.0)
                                .push_bind(seq.0)
                                .push_bind(m.sender_id.0)
                                .push_bind(m.body.as_str().to_owned())
                                .push_bind(m.created_at)
                                .push_bind(m.client_id.as_ref().map(|c| c.as_str().to_owned()));
                        });
                        insert.push(" RETURNING id, chat_id, seq");
                        // Neither database promises the order of RETURNING rows: each row
                        // is matched by its chat and seq.
                        let ids: HashMap<(i64, i64), i64> = insert
                            .build_query_as::<(i64, i64, i64)>()
                            .fetch_all(&mut *tx)
                            .await?
                            .into_iter()
                            .map(|(id, chat, seq)| ((chat, seq), id))
                            .collect();
                        for (i, seq) in rows {
                            let id = ids.get(&(messages[i].chat_id.0, seq.0)).copied();
                            done[i] = Some(match id {
                                Some(id) => Ok(Inserted::New {
                                    id: MessageId(id),
                                    seq,
                                }),
                                None => Err(Error::unexpected(anyhow::anyhow!(
                                    "message {seq} of chat {} went missing from its batch",
                                    messages[i].chat_id
                                ))),
                            });
                        }
                    }
                    if let Err(e) = tx.commit().await {
                        // Whether a commit that failed took effect is unknown; storing the
                        // messages again could store them twice.
                        let e = e.to_string();
                        return Ok(messages
                            .iter()
                            .map(|_| Err(Error::unexpected(anyhow::anyhow!("commit failed: {e}"))))
                            .collect());
                    }
                    Ok(done
                        .into_iter()
                        .map(|d| d.unwrap_or_else(|| Err(Error::unexpected(anyhow::anyhow!(
                            "a message of the batch was left unanswered"
                        )))))
                        .collect())
                }
            }

            #[async_trait]
            impl MessageRepo for $store {
                async fn insert_all(&self, messages: &[NewMessage]) -> Vec<Result<Inserted>> {
                    match self.insert_batch(messages).await {
                        Ok(done) => done,
                        Err(e) => {
                            // Rolled back: one by one, each message meets its own fate (a
                            // missing sender, a resend racing its first send).
                            tracing::debug!(error = %e, "batch insert failed; inserting one by one");
                            let mut done = Vec::with_capacity(messages.len());
                            for message in messages {
                                done.push(self.insert(message).await);
                            }
                            done
                        }
                    }
                }

                async fn insert(&self, message: &NewMessage) -> Result<Inserted> {
                    if let Some(client_id) = &message.client_id {
                        let found = self
                            .by_client_id(&self.read, message.chat_id, message.sender_id, client_id)
                            .await?;
                        if let Some(existing) = found {
                            return Ok(Inserted::Existing(existing));
                        }
                    }

                    // Committed with COMMIT, so `fetch_one` may stop the statements that
                    // return rows after their one row (see `only_row`).
                    let mut tx = self.write.begin().await.map_err(Error::unexpected)?;
                    let seq: Option<i64> = sqlx::query_scalar(
                        "UPDATE chats SET last_seq = last_seq + 1 WHERE id = $1 \
                         RETURNING last_seq",
                    )
                    .bind(message.chat_id.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(Error::unexpected)?;
                    let Some(seq) = seq else {
                        return Err(Error::ChatNotFound);
                    };
                    let inserted = sqlx::query_scalar::<_, i64>(
                        "INSERT INTO messages \
                           (chat_id, seq, sender_id, body, created_at, client_id) \
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    )
                    .bind(message.chat_id.0)
                    .bind(seq)
                    .bind(message.sender_id.0)
                    .bind(message.body.as_str())
                    .bind(message.created_at)
                    .bind(message.client_id.as_ref().map(ClientId::as_str))
                    .fetch_one(&mut *tx)
                    .await;
                    let e = match inserted {
                        Ok(id) => {
                            tx.commit().await.map_err(Error::unexpected)?;
                            return Ok(Inserted::New {
                                id: MessageId(id),
                                seq: Seq(seq),
                            });
                        }
                        Err(e) => e,
                    };
                    // Undoes the seq taken, before the writer is asked anything else: on
                    // SQLite the transaction holds the only writer connection.
                    tx.rollback().await.map_err(Error::unexpected)?;
                    let resent = match (&e, &message.client_id) {
                        (sqlx::Error::Database(db), Some(client_id))
                            if <$db as Dialect>::unique_violation(db.as_ref())
                                == Some(CLIENT_ID_KEY) =>
                        {
                            client_id
                        }
                        // This transaction found the chat and keeps it from going away: what
                        // is missing is the sender.
                        _ => return Err(on_foreign_key(e, Error::UserNotFound)),
                    };
                    // A racing send of the same message committed it first; read it where it
                    // was written.
                    self.by_client_id(&self.write, message.chat_id, message.sender_id, resent)
                        .await?
                        .map(Inserted::Existing)
                        .ok_or_else(|| {
                            Error::unexpected(anyhow::anyhow!(
                                "client_id {resent} of user {} in chat {} is taken, yet no \
                                 message has it",
                                message.sender_id,
                                message.chat_id
                            ))
                        })
                }

                async fn list(&self, chat: ChatId, page: HistoryPage) -> Result<Vec<Message>> {
                    let oldest_first = page.oldest_first();
                    let sql = if oldest_first {
                        concat!(
                            message_select!(),
                            page_filter!(),
                            "ORDER BY m.seq ASC LIMIT $6"
                        )
                    } else {
                        concat!(
                            message_select!(),
                            page_filter!(),
                            "ORDER BY m.seq DESC LIMIT $6"
                        )
                    };
                    let mut rows: Vec<Message> = sqlx::query_as::<_, MessageRow>(sql)
                        .bind(chat.0)
                        .bind(page.before.map(|m| m.0))
                        .bind(page.after.map(|m| m.0))
                        .bind(page.before_seq.map(|s| s.0))
                        .bind(page.after_seq.map(|s| s.0))
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
