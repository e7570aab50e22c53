//! Chats, messages and presence: everything a signed-in user does once past the door.

use std::sync::Arc;

use crate::domain::error::{Error, Result};
use crate::domain::{
    AuthUser, Chat, ChatId, ChatKind, ChatName, ChatSummary, Event, EventKind, HistoryPage, Member,
    Message, MessageBody, MessageId, NewGroup, NewMessage, Presence, Role, RoomSummary, User,
    UserId, Visibility,
};
use crate::ports::{ChatAccess, ChatRepo, Clock, EventBus, MessageRepo, UserRepo};

/// Limits that deployments may tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest message body, in characters after trimming.
    pub max_message_chars: usize,
    /// The most members a group may be created with.
    pub max_group_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_chars: 4000,
            max_group_members: 1000,
        }
    }
}

/// Chats, their members, their messages, and who is online.
#[derive(Clone)]
pub struct ChatService {
    users: Arc<dyn UserRepo>,
    chats: Arc<dyn ChatRepo>,
    messages: Arc<dyn MessageRepo>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    presence: Arc<Presence>,
    limits: Limits,
}

impl ChatService {
    pub fn new(
        users: Arc<dyn UserRepo>,
        chats: Arc<dyn ChatRepo>,
        messages: Arc<dyn MessageRepo>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        Self {
            users,
            chats,
            messages,
            bus,
            clock,
            presence: Arc::new(Presence::new()),
            limits,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether the user has a socket open in this process.
    pub fn is_online(&self, user: UserId) -> bool {
        self.presence.is_online(user)
    }

    /// Everyone but the caller, by username.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn list_users(&self, me: &AuthUser) -> Result<Vec<User>> {
        self.users.list_except(me.id).await
    }

    /// The caller's chats, most recent first.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn list_chats(&self, me: &AuthUser) -> Result<Vec<ChatSummary>> {
        self.chats.list_for_user(me.id).await
    }

    /// The direct chat with `other`, created if needed; true when this call created it.
    ///
    /// # Errors
    /// `ChatWithSelf` for the caller's own id, `UserNotFound` for an unknown user.
    pub async fn open_direct(&self, me: &AuthUser, other: UserId) -> Result<(Chat, bool)> {
        if other == me.id {
            return Err(Error::ChatWithSelf);
        }
        // Storage refuses an unknown user (UserNotFound); no racy look-up first.
        let (chat, created) = self
            .chats
            .get_or_create_direct(me.id, other, self.clock.now())
            .await?;
        if created {
            self.bus
                .publish(Event::ChatCreated {
                    chat_id: chat.id,
                    kind: ChatKind::Direct,
                    members: vec![me.id, other],
                })
                .await?;
        }
        Ok((chat, created))
    }

    /// Creates a group owned by the caller with the given members.
    ///
    /// # Errors
    /// `UserNotFound` when a member does not exist; `Invalid` on `member_ids` past the limit.
    pub async fn create_group(
        &self,
        me: &AuthUser,
        name: ChatName,
        visibility: Visibility,
        member_ids: Vec<UserId>,
    ) -> Result<Chat> {
        let mut members: Vec<UserId> = member_ids.into_iter().filter(|id| *id != me.id).collect();
        members.sort_unstable();
        members.dedup();
        if members.len() + 1 > self.limits.max_group_members {
            return Err(crate::domain::ValidationError::new(
                "member_ids",
                format!(
                    "A group may start with at most {} members.",
                    self.limits.max_group_members
                ),
            )
            .into());
        }
        let chat = self
            .chats
            .create_group(&NewGroup {
                name,
                visibility,
                owner: me.id,
                members: members.clone(),
                created_at: self.clock.now(),
            })
            .await?;
        members.insert(0, me.id);
        self.bus
            .publish(Event::ChatCreated {
                chat_id: chat.id,
                kind: ChatKind::Group,
                members,
            })
            .await?;
        Ok(chat)
    }

    /// A chat and its members, for a member.
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember`.
    pub async fn chat_details(&self, me: &AuthUser, chat: ChatId) -> Result<(Chat, Vec<Member>)> {
        let (chat, _) = self.member_access(chat, me.id).await?;
        let members = self.chats.members(chat.id).await?;
        Ok((chat, members))
    }

    /// A member adds `user` to a group.
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember`, `UserNotFound`; `Forbidden` for a direct chat.
    pub async fn add_member(&self, me: &AuthUser, chat: ChatId, user: UserId) -> Result<()> {
        let (chat, _) = self.member_access(chat, me.id).await?;
        if chat.kind == ChatKind::Direct {
            return Err(Error::Forbidden(
                "A direct chat always has exactly two members.",
            ));
        }
        let added = self.users.find(user).await?.ok_or(Error::UserNotFound)?;
        if self
            .chats
            .add_member(chat.id, user, Role::Member, self.clock.now())
            .await?
        {
            self.bus
                .publish(Event::MemberJoined {
                    chat_id: chat.id,
                    user_id: user,
                    username: added.username,
                })
                .await?;
        }
        Ok(())
    }

    /// The caller joins a public group.
    ///
    /// # Errors
    /// `ChatNotFound`; `Forbidden` for a private group or a direct chat.
    pub async fn join(&self, me: &AuthUser, chat: ChatId) -> Result<Chat> {
        let chat = match self.chats.access(chat, me.id).await? {
            ChatAccess::NoSuchChat => return Err(Error::ChatNotFound),
            ChatAccess::Member(chat, _) => return Ok(chat),
            ChatAccess::Outsider(chat) => chat,
        };
        if chat.kind != ChatKind::Group || chat.visibility != Visibility::Public {
            return Err(Error::Forbidden(
                "This chat is private; a member has to add you.",
            ));
        }
        if self
            .chats
            .add_member(chat.id, me.id, Role::Member, self.clock.now())
            .await?
        {
            self.bus
                .publish(Event::MemberJoined {
                    chat_id: chat.id,
                    user_id: me.id,
                    username: me.username.clone(),
                })
                .await?;
        }
        Ok(chat)
    }

    /// The caller leaves a group; an owner who leaves hands the group to the longest-standing
    /// member.
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember`; `Forbidden` for a direct chat.
    pub async fn leave(&self, me: &AuthUser, chat: ChatId) -> Result<()> {
        let (chat, role) = self.member_access(chat, me.id).await?;
        if chat.kind == ChatKind::Direct {
            return Err(Error::Forbidden("You cannot leave a direct chat."));
        }
        self.remove(&chat, me.id, me.username.clone()).await?;
        if role == Role::Owner {
            let heir = self.chats.members(chat.id).await?.into_iter().next();
            if let Some(heir) = heir {
                self.chats
                    .set_role(chat.id, heir.user_id, Role::Owner)
                    .await?;
            }
        }
        Ok(())
    }

    /// The owner removes a member from a group.
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember` (caller), `UserNotFound` (target not in the chat);
    /// `Forbidden` when the caller is not the owner or the chat is direct.
    pub async fn remove_member(&self, me: &AuthUser, chat: ChatId, user: UserId) -> Result<()> {
        if user == me.id {
            return self.leave(me, chat).await;
        }
        let (chat, role) = self.member_access(chat, me.id).await?;
        if chat.kind == ChatKind::Direct {
            return Err(Error::Forbidden(
                "A direct chat always has exactly two members.",
            ));
        }
        if role != Role::Owner {
            return Err(Error::Forbidden("Only the owner can remove members."));
        }
        let target = self
            .chats
            .members(chat.id)
            .await?
            .into_iter()
            .find(|m| m.user_id == user)
            .ok_or(Error::UserNotFound)?;
        self.remove(&chat, user, target.username).await
    }

    async fn remove(
        &self,
        chat: &Chat,
        user: UserId,
        username: crate::domain::Username,
    ) -> Result<()> {
        if self.chats.remove_member(chat.id, user).await? {
            self.bus
                .publish(Event::MemberLeft {
                    chat_id: chat.id,
                    user_id: user,
                    username,
                })
                .await?;
        }
        Ok(())
    }

    /// Public groups, by name.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn list_rooms(&self, me: &AuthUser) -> Result<Vec<RoomSummary>> {
        self.chats.list_public(me.id).await
    }

    /// A page of a chat's history, oldest first.
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember`.
    pub async fn history(
        &self,
        me: &AuthUser,
        chat: ChatId,
        page: HistoryPage,
    ) -> Result<Vec<Message>> {
        self.member_access(chat, me.id).await?;
        self.messages.list(chat, page).await
    }

    /// Stores a message from the caller and tells the chat, in that order.
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember`; nothing is stored or published then.
    pub async fn post_message(
        &self,
        me: &AuthUser,
        chat: ChatId,
        body: MessageBody,
    ) -> Result<Message> {
        self.member_access(chat, me.id).await?;
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
        self.member_access(chat, me.id).await?;
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
        self.member_access(chat, me.id).await?;
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

    /// Records a socket opening; on the user's first, tells every chat they share.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn connect(&self, me: &AuthUser) -> Result<()> {
        if self.presence.connect(me.id) {
            self.publish_status(me, true, None).await?;
        }
        Ok(())
    }

    /// Records a socket closing; on the user's last, stores and tells when they were last seen.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn disconnect(&self, me: &AuthUser) -> Result<()> {
        if self.presence.disconnect(me.id) {
            let now = self.clock.now();
            self.users.touch_last_seen(me.id, now).await?;
            self.publish_status(me, false, Some(now)).await?;
        }
        Ok(())
    }

    async fn publish_status(
        &self,
        me: &AuthUser,
        is_online: bool,
        last_seen: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<()> {
        let chat_ids = self.chats.chat_ids_of(me.id).await?;
        if chat_ids.is_empty() {
            return Ok(());
        }
        self.bus
            .publish(Event::UserStatus {
                chat_ids,
                user_id: me.id,
                username: me.username.clone(),
                is_online,
                last_seen,
            })
            .await
    }

    /// The chat and the caller's role in it, or why they may not touch it.
    async fn member_access(&self, chat: ChatId, user: UserId) -> Result<(Chat, Role)> {
        match self.chats.access(chat, user).await? {
            ChatAccess::Member(chat, role) => Ok((chat, role)),
            ChatAccess::Outsider(_) => Err(Error::NotAMember),
            ChatAccess::NoSuchChat => Err(Error::ChatNotFound),
        }
    }

    /// The ids of the chats the caller belongs to.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn my_chat_ids(&self, me: &AuthUser) -> Result<Vec<ChatId>> {
        self.chats.chat_ids_of(me.id).await
    }

    /// Checks the caller may use a chat (for opening its socket).
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember`.
    pub async fn ensure_member(&self, me: &AuthUser, chat: ChatId) -> Result<Chat> {
        self.member_access(chat, me.id).await.map(|(chat, _)| chat)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use mockall::predicate::{always, eq};

    use super::*;
    use crate::domain::{SessionId, Username};
    use crate::ports::{MockChatRepo, MockClock, MockEventBus, MockMessageRepo, MockUserRepo};

    #[derive(Default)]
    struct Mocks {
        users: MockUserRepo,
        chats: MockChatRepo,
        messages: MockMessageRepo,
        bus: MockEventBus,
    }

    impl Mocks {
        fn service(self) -> ChatService {
            let mut clock = MockClock::new();
            clock
                .expect_now()
                .returning(|| Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap());
            ChatService::new(
                Arc::new(self.users),
                Arc::new(self.chats),
                Arc::new(self.messages),
                Arc::new(self.bus),
                Arc::new(clock),
                Limits::default(),
            )
        }
    }

    fn me() -> AuthUser {
        AuthUser {
            id: UserId(1),
            username: Username::parse("ann").unwrap(),
            session: SessionId("s".into()),
            session_expires_at: Utc::now(),
        }
    }

    fn chat(id: i64, kind: ChatKind, visibility: Visibility) -> Chat {
        Chat {
            id: ChatId(id),
            kind,
            name: (kind == ChatKind::Group).then(|| ChatName::parse("room").unwrap()),
            visibility,
            created_at: Utc::now(),
        }
    }

    fn body(s: &str) -> MessageBody {
        MessageBody::parse(s, 100).unwrap()
    }

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
            .service()
            .post_message(&me(), ChatId(9), body("hi"))
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
            .service()
            .post_message(&me(), ChatId(9), body("hi"))
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
            .service()
            .post_message(&me(), ChatId(9), body("hi"))
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
            m.service()
                .post_message(&me(), ChatId(9), body("hi"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn opening_a_chat_with_yourself_touches_nothing() {
        let mut m = Mocks::default();
        m.users.expect_find().times(0);
        m.chats.expect_get_or_create_direct().times(0);
        let err = m.service().open_direct(&me(), UserId(1)).await.unwrap_err();
        assert!(matches!(err, Error::ChatWithSelf));
    }

    #[tokio::test]
    async fn an_existing_direct_chat_is_not_announced_again() {
        let mut m = Mocks::default();
        m.chats
            .expect_get_or_create_direct()
            .with(eq(UserId(1)), eq(UserId(2)), always())
            .returning(|_, _, _| Ok((chat(5, ChatKind::Direct, Visibility::Private), false)));
        m.bus.expect_publish().times(0);
        let (c, created) = m.service().open_direct(&me(), UserId(2)).await.unwrap();
        assert_eq!((c.id, created), (ChatId(5), false));
    }

    #[tokio::test]
    async fn a_new_direct_chat_is_announced_to_both_members() {
        let mut m = Mocks::default();
        m.chats
            .expect_get_or_create_direct()
            .returning(|_, _, _| Ok((chat(5, ChatKind::Direct, Visibility::Private), true)));
        m.bus
            .expect_publish()
            .withf(|e| {
                matches!(e, Event::ChatCreated { chat_id: ChatId(5), members, .. }
                    if members == &[UserId(1), UserId(2)])
            })
            .times(1)
            .returning(|_| Ok(()));
        let (_, created) = m.service().open_direct(&me(), UserId(2)).await.unwrap();
        assert!(created);
    }

    #[tokio::test]
    async fn a_private_group_cannot_be_joined() {
        let mut m = Mocks::default();
        m.chats.expect_access().returning(|_, _| {
            Ok(ChatAccess::Outsider(chat(
                3,
                ChatKind::Group,
                Visibility::Private,
            )))
        });
        m.chats.expect_add_member().times(0);
        m.bus.expect_publish().times(0);
        let err = m.service().join(&me(), ChatId(3)).await.unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)));
    }

    #[tokio::test]
    async fn only_the_owner_removes_others() {
        let mut m = Mocks::default();
        m.chats.expect_access().returning(|_, _| {
            Ok(ChatAccess::Member(
                chat(3, ChatKind::Group, Visibility::Private),
                Role::Member,
            ))
        });
        m.chats.expect_remove_member().times(0);
        m.bus.expect_publish().times(0);
        let err = m
            .service()
            .remove_member(&me(), ChatId(3), UserId(2))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)));
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
        m.service()
            .mark_read(&me(), ChatId(9), MessageId(4))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_second_tab_neither_announces_nor_stores_presence() {
        let mut m = Mocks::default();
        m.chats
            .expect_chat_ids_of()
            .times(1)
            .returning(|_| Ok(vec![ChatId(9)]));
        m.bus
            .expect_publish()
            .withf(|e| {
                matches!(
                    e,
                    Event::UserStatus {
                        is_online: true,
                        ..
                    }
                )
            })
            .times(1)
            .returning(|_| Ok(()));
        m.users.expect_touch_last_seen().times(0);
        let service = m.service();
        service.connect(&me()).await.unwrap();
        service.connect(&me()).await.unwrap();
        service.disconnect(&me()).await.unwrap();
        assert!(service.is_online(UserId(1)));
    }

    #[tokio::test]
    async fn the_last_socket_closing_stores_last_seen_then_announces_it() {
        let mut m = Mocks::default();
        m.chats
            .expect_chat_ids_of()
            .returning(|_| Ok(vec![ChatId(9)]));
        let when = Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap();
        m.users
            .expect_touch_last_seen()
            .with(eq(UserId(1)), eq(when))
            .times(1)
            .returning(|_, _| Ok(()));
        m.bus.expect_publish().times(2).returning(|_| Ok(()));
        let service = m.service();
        service.connect(&me()).await.unwrap();
        service.disconnect(&me()).await.unwrap();
        assert!(!service.is_online(UserId(1)));
    }
}
