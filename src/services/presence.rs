//! Who is online: a user's first socket opening and last one closing, told to every chat they
//! share, and when they were last seen.

use std::collections::HashSet;
use std::sync::Arc;

use crate::domain::error::Result;
use crate::domain::{AuthUser, Event, UserId, Username};
use crate::ports::{ChatRepo, Clock, EventBus, PresenceTracker, UserRepo};

/// Online status and last seen.
#[derive(Clone)]
pub struct PresenceService {
    users: Arc<dyn UserRepo>,
    chats: Arc<dyn ChatRepo>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    tracker: Arc<dyn PresenceTracker>,
}

impl PresenceService {
    pub fn new(
        users: Arc<dyn UserRepo>,
        chats: Arc<dyn ChatRepo>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        tracker: Arc<dyn PresenceTracker>,
    ) -> Self {
        Self {
            users,
            chats,
            bus,
            clock,
            tracker,
        }
    }

    /// Which of `users` are online.
    ///
    /// # Errors
    /// `Unexpected` when the tracker cannot be reached.
    pub async fn online_among(&self, users: &[UserId]) -> Result<HashSet<UserId>> {
        self.tracker.online_among(users).await
    }

    /// `Unexpected` on storage failure.
    pub async fn connect(&self, me: &AuthUser) -> Result<()> {
        if self.tracker.connect(me.id).await? {
            self.publish_status(me.id, &me.username, true, None).await?;
        }
        Ok(())
    }

    /// `Unexpected` on storage failure.
    pub async fn disconnect(&self, me: &AuthUser) -> Result<()> {
        if self.tracker.disconnect(me.id).await? {
            let now = self.clock.now();
            self.users.touch_last_seen(me.id, now).await?;
            self.publish_status(me.id, &me.username, false, Some(now))
                .await?;
        }
        Ok(())
    }

    /// Announces offline the users whose sockets were all on instances that stopped without
    /// a goodbye (see [`PresenceTracker::expire_dead`]), as if their last socket had closed.
    ///
    /// # Errors
    /// `Unexpected` when the tracker or storage cannot be reached.
    pub async fn expire_dead(&self) -> Result<()> {
        for user in self.tracker.expire_dead().await? {
            let Some(found) = self.users.find(user).await? else {
                continue;
            };
            let now = self.clock.now();
            self.users.touch_last_seen(user, now).await?;
            self.publish_status(found.id, &found.username, false, Some(now))
                .await?;
        }
        Ok(())
    }

    async fn publish_status(
        &self,
        user: UserId,
        username: &Username,
        is_online: bool,
        last_seen: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<()> {
        let chat_ids = self.chats.chat_ids_of(user).await?;
        if chat_ids.is_empty() {
            return Ok(());
        }
        self.bus
            .publish(Event::UserStatus {
                chat_ids,
                user_id: user,
                username: username.clone(),
                is_online,
                last_seen,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use mockall::predicate::eq;

    use super::*;
    use crate::domain::ChatId;
    use crate::services::testing::{Mocks, me};

    #[tokio::test]
    async fn a_second_tab_neither_announces_nor_stores_presence() {
        let mut m = Mocks::default();
        let mut opened = 0;
        m.tracker.expect_connect().returning(move |_| {
            opened += 1;
            Ok(opened == 1)
        });
        m.tracker.expect_disconnect().returning(|_| Ok(false));
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
        let service = m.presence();
        service.connect(&me()).await.unwrap();
        service.connect(&me()).await.unwrap();
        service.disconnect(&me()).await.unwrap();
    }

    #[tokio::test]
    async fn the_last_socket_closing_stores_last_seen_then_announces_it() {
        let mut m = Mocks::default();
        m.tracker.expect_disconnect().returning(|_| Ok(true));
        m.chats
            .expect_chat_ids_of()
            .returning(|_| Ok(vec![ChatId(9)]));
        let when = Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap();
        let mut seq = mockall::Sequence::new();
        m.users
            .expect_touch_last_seen()
            .with(eq(UserId(1)), eq(when))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        m.bus
            .expect_publish()
            .withf(move |e| {
                matches!(e, Event::UserStatus { is_online: false, last_seen: Some(t), .. } if *t == when)
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        m.presence().disconnect(&me()).await.unwrap();
    }
}
