//! The errors a caller of the domain can act on. Adapters turn storage failures into these
//! cases (a unique-constraint violation on the username becomes [`Error::UsernameTaken`]), and
//! the HTTP adapter maps each case to one status and one stable code.

use std::borrow::Cow;
use std::time::Duration;

/// A request field that breaks a rule, with a sentence a person can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    /// The name of the offending field as the client sent it (`username`, `message`, ...).
    pub field: Cow<'static, str>,
    pub message: Cow<'static, str>,
}

impl ValidationError {
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything a use case can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("That username is already taken.")]
    UsernameTaken,
    #[error("An account with that email already exists.")]
    EmailTaken,
    #[error("Incorrect username or password.")]
    InvalidCredentials,
    #[error("This account is disabled.")]
    AccountDisabled,
    #[error("Not authenticated.")]
    Unauthenticated,
    #[error("The session has expired; please log in again.")]
    TokenExpired,
    #[error("This refresh token was already used; the session has been ended.")]
    RefreshTokenReused,
    #[error("The current password is wrong.")]
    WrongPassword,
    #[error("Session not found.")]
    SessionNotFound,
    #[error("User not found.")]
    UserNotFound,
    #[error("Chat not found.")]
    ChatNotFound,
    #[error("Message not found in this chat.")]
    MessageNotFound,
    #[error("This message was deleted.")]
    MessageDeleted,
    #[error("The time to edit this message has passed.")]
    EditWindowPassed,
    #[error("This message has as many different reactions as it may have.")]
    TooManyReactions,
    #[error("You are not a member of this chat.")]
    NotAMember,
    #[error("You cannot open a chat with yourself.")]
    ChatWithSelf,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("Too many failed attempts; try again in {} s.", whole_seconds(*retry_after))]
    TooManyAttempts { retry_after: Duration },
    #[error("Too many requests; try again in {} s.", whole_seconds(*retry_after))]
    RateLimited { retry_after: Duration },
    #[error("unexpected error: {0}")]
    Unexpected(#[source] anyhow::Error),
}

impl Error {
    /// Wraps an infrastructure failure the caller cannot act on.
    pub fn unexpected(e: impl Into<anyhow::Error>) -> Self {
        Self::Unexpected(e.into())
    }

    /// For a refusal that passes with time, the whole seconds to wait before trying again
    /// (at least one).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::TooManyAttempts { retry_after } | Self::RateLimited { retry_after } => {
                Some(whole_seconds(*retry_after))
            }
            _ => None,
        }
    }
}

/// `d` in seconds, rounded up, and never less than one: what `Retry-After` says.
pub fn whole_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

/// The result type of the domain and its ports.
pub type Result<T, E = Error> = std::result::Result<T, E>;
