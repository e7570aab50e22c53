//! Who is in a group: adding, joining, leaving and removing members, and who owns the group
//! after its owner leaves.

use std::sync::Arc;

use super::access::member_access;
use crate::domain::error::{Error, Result};
use crate::domain::{
    AuthUser, Chat, ChatAccess, ChatId, ChatKind, Event, Role, UserId, Username, Visibility,
};
use crate::ports::{ChatRepo, Clock, EventBus, UserRepo};

/// The members of groups.
#[derive(Clone)]
pub struct MembershipService {
    users: Arc<dyn UserRepo>,
    chats: Arc<dyn ChatRepo>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
}

impl MembershipService {
    pub fn new(
        users: Arc<dyn UserRepo>,
        chats: Arc<dyn ChatRepo>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            users,
            chats,
            bus,
            clock,
        }
    }

    /// A member adds `user` to a group.
    ///
    /// # Errors
    /// `ChatNotFound`, `NotAMember`, `UserNotFound`; `Forbidden` for a direct chat.
    pub async fn add_member(&self, me: &AuthUser, chat: ChatId, user: UserId) -> Result<()> {
        let (chat, _) = member_access(&*self.chats, chat, me.id).await?;
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
        let (chat, role) = member_access(&*self.chats, chat, me.id).await?;
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
        let (chat, role) = member_access(&*self.chats, chat, me.id).await?;
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

    async fn remove(&self, chat: &Chat, user: UserId, username: Username) -> Result<()> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::testing::{Mocks, chat, me};

    #[tokio::test]
    async fn a_private_group_cannot_be_joined() {
        let mut m = Mocks::default();
        m.access(ChatAccess::Outsider(chat(
            3,
            ChatKind::Group,
            Visibility::Private,
        )));
        m.chats.expect_add_member().times(0);
        m.bus.expect_publish().times(0);
        let err = m.members().join(&me(), ChatId(3)).await.unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)));
    }

    #[tokio::test]
    async fn only_the_owner_removes_others() {
        let mut m = Mocks::default();
        m.access(ChatAccess::Member(
            chat(3, ChatKind::Group, Visibility::Private),
            Role::Member,
        ));
        m.chats.expect_remove_member().times(0);
        m.bus.expect_publish().times(0);
        let err = m
            .members()
            .remove_member(&me(), ChatId(3), UserId(2))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)));
    }
}
