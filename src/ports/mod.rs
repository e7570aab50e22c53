//! The traits the use cases in [`crate::services`] need from the outside world, one per
//! outside thing. They speak the types of [`crate::domain`] and nothing else. Adapters in
//! [`crate::adapters`] implement them; library users may bring their own. With the `mocks`
//! feature (and in this crate's tests) each trait has a `mockall` mock: `MockUserRepo`, ...
//!
//! An implementation needs only this module and the domain's types:
//! `use parley::ports::{Error, Result, UserRepo};` with `#[parley::async_trait]`.

mod presence;
mod throttle;

use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::Stream;

/// Kept here too for code written when it lived in this module.
pub use crate::domain::ChatAccess;
/// What [`MessageRepo::insert`] answers.
pub use crate::domain::Inserted;
/// What every port returns.
pub use crate::domain::error::{Error, Result};
use crate::domain::{
    AccessToken, ChangeSeq, Chat, ChatId, ChatSummary, Claims, Emoji, Event, HistoryPage, Member,
    Message, MessageBody, MessageId, NewGroup, NewMessage, NewSession, NewUser, Password,
    RefreshToken, Role, RoomSummary, Session, SessionId, User, UserId,
};
#[cfg(any(test, feature = "mocks"))]
pub use presence::MockPresenceTracker;
pub use presence::PresenceTracker;
pub use throttle::{
    Account, FailureKey, Failures, HashAdmission, HashPermit, LoginFailures, RateWindows, Window,
};
#[cfg(any(test, feature = "mocks"))]
pub use throttle::{MockHashAdmission, MockLoginFailures, MockRateWindows};

/// Where users are kept.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepo: Send + Sync + 'static {
    /// Stores a new user and returns it with its id.
    ///
    /// # Errors
    /// `UsernameTaken` / `EmailTaken` when another user has that username or email, compared
    /// without regard to case; the storage's unique constraint decides.
    async fn create(&self, user: &NewUser) -> Result<User>;

    /// The user with this id, if any.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn find(&self, id: UserId) -> Result<Option<User>>;

    /// The user whose username or email equals `login`, without regard to case.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn find_by_login(&self, login: &str) -> Result<Option<User>>;

    /// Every user but `except`, ordered by username without regard to case.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn list_except(&self, except: UserId) -> Result<Vec<User>>;

    /// Every user, ordered by username without regard to case.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn list_all(&self) -> Result<Vec<User>>;

    /// Records when the user was last seen online.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn touch_last_seen(&self, id: UserId, at: DateTime<Utc>) -> Result<()>;

    /// Replaces the user's password hash (a PHC string).
    ///
    /// # Errors
    /// `UserNotFound` when no user has this id.
    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()>;

    /// Disables the user (`true`) or enables them again (`false`); setting what is already set
    /// is fine.
    ///
    /// # Errors
    /// `UserNotFound` when no user has this id.
    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()>;
}

/// Tells whether the storage answers, for the readiness check.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StorageProbe: Send + Sync + 'static {
    /// Runs the cheapest query the storage has.
    ///
    /// # Errors
    /// `Unexpected` when the storage does not answer.
    async fn ping(&self) -> Result<()>;

    /// How busy each pool of connections to the storage is, for the metrics; none for a
    /// storage without connections (the default).
    fn connections(&self) -> Vec<PoolUsage> {
        Vec::new()
    }
}

/// One pool of connections to the storage, as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Which pool: `postgres`, or `sqlite_read` and `sqlite_write`.
    pub pool: &'static str,
    /// Connections lent out, running a statement or held by a transaction.
    pub in_use: u32,
    /// Connections open and waiting to be lent.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// Where chats and their memberships are kept.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChatRepo: Send + Sync + 'static {
    /// The direct chat between `a` and `b`, created with both as members if it did not exist;
    /// the flag is true when this call created it. Two concurrent calls for the same pair
    /// (in either order) yield one chat. `a` and `b` are two different users: the caller's to
    /// ensure.
    ///
    /// # Errors
    /// `UserNotFound` when either user does not exist; `Unexpected` when `a == b`.
    async fn get_or_create_direct(
        &self,
        a: UserId,
        b: UserId,
        at: DateTime<Utc>,
    ) -> Result<(Chat, bool)>;

    /// Stores a group with its owner, as `Owner`, then its members in the given order, as
    /// `Member`. The caller guarantees the members are distinct and do not include the owner;
    /// storage does not repair a list that breaks this.
    ///
    /// # Errors
    /// `UserNotFound` when the owner or a member does not exist; `Unexpected` when a user is
    /// listed twice (the owner among the members included). Nothing is stored on error.
    async fn create_group(&self, group: &NewGroup) -> Result<Chat>;

    /// Whether the chat exists and what `user` is in it.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn access(&self, chat: ChatId, user: UserId) -> Result<ChatAccess>;

    /// The members of a chat, in the order they joined.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn members(&self, chat: ChatId) -> Result<Vec<Member>>;

    /// The chats `user` belongs to, with unread count and last message, most recent first.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn list_for_user(&self, user: UserId) -> Result<Vec<ChatSummary>>;

    /// The ids of the chats `user` belongs to.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn chat_ids_of(&self, user: UserId) -> Result<Vec<ChatId>>;

    /// Every public group, by name, saying whether `viewer` is in it.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn list_public(&self, viewer: UserId) -> Result<Vec<RoomSummary>>;

    /// Adds `user` to `chat`; false when they already were a member.
    ///
    /// # Errors
    /// `ChatNotFound` when the chat does not exist, else `UserNotFound` when the user does not.
    async fn add_member(
        &self,
        chat: ChatId,
        user: UserId,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Removes `user` from `chat`; false when they were not a member.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn remove_member(&self, chat: ChatId, user: UserId) -> Result<bool>;

    /// Changes a member's role.
    ///
    /// # Errors
    /// `NotAMember` when `user` is not in `chat`.
    async fn set_role(&self, chat: ChatId, user: UserId, role: Role) -> Result<()>;

    /// Moves `user`'s read marker in `chat` to `message`, only ever forward; true when it moved.
    ///
    /// # Errors
    /// `NotAMember` when `user` is not in `chat`.
    async fn mark_read(&self, chat: ChatId, user: UserId, message: MessageId) -> Result<bool>;
}

/// Where messages are kept. Each chat's messages form a stream numbered by
/// [`Seq`](crate::domain::Seq): 1, 2, 3, ... without a gap or a repeat, in the order they were
/// committed, so a reader who has seen seq `n` has seen every message up to `n`, and nothing
/// committed later can take a seq below it. Within a chat, ids grow with seqs.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MessageRepo: Send + Sync + 'static {
    /// Stores a message at the next seq of its chat and returns its id, which is greater than
    /// every earlier one's, and that seq.
    ///
    /// The seq is taken atomically with the insert: concurrent writers to one chat (from any
    /// number of tasks or server instances) get unique, gapless seqs, and seq order is commit
    /// order. A failed insert uses no seq.
    ///
    /// When `client_id` is set and the same sender already stored a message under it in the
    /// same chat, nothing is stored, no seq is used, and that message is returned as
    /// [`Inserted::Existing`]; when two such inserts race, one stores the message and the
    /// other returns it. The same `client_id` from another sender or in another chat names
    /// another message.
    ///
    /// # Errors
    /// `ChatNotFound` when the chat does not exist, else `UserNotFound` when the sender does
    /// not. Nothing is stored and no seq is used then.
    async fn insert(&self, message: &NewMessage) -> Result<Inserted>;

    /// Stores several messages as [`insert`](Self::insert) stores each, in the order given,
    /// with one commit where the store can: the group commit of messages posted at about the
    /// same time. Returns what `insert` would have returned for each, in the same order; a
    /// message refused (an unknown chat, say) leaves the others stored.
    ///
    /// The default inserts them one by one.
    async fn insert_all(&self, messages: &[NewMessage]) -> Vec<Result<Inserted>> {
        let mut done = Vec::with_capacity(messages.len());
        for message in messages {
            done.push(self.insert(message).await);
        }
        done
    }

    /// A page of a chat's history, oldest first: the newest `limit` messages below every
    /// upper bound given (`before` by id, `before_seq` by seq) and above every lower bound
    /// given (`after`, `after_seq`); or, when only lower bounds are given, the oldest `limit`
    /// above them. With no bound it is the newest `limit` messages of the chat.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn list(&self, chat: ChatId, page: HistoryPage) -> Result<Vec<Message>>;

    /// The message with this id, in whatever chat, with its quote and reactions.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn get(&self, message: MessageId) -> Result<Option<Message>>;

    /// The messages of `chat` changed (edited, deleted, reacted to) after change `after`, in
    /// the order of their latest change, at most `limit` of them.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn changed_after(
        &self,
        chat: ChatId,
        after: ChangeSeq,
        limit: u32,
    ) -> Result<Vec<Message>>;

    /// Whether `message` belongs to `chat`.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn exists_in(&self, chat: ChatId, message: MessageId) -> Result<bool>;

    /// Replaces the text of a message, marks it edited at `at` and gives it the chat's next
    /// change number, all at once; answers the message as it now is. Who may edit is the
    /// caller's question.
    ///
    /// # Errors
    /// `MessageNotFound` when there is no such message, `MessageDeleted` when it was deleted.
    async fn edit(
        &self,
        message: MessageId,
        body: &MessageBody,
        at: DateTime<Utc>,
    ) -> Result<Message>;

    /// Deletes a message: its text is overwritten (not kept anywhere), its reactions removed,
    /// and it stays in its place in the chat as a tombstone with the chat's next change
    /// number; `at` is kept as when it was deleted. Answers the tombstone, or `None` when it
    /// was deleted already (nothing changes).
    ///
    /// # Errors
    /// `MessageNotFound` when there is no such message.
    async fn delete(&self, message: MessageId, at: DateTime<Utc>) -> Result<Option<Message>>;

    /// Gives (`on`) or takes back `user`'s reaction `emoji` on a message, with the chat's next
    /// change number; answers the message as it now is, or `None` when nothing changed (the
    /// reaction was there already, or was not there to take back). The message may hold at
    /// most `max_emojis` different emoji; the storage, not a racy pre-check, decides.
    ///
    /// # Errors
    /// `MessageNotFound` when there is no such message, `MessageDeleted` when it was deleted,
    /// `TooManyReactions` when `emoji` would be one different emoji more than `max_emojis`.
    async fn react(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &Emoji,
        on: bool,
        max_emojis: usize,
    ) -> Result<Option<Message>>;
}

/// Where server sessions are kept. A session that has ended is gone; one past its
/// `expires_at` is still found (the caller's clock judges expiry) until the next `create`
/// forgets it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionRepo: Send + Sync + 'static {
    /// Stores a new session; forgets the sessions that expired before it was created.
    ///
    /// # Errors
    /// `UserNotFound` when its user does not exist.
    async fn create_session(&self, session: &NewSession) -> Result<()>;

    /// The session with this id, with its owner's username, in one read.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn find_session(&self, id: &SessionId) -> Result<Option<Session>>;

    /// Records a use at `at`, moving the expiry to `expires_at`; false when the session has
    /// ended or had expired by `at`.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn touch_session(
        &self,
        id: &SessionId,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Replaces the session's refresh digest `current` by `next`, keeping `current` as the
    /// previous one, and records a use as [`SessionRepo::touch_session`] does; false, changing
    /// nothing, when the session has ended or `current` is no longer its digest (another
    /// rotation came first).
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn rotate_refresh(
        &self,
        id: &SessionId,
        current: &str,
        next: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool>;

    /// The sessions of `user` that have not expired by `now`, most recently used first.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn list_sessions(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>>;

    /// Ends the session `id` if it belongs to `user`; false when there is no such session of
    /// theirs (another user's session is left alone).
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn end_session(&self, user: UserId, id: &SessionId) -> Result<bool>;

    /// Ends every session of `user` but `keep`, returning the ids it ended.
    ///
    /// # Errors
    /// `Unexpected` on storage failure only.
    async fn end_sessions_except(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<Vec<SessionId>>;
}

/// Issues and verifies access tokens, and makes and reads refresh tokens.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TokenService: Send + Sync + 'static {
    /// A new access token for `user` in `session`.
    ///
    /// # Errors
    /// `Unexpected` when signing fails.
    fn issue(&self, user: UserId, session: &SessionId) -> Result<AccessToken>;

    /// The claims of a token this service issued, checked for signature, algorithm and expiry.
    ///
    /// # Errors
    /// `TokenExpired` past its expiry, `Unauthenticated` for anything else wrong.
    fn verify(&self, token: &str) -> Result<Claims>;

    /// A new refresh token of `session`, which names the session, and the digest to keep of
    /// it.
    fn refresh_token(&self, session: &SessionId) -> RefreshToken;

    /// The session a refresh token names and the token's digest; `None` when it is not
    /// shaped like one.
    fn read_refresh(&self, token: &str) -> Option<(SessionId, String)>;
}

/// Turns passwords into hashes and checks them; slow on purpose, so never on the async
/// executor.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync + 'static {
    /// A PHC string for `password` with a fresh salt.
    ///
    /// # Errors
    /// `Unexpected` when hashing fails.
    async fn hash(&self, password: &Password) -> Result<String>;

    /// Whether `password` matches the PHC string `hash`; a malformed hash does not match.
    ///
    /// # Errors
    /// `Unexpected` when the blocking pool fails.
    async fn verify(&self, password: &Password, hash: &str) -> Result<bool>;
}

/// The time, so tests can fix it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// A stream of published events.
pub type EventStream = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// Carries events from the domain to whoever delivers them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes `event` to every subscriber.
    ///
    /// # Errors
    /// `Unexpected` when a bus that crosses processes cannot send it.
    async fn publish(&self, event: Event) -> Result<()>;

    /// Publishes `events`, in order, as one send where the bus can (one notification rather
    /// than one each). The default publishes them one by one.
    ///
    /// # Errors
    /// `Unexpected` when a bus that crosses processes cannot send them; some may have gone.
    async fn publish_all(&self, events: Vec<Event>) -> Result<()> {
        for event in events {
            self.publish(event).await?;
        }
        Ok(())
    }

    /// Every event published from now on, in order.
    fn subscribe(&self) -> EventStream;

    /// Whether events published elsewhere reach this process right now: false while a bus
    /// that crosses processes has lost its connection. An in-process bus always is.
    fn is_connected(&self) -> bool {
        true
    }
}
