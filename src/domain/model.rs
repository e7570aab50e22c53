//! The entities of Parley and the identifiers that name them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::ValidationError;
use super::values::{ChatName, ClientId, Email, Emoji, MessageBody, Username};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Identifies a user.
    UserId
);
id_type!(
    /// Identifies a chat, direct or group.
    ChatId
);
id_type!(
    /// Identifies a message; ids grow with time within the whole server.
    MessageId
);
id_type!(
    /// A message's position in its chat: 1, 2, 3, ... without a gap, in the order the messages
    /// were committed, so a client that has seen seq `n` has seen everything up to `n`.
    Seq
);

id_type!(
    /// A change's position among its chat's changes to messages already posted (edits,
    /// deletes, reactions): 1, 2, 3, ... in commit order, so a client that has seen change `n`
    /// catches up by asking for the messages changed after `n`.
    ChangeSeq
);

/// A registered person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    /// The PHC string of the password hash; never leaves the server.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// When the user's last socket closed; `None` until it first has.
    pub last_seen: Option<DateTime<Utc>>,
    /// Disabled by an administrator: cannot log in, and no token of theirs authenticates.
    pub disabled: bool,
}

/// What registration stores.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A direct chat has exactly two members; a group has a name, an owner and any number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    Direct,
    Group,
}

impl ChatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "group" => Some(Self::Group),
            _ => None,
        }
    }
}

/// Whether anyone may join a group (`Public`) or only those a member adds (`Private`).
/// Direct chats are always private.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Self::Private),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

/// A member's standing in a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub id: ChatId,
    pub kind: ChatKind,
    /// Set for groups, `None` for direct chats.
    pub name: Option<ChatName>,
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
}

/// What creating a group stores: the owner plus the initial members.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub name: ChatName,
    pub visibility: Visibility,
    pub owner: UserId,
    pub members: Vec<UserId>,
    pub created_at: DateTime<Utc>,
}

/// A user's membership in a chat, as listed in the chat's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: UserId,
    pub username: Username,
    pub last_seen: Option<DateTime<Utc>>,
    pub role: Role,
    /// The newest message this member has read, if any.
    pub last_read: Option<MessageId>,
}

/// One line of a user's chat list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    pub chat: Chat,
    /// For a direct chat, the other member.
    pub peer: Option<Peer>,
    /// Messages after the caller's read marker that others sent.
    pub unread: i64,
    pub last_message: Option<Message>,
}

/// The other member of a direct chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: UserId,
    pub username: Username,
    pub last_seen: Option<DateTime<Utc>>,
}

/// A public room as listed for browsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub chat_id: ChatId,
    pub name: ChatName,
    pub members_count: i64,
    pub is_member: bool,
}

/// A stored message, with its sender's username for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub chat_id: ChatId,
    /// Its position in the chat.
    pub seq: Seq,
    pub sender_id: UserId,
    pub sender_username: Username,
    pub body: MessageBody,
    pub created_at: DateTime<Utc>,
    /// The sender's own name for the message, under which a resend is recognised.
    pub client_id: Option<ClientId>,
    /// When the sender last changed the text; `None` if never.
    pub edited_at: Option<DateTime<Utc>>,
    /// Whether the message was deleted: its text is gone ([`MessageBody::erased`]), its place
    /// in the chat stays.
    pub deleted: bool,
    /// The message this one answers, as quoted.
    pub reply_to: Option<Quote>,
    /// The reactions, one entry per emoji, in the order each emoji was first given.
    pub reactions: Vec<Reaction>,
    /// The chat's change number of the latest edit, delete or reaction; `None` if never changed.
    pub change_seq: Option<ChangeSeq>,
}

impl Message {
    /// A message as just posted: never changed, without reactions.
    pub fn posted(
        new: NewMessage,
        id: MessageId,
        seq: Seq,
        sender: Username,
        reply_to: Option<Quote>,
    ) -> Self {
        Self {
            id,
            chat_id: new.chat_id,
            seq,
            sender_id: new.sender_id,
            sender_username: sender,
            body: new.body,
            created_at: new.created_at,
            client_id: new.client_id,
            edited_at: None,
            deleted: false,
            reply_to,
            reactions: Vec::new(),
            change_seq: None,
        }
    }
}

/// The message a reply answers, as the reply shows it: who wrote it and the start of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub id: MessageId,
    pub sender_id: UserId,
    pub sender_username: Username,
    /// The first [`Quote::MAX_CHARS`] characters of the text; empty when it was deleted.
    pub text: String,
    pub deleted: bool,
}

impl Quote {
    /// The most characters of the original a quote shows.
    pub const MAX_CHARS: usize = 100;

    /// The quote of a message with this sender and body.
    pub fn new(
        id: MessageId,
        sender_id: UserId,
        sender_username: Username,
        body: &MessageBody,
        deleted: bool,
    ) -> Self {
        Self {
            id,
            sender_id,
            sender_username,
            text: if deleted {
                String::new()
            } else {
                body.shortened(Self::MAX_CHARS)
            },
            deleted,
        }
    }

    /// The quote of `message`.
    pub fn of(message: &Message) -> Self {
        Self::new(
            message.id,
            message.sender_id,
            message.sender_username.clone(),
            &message.body,
            message.deleted,
        )
    }
}

/// One emoji given to a message, and by whom, in the order they gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: Emoji,
    pub user_ids: Vec<UserId>,
}

/// Groups `(emoji, user)` pairs, in the order they were given, into one [`Reaction`] per emoji.
pub fn group_reactions(given: impl IntoIterator<Item = (Emoji, UserId)>) -> Vec<Reaction> {
    let mut out: Vec<Reaction> = Vec::new();
    for (emoji, user) in given {
        match out.iter_mut().find(|r| r.emoji == emoji) {
            Some(r) => r.user_ids.push(user),
            None => out.push(Reaction {
                emoji,
                user_ids: vec![user],
            }),
        }
    }
    out
}

/// What posting stores.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub chat_id: ChatId,
    pub sender_id: UserId,
    pub body: MessageBody,
    pub created_at: DateTime<Utc>,
    /// When set, the message is stored at most once per sender and chat under this id.
    pub client_id: Option<ClientId>,
    /// The message of the same chat this one answers.
    pub reply_to: Option<MessageId>,
}

/// What storing a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
// One is answered per message stored and consumed at once: boxing the resend would cost an
// allocation for nothing and change the type storage adapters return.
#[allow(clippy::large_enum_variant)]
pub enum Inserted {
    /// The message is stored under this id, at this position of its chat.
    New { id: MessageId, seq: Seq },
    /// The sender had already stored a message under this `client_id` in this chat: this one.
    /// Nothing was stored and no seq was used.
    Existing(Message),
}

/// What posting a message did: the message as stored, and whether this call stored it (false
/// when it is a resend of one stored earlier under the same `client_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub message: Message,
    pub created: bool,
}

/// What a client that reconnects missed in a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Every message after the client's last seq, oldest first (none when it is up to date).
    Messages(Vec<Message>),
    /// More messages than the server replays: the client should page the history instead.
    TooFarBehind,
}

/// Which slice of a chat's history to read. `before` pages back, `after` catches up; the
/// `_seq` bounds do the same by position in the chat, and every bound given applies. The
/// result is always oldest first: with only `after`/`after_seq` it is the oldest `limit`
/// after them, otherwise the newest `limit` before `before`/`before_seq` (or the newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPage {
    pub before: Option<MessageId>,
    pub after: Option<MessageId>,
    pub before_seq: Option<Seq>,
    pub after_seq: Option<Seq>,
    pub limit: u32,
}

/// A page of history as a client asked for it, not yet checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Messages before this id.
    pub before: Option<i64>,
    /// Messages after this id.
    pub after: Option<i64>,
    /// Messages before this seq.
    pub before_seq: Option<i64>,
    /// Messages after this seq.
    pub after_seq: Option<i64>,
    /// How many; [`HistoryPage::DEFAULT_LIMIT`] when absent.
    pub limit: Option<i64>,
}

impl HistoryPage {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 200;

    /// Checks a request: the page size must be 1 to [`HistoryPage::MAX_LIMIT`].
    ///
    /// # Errors
    /// A [`ValidationError`] on `limit`.
    pub fn parse(request: PageRequest) -> Result<Self, ValidationError> {
        let limit = match request.limit {
            None => Self::DEFAULT_LIMIT,
            Some(n) if (1..=i64::from(Self::MAX_LIMIT)).contains(&n) => n as u32,
            Some(_) => {
                return Err(ValidationError::new(
                    "limit",
                    format!("'limit' must be between 1 and {}.", Self::MAX_LIMIT),
                ));
            }
        };
        Ok(Self {
            before: request.before.map(MessageId),
            after: request.after.map(MessageId),
            before_seq: request.before_seq.map(Seq),
            after_seq: request.after_seq.map(Seq),
            limit,
        })
    }

    /// The latest messages.
    pub fn latest(limit: u32) -> Self {
        Self {
            before: None,
            after: None,
            before_seq: None,
            after_seq: None,
            limit,
        }
    }

    /// The oldest `limit` messages after position `seq`.
    pub fn after_seq(seq: Seq, limit: u32) -> Self {
        Self {
            after_seq: Some(seq),
            ..Self::latest(limit)
        }
    }

    /// Whether the page starts right after its lower bound (only `after`/`after_seq` given)
    /// rather than ending right before its upper bound or at the newest message.
    pub fn oldest_first(&self) -> bool {
        (self.after.is_some() || self.after_seq.is_some())
            && self.before.is_none()
            && self.before_seq.is_none()
    }
}

/// The user a request or socket acts as, established from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub id: UserId,
    pub username: Username,
    /// The server session the token belongs to, so that logging out ends exactly this one.
    pub session: SessionId,
    /// When this authentication stops working: the token's expiry, or the session's when that
    /// comes first. A socket closes then.
    pub session_expires_at: DateTime<Utc>,
}

/// Identifies a server session: one login, on one device, renewed until it ends or lies
/// unused for too long.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(pub String);

impl SessionId {
    /// A fresh id nobody can guess.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

/// Who is on the other end of a login: where it came from and what it says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub address: std::net::IpAddr,
    pub user_agent: Option<String>,
}

/// A server session: created at login, kept alive by use (each use pushes `expires_at` to
/// the idle lifetime ahead), ended by logout, from another session, by a password change or
/// when a rotated refresh token comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// The owner's username, read with the session so that one read authenticates a request.
    pub username: Username,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client: Client,
    /// Digests of the session's refresh tokens; never leave the server.
    pub refresh: RefreshState,
}

/// Where a session's refresh token stands: the digest of the one that works now, and of the
/// one it replaced, with when it did (so that two tabs refreshing at once are not taken for a
/// stolen token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    pub current: String,
    pub previous: Option<String>,
    pub rotated_at: Option<DateTime<Utc>>,
}

/// What logging in stores.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client: Client,
    /// The digest of the session's first refresh token.
    pub refresh_digest: String,
}

/// A refresh token as handed to its client, and the digest kept of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub token: String,
    pub digest: String,
}

/// What logging in or refreshing hands the client.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: AccessToken,
    /// The next refresh token; `None` when a refresh raced another one of the same session
    /// and lost, so that the token the winner set stays the session's.
    pub refresh: Option<String>,
    pub session: SessionId,
    pub session_expires_at: DateTime<Utc>,
}

/// A signed access token and when it stops working.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub user_id: UserId,
    /// The server session the token was issued for.
    pub session: SessionId,
    pub expires_at: DateTime<Utc>,
}

/// Access of one user to one chat, read in one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatAccess {
    /// No chat has that id.
    NoSuchChat,
    /// The chat exists; the user is not in it.
    Outsider(Chat),
    /// The user is a member with this role.
    Member(Chat, Role),
}
