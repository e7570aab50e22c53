//! What happened, told to whoever listens: the services publish these on the event bus after
//! the change is stored, each with its [`Audience`], and the socket adapter delivers them.

use chrono::{DateTime, Utc};

use super::model::{ChatId, ChatKind, Message, MessageId, SessionId, UserId};
use super::values::{Emoji, Username};

/// Something members of one chat (or the holder of one session) should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message was stored; every socket of the chat receives it, the sender's too.
    MessagePosted(Message),
    /// The sender changed the text of a message; it is carried as it now is.
    MessageEdited(Message),
    /// A message was deleted; it is carried as the tombstone it now is.
    MessageDeleted(Message),
    /// A member gave or took back a reaction; the message is carried with all its reactions.
    Reaction {
        message: Message,
        user_id: UserId,
        username: Username,
        emoji: Emoji,
        /// True when given, false when taken back.
        on: bool,
    },
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
    /// A session ended (logged out, ended from another session, by a password change or a
    /// reused refresh token); sockets opened with it must close.
    SessionRevoked(SessionId),
    /// An administrator disabled an account; every socket of that user must close.
    UserDisabled(UserId),
}

/// Who hears an event. The domain decides it with the event; the socket adapter only routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every socket following the chat, but not those of `except` (the actor, when the event
    /// only matters to the others).
    Chat {
        chat_id: ChatId,
        except: Option<UserId>,
    },
    /// Every socket following any of these chats, each hearing it once per chat.
    Chats(Vec<ChatId>),
    /// The sockets opened with one session.
    Session(SessionId),
    /// Every socket of one user.
    User(UserId),
}

impl Event {
    /// Who hears this event.
    pub fn audience(&self) -> Audience {
        let chat = |chat_id: &ChatId, except: Option<UserId>| Audience::Chat {
            chat_id: *chat_id,
            except,
        };
        match self {
            // Everyone sees a message change the way they saw it posted, the actor's own
            // sockets included (another tab of theirs must show it too).
            Self::MessagePosted(m) | Self::MessageEdited(m) | Self::MessageDeleted(m) => {
                chat(&m.chat_id, None)
            }
            Self::Reaction { message, .. } => chat(&message.chat_id, None),
            // Only the others care that someone types or has read.
            Self::Typing {
                chat_id, user_id, ..
            }
            | Self::Read {
                chat_id, user_id, ..
            } => chat(chat_id, Some(*user_id)),
            Self::UserStatus { chat_ids, .. } => Audience::Chats(chat_ids.clone()),
            // The leaver hears it too: it is the last thing they hear of the chat.
            Self::ChatCreated { chat_id, .. }
            | Self::MemberJoined { chat_id, .. }
            | Self::MemberLeft { chat_id, .. } => chat(chat_id, None),
            Self::SessionRevoked(session) => Audience::Session(session.clone()),
            Self::UserDisabled(user) => Audience::User(*user),
        }
    }
}

/// Whether a typing event starts or stops the indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Typing,
    StopTyping,
}
