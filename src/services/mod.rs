//! The use cases of Parley, the application layer between the domain and the adapters. Each service holds the ports it needs as `Arc<dyn Port>` and decides
//! policy: who may read a chat, who may add whom, what is published when.

mod auth;
mod chats;

pub use auth::AuthService;
#[cfg(test)]
pub(crate) use auth::DECOY_HASH;
pub use chats::{ChatService, Limits};
