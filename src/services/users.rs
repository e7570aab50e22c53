//! The people a user can find and start a chat with.

use std::sync::Arc;

use crate::domain::error::Result;
use crate::domain::{AuthUser, User};
use crate::ports::UserRepo;

/// The user directory.
#[derive(Clone)]
pub struct UserDirectory {
    users: Arc<dyn UserRepo>,
}

impl UserDirectory {
    pub fn new(users: Arc<dyn UserRepo>) -> Self {
        Self { users }
    }

    /// Everyone but the caller, by username.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn list_users(&self, me: &AuthUser) -> Result<Vec<User>> {
        self.users.list_except(me.id).await
    }
}
