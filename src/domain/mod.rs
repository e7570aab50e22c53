//! The heart of Parley: what a user, a chat and a message are, the rules they obey and the use
//! cases that change them. Nothing here performs I/O or knows about HTTP, SQL or JSON; the
//! services reach the outside world only through the traits in [`crate::ports`].

pub mod error;
pub mod events;
pub mod model;
pub mod presence;
pub mod services;
pub mod throttle;
pub mod values;

pub use error::{Error, ValidationError};
pub use events::{Event, EventKind};
pub use model::*;
pub use presence::Presence;
pub use services::{AuthService, ChatService, Limits};
pub use throttle::LoginThrottle;
pub use values::{ChatName, Email, MessageBody, Password, Username};
