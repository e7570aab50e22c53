//! What happened, told to whoever listens: the domain publishes these on the
//! [`EventBus`](crate::ports::EventBus) after the change is stored, and the socket adapter
//! delivers them to the members of the chat.

use chrono::{DateTime, Utc};

use super::model::{ChatId, ChatKind, Message, MessageId, SessionId, UserId};
use super::values::Username;

/// Something members of one chat (or the holder of one session) should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message was stored; every socket of the chat receives it, the sender's too.
    MessagePosted(Message),
    /// A member started or stopped typing; the other members' sockets receive it.
    Typing {
        chat_id: ChatId,
        user_id: UserId,
        username: Username,
        kind: EventKind,
    },
    /// A user's first socket opened or last socket closed; every chat they share hears it.
    UserStatus {
        chat_ids: Vec<ChatId>,
        user_id: UserId,
        username: Username,
        is_online: bool,
        last_seen: Option<DateTime<Utc>>,
    },
    /// A chat was created with these members (a direct chat opened, a group made).
    ChatCreated {
        chat_id: ChatId,
        kind: ChatKind,
        members: Vec<UserId>,
    },
    /// A user joined or was added to a group.
    MemberJoined {
        chat_id: ChatId,
        user_id: UserId,
        username: Username,
    },
    /// A user left or was removed; from now on they receive nothing of this chat.
    MemberLeft {
        chat_id: ChatId,
        user_id: UserId,
        username: Username,
    },
    /// A member's read marker moved forward.
    Read {
        chat_id: ChatId,
        user_id: UserId,
        username: Username,
        message_id: MessageId,
    },
    /// A session was logged out; sockets opened with it must close.
    SessionRevoked(SessionId),
}

/// Whether a typing event starts or stops the indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Typing,
    StopTyping,
}
