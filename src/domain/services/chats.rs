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
        if self.users.find(other).await?.is_none() {
            return Err(Error::UserNotFound);
        }
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
