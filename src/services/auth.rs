//! Registration, login, authentication of every request and socket, and logout.

use std::sync::Arc;

use crate::domain::error::{Error, Result};
use chrono::Duration;

use crate::domain::{
    AccessToken, AuthUser, Email, Event, LoginName, NewUser, Password, User, Username,
};
use crate::ports::{
    Clock, EventBus, LoginFailures, PasswordHasher, SessionRepo, TokenService, UserRepo,
};

/// Failed logins on one login name that lock it...
const MAX_FAILURES: u32 = 10;
/// ...within this long after the first of them, until it has passed.
fn failure_window() -> Duration {
    Duration::minutes(15)
}

/// Accounts and sessions.
#[derive(Clone)]
pub struct AuthService {
    users: Arc<dyn UserRepo>,
    sessions: Arc<dyn SessionRepo>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenService>,
    clock: Arc<dyn Clock>,
    bus: Arc<dyn EventBus>,
    failures: Arc<dyn LoginFailures>,
}

/// A PHC string of a password nobody has, verified when the login names no user so that
/// a wrong username costs as much time as a wrong password.
pub(crate) const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$K9SYXTgNqd8OJvxKLA0dwmFljpBJLX1FWbxDQrO9mhk";

impl AuthService {
    pub fn new(
        users: Arc<dyn UserRepo>,
        sessions: Arc<dyn SessionRepo>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenService>,
        clock: Arc<dyn Clock>,
        bus: Arc<dyn EventBus>,
        failures: Arc<dyn LoginFailures>,
    ) -> Self {
        Self {
            users,
            sessions,
            hasher,
            tokens,
            clock,
            bus,
            failures,
        }
    }

    /// Creates an account.
    ///
    /// # Errors
    /// `UsernameTaken` or `EmailTaken` when either is in use.
    pub async fn register(
        &self,
        username: Username,
        email: Email,
        password: Password,
    ) -> Result<User> {
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

    /// Checks a username-or-email and password and issues a token.
    ///
    /// # Errors
    /// `Invalid` on `username` for a login name with a control character (refused before any
    /// lookup, hashing or counting); `InvalidCredentials`, the same whether the user exists or
    /// not; `TooManyAttempts` after ten failures on one login within fifteen minutes, until
    /// they are past; `AccountDisabled` for the right password of a disabled account (a wrong
    /// one is `InvalidCredentials`, so the state is told only to who knows the password).
    pub async fn login(&self, login: &str, password: &Password) -> Result<AccessToken> {
        let login = LoginName::parse(login)?;
        let login = login.as_str();
        let now = self.clock.now();
        // Counted per login as typed, case-folded: the username and the email are two keys.
        let key = login.to_lowercase();
        if let Some(failed) = self.failures.get(&key, now).await?
            && failed.count >= MAX_FAILURES
        {
            return Err(Error::TooManyAttempts(
                failed.until.format("%H:%M UTC").to_string(),
            ));
        }
        let user = self.users.find_by_login(login).await?;
        let hash = user
            .as_ref()
            .map_or(DECOY_HASH, |u| u.password_hash.as_str());
        let matches = self.hasher.verify(password, hash).await?;
        match user {
            Some(user) if matches => {
                self.failures.clear(&key).await?;
                if user.disabled {
                    return Err(Error::AccountDisabled);
                }
                self.tokens.issue(user.id)
            }
            _ => {
                self.failures.add(&key, now, failure_window()).await?;
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// The user a token stands for.
    ///
    /// # Errors
    /// `TokenExpired` for an expired token, `Unauthenticated` for a bad, revoked or orphaned
    /// one, or one of a disabled account.
    pub async fn authenticate(&self, token: &str) -> Result<AuthUser> {
        let claims = self.tokens.verify(token)?;
        // Every request pays for these two reads; they do not depend on each other.
        let (revoked, user) = futures_util::join!(
            self.sessions.is_revoked(&claims.session),
            self.users.find(claims.user_id)
        );
        if revoked? {
            return Err(Error::Unauthenticated);
        }
        let user = user?
            .filter(|u| !u.disabled)
            .ok_or(Error::Unauthenticated)?;
        Ok(AuthUser {
            id: user.id,
            username: user.username,
            session: claims.session,
            session_expires_at: claims.expires_at,
        })
    }

    /// The caller's account.
    ///
    /// # Errors
    /// `Unauthenticated` when the account is gone.
    pub async fn me(&self, me: &AuthUser) -> Result<User> {
        self.users.find(me.id).await?.ok_or(Error::Unauthenticated)
    }

    /// Ends the session: its token fails from now on and its sockets close.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn logout(&self, me: &AuthUser) -> Result<()> {
        self.sessions
            .revoke(&me.session, me.session_expires_at, self.clock.now())
            .await?;
        self.bus
            .publish(Event::SessionRevoked(me.session.clone()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use mockall::predicate::{always, eq};

    use super::*;
    use crate::domain::{Claims, SessionId, UserId};
    use crate::ports::{
        Failures, MockClock, MockEventBus, MockLoginFailures, MockPasswordHasher, MockSessionRepo,
        MockTokenService, MockUserRepo,
    };

    struct Mocks {
        users: MockUserRepo,
        sessions: MockSessionRepo,
        hasher: MockPasswordHasher,
        tokens: MockTokenService,
        bus: MockEventBus,
        failures: MockLoginFailures,
    }

    impl Mocks {
        /// Mocks whose login has failed nowhere before; failures are counted, successes clear.
        fn new() -> Self {
            let mut failures = MockLoginFailures::new();
            failures.expect_get().returning(|_, _| Ok(None));
            failures.expect_add().returning(|_, _, _| Ok(()));
            failures.expect_clear().returning(|_| Ok(()));
            Self {
                users: MockUserRepo::new(),
                sessions: MockSessionRepo::new(),
                hasher: MockPasswordHasher::new(),
                tokens: MockTokenService::new(),
                bus: MockEventBus::new(),
                failures,
            }
        }

        fn service(self) -> AuthService {
            let mut clock = MockClock::new();
            clock
                .expect_now()
                .returning(|| Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
            AuthService::new(
                Arc::new(self.users),
                Arc::new(self.sessions),
                Arc::new(self.hasher),
                Arc::new(self.tokens),
                Arc::new(clock),
                Arc::new(self.bus),
                Arc::new(self.failures),
            )
        }
    }

    fn ann() -> User {
        User {
            id: UserId(7),
            username: Username::parse("ann").unwrap(),
            email: Email::parse("ann@example.com").unwrap(),
            password_hash: "$argon2id$ann".into(),
            created_at: Utc::now(),
            last_seen: None,
            disabled: false,
        }
    }

    fn disabled_ann() -> User {
        User {
            disabled: true,
            ..ann()
        }
    }

    #[tokio::test]
    async fn register_stores_the_hash_never_the_password() {
        let mut m = Mocks::new();
        m.hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok("$argon2id$hashed".into()));
        m.users
            .expect_create()
            .withf(|u| u.password_hash == "$argon2id$hashed" && u.username.as_str() == "ann")
            .times(1)
            .returning(|_| Ok(ann()));
        let user = m
            .service()
            .register(
                Username::parse("ann").unwrap(),
                Email::parse("ann@example.com").unwrap(),
                Password::parse_new("correct horse", "correct horse").unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(user.id, UserId(7));
    }

    #[tokio::test]
    async fn login_with_unknown_user_still_verifies_and_refuses() {
        let mut m = Mocks::new();
        m.users.expect_find_by_login().returning(|_| Ok(None));
        m.hasher
            .expect_verify()
            .withf(|_, hash| hash == DECOY_HASH)
            .times(1)
            .returning(|_, _| Ok(true));
        m.tokens.expect_issue().times(0);
        let err = m
            .service()
            .login("ghost", &Password::for_login("whatever1"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials));
    }

    #[tokio::test]
    async fn login_with_wrong_password_issues_no_token() {
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.hasher.expect_verify().returning(|_, _| Ok(false));
        m.tokens.expect_issue().times(0);
        let err = m
            .service()
            .login("ann", &Password::for_login("wrong-password"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials));
    }

    #[tokio::test]
    async fn login_with_right_password_issues_a_token_for_that_user() {
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .with(eq("ann@example.com"))
            .returning(|_| Ok(Some(ann())));
        m.hasher
            .expect_verify()
            .withf(|_, hash| hash == "$argon2id$ann")
            .returning(|_, _| Ok(true));
        m.tokens
            .expect_issue()
            .with(eq(UserId(7)))
            .times(1)
            .returning(|_| {
                Ok(AccessToken {
                    token: "t".into(),
                    expires_at: Utc::now(),
                })
            });
        let token = m
            .service()
            .login(" ann@example.com ", &Password::for_login("correct horse"))
            .await
            .unwrap();
        assert_eq!(token.token, "t");
    }

    #[tokio::test]
    async fn a_login_name_with_a_control_character_is_refused_before_anything_else() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        m.failures.expect_get().times(0);
        m.failures.expect_add().times(0);
        m.users.expect_find_by_login().times(0);
        m.hasher.expect_verify().times(0);
        m.tokens.expect_issue().times(0);
        let err = m
            .service()
            .login("ann\u{0}", &Password::for_login("correct horse"))
            .await;
        assert!(matches!(err, Err(Error::Invalid(v)) if v.field == "username"));
    }

    #[tokio::test]
    async fn a_throttled_login_neither_looks_up_nor_hashes() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        let until = Utc.with_ymd_and_hms(2026, 1, 2, 3, 15, 0).unwrap();
        m.failures
            .expect_get()
            .with(eq("ann"), always())
            .returning(move |_, _| Ok(Some(Failures { count: 10, until })));
        m.failures.expect_add().times(0);
        m.users.expect_find_by_login().times(0);
        m.hasher.expect_verify().times(0);
        m.tokens.expect_issue().times(0);
        let err = m
            .service()
            .login(" ANN ", &Password::for_login("guess"))
            .await;
        assert!(matches!(err, Err(Error::TooManyAttempts(t)) if t == "03:15 UTC"));
    }

    #[tokio::test]
    async fn nine_failures_still_let_the_right_password_in() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        let until = Utc.with_ymd_and_hms(2026, 1, 2, 3, 15, 0).unwrap();
        m.failures
            .expect_get()
            .returning(move |_, _| Ok(Some(Failures { count: 9, until })));
        m.failures
            .expect_clear()
            .with(eq("ann"))
            .times(1)
            .returning(|_| Ok(()));
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.hasher.expect_verify().returning(|_, _| Ok(true));
        m.tokens.expect_issue().times(1).returning(|_| {
            Ok(AccessToken {
                token: "t".into(),
                expires_at: Utc::now(),
            })
        });
        assert!(
            m.service()
                .login("Ann", &Password::for_login("right"))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_failure_is_counted_on_the_folded_login_for_fifteen_minutes() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        m.failures.expect_get().returning(|_, _| Ok(None));
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        m.failures
            .expect_add()
            .with(eq("ann@example.com"), eq(now), eq(Duration::minutes(15)))
            .times(1)
            .returning(|_, _, _| Ok(()));
        m.users.expect_find_by_login().returning(|_| Ok(None));
        m.hasher.expect_verify().returning(|_, _| Ok(false));
        let err = m
            .service()
            .login(" Ann@Example.com", &Password::for_login("guess"))
            .await;
        assert!(matches!(err, Err(Error::InvalidCredentials)));
    }

    #[tokio::test]
    async fn a_revoked_session_does_not_authenticate() {
        let mut m = Mocks::new();
        m.tokens.expect_verify().returning(|_| {
            Ok(Claims {
                user_id: UserId(7),
                session: SessionId("s1".into()),
                expires_at: Utc::now(),
            })
        });
        m.sessions.expect_is_revoked().returning(|_| Ok(true));
        m.users.expect_find().returning(|_| Ok(Some(ann())));
        let err = m.service().authenticate("tok").await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated));
    }

    #[tokio::test]
    async fn logout_revokes_then_tells_the_sockets() {
        let mut m = Mocks::new();
        let session = SessionId("s1".into());
        m.sessions
            .expect_revoke()
            .withf(|s, _, now| {
                s.0 == "s1" && *now == Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        m.bus
            .expect_publish()
            .with(eq(Event::SessionRevoked(session.clone())))
            .times(1)
            .returning(|_| Ok(()));
        let me = AuthUser {
            id: UserId(7),
            username: Username::parse("ann").unwrap(),
            session,
            session_expires_at: Utc::now(),
        };
        m.service().logout(&me).await.unwrap();
    }

    #[tokio::test]
    async fn a_disabled_account_with_the_right_password_is_told_so_and_gets_no_token() {
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(disabled_ann())));
        m.hasher.expect_verify().returning(|_, _| Ok(true));
        m.tokens.expect_issue().times(0);
        let err = m
            .service()
            .login("ann", &Password::for_login("correct horse"))
            .await;
        assert!(matches!(err, Err(Error::AccountDisabled)), "{err:?}");
    }

    #[tokio::test]
    async fn a_disabled_account_with_a_wrong_password_looks_like_any_wrong_password() {
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(disabled_ann())));
        m.hasher.expect_verify().returning(|_, _| Ok(false));
        m.tokens.expect_issue().times(0);
        let err = m
            .service()
            .login("ann", &Password::for_login("wrong-password"))
            .await;
        assert!(matches!(err, Err(Error::InvalidCredentials)), "{err:?}");
    }

    #[tokio::test]
    async fn a_token_of_a_disabled_account_does_not_authenticate() {
        let mut m = Mocks::new();
        m.tokens.expect_verify().returning(|_| {
            Ok(Claims {
                user_id: UserId(7),
                session: SessionId("s1".into()),
                expires_at: Utc::now(),
            })
        });
        m.sessions.expect_is_revoked().returning(|_| Ok(false));
        m.users
            .expect_find()
            .returning(|_| Ok(Some(disabled_ann())));
        let err = m.service().authenticate("tok").await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated));
    }
}
