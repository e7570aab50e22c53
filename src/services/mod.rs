//! The use cases of Parley, the application layer between the domain and the adapters, one
//! service per area. Each holds the ports it needs as `Arc<dyn Port>`, takes input as a client
//! sent it, checks it against the domain's rules and the configured [`Limits`], and decides
//! policy: who may read a chat, who may add whom, what is published when.

mod access;
mod admin;
mod auth;
mod chats;
mod group_commit;
mod members;
mod messages;
mod presence;
mod readiness;
#[cfg(test)]
mod testing;
mod users;

pub use admin::AdminService;
#[cfg(test)]
pub(crate) use auth::DECOY_HASH;
pub use auth::{AuthService, LoginLimits};
pub use chats::ChatService;
pub use members::MembershipService;
pub use messages::{MessageService, TYPING_EXPIRES_AFTER};
pub use presence::PresenceService;
pub use readiness::{NotReady, Readiness};
pub use users::UserDirectory;

/// Limits that deployments may tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest message body, in characters after trimming.
    pub max_message_chars: usize,
    /// The most members a group may be created with.
    pub max_group_members: usize,
    /// How long after posting a message its sender may edit it; `None` for always.
    pub edit_window: Option<std::time::Duration>,
    /// The most different emoji one message may carry as reactions.
    pub max_reactions_per_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_chars: 4000,
            max_group_members: 1000,
            edit_window: None,
            max_reactions_per_message: 20,
        }
    }
}
