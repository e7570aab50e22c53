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

//!
//! Edits, deletes and reactions are single writes, each in a transaction that first takes the
//! chat's next change number (`UPDATE chats SET last_change = last_change + 1`), which on
//! PostgreSQL also locks the chat's row: changes of one chat commit one after another, in the
//! order of their numbers, and a reaction's check of the number of different emoji cannot race
//! another. A change that turns out to change nothing rolls back and gives its number back.

use chrono::{DateTime, Utc};

use crate::domain::{
    ChangeSeq, ChatId, ClientId, Message, MessageBody, MessageId, Quote, Seq, UserId, Username,
};

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
    edited_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    change_seq: Option<i64>,
    /// The message answered (`r_`), when there is one.
    r_id: Option<i64>,
    r_sender_id: Option<i64>,
    r_username: Option<String>,
    r_body: Option<String>,
    r_deleted_at: Option<DateTime<Utc>>,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        let reply_to = match (r.r_id, r.r_sender_id, r.r_username, r.r_body) {
            (Some(id), Some(sender), Some(username), Some(body)) => Some(Quote::new(
                MessageId(id),
                UserId(sender),
                Username::from_trusted(username),
                &MessageBody::from_trusted(body),
                r.r_deleted_at.is_some(),
            )),
            _ => None,
        };
        Self {
            id: MessageId(r.id),
            chat_id: ChatId(r.chat_id),
            seq: Seq(r.seq),
            sender_id: UserId(r.sender_id),
            sender_username: Username::from_trusted(r.username),
            body: MessageBody::from_trusted(r.body),
            created_at: r.created_at,
            client_id: r.client_id.map(ClientId::from_trusted),
            edited_at: r.edited_at,
            deleted: r.deleted_at.is_some(),
            reply_to,
            // Read by a query of their own.
            reactions: Vec::new(),
            change_seq: r.change_seq.map(ChangeSeq),
        }
    }
}

/// The select of [`MessageRow`] from `messages m` with its sender `u` and the message it
/// answers `r` (by `ru`), as a macro so that queries stay `&'static str` literals built with
/// `concat!`.
macro_rules! message_select {
    () => {
        "SELECT m.id, m.chat_id, m.seq, m.sender_id, u.username, m.body, m.created_at, \
                m.client_id, m.edited_at, m.deleted_at, m.change_seq, \
                r.id AS r_id, r.sender_id AS r_sender_id, ru.username AS r_username, \
                r.body AS r_body, r.deleted_at AS r_deleted_at \
         FROM messages m JOIN users u ON u.id = m.sender_id \
         LEFT JOIN messages r ON r.id = m.reply_to \
         LEFT JOIN users ru ON ru.id = r.sender_id "
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
            use chrono::{DateTime, Utc};

            use $crate::adapters::sql::messages::{
                CLIENT_ID_KEY, MessageRow, message_select, page_filter,
            };
            use $crate::adapters::sql::{Dialect, on_foreign_key};
            use $crate::domain::error::{Error, Result};
            use $crate::domain::{
                ChangeSeq, ChatId, ClientId, Emoji, HistoryPage, Inserted, Message, MessageBody,
                MessageId, NewMessage, Seq, UserId, group_reactions,
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
                    let found = sqlx::query_as::<_, MessageRow>(sql)
                        .bind(chat.0)
                        .bind(sender.0)
                        .bind(client_id.as_str())
                        .fetch_optional(pool)
                        .await
                        .map_err(Error::unexpected)?;
                    let found = self.with_reactions(pool, found.into_iter().map(Message::from).collect()).await?;
                    Ok(found.into_iter().next())
                }

                /// `messages` with their reactions, read in one query.
                async fn with_reactions(
                    &self,
                    pool: &sqlx::Pool<$db>,
                    mut messages: Vec<Message>,
                ) -> Result<Vec<Message>> {
                    if messages.is_empty() {
                        return Ok(messages);
                    }
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "SELECT message_id, emoji, user_id FROM message_reactions \
                         WHERE message_id IN (",
                    );
                    let mut ids = query.separated(", ");
                    for m in &messages {
                        ids.push_bind(m.id.0);
                    }
                    ids.push_unseparated(") ORDER BY id");
                    let rows: Vec<(i64, String, i64)> = query
                        .build_query_as()
                        .fetch_all(pool)
                        .await
                        .map_err(Error::unexpected)?;
                    let mut given: HashMap<i64, Vec<(Emoji, UserId)>> = HashMap::new();
                    for (message, emoji, user) in rows {
                        given
                            .entry(message)
                            .or_default()
                            .push((Emoji::from_trusted(emoji), UserId(user)));
                    }
                    for m in &mut messages {
                        if let Some(g) = given.remove(&m.id.0) {
                            m.reactions = group_reactions(g);
                        }
                    }
                    Ok(messages)
                }

                /// The message with this id as `pool` sees it, with its reactions.
                async fn find_in(
                    &self,
                    pool: &sqlx::Pool<$db>,
                    message: MessageId,
                ) -> Result<Option<Message>> {
                    let row = sqlx::query_as::<_, MessageRow>(concat!(
                        message_select!(),
                        "WHERE m.id = $1"
                    ))
                    .bind(message.0)
                    .fetch_optional(pool)
                    .await
                    .map_err(Error::unexpected)?;
                    let found = self
                        .with_reactions(pool, row.into_iter().map(Message::from).collect())
                        .await?;
                    Ok(found.into_iter().next())
                }

                /// Takes the next change number of the chat of `message` in `tx` (on PostgreSQL
                /// locking the chat's row until `tx` ends) and gives it to the message.
                ///
                /// # Errors
                /// `MessageNotFound` when there is no such message.
                async fn next_change(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    message: MessageId,
                ) -> Result<ChangeSeq> {
                    let change: Option<i64> = sqlx::query_scalar(
                        "UPDATE chats SET last_change = last_change + 1 \
                         WHERE id = (SELECT chat_id FROM messages WHERE id = $1) \
                         RETURNING last_change",
                    )
                    .bind(message.0)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(Error::unexpected)?;
                    let change = change.ok_or(Error::MessageNotFound)?;
                    sqlx::query("UPDATE messages SET change_seq = $2 WHERE id = $1")
                        .bind(message.0)
                        .bind(change)
                        .execute(&mut **tx)
                        .await
                        .map_err(Error::unexpected)?;
                    Ok(ChangeSeq(change))
                }

                /// Commits a change to `message` and reads the message back where it was written.
                async fn commit_change(
                    &self,
                    tx: sqlx::Transaction<'static, $db>,
                    message: MessageId,
                ) -> Result<Message> {
                    tx.commit().await.map_err(Error::unexpected)?;
                    self.find_in(&self.write, message)
                        .await?
                        .ok_or(Error::MessageNotFound)
                }
            }

            /// Rolls back a change that changed nothing (or may not be made), giving its change
            /// number back before the writer is asked anything else (on SQLite the transaction
            /// holds the only writer connection), then answers `answer`.
            async fn undo<T>(tx: sqlx::Transaction<'static, $db>, answer: Result<T>) -> Result<T> {
                tx.rollback().await.map_err(Error::unexpected)?;
                answer
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
                    let found = self
                        .with_reactions(&self.read, found.into_iter().map(Message::from).collect())
                        .await
                        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                    Ok(found
                        .into_iter()
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
                               (chat_id, seq, sender_id, body, created_at, client_id, reply_to) ",
                        );
                        insert.push_values(&rows, |mut row, &(i, seq)| {
                            let m = &messages[i];
                            row.push_bind(m.chat_id.0)
                                .push_bind(seq.0)
                                .push_bind(m.sender_id.0)
                                .push_bind(m.body.as_str().to_owned())
                                .push_bind(m.created_at)
                                .push_bind(m.client_id.as_ref().map(|c| c.as_str().to_owned()))
                                .push_bind(m.reply_to.map(|r| r.0));
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
                           (chat_id, seq, sender_id, body, created_at, client_id, reply_to) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .bind(message.chat_id.0)
                    .bind(seq)
                    .bind(message.sender_id.0)
                    .bind(message.body.as_str())
                    .bind(message.created_at)
                    .bind(message.client_id.as_ref().map(ClientId::as_str))
                    .bind(message.reply_to.map(|r| r.0))
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
                    self.with_reactions(&self.read, rows).await
                }

                async fn get(&self, message: MessageId) -> Result<Option<Message>> {
                    self.find_in(&self.read, message).await
                }

                async fn changed_after(
                    &self,
                    chat: ChatId,
                    after: ChangeSeq,
                    limit: u32,
                ) -> Result<Vec<Message>> {
                    let rows: Vec<Message> = sqlx::query_as::<_, MessageRow>(concat!(
                        message_select!(),
                        "WHERE m.chat_id = $1 AND m.change_seq > $2 \
                         ORDER BY m.change_seq ASC LIMIT $3"
                    ))
                    .bind(chat.0)
                    .bind(after.0)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await
                    .map_err(Error::unexpected)?
                    .into_iter()
                    .map(Message::from)
                    .collect();
                    self.with_reactions(&self.read, rows).await
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

                async fn edit(
                    &self,
                    message: MessageId,
                    body: &MessageBody,
                    at: DateTime<Utc>,
                ) -> Result<Message> {
                    let mut tx = self.write.begin().await.map_err(Error::unexpected)?;
                    let change = match Self::next_change(&mut tx, message).await {
                        Ok(change) => change,
                        Err(e) => return undo(tx, Err(e)).await,
                    };
                    let edited = sqlx::query(
                        "UPDATE messages SET body = $2, edited_at = $3 \
                         WHERE id = $1 AND deleted_at IS NULL",
                    )
                    .bind(message.0)
                    .bind(body.as_str())
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::unexpected)?;
                    if edited.rows_affected() == 0 {
                        return undo(tx, Err(Error::MessageDeleted)).await;
                    }
                    tracing::trace!(%message, %change, "message edited");
                    self.commit_change(tx, message).await
                }

                async fn delete(
                    &self,
                    message: MessageId,
                    at: DateTime<Utc>,
                ) -> Result<Option<Message>> {
                    let mut tx = self.write.begin().await.map_err(Error::unexpected)?;
                    if let Err(e) = Self::next_change(&mut tx, message).await {
                        return undo(tx, Err(e)).await;
                    }
                    // Overwritten, so that the text is gone from the row, not just hidden.
                    let deleted = sqlx::query(
                        "UPDATE messages SET body = '', deleted_at = $2 \
                         WHERE id = $1 AND deleted_at IS NULL",
                    )
                    .bind(message.0)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::unexpected)?;
                    if deleted.rows_affected() == 0 {
                        return undo(tx, Ok(None)).await;
                    }
                    sqlx::query("DELETE FROM message_reactions WHERE message_id = $1")
                        .bind(message.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::unexpected)?;
                    self.commit_change(tx, message).await.map(Some)
                }

                async fn react(
                    &self,
                    message: MessageId,
                    user: UserId,
                    emoji: &Emoji,
                    on: bool,
                    max_emojis: usize,
                ) -> Result<Option<Message>> {
                    let mut tx = self.write.begin().await.map_err(Error::unexpected)?;
                    if let Err(e) = Self::next_change(&mut tx, message).await {
                        return undo(tx, Err(e)).await;
                    }
                    // The chat's row is locked now: no other change of it runs until this one
                    // ends, so what is read below stays true until the commit.
                    let (deleted, mine, emoji_given, emojis) =
                        sqlx::query_as::<_, (bool, bool, bool, i64)>(
                            "SELECT \
                               EXISTS (SELECT 1 FROM messages \
                                       WHERE id = $1 AND deleted_at IS NOT NULL), \
                               EXISTS (SELECT 1 FROM message_reactions \
                                       WHERE message_id = $1 AND user_id = $2 AND emoji = $3), \
                               EXISTS (SELECT 1 FROM message_reactions \
                                       WHERE message_id = $1 AND emoji = $3), \
                               (SELECT count(DISTINCT emoji) FROM message_reactions \
                                WHERE message_id = $1)",
                        )
                        .bind(message.0)
                        .bind(user.0)
                        .bind(emoji.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(Error::unexpected)?;
                    if deleted {
                        return undo(tx, Err(Error::MessageDeleted)).await;
                    }
                    if on == mine {
                        return undo(tx, Ok(None)).await;
                    }
                    if on {
                        let max = i64::try_from(max_emojis).unwrap_or(i64::MAX);
                        if !emoji_given && emojis >= max {
                            return undo(tx, Err(Error::TooManyReactions)).await;
                        }
                        let given = sqlx::query(
                            "INSERT INTO message_reactions (message_id, user_id, emoji) \
                             VALUES ($1, $2, $3)",
                        )
                        .bind(message.0)
                        .bind(user.0)
                        .bind(emoji.as_str())
                        .execute(&mut *tx)
                        .await;
                        if let Err(e) = given {
                            return undo(tx, Err(on_foreign_key(e, Error::UserNotFound))).await;
                        }
                    } else {
                        sqlx::query(
                            "DELETE FROM message_reactions \
                             WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
                        )
                        .bind(message.0)
                        .bind(user.0)
                        .bind(emoji.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::unexpected)?;
                    }
                    self.commit_change(tx, message).await.map(Some)
                }
            }
        };
    };
}
pub(crate) use message_repo;
