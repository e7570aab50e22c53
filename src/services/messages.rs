//! What is said in a chat: its history, new messages, typing and read markers.

use std::sync::Arc;

use super::Limits;
use super::access::member_access;
use crate::domain::error::{Error, Result};
use crate::domain::{
    AuthUser, ChatId, Event, EventKind, HistoryPage, Message, MessageBody, MessageId, NewMessage,
    PageRequest,
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
}

impl MessageService {
    pub fn new(
        chats: Arc<dyn ChatRepo>,
        messages: Arc<dyn MessageRepo>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        Self {
            chats,
            messages,
            bus,
            clock,
            limits,
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
        member_access(&*self.chats, chat, me.id).await?;
        self.messages.list(chat, page).await
    }

    /// Stores a message from the caller and tells the chat, in that order.
    ///
    /// # Errors
    /// `Invalid` for a blank text or one over the length limit; `ChatNotFound`, `NotAMember`;
    /// nothing is stored or published then.
    pub async fn post_message(&self, me: &AuthUser, chat: ChatId, text: &str) -> Result<Message> {
        let body = MessageBody::parse(text, self.limits.max_message_chars)?;
        member_access(&*self.chats, chat, me.id).await?;
        let new = NewMessage {
            chat_id: chat,
            sender_id: me.id,
            body,
            created_at: self.clock.now(),
        };
        let id = self.messages.insert(&new).await?;
        let message = Message {
            id,
            chat_id: chat,
            sender_id: me.id,
            sender_username: me.username.clone(),
            body: new.body,
            created_at: new.created_at,
        };
        self.bus
            .publish(Event::MessagePosted(message.clone()))
            .await?;
        Ok(message)
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
    use crate::domain::{ChatAccess, ChatKind, Role, UserId, Visibility};
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
            .post_message(&me(), ChatId(9), "hi")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotAMember));
    }

    #[tokio::test]
    async fn a_post_to_a_missing_chat_is_not_found() {
        let mut m = Mocks::default();
        m.chats
            .expect_access()
            .returning(|_, _| Ok(ChatAccess::NoSuchChat));
        m.messages.expect_insert().times(0);
        m.bus.expect_publish().times(0);
        let err = m
            .messages()
            .post_message(&me(), ChatId(9), "hi")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ChatNotFound));
    }

    #[tokio::test]
    async fn a_member_post_is_stored_then_published_as_stored() {
        let mut m = Mocks::default();
        let mut seq = mockall::Sequence::new();
        m.chats.expect_access().returning(|_, _| {
            Ok(ChatAccess::Member(
                chat(9, ChatKind::Direct, Visibility::Private),
                Role::Member,
            ))
        });
        m.messages
            .expect_insert()
            .withf(|n| {
                n.chat_id == ChatId(9) && n.sender_id == UserId(1) && n.body.as_str() == "hi"
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(MessageId(77)));
        m.bus
            .expect_publish()
            .withf(|e| matches!(e, Event::MessagePosted(msg) if msg.id == MessageId(77) && msg.sender_username.as_str() == "ann"))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        let msg = m
            .messages()
            .post_message(&me(), ChatId(9), "hi")
            .await
            .unwrap();
        assert_eq!(msg.id, MessageId(77));
    }

    #[tokio::test]
    async fn a_failed_insert_publishes_nothing() {
        let mut m = Mocks::default();
        m.chats.expect_access().returning(|_, _| {
            Ok(ChatAccess::Member(
                chat(9, ChatKind::Direct, Visibility::Private),
                Role::Member,
            ))
        });
        m.messages
            .expect_insert()
            .returning(|_| Err(Error::unexpected(anyhow::anyhow!("disk full"))));
        m.bus.expect_publish().times(0);
        assert!(
            m.messages()
                .post_message(&me(), ChatId(9), "hi")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_read_marker_that_does_not_move_is_not_announced() {
        let mut m = Mocks::default();
        m.chats.expect_access().returning(|_, _| {
            Ok(ChatAccess::Member(
                chat(9, ChatKind::Direct, Visibility::Private),
                Role::Member,
            ))
        });
        m.messages.expect_exists_in().returning(|_, _| Ok(true));
        m.chats.expect_mark_read().returning(|_, _, _| Ok(false));
        m.bus.expect_publish().times(0);
        m.messages()
            .mark_read(&me(), ChatId(9), MessageId(4))
            .await
            .unwrap();
    }
}
