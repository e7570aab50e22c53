//! What is said in a chat: its history, new messages, typing and read markers.

use std::sync::Arc;

use super::Limits;
use super::access::member_access;
use super::group_commit::GroupCommit;
use crate::domain::error::{Error, Result};
use crate::domain::{
    AuthUser, ChatId, ClientId, Event, EventKind, HistoryPage, Message, MessageBody, MessageId,
    NewMessage, PageRequest, Posted, Replay, Seq, ValidationError,
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
        let client_id = client_id.map(ClientId::parse).transpose()?;
        let body = MessageBody::parse(text, self.limits.max_message_chars)?;
        member_access(&*self.chats, chat, me.id).await?;
        let new = NewMessage {
            chat_id: chat,
            sender_id: me.id,
            body,
            created_at: self.clock.now(),
            client_id,
        };
        self.writer.post(new, me.username.clone()).await
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
        Message {
            id: MessageId(id),
            chat_id: ChatId(9),
            seq: Seq(seq),
            sender_id: UserId(1),
            sender_username: me().username,
            body: MessageBody::parse(&format!("m{seq}"), 100).unwrap(),
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            client_id: client_id.map(|c| ClientId::parse(c).unwrap()),
        }
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
}
