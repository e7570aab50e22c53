//! Registration, login, authentication of every request and socket, and logout; and how
//! password guessing is slowed down.

use std::sync::Arc;

use crate::domain::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};

use crate::domain::{
    AccessToken, AuthUser, Client, Email, Event, LoginName, NewUser, Password, User, UserId,
    Username,
};
use crate::ports::{
    Account, Clock, EventBus, FailureKey, HashAdmission, HashPermit, LoginFailures, PasswordHasher,
    SessionRepo, TokenService, UserRepo,
};

/// How failed logins are slowed down and how many password hashes run at once. Failures are
/// counted per (address, account), so that an attacker elsewhere never locks the owner out,
/// and per address over all accounts, so that trying many accounts is slow too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures one address may make on one account before each further one doubles how long
    /// that address waits before trying that account again; 0 for no wait at all.
    pub free_failures: u32,
    /// The wait after the first failure past the free ones.
    pub first_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
    /// How long the failures of an address on an account are remembered, from the first.
    pub failure_memory: Duration,
    /// Failures one address may make over all accounts within `address_window` before its
    /// logins are refused until the window closes; 0 for no limit.
    pub failures_per_address: u32,
    pub address_window: Duration,
    /// Password hashes (logins and registrations) one address may have running or waiting at
    /// once; 0 for no limit.
    pub hashes_per_address: usize,
    /// Password hashes admitted at once over all addresses, running or waiting; 0 for no limit.
    pub hashes_in_flight: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            free_failures: 5,
            first_delay: Duration::seconds(1),
            max_delay: Duration::minutes(15),
            failure_memory: Duration::hours(24),
            failures_per_address: 60,
            address_window: Duration::hours(1),
            hashes_per_address: 2,
            hashes_in_flight: 16,
        }
    }
}

impl LoginLimits {
    /// How long an address waits before trying an account again after `failures` failures on
    /// it: nothing for the free ones, then the first delay, doubling with each failure.
    pub fn delay_after(&self, failures: u32) -> Duration {
        if self.free_failures == 0 || failures <= self.free_failures {
            return Duration::zero();
        }
        let doublings = (failures - self.free_failures - 1).min(30);
        let delay = self.first_delay * 2_i32.pow(doublings);
        delay.min(self.max_delay)
    }
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
    admission: Arc<dyn HashAdmission>,
    limits: LoginLimits,
}

/// A PHC string of a password nobody has, verified when the login names no user so that
/// a wrong username costs as much time as a wrong password.
pub(crate) const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$K9SYXTgNqd8OJvxKLA0dwmFljpBJLX1FWbxDQrO9mhk";

impl AuthService {
    // One argument per port, as every service takes them, plus the limits they apply.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        users: Arc<dyn UserRepo>,
        sessions: Arc<dyn SessionRepo>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenService>,
        clock: Arc<dyn Clock>,
        bus: Arc<dyn EventBus>,
        failures: Arc<dyn LoginFailures>,
        admission: Arc<dyn HashAdmission>,
        limits: LoginLimits,
    ) -> Self {
        Self {
            users,
            sessions,
            hasher,
            tokens,
            clock,
            bus,
            failures,
            admission,
            limits,
        }
    }

    /// The limits this service applies.
    pub fn limits(&self) -> LoginLimits {
        self.limits
    }

    /// A place to hash a password for `client`, or a refusal to come back in a second: hashes
    /// are refused at once rather than queued without bound, so that one address cannot
    /// slow everyone's login down.
    fn admit(&self, client: &Client) -> Result<HashPermit> {
        self.admission
            .admit(
                client.address,
                self.limits.hashes_per_address,
                self.limits.hashes_in_flight,
            )
            .ok_or(Error::RateLimited {
                retry_after: std::time::Duration::from_secs(1),
            })
    }

    /// Creates an account.
    ///
    /// # Errors
    /// `UsernameTaken` or `EmailTaken` when either is in use; `RateLimited` when no more
    /// password hashes are admitted for `client` now.
    pub async fn register(
        &self,
        username: Username,
        email: Email,
        password: Password,
        client: &Client,
    ) -> Result<User> {
        let permit = self.admit(client)?;
        let password_hash = self.hasher.hash(&password).await?;
        drop(permit);
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
    /// Failures are counted per (address, account), the username and the email of a user
    /// being one account, and per address: past the free failures an address waits longer
    /// after each one before it may try that account again, and past its budget it may try
    /// no account until its window closes. Another address, the owner's, is not affected.
    ///
    /// # Errors
    /// `Invalid` on `username` for a login name with a control character (refused before any
    /// lookup, hashing or counting); `TooManyAttempts` while `client`'s address must wait,
    /// without hashing; `RateLimited` when no more password hashes are admitted for `client`
    /// now; `InvalidCredentials`, the same whether the user exists or not.
    pub async fn login(
        &self,
        login: &str,
        password: &Password,
        client: &Client,
    ) -> Result<AccessToken> {
        let login = LoginName::parse(login)?;
        let login = login.as_str();
        let now = self.clock.now();
        let by_address = FailureKey::Address(client.address);
        if self.limits.failures_per_address > 0
            && let Some(failed) = self.failures.get(&by_address, now).await?
            && failed.count >= self.limits.failures_per_address
        {
            return Err(wait_until(failed.until, now));
        }
        let user = self.users.find_by_login(login).await?;
        let account = user.as_ref().map_or_else(
            || Account::Unknown(login.to_lowercase()),
            |u| Account::User(u.id),
        );
        let attempt = FailureKey::Attempt {
            address: client.address,
            account,
        };
        if self.limits.free_failures > 0
            && let Some(failed) = self.failures.get(&attempt, now).await?
        {
            let until = failed.last + self.limits.delay_after(failed.count);
            if now < until {
                return Err(wait_until(until, now));
            }
        }
        let permit = self.admit(client)?;
        let hash = user
            .as_ref()
            .map_or(DECOY_HASH, |u| u.password_hash.as_str());
        let matches = self.hasher.verify(password, hash).await?;
        drop(permit);
        match user {
            Some(user) if matches => {
                self.failures.clear(&attempt).await?;
                self.tokens.issue(user.id)
            }
            _ => {
                if self.limits.free_failures > 0 {
                    let memory = self.limits.failure_memory;
                    self.failures.add(&attempt, now, memory).await?;
                }
                if self.limits.failures_per_address > 0 {
                    let window = self.limits.address_window;
                    self.failures.add(&by_address, now, window).await?;
                }
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// The user a token was issued to, when it is one of ours and unexpired; no storage is
    /// asked, so a revoked token still names its user. For counting requests per user, not
    /// for authorizing them.
    pub fn claimed_user(&self, token: &str) -> Option<UserId> {
        self.tokens.verify(token).ok().map(|c| c.user_id)
    }

    /// The user a token stands for.
    ///
    /// # Errors
    /// `TokenExpired` for an expired token, `Unauthenticated` for a bad, revoked or orphaned
    /// one.
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
        let user = user?.ok_or(Error::Unauthenticated)?;
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

/// The refusal of a login that may be tried again at `until`.
fn wait_until(until: DateTime<Utc>, now: DateTime<Utc>) -> Error {
    Error::TooManyAttempts {
        retry_after: (until - now).to_std().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use chrono::{TimeZone, Utc};
    use mockall::predicate::{always, eq};

    use super::*;
    use crate::adapters::throttle::LocalLoginFailures;
    use crate::domain::{Claims, SessionId, UserId};
    use crate::ports::{
        Failures, MockClock, MockEventBus, MockHashAdmission, MockLoginFailures,
        MockPasswordHasher, MockSessionRepo, MockTokenService, MockUserRepo,
    };

    struct Mocks {
        users: MockUserRepo,
        sessions: MockSessionRepo,
        hasher: MockPasswordHasher,
        tokens: MockTokenService,
        bus: MockEventBus,
        failures: MockLoginFailures,
        admission: MockHashAdmission,
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
    }

    fn from(last: u8) -> Client {
        Client {
            address: IpAddr::from([127, 0, 0, last]),
            user_agent: None,
        }
    }

    fn attempt(last: u8, account: Account) -> FailureKey {
        FailureKey::Attempt {
            address: IpAddr::from([127, 0, 0, last]),
            account,
        }
    }

    fn address(last: u8) -> FailureKey {
        FailureKey::Address(IpAddr::from([127, 0, 0, last]))
    }

    impl Mocks {
        /// Mocks whose login has failed nowhere before; failures are counted, successes clear,
        /// every hash is admitted.
        fn new() -> Self {
            let mut failures = MockLoginFailures::new();
            failures.expect_get().returning(|_, _| Ok(None));
            failures.expect_add().returning(|_, _, _| Ok(()));
            failures.expect_clear().returning(|_| Ok(()));
            let mut admission = MockHashAdmission::new();
            admission
                .expect_admit()
                .returning(|_, _, _| Some(HashPermit::new(())));
            Self {
                users: MockUserRepo::new(),
                sessions: MockSessionRepo::new(),
                hasher: MockPasswordHasher::new(),
                tokens: MockTokenService::new(),
                bus: MockEventBus::new(),
                failures,
                admission,
            }
        }

        fn service(mut self) -> AuthService {
            let failures = std::mem::replace(&mut self.failures, MockLoginFailures::new());
            self.service_with(Arc::new(failures), LoginLimits::default())
        }

        fn service_with(
            self,
            failures: Arc<dyn LoginFailures>,
            limits: LoginLimits,
        ) -> AuthService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            AuthService::new(
                Arc::new(self.users),
                Arc::new(self.sessions),
                Arc::new(self.hasher),
                Arc::new(self.tokens),
                Arc::new(clock),
                Arc::new(self.bus),
                failures,
                Arc::new(self.admission),
                limits,
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
        }
    }

    fn token() -> AccessToken {
        AccessToken {
            token: "t".into(),
            expires_at: Utc::now(),
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
                &from(1),
            )
            .await
            .unwrap();
        assert_eq!(user.id, UserId(7));
    }

    #[tokio::test]
    async fn a_registration_past_the_admitted_hashes_is_refused_without_hashing() {
        let mut m = Mocks::new();
        m.admission.checkpoint();
        m.admission
            .expect_admit()
            .with(eq(from(2).address), eq(2), eq(16))
            .times(1)
            .returning(|_, _, _| None);
        m.hasher.expect_hash().times(0);
        m.users.expect_create().times(0);
        let err = m
            .service()
            .register(
                Username::parse("ann").unwrap(),
                Email::parse("ann@example.com").unwrap(),
                Password::parse_new("correct horse", "correct horse").unwrap(),
                &from(2),
            )
            .await
            .unwrap_err();
        assert_eq!(err.retry_after_secs(), Some(1));
        assert!(matches!(err, Error::RateLimited { .. }));
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
            .login("ghost", &Password::for_login("whatever1"), &from(1))
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
            .login("ann", &Password::for_login("wrong-password"), &from(1))
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
            .returning(|_| Ok(token()));
        let token = m
            .service()
            .login(
                " ann@example.com ",
                &Password::for_login("correct horse"),
                &from(1),
            )
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
        m.admission.checkpoint();
        m.admission.expect_admit().times(0);
        m.users.expect_find_by_login().times(0);
        m.hasher.expect_verify().times(0);
        m.tokens.expect_issue().times(0);
        let err = m
            .service()
            .login("ann\u{0}", &Password::for_login("correct horse"), &from(1))
            .await;
        assert!(matches!(err, Err(Error::Invalid(v)) if v.field == "username"));
    }

    #[tokio::test]
    async fn an_address_past_its_failure_budget_neither_looks_up_nor_hashes() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        let until = Utc.with_ymd_and_hms(2026, 1, 2, 3, 15, 0).unwrap();
        m.failures
            .expect_get()
            .with(eq(address(2)), always())
            .returning(move |_, _| {
                Ok(Some(Failures {
                    count: 60,
                    last: now(),
                    until,
                }))
            });
        m.failures.expect_add().times(0);
        m.users.expect_find_by_login().times(0);
        m.admission.checkpoint();
        m.admission.expect_admit().times(0);
        m.hasher.expect_verify().times(0);
        m.tokens.expect_issue().times(0);
        let err = m
            .service()
            .login(" ANN ", &Password::for_login("guess"), &from(2))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TooManyAttempts { .. }), "{err:?}");
        // 03:04:05 to 03:15:00.
        assert_eq!(err.retry_after_secs(), Some(10 * 60 + 55));
    }

    #[tokio::test]
    async fn an_address_waiting_on_an_account_is_refused_without_hashing() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        m.failures
            .expect_get()
            .with(eq(address(2)), always())
            .returning(|_, _| Ok(None));
        // The seventh failure, a second ago: two past the five free ones, a wait of 2 s.
        m.failures
            .expect_get()
            .with(eq(attempt(2, Account::User(UserId(7)))), always())
            .returning(|_, _| {
                Ok(Some(Failures {
                    count: 7,
                    last: now() - Duration::seconds(1),
                    until: now() + Duration::hours(23),
                }))
            });
        m.failures.expect_add().times(0);
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.admission.checkpoint();
        m.admission.expect_admit().times(0);
        m.hasher.expect_verify().times(0);
        m.tokens.expect_issue().times(0);
        let err = m
            .service()
            .login("ann", &Password::for_login("right"), &from(2))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TooManyAttempts { .. }), "{err:?}");
        assert_eq!(err.retry_after_secs(), Some(1));
    }

    #[tokio::test]
    async fn once_the_wait_is_over_the_right_password_gets_in_and_clears_the_account() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        m.failures.expect_get().returning(|_, _| {
            Ok(Some(Failures {
                count: 7,
                last: now() - Duration::seconds(2),
                until: now() + Duration::hours(23),
            }))
        });
        m.failures
            .expect_clear()
            .with(eq(attempt(2, Account::User(UserId(7)))))
            .times(1)
            .returning(|_| Ok(()));
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.hasher.expect_verify().returning(|_, _| Ok(true));
        m.tokens.expect_issue().times(1).returning(|_| Ok(token()));
        assert!(
            m.service()
                .login("Ann", &Password::for_login("right"), &from(2))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_failure_counts_on_the_user_for_a_day_and_on_the_address_for_an_hour() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        m.failures.expect_get().returning(|_, _| Ok(None));
        m.failures
            .expect_add()
            .with(
                eq(attempt(3, Account::User(UserId(7)))),
                eq(now()),
                eq(Duration::hours(24)),
            )
            .times(1)
            .returning(|_, _, _| Ok(()));
        m.failures
            .expect_add()
            .with(eq(address(3)), eq(now()), eq(Duration::hours(1)))
            .times(1)
            .returning(|_, _, _| Ok(()));
        // The email names the same user: the same key as the username would be.
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.hasher.expect_verify().returning(|_, _| Ok(false));
        let err = m
            .service()
            .login(" Ann@Example.com", &Password::for_login("guess"), &from(3))
            .await;
        assert!(matches!(err, Err(Error::InvalidCredentials)));
    }

    #[tokio::test]
    async fn a_failure_on_nobody_counts_on_the_folded_login_name() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        m.failures.expect_get().returning(|_, _| Ok(None));
        m.failures
            .expect_add()
            .with(
                eq(attempt(3, Account::Unknown("ghost@example.com".into()))),
                always(),
                always(),
            )
            .times(1)
            .returning(|_, _, _| Ok(()));
        m.failures
            .expect_add()
            .with(eq(address(3)), always(), always())
            .times(1)
            .returning(|_, _, _| Ok(()));
        m.users.expect_find_by_login().returning(|_| Ok(None));
        m.hasher.expect_verify().returning(|_, _| Ok(false));
        let err = m
            .service()
            .login("Ghost@Example.com", &Password::for_login("guess"), &from(3))
            .await;
        assert!(matches!(err, Err(Error::InvalidCredentials)));
    }

    #[tokio::test]
    async fn a_login_past_the_admitted_hashes_is_refused_without_hashing_or_counting() {
        let mut m = Mocks::new();
        m.admission.checkpoint();
        m.admission
            .expect_admit()
            .times(1)
            .returning(|_, _, _| None);
        m.failures.checkpoint();
        m.failures.expect_get().returning(|_, _| Ok(None));
        m.failures.expect_add().times(0);
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.hasher.expect_verify().times(0);
        m.tokens.expect_issue().times(0);
        let err = m
            .service()
            .login("ann", &Password::for_login("right"), &from(2))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn an_attackers_failures_never_hold_the_owner_back_at_another_address() {
        // Arrange: the real counter, an attacker at .2 far past the free failures.
        let failures = Arc::new(LocalLoginFailures::new());
        let limits = LoginLimits::default();
        let attacker = attempt(2, Account::User(UserId(7)));
        for _ in 0..20 {
            failures
                .add(&attacker, now(), limits.failure_memory)
                .await
                .unwrap();
        }
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.hasher
            .expect_verify()
            .times(1)
            .returning(|p, _| Ok(p.expose() == "right"));
        m.tokens.expect_issue().times(1).returning(|_| Ok(token()));
        let auth = m.service_with(failures, limits);

        // Act / Assert
        let refused = auth
            .login("ann", &Password::for_login("right"), &from(2))
            .await;
        assert!(matches!(refused, Err(Error::TooManyAttempts { .. })));
        let owner = auth
            .login("ann@example.com", &Password::for_login("right"), &from(3))
            .await;
        assert!(owner.is_ok(), "{owner:?}");
    }

    #[test]
    fn the_wait_doubles_past_the_free_failures_up_to_its_cap() {
        let limits = LoginLimits::default();
        let waits: Vec<i64> = (4..=10)
            .map(|n| limits.delay_after(n).num_seconds())
            .collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16]);
        assert_eq!(limits.delay_after(1000), Duration::minutes(15));
        let off = LoginLimits {
            free_failures: 0,
            ..limits
        };
        assert_eq!(off.delay_after(1000), Duration::zero());
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
            .withf(|s, _, at| s.0 == "s1" && *at == now())
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
}
