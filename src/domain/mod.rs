//! The heart of Parley: what a user, a chat and a message are, the values that validate
//! themselves, the errors and the events. It depends on nothing else in the crate: the ports
//! speak its types, the services in [`crate::services`] apply its rules.

pub mod error;
pub mod events;
pub mod model;
pub mod values;

/// The services moved to [`crate::services`]; these paths keep working for code that used them.
pub use crate::services::{AuthService, ChatService, Limits};
pub use error::{Error, Result, ValidationError};
pub use events::{Audience, Event, EventKind};
pub use model::*;
pub use values::{ChatName, ClientId, Email, Emoji, LoginName, MessageBody, Password, Username};
