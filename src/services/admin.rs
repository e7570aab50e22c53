//! What an operator does from the command line (`parley admin ...`): create accounts, set a
//! new password, list accounts, disable and enable them. The same ports and password hasher as
//! the server, so an account made here is one the server can log in, and the same rules for
//! usernames, emails and passwords.

use std::sync::Arc;

use crate::domain::error::{Error, Result};
use crate::domain::{Email, Event, NewUser, Password, User, UserId, Username};
use crate::ports::{Clock, EventBus, PasswordHasher, SessionRepo, UserRepo};

/// Account administration.
#[derive(Clone)]
pub struct AdminService {
    users: Arc<dyn UserRepo>,
    sessions: Arc<dyn SessionRepo>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    bus: Arc<dyn EventBus>,
}

impl AdminService {
    pub fn new(
        users: Arc<dyn UserRepo>,
        sessions: Arc<dyn SessionRepo>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        bus: Arc<dyn EventBus>,
    ) -> Self {
        Self {
            users,
            sessions,
            hasher,
            clock,
            bus,
        }
    }

    /// Creates an account, as registration does.
    ///
    /// # Errors
    /// `Invalid` naming `username`, `email` or `password` when one breaks its rule;
    /// `UsernameTaken` or `EmailTaken`.
    pub async fn create_user(&self, username: &str, email: &str, password: &str) -> Result<User> {
        let username = Username::parse(username)?;
        let email = Email::parse(email)?;
        let password = Password::parse_new(password, password)?;
        let password_hash = self.hasher.hash(&password).await?;
        self.users
            .create(&NewUser {
                username,
                email,
                password_hash,
                created_at: self.clock.now(),
            })
            .await
    }

    /// Gives the account named `login` (username or email) a new password.
    ///
    /// # Errors
    /// `Invalid` on `password` when it breaks the rule; `UserNotFound`.
    pub async fn reset_password(&self, login: &str, password: &str) -> Result<User> {
        let password = Password::parse_new(password, password)?;
        let user = self.user(login).await?;
        let hash = self.hasher.hash(&password).await?;
        self.users.set_password_hash(user.id, &hash).await?;
        self.end_every_session_of(user.id).await?;
        Ok(user)
    }

    /// Every account, by username.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.users.list_all().await
    }

    /// Disables the account named `login`: it can no longer log in, its tokens stop
    /// authenticating at once, and servers that hear the bus close its sockets (4401).
    ///
    /// # Errors
    /// `UserNotFound`.
    pub async fn disable_user(&self, login: &str) -> Result<User> {
        let user = self.user(login).await?;
        self.users.set_disabled(user.id, true).await?;
        self.end_every_session_of(user.id).await?;
        self.bus.publish(Event::UserDisabled(user.id)).await?;
        Ok(User {
            disabled: true,
            ..user
        })
    }

    /// Enables the account named `login` again.
    ///
    /// # Errors
    /// `UserNotFound`.
    pub async fn enable_user(&self, login: &str) -> Result<User> {
        let user = self.user(login).await?;
        self.users.set_disabled(user.id, false).await?;
        Ok(User {
            disabled: false,
            ..user
        })
    }

    /// Ends every session of `user` and tells the servers that hear the bus to close their
    /// sockets.
    async fn end_every_session_of(&self, user: UserId) -> Result<()> {
        for id in self.sessions.end_sessions_except(user, None).await? {
            self.bus.publish(Event::SessionRevoked(id)).await?;
        }
        Ok(())
    }

    /// The account named `login`, by username or email.
    async fn user(&self, login: &str) -> Result<User> {
        self.users
            .find_by_login(login.trim())
            .await?
            .ok_or(Error::UserNotFound)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use mockall::predicate::eq;

    use super::*;
    use crate::domain::SessionId;
    use crate::ports::{
        MockClock, MockEventBus, MockPasswordHasher, MockSessionRepo, MockUserRepo,
    };

    struct Mocks {
        users: MockUserRepo,
        sessions: MockSessionRepo,
        hasher: MockPasswordHasher,
        bus: MockEventBus,
    }

    impl Mocks {
        fn new() -> Self {
            let mut sessions = MockSessionRepo::new();
            sessions
                .expect_end_sessions_except()
                .returning(|_, _| Ok(Vec::new()));
            Self {
                users: MockUserRepo::new(),
                sessions,
                hasher: MockPasswordHasher::new(),
                bus: MockEventBus::new(),
            }
        }

        fn service(self) -> AdminService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(Utc::now);
            AdminService::new(
                Arc::new(self.users),
                Arc::new(self.sessions),
                Arc::new(self.hasher),
                Arc::new(clock),
                Arc::new(self.bus),
            )
        }
    }

    fn ann() -> User {
        User {
            id: UserId(7),
            username: Username::parse("ann").unwrap(),
            email: Email::parse("ann@example.com").unwrap(),
            password_hash: "$argon2id$old".into(),
            created_at: Utc::now(),
            last_seen: None,
            disabled: false,
        }
    }

    #[tokio::test]
    async fn create_user_stores_the_hash_of_a_valid_password() {
        let mut m = Mocks::new();
        m.hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok("$argon2id$new".into()));
        m.users
            .expect_create()
            .withf(|u| u.password_hash == "$argon2id$new" && u.email.as_str() == "ann@example.com")
            .times(1)
            .returning(|_| Ok(ann()));
        let user = m
            .service()
            .create_user("ann", "ann@example.com", "correct horse")
            .await
            .unwrap();
        assert_eq!(user.id, UserId(7));
    }

    #[tokio::test]
    async fn create_user_refuses_a_short_password_before_hashing() {
        let mut m = Mocks::new();
        m.hasher.expect_hash().times(0);
        m.users.expect_create().times(0);
        let err = m
            .service()
            .create_user("ann", "ann@example.com", "short")
            .await;
        assert!(matches!(err, Err(Error::Invalid(v)) if v.field == "password"));
    }

    #[tokio::test]
    async fn reset_password_stores_a_new_hash_for_that_user() {
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .with(eq("ann"))
            .returning(|_| Ok(Some(ann())));
        m.hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok("$argon2id$new".into()));
        m.users
            .expect_set_password_hash()
            .with(eq(UserId(7)), eq("$argon2id$new"))
            .times(1)
            .returning(|_, _| Ok(()));
        m.service()
            .reset_password(" ann ", "a new password")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn reset_password_of_nobody_hashes_nothing() {
        let mut m = Mocks::new();
        m.users.expect_find_by_login().returning(|_| Ok(None));
        m.hasher.expect_hash().times(0);
        m.users.expect_set_password_hash().times(0);
        let err = m.service().reset_password("ghost", "a new password").await;
        assert!(matches!(err, Err(Error::UserNotFound)));
    }

    #[tokio::test]
    async fn disable_user_stores_it_then_tells_the_sockets() {
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.users
            .expect_set_disabled()
            .with(eq(UserId(7)), eq(true))
            .times(1)
            .returning(|_, _| Ok(()));
        m.sessions.checkpoint();
        m.sessions
            .expect_end_sessions_except()
            .with(eq(UserId(7)), eq(None))
            .times(1)
            .returning(|_, _| Ok(vec![SessionId("s1".into())]));
        m.bus
            .expect_publish()
            .with(eq(Event::SessionRevoked(SessionId("s1".into()))))
            .times(1)
            .returning(|_| Ok(()));
        m.bus
            .expect_publish()
            .with(eq(Event::UserDisabled(UserId(7))))
            .times(1)
            .returning(|_| Ok(()));
        let user = m.service().disable_user("ann").await.unwrap();
        assert!(user.disabled);
    }

    #[tokio::test]
    async fn enable_user_stores_it_and_publishes_nothing() {
        let mut m = Mocks::new();
        m.users.expect_find_by_login().returning(|_| {
            Ok(Some(User {
                disabled: true,
                ..ann()
            }))
        });
        m.users
            .expect_set_disabled()
            .with(eq(UserId(7)), eq(false))
            .times(1)
            .returning(|_, _| Ok(()));
        m.bus.expect_publish().times(0);
        let user = m.service().enable_user("ann").await.unwrap();
        assert!(!user.disabled);
    }
}
