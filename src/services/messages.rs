//! What is said in a chat: its history, new messages and replies, edits, deletes and
//! reactions, typing and read markers.

use std::sync::Arc;

use super::Limits;
use super::access::member_access;
use super::group_commit::GroupCommit;
use crate::domain::error::{Error, Result};
use crate::domain::{
    AuthUser, ChangeSeq, ChatId, ChatKind, ClientId, Emoji, Event, EventKind, HistoryPage, Message,
    MessageBody, MessageId, NewMessage, PageRequest, Posted, Quote, Replay, Role, Seq,
    ValidationError,
};
use crate::ports::{ChatRepo, Clock, EventBus, MessageRepo};

/// How long a typing indicator lasts after the last word that someone types, so that a client
/// that vanishes never leaves "is typing" behind.
pub const TYPING_EXPIRES_AFTER: std::time::Duration = std::time::Duration::from_secs(6);

/// The messages of chats, for their members.
#[derive(Clone)]
pub struct MessageService {
    chats: Arc<dyn ChatRepo>,
    messages: Arc<dyn MessageRepo>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    writer: GroupCommit,
}

impl MessageService {
    pub fn new(
        chats: Arc<dyn ChatRepo>,
        messages: Arc<dyn MessageRepo>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        let writer = GroupCommit::start(messages.clone(), bus.clone());
        Self {
            chats,
            messages,
            bus,
            clock,
            limits,
            writer,
        }
    }

    /// The limits this service applies, for clients to check input against.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A page of a chat's history, oldest first, as the client asked for it.
    ///
    /// # Errors
    /// `Invalid` for a page size out of range; `ChatNotFound`, `NotAMember`.
    pub async fn history(
        &self,
        me: &AuthUser,
        chat: ChatId,
        request: PageRequest,
    ) -> Result<Vec<Message>> {
        let page = HistoryPage::parse(request)?;
        // Both reads at once, to save a round trip; the page is shown only to a member.
        let (access, page) = futures_util::join!(
            member_access(&*self.chats, chat, me.id),
            self.messages.list(chat, page)
        );
        access?;
        page
    }

    /// Stores a message from the caller and tells the chat, in that order, together with the
    /// messages posted at about the same time (see [`super::group_commit`]).
    ///
    /// With a `client_id`, the message is stored once however often it is sent: a resend
    /// answers the message stored the first time, with `created` false, and publishes nothing,
    /// since the chat heard of it then.
    ///
    /// # Errors
    /// `Invalid` for a bad `client_id`, a blank text or one over the length limit;
    /// `ChatNotFound`, `NotAMember`; nothing is stored or published then.
    pub async fn post_message(
        &self,
        me: &AuthUser,
        chat: ChatId,
        text: &str,
        client_id: Option<&str>,
    ) -> Result<Posted> {
        self.post_reply(me, chat, text, client_id, None).await
    }

    /// [`post_message`](Self::post_message), answering message `reply_to` of the same chat
    /// when it is given: the message then carries a quote of it.
    ///
    /// # Errors
    /// As `post_message`; `MessageNotFound` when `reply_to` is not a message of this chat.
    pub async fn post_reply(
        &self,
        me: &AuthUser,
        chat: ChatId,
        text: &str,
        client_id: Option<&str>,
        reply_to: Option<MessageId>,
    ) -> Result<Posted> {
        let client_id = client_id.map(ClientId::parse).transpose()?;
        let body = MessageBody::parse(text, self.limits.max_message_chars)?;
        member_access(&*self.chats, chat, me.id).await?;
        let quote = match reply_to {
            None => None,
            Some(id) => Some(Quote::of(&self.message_of(chat, id).await?)),
        };
        let new = NewMessage {
            chat_id: chat,
            sender_id: me.id,
            body,
            created_at: self.clock.now(),
            client_id,
            reply_to,
        };
        self.writer.post(new, me.username.clone(), quote).await
    }

    /// Message `id` when it belongs to `chat`.
    ///
    /// # Errors
    /// `MessageNotFound` when there is no such message or it is another chat's.
    async fn message_of(&self, chat: ChatId, id: MessageId) -> Result<Message> {
        match self.messages.get(id).await? {
            Some(m) if m.chat_id == chat => Ok(m),
            _ => Err(Error::MessageNotFound),
        }
    }

    /// Changes the text of the caller's own message, within the edit window, and tells the
    /// chat. The message keeps its id and seq.
    ///
    /// # Errors
    /// `Invalid` for a text `post_message` would refuse; `ChatNotFound`, `NotAMember`;
    /// `MessageNotFound` when the message is not in this chat; `Forbidden` when it is someone
    /// else's; `MessageDeleted`; `EditWindowPassed`. Nothing is stored or published then.
    pub async fn edit_message(
        &self,
        me: &AuthUser,
        chat: ChatId,
        id: MessageId,
        text: &str,
    ) -> Result<Message> {
        let body = MessageBody::parse(text, self.limits.max_message_chars)?;
        member_access(&*self.chats, chat, me.id).await?;
        let original = self.message_of(chat, id).await?;
        if original.sender_id != me.id {
            return Err(Error::Forbidden("You may only edit your own messages."));
        }
        if original.deleted {
            return Err(Error::MessageDeleted);
        }
        let now = self.clock.now();
        if let Some(window) = self.limits.edit_window {
            let age = (now - original.created_at).to_std().unwrap_or_default();
            if age > window {
                return Err(Error::EditWindowPassed);
            }
        }
        let edited = self.messages.edit(id, &body, now).await?;
        self.bus
            .publish(Event::MessageEdited(edited.clone()))
            .await?;
        Ok(edited)
    }

    /// Deletes a message: the sender's own, or in a group anyone's when the caller owns it.
    /// Its text is gone; it stays in the history as a tombstone, and the chat is told. Deleting
    /// a deleted message changes nothing.
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember`; `MessageNotFound` when the message is not in this chat;
    /// `Forbidden` when the caller may not delete it.
    pub async fn delete_message(&self, me: &AuthUser, chat: ChatId, id: MessageId) -> Result<()> {
        let (chat_row, role) = member_access(&*self.chats, chat, me.id).await?;
        let original = self.message_of(chat, id).await?;
        let moderates = chat_row.kind == ChatKind::Group && role == Role::Owner;
        if original.sender_id != me.id && !moderates {
            return Err(Error::Forbidden(
                "You may only delete your own messages (or, as a group's owner, any of it).",
            ));
        }
        if let Some(tombstone) = self.messages.delete(id, self.clock.now()).await? {
            self.bus.publish(Event::MessageDeleted(tombstone)).await?;
        }
        Ok(())
    }

    /// Gives (`on`) or takes back the caller's reaction `emoji` on a message and tells the
    /// chat; giving it twice or taking back one not given changes nothing and tells no one.
    /// Answers the message as it now is.
    ///
    /// # Errors
    /// `Invalid` on `emoji`; `ChatNotFound`, `NotAMember`; `MessageNotFound` when the message
    /// is not in this chat; `MessageDeleted`; `TooManyReactions` past the limit of different
    /// emoji on one message.
    pub async fn react(
        &self,
        me: &AuthUser,
        chat: ChatId,
        id: MessageId,
        emoji: &str,
        on: bool,
    ) -> Result<Message> {
        let emoji = Emoji::parse(emoji)?;
        member_access(&*self.chats, chat, me.id).await?;
        let original = self.message_of(chat, id).await?;
        if original.deleted {
            return Err(Error::MessageDeleted);
        }
        let changed = self
            .messages
            .react(id, me.id, &emoji, on, self.limits.max_reactions_per_message)
            .await?;
        let Some(message) = changed else {
            return Ok(original);
        };
        self.bus
            .publish(Event::Reaction {
                message: message.clone(),
                user_id: me.id,
                username: me.username.clone(),
                emoji,
                on,
            })
            .await?;
        Ok(message)
    }

    /// The messages of a chat changed after change `after` (edited, deleted, reacted to), in
    /// the order of their latest change: what a client that was away missed of messages it
    /// already holds.
    ///
    /// # Errors
    /// `Invalid` on `changed_after` when negative, on `limit` out of range; `ChatNotFound`,
    /// `NotAMember`.
    pub async fn changes(
        &self,
        me: &AuthUser,
        chat: ChatId,
        after: i64,
        limit: Option<i64>,
    ) -> Result<Vec<Message>> {
        if after < 0 {
            return Err(ValidationError::new(
                "changed_after",
                "'changed_after' must not be negative.",
            )
            .into());
        }
        let page = HistoryPage::parse(PageRequest {
            limit,
            ..PageRequest::default()
        })?;
        member_access(&*self.chats, chat, me.id).await?;
        self.messages
            .changed_after(chat, ChangeSeq(after), page.limit)
            .await
    }

    /// What a member who reconnects missed: the messages of the chat after seq `after_seq`,
    /// oldest first, unless there are more than `bound` of them.
    ///
    /// # Errors
    /// `Invalid` on `after_seq` when it is negative; `ChatNotFound`, `NotAMember`.
    pub async fn replay(
        &self,
        me: &AuthUser,
        chat: ChatId,
        after_seq: i64,
        bound: u32,
    ) -> Result<Replay> {
        if after_seq < 0 {
            return Err(
                ValidationError::new("after_seq", "'after_seq' must not be negative.").into(),
            );
        }
        member_access(&*self.chats, chat, me.id).await?;
        // One more than the bound tells "too many" from "exactly the bound".
        let page = HistoryPage::after_seq(Seq(after_seq), bound.saturating_add(1));
        let missed = self.messages.list(chat, page).await?;
        if missed.len() > bound as usize {
            return Ok(Replay::TooFarBehind);
        }
        Ok(Replay::Messages(missed))
    }

    /// Tells the other members the caller started or stopped typing.
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember`.
    pub async fn typing(&self, me: &AuthUser, chat: ChatId, kind: EventKind) -> Result<()> {
        member_access(&*self.chats, chat, me.id).await?;
        self.bus
            .publish(Event::Typing {
                chat_id: chat,
                user_id: me.id,
                username: me.username.clone(),
                kind,
            })
            .await
    }

    /// Moves the caller's read marker forward and tells the other members.
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember`, `MessageNotFound` when the message is not in this chat.
    pub async fn mark_read(&self, me: &AuthUser, chat: ChatId, message: MessageId) -> Result<()> {
        member_access(&*self.chats, chat, me.id).await?;
        if !self.messages.exists_in(chat, message).await? {
            return Err(Error::MessageNotFound);
        }
        if self.chats.mark_read(chat, me.id, message).await? {
            self.bus
                .publish(Event::Read {
                    chat_id: chat,
                    user_id: me.id,
                    username: me.username.clone(),
                    message_id: message,
                })
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::domain::{ChatAccess, ChatKind, Inserted, Role, UserId, Visibility};
    use crate::services::testing::{Mocks, chat, me};

    #[tokio::test]
    async fn a_non_member_post_stores_and_publishes_nothing() {
        let mut m = Mocks::default();
        m.chats
            .expect_access()
            .with(eq(ChatId(9)), eq(UserId(1)))
            .returning(|_, _| {
                Ok(ChatAccess::Outsider(chat(
                    9,
                    ChatKind::Direct,
                    Visibility::Private,
                )))
            });
        m.messages.expect_insert().times(0);
        m.bus.expect_publish().times(0);
        let err = m
            .messages()
            .post_message(&me(), ChatId(9), "hi", None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotAMember));
    }

    #[tokio::test]
    async fn a_post_to_a_missing_chat_is_not_found() {
        let mut m = Mocks::default();
        m.access(ChatAccess::NoSuchChat);
        m.messages.expect_insert().times(0);
        m.bus.expect_publish().times(0);
        let err = m
            .messages()
            .post_message(&me(), ChatId(9), "hi", None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ChatNotFound));
    }

    #[tokio::test]
    async fn a_member_post_is_stored_then_published_as_stored() {
        let mut m = Mocks::default();
        let mut seq = mockall::Sequence::new();
        m.access(ChatAccess::Member(
            chat(9, ChatKind::Direct, Visibility::Private),
            Role::Member,
        ));
        m.messages
            .expect_insert()
            .withf(|n| {
                n.chat_id == ChatId(9) && n.sender_id == UserId(1) && n.body.as_str() == "hi"
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| {
                Ok(Inserted::New {
                    id: MessageId(77),
                    seq: Seq(5),
                })
            });
        m.bus
            .expect_publish()
            .withf(|e| matches!(e, Event::MessagePosted(msg) if msg.id == MessageId(77) && msg.seq == Seq(5) && msg.sender_username.as_str() == "ann"))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        let posted = m
            .messages()
            .post_message(&me(), ChatId(9), "hi", None)
            .await
            .unwrap();
        assert!(posted.created);
        assert_eq!(posted.message.id, MessageId(77));
        assert_eq!(posted.message.seq, Seq(5));
        assert_eq!(posted.message.client_id, None);
    }

    /// Ann, a member of chat 9.
    fn a_member(m: &mut Mocks) {
        m.access(ChatAccess::Member(
            chat(9, ChatKind::Group, Visibility::Private),
            Role::Member,
        ));
    }

    /// A message of chat 9 as storage returns it.
    fn stored(id: i64, seq: i64, client_id: Option<&str>) -> Message {
        let new = NewMessage {
            chat_id: ChatId(9),
            sender_id: UserId(1),
            body: MessageBody::parse(&format!("m{seq}"), 100).unwrap(),
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            client_id: client_id.map(|c| ClientId::parse(c).unwrap()),
            reply_to: None,
        };
        Message::posted(new, MessageId(id), Seq(seq), me().username, None)
    }

    #[tokio::test]
    async fn a_post_with_a_client_id_stores_it_with_the_message() {
        let mut m = Mocks::default();
        a_member(&mut m);
        m.messages
            .expect_insert()
            .withf(|n| n.client_id.as_ref().map(ClientId::as_str) == Some("c-1"))
            .times(1)
            .returning(|_| {
                Ok(Inserted::New {
                    id: MessageId(77),
                    seq: Seq(5),
                })
            });
        m.bus
            .expect_publish()
            .withf(|e| matches!(e, Event::MessagePosted(msg) if msg.client_id.as_ref().map(ClientId::as_str) == Some("c-1")))
            .times(1)
            .returning(|_| Ok(()));

        let posted = m
            .messages()
            .post_message(&me(), ChatId(9), "hi", Some("c-1"))
            .await
            .unwrap();

        assert!(posted.created);
        assert_eq!(
            posted.message.client_id.as_ref().map(ClientId::as_str),
            Some("c-1")
        );
    }

    #[tokio::test]
    async fn a_resend_publishes_nothing_and_answers_the_first_message() {
        let mut m = Mocks::default();
        a_member(&mut m);
        m.messages
            .expect_insert()
            .times(1)
            .returning(|_| Ok(Inserted::Existing(stored(77, 5, Some("c-1")))));
        m.bus.expect_publish().times(0);

        let posted = m
            .messages()
            .post_message(&me(), ChatId(9), "hi", Some("c-1"))
            .await
            .unwrap();

        assert!(!posted.created);
        assert_eq!(posted.message.id, MessageId(77));
        assert_eq!(posted.message.seq, Seq(5));
        assert_eq!(
            posted.message.body.as_str(),
            "m5",
            "the first message, as stored"
        );
    }

    #[tokio::test]
    async fn an_invalid_client_id_stores_and_publishes_nothing() {
        for bad in ["", "tab\there", &"x".repeat(65)] {
            let mut m = Mocks::default();
            m.chats.expect_access().times(0);
            m.messages.expect_insert().times(0);
            m.bus.expect_publish().times(0);

            let err = m
                .messages()
                .post_message(&me(), ChatId(9), "hi", Some(bad))
                .await
                .unwrap_err();

            assert!(
                matches!(&err, Error::Invalid(v) if v.field == "client_id"),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn replay_answers_the_missed_messages_oldest_first() {
        let mut m = Mocks::default();
        a_member(&mut m);
        m.messages
            .expect_list()
            .with(eq(ChatId(9)), eq(HistoryPage::after_seq(Seq(3), 11)))
            .times(1)
            .returning(|_, _| Ok(vec![stored(14, 4, None), stored(15, 5, None)]));

        let replay = m.messages().replay(&me(), ChatId(9), 3, 10).await.unwrap();

        assert_eq!(
            replay,
            Replay::Messages(vec![stored(14, 4, None), stored(15, 5, None)])
        );
    }

    #[tokio::test]
    async fn replay_of_exactly_the_bound_answers_them_all() {
        let mut m = Mocks::default();
        a_member(&mut m);
        m.messages
            .expect_list()
            .returning(|_, _| Ok((1..=3).map(|s| stored(10 + s, s, None)).collect()));

        let replay = m.messages().replay(&me(), ChatId(9), 0, 3).await.unwrap();

        let Replay::Messages(missed) = replay else {
            panic!("expected the messages, got {replay:?}");
        };
        let seqs: Vec<Seq> = missed.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [Seq(1), Seq(2), Seq(3)]);
    }

    #[tokio::test]
    async fn replay_beyond_the_bound_is_too_far_behind() {
        let mut m = Mocks::default();
        a_member(&mut m);
        m.messages
            .expect_list()
            .with(eq(ChatId(9)), eq(HistoryPage::after_seq(Seq(0), 4)))
            .times(1)
            .returning(|_, _| Ok((1..=4).map(|s| stored(10 + s, s, None)).collect()));

        let replay = m.messages().replay(&me(), ChatId(9), 0, 3).await.unwrap();

        assert_eq!(replay, Replay::TooFarBehind);
    }

    #[tokio::test]
    async fn replay_after_a_negative_seq_is_invalid_and_reads_nothing() {
        let mut m = Mocks::default();
        m.chats.expect_access().times(0);
        m.messages.expect_list().times(0);

        let err = m
            .messages()
            .replay(&me(), ChatId(9), -1, 10)
            .await
            .unwrap_err();

        assert!(
            matches!(&err, Error::Invalid(v) if v.field == "after_seq"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn history_of_a_non_member_shows_nothing_of_the_page_read_meanwhile() {
        let mut m = Mocks::default();
        m.access(ChatAccess::Outsider(chat(
            9,
            ChatKind::Group,
            Visibility::Private,
        )));
        m.messages.expect_list().returning(|_, _| Ok(Vec::new()));

        let err = m
            .messages()
            .history(&me(), ChatId(9), PageRequest::default())
            .await
            .unwrap_err();

        assert!(matches!(err, Error::NotAMember), "{err:?}");
    }

    #[tokio::test]
    async fn replay_for_a_non_member_reads_nothing() {
        let mut m = Mocks::default();
        m.access(ChatAccess::Outsider(chat(
            9,
            ChatKind::Group,
            Visibility::Public,
        )));
        m.messages.expect_list().times(0);

        let err = m
            .messages()
            .replay(&me(), ChatId(9), 0, 10)
            .await
            .unwrap_err();

        assert!(matches!(err, Error::NotAMember), "{err:?}");
    }

    #[tokio::test]
    async fn a_failed_insert_publishes_nothing() {
        let mut m = Mocks::default();
        m.access(ChatAccess::Member(
            chat(9, ChatKind::Direct, Visibility::Private),
            Role::Member,
        ));
        m.messages
            .expect_insert()
            .returning(|_| Err(Error::unexpected(anyhow::anyhow!("disk full"))));
        m.bus.expect_publish().times(0);
        assert!(
            m.messages()
                .post_message(&me(), ChatId(9), "hi", None)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_read_marker_that_does_not_move_is_not_announced() {
        let mut m = Mocks::default();
        m.access(ChatAccess::Member(
            chat(9, ChatKind::Direct, Visibility::Private),
            Role::Member,
        ));
        m.messages.expect_exists_in().returning(|_, _| Ok(true));
        m.chats.expect_mark_read().returning(|_, _, _| Ok(false));
        m.bus.expect_publish().times(0);
        m.messages()
            .mark_read(&me(), ChatId(9), MessageId(4))
            .await
            .unwrap();
    }

    /// Message 77 of chat 9, sent by `sender` at `secs` seconds before the mock clock's now.
    fn sent_by(sender: i64, secs_ago: i64) -> Message {
        use crate::ports::Clock;
        let mut m = stored(77, 5, None);
        m.sender_id = UserId(sender);
        m.created_at =
            crate::services::testing::clock().now() - chrono::Duration::seconds(secs_ago);
        m
    }

    fn found(m: &mut Mocks, message: Message) {
        m.messages
            .expect_get()
            .with(eq(MessageId(77)))
            .returning(move |_| Ok(Some(message.clone())));
    }

    #[tokio::test]
    async fn an_edit_of_ones_own_message_is_stored_then_published() {
        let mut m = Mocks::default();
        let mut seq = mockall::Sequence::new();
        a_member(&mut m);
        found(&mut m, sent_by(1, 10));
        m.messages
            .expect_edit()
            .withf(|id, body, _| *id == MessageId(77) && body.as_str() == "fixed")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, body, at| {
                let mut edited = stored(77, 5, None);
                edited.body = body.clone();
                edited.edited_at = Some(at);
                Ok(edited)
            });
        m.bus
            .expect_publish()
            .withf(|e| matches!(e, Event::MessageEdited(msg) if msg.body.as_str() == "fixed"))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));

        let edited = m
            .messages()
            .edit_message(&me(), ChatId(9), MessageId(77), " fixed ")
            .await
            .unwrap();

        assert_eq!((edited.id, edited.seq), (MessageId(77), Seq(5)));
    }

    #[tokio::test]
    async fn an_edit_of_someone_elses_message_is_forbidden_and_changes_nothing() {
        let mut m = Mocks::default();
        a_member(&mut m);
        found(&mut m, sent_by(2, 10));
        m.messages.expect_edit().times(0);
        m.bus.expect_publish().times(0);

        let err = m
            .messages()
            .edit_message(&me(), ChatId(9), MessageId(77), "mine now")
            .await
            .unwrap_err();

        assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    }

    #[tokio::test]
    async fn an_edit_past_the_window_is_refused_and_changes_nothing() {
        let mut m = Mocks::default();
        a_member(&mut m);
        found(&mut m, sent_by(1, 61));
        m.messages.expect_edit().times(0);
        m.bus.expect_publish().times(0);
        let limits = Limits {
            edit_window: Some(std::time::Duration::from_secs(60)),
            ..Limits::default()
        };

        let err = m
            .messages_with(limits)
            .edit_message(&me(), ChatId(9), MessageId(77), "late")
            .await
            .unwrap_err();

        assert!(matches!(err, Error::EditWindowPassed), "{err:?}");
    }

    #[tokio::test]
    async fn an_edit_within_the_window_is_stored() {
        let mut m = Mocks::default();
        a_member(&mut m);
        found(&mut m, sent_by(1, 59));
        m.messages
            .expect_edit()
            .times(1)
            .returning(|_, _, _| Ok(stored(77, 5, None)));
        m.bus.expect_publish().times(1).returning(|_| Ok(()));
        let limits = Limits {
            edit_window: Some(std::time::Duration::from_secs(60)),
            ..Limits::default()
        };

        m.messages_with(limits)
            .edit_message(&me(), ChatId(9), MessageId(77), "in time")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_message_of_another_chat_is_not_found_for_every_action() {
        let mut m = Mocks::default();
        a_member(&mut m);
        let mut elsewhere = sent_by(1, 0);
        elsewhere.chat_id = ChatId(10);
        found(&mut m, elsewhere);
        m.messages.expect_edit().times(0);
        m.messages.expect_delete().times(0);
        m.messages.expect_react().times(0);
        m.messages.expect_insert().times(0);
        m.bus.expect_publish().times(0);
        let s = m.messages();
        let (chat, id) = (ChatId(9), MessageId(77));

        let results = [
            s.edit_message(&me(), chat, id, "x").await.map(|_| ()),
            s.delete_message(&me(), chat, id).await,
            s.react(&me(), chat, id, "👍", true).await.map(|_| ()),
            s.post_reply(&me(), chat, "re", None, Some(id))
                .await
                .map(|_| ()),
        ];

        for result in results {
            assert!(matches!(result, Err(Error::MessageNotFound)), "{result:?}");
        }
    }

    #[tokio::test]
    async fn a_groups_owner_deletes_anyones_message_and_the_chat_hears_it() {
        let mut m = Mocks::default();
        m.access(ChatAccess::Member(
            chat(9, ChatKind::Group, Visibility::Private),
            Role::Owner,
        ));
        found(&mut m, sent_by(2, 10));
        m.messages
            .expect_delete()
            .with(eq(MessageId(77)), mockall::predicate::always())
            .times(1)
            .returning(|_, _| {
                let mut gone = stored(77, 5, None);
                gone.body = MessageBody::erased();
                gone.deleted = true;
                Ok(Some(gone))
            });
        m.bus
            .expect_publish()
            .withf(|e| matches!(e, Event::MessageDeleted(msg) if msg.deleted))
            .times(1)
            .returning(|_| Ok(()));

        m.messages()
            .delete_message(&me(), ChatId(9), MessageId(77))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_member_may_not_delete_anothers_message_not_even_in_a_direct_chat_they_own() {
        for (kind, role) in [
            (ChatKind::Group, Role::Member),
            (ChatKind::Direct, Role::Owner),
        ] {
            let mut m = Mocks::default();
            m.access(ChatAccess::Member(chat(9, kind, Visibility::Private), role));
            found(&mut m, sent_by(2, 10));
            m.messages.expect_delete().times(0);
            m.bus.expect_publish().times(0);

            let err = m
                .messages()
                .delete_message(&me(), ChatId(9), MessageId(77))
                .await
                .unwrap_err();

            assert!(matches!(err, Error::Forbidden(_)), "{kind:?}: {err:?}");
        }
    }

    #[tokio::test]
    async fn deleting_a_deleted_message_tells_no_one() {
        let mut m = Mocks::default();
        a_member(&mut m);
        found(&mut m, sent_by(1, 10));
        m.messages
            .expect_delete()
            .times(1)
            .returning(|_, _| Ok(None));
        m.bus.expect_publish().times(0);

        m.messages()
            .delete_message(&me(), ChatId(9), MessageId(77))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_reaction_is_published_once_and_a_repeat_not_at_all() {
        let mut m = Mocks::default();
        a_member(&mut m);
        found(&mut m, sent_by(2, 10));
        let mut given = false;
        m.messages
            .expect_react()
            .withf(|id, user, emoji, on, max| {
                (*id, *user, emoji.as_str(), *on, *max)
                    == (MessageId(77), UserId(1), "👍", true, 20)
            })
            .times(2)
            .returning(move |_, _, _, _, _| {
                let first = !given;
                given = true;
                Ok(first.then(|| stored(77, 5, None)))
            });
        m.bus
            .expect_publish()
            .withf(|e| matches!(e, Event::Reaction { emoji, on: true, user_id: UserId(1), .. } if emoji.as_str() == "👍"))
            .times(1)
            .returning(|_| Ok(()));
        let s = m.messages();

        s.react(&me(), ChatId(9), MessageId(77), "👍", true)
            .await
            .unwrap();
        s.react(&me(), ChatId(9), MessageId(77), "👍", true)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_bad_emoji_is_refused_before_anything_is_read() {
        let mut m = Mocks::default();
        m.chats.expect_access().times(0);
        m.messages.expect_get().times(0);
        m.messages.expect_react().times(0);

        let err = m
            .messages()
            .react(&me(), ChatId(9), MessageId(77), "no spaces", true)
            .await
            .unwrap_err();

        assert!(
            matches!(&err, Error::Invalid(v) if v.field == "emoji"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_reply_carries_the_quote_of_its_original() {
        let mut m = Mocks::default();
        a_member(&mut m);
        found(&mut m, sent_by(2, 10));
        m.messages
            .expect_insert()
            .withf(|n| n.reply_to == Some(MessageId(77)))
            .times(1)
            .returning(|_| {
                Ok(Inserted::New {
                    id: MessageId(78),
                    seq: Seq(6),
                })
            });
        m.bus
            .expect_publish()
            .withf(|e| matches!(e, Event::MessagePosted(msg) if msg.reply_to.as_ref().map(|q| q.id) == Some(MessageId(77))))
            .times(1)
            .returning(|_| Ok(()));

        let posted = m
            .messages()
            .post_reply(&me(), ChatId(9), "re", None, Some(MessageId(77)))
            .await
            .unwrap();

        let quote = posted.message.reply_to.unwrap();
        assert_eq!((quote.sender_id, quote.text.as_str()), (UserId(2), "m5"));
    }
}
