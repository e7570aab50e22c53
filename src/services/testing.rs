//! What the services' unit tests share: a mock of every port, each service built over them,
//! and a caller and chats to act on.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::{ChatService, Limits, MembershipService, MessageService, PresenceService};
use crate::domain::{
    AuthUser, Chat, ChatAccess, ChatId, ChatKind, ChatName, SessionId, UserId, Username, Visibility,
};
use crate::ports::{
    MockChatRepo, MockClock, MockEventBus, MockMessageRepo, MockPresenceTracker, MockUserRepo,
};

/// The ports a service may use; set expectations on them, then build the service.
#[derive(Default)]
pub(super) struct Mocks {
    pub users: MockUserRepo,
    pub chats: MockChatRepo,
    pub messages: MockMessageRepo,
    pub bus: MockEventBus,
    pub tracker: MockPresenceTracker,
}

/// A clock stopped at 2026-05-06 07:08:09 UTC.
pub(super) fn clock() -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock
        .expect_now()
        .returning(|| Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap());
    Arc::new(clock)
}

impl Mocks {
    /// Storage answers every question of access to a chat with `access`.
    pub fn access(&mut self, access: ChatAccess) {
        self.chats
            .expect_access()
            .returning(move |_, _| Ok(access.clone()));
    }

    pub fn chats(self) -> ChatService {
        ChatService::new(
            Arc::new(self.chats),
            Arc::new(self.bus),
            clock(),
            Limits::default(),
        )
    }

    pub fn members(self) -> MembershipService {
        MembershipService::new(
            Arc::new(self.users),
            Arc::new(self.chats),
            Arc::new(self.bus),
            clock(),
        )
    }

    pub fn messages(self) -> MessageService {
        self.messages_with(Limits::default())
    }

    pub fn messages_with(self, limits: Limits) -> MessageService {
        MessageService::new(
            Arc::new(self.chats),
            Arc::new(self.messages),
            Arc::new(self.bus),
            clock(),
            limits,
        )
    }

    pub fn presence(self) -> PresenceService {
        PresenceService::new(
            Arc::new(self.users),
            Arc::new(self.chats),
            Arc::new(self.bus),
            clock(),
            Arc::new(self.tracker),
        )
    }
}

/// Ann, user 1, the caller.
pub(super) fn me() -> AuthUser {
    AuthUser {
        id: UserId(1),
        username: Username::parse("ann").unwrap(),
        session: SessionId("s".into()),
        session_expires_at: Utc::now(),
    }
}

/// A chat as storage would return it.
pub(super) fn chat(id: i64, kind: ChatKind, visibility: Visibility) -> Chat {
    Chat {
        id: ChatId(id),
        kind,
        name: (kind == ChatKind::Group).then(|| ChatName::parse("room").unwrap()),
        visibility,
        created_at: Utc::now(),
    }
}
