//! Chats as a whole: the ones a user is in, opening a direct chat, creating a group, a chat's
//! details and the public rooms.

use std::sync::Arc;

use super::Limits;
use super::access::member_access;
use crate::domain::error::{Error, Result};
use crate::domain::{
    AuthUser, Chat, ChatId, ChatKind, ChatName, ChatSummary, Event, Member, NewGroup, RoomSummary,
    UserId, ValidationError, Visibility,
};
use crate::ports::{ChatRepo, Clock, EventBus};

/// Chats, as their members see them.
#[derive(Clone)]
pub struct ChatService {
    chats: Arc<dyn ChatRepo>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    limits: Limits,
}

impl ChatService {
    pub fn new(
        chats: Arc<dyn ChatRepo>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        Self {
            chats,
            bus,
            clock,
            limits,
        }
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
            return Err(ValidationError::new(
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
        let (chat, _) = member_access(&*self.chats, chat, me.id).await?;
        let members = self.chats.members(chat.id).await?;
        Ok((chat, members))
    }

    /// Public groups, by name.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn list_rooms(&self, me: &AuthUser) -> Result<Vec<RoomSummary>> {
        self.chats.list_public(me.id).await
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
        member_access(&*self.chats, chat, me.id)
            .await
            .map(|(chat, _)| chat)
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::{always, eq};

    use super::*;
    use crate::services::testing::{Mocks, chat, me};

    #[tokio::test]
    async fn a_group_is_stored_with_distinct_members_without_its_owner() {
        let mut m = Mocks::default();
        m.chats
            .expect_create_group()
            .withf(|g| g.owner == UserId(1) && g.members == [UserId(2), UserId(3)])
            .times(1)
            .returning(|_| Ok(chat(4, ChatKind::Group, Visibility::Private)));
        m.bus
            .expect_publish()
            .withf(|e| {
                matches!(e, Event::ChatCreated { members, .. }
                    if members == &[UserId(1), UserId(2), UserId(3)])
            })
            .times(1)
            .returning(|_| Ok(()));
        let members = vec![UserId(3), UserId(2), UserId(1), UserId(3)];
        m.chats()
            .create_group(
                &me(),
                ChatName::parse("room").unwrap(),
                Visibility::Private,
                members,
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn opening_a_chat_with_yourself_touches_nothing() {
        let mut m = Mocks::default();
        m.users.expect_find().times(0);
        m.chats.expect_get_or_create_direct().times(0);
        let err = m.chats().open_direct(&me(), UserId(1)).await.unwrap_err();
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
        let (c, created) = m.chats().open_direct(&me(), UserId(2)).await.unwrap();
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
        let (_, created) = m.chats().open_direct(&me(), UserId(2)).await.unwrap();
        assert!(created);
    }
}
