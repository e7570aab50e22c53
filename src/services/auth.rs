//! Registration, login, server sessions (authentication of every request and socket,
//! renewal with rotating refresh tokens, listing and ending them), password changes and
//! logout; and how password guessing is slowed down.

use std::sync::Arc;

use crate::domain::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};

use crate::domain::{
    AuthUser, Client, Email, Event, LoginName, NewSession, NewUser, Password, Session, SessionId,
    Tokens, User, UserId, Username,
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
    /// How long a login or registration waits for a place among the admitted hashes before
    /// it is refused; zero refuses at once.
    pub hash_wait: std::time::Duration,
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
            hash_wait: std::time::Duration::from_secs(1),
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

/// How long a session lasts unused unless configured otherwise.
pub fn default_session_idle() -> Duration {
    Duration::days(30)
}

/// A session's use is written down at most once a minute, so that requests are not writes;
/// more often only when sessions last mere minutes, so that use still keeps them alive.
fn touch_every(idle: Duration) -> Duration {
    Duration::seconds(60).min(idle / 4)
}

/// A refresh token presented again this soon after it was rotated is taken for two tabs
/// refreshing at once (both sent the cookie before either had the answer), not for a stolen
/// token: the late one gets an access token and the session keeps its newest refresh token.
fn refresh_race() -> Duration {
    Duration::seconds(30)
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
    session_idle: Duration,
}

/// A PHC string of a password nobody has, verified when the login names no user so that
/// a wrong username costs as much time as a wrong password.
pub(crate) const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$K9SYXTgNqd8OJvxKLA0dwmFljpBJLX1FWbxDQrO9mhk";

impl AuthService {
    /// Sessions last [`default_session_idle`] unused; see [`AuthService::with_session_idle`].
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
            session_idle: default_session_idle(),
        }
    }

    /// Sessions end after `idle` without use.
    #[must_use]
    pub fn with_session_idle(mut self, idle: Duration) -> Self {
        self.session_idle = idle;
        self
    }

    /// The limits this service applies.
    pub fn limits(&self) -> LoginLimits {
        self.limits
    }

    /// A place to hash a password for `client`, or a refusal to come back in a second: a
    /// hash waits a bounded time for a place rather than in a queue without bound, so that
    /// one address cannot slow everyone's login down. Waiting, rather than refusing at once,
    /// also slows down an address that retries each refusal at once: its requests then
    /// arrive no faster than its hashes are done.
    async fn admit(&self, client: &Client) -> Result<HashPermit> {
        self.admission
            .admit(
                client.address,
                self.limits.hashes_per_address,
                self.limits.hashes_in_flight,
                self.limits.hash_wait,
            )
            .await
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
        let permit = self.admit(client).await?;
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

    /// Checks a username-or-email and password, starts a session for `client` and issues
    /// its first access and refresh tokens.
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
    /// now; `InvalidCredentials`, the same whether the user exists or not; `AccountDisabled`
    /// for the right password of a disabled account (a wrong one is `InvalidCredentials`, so
    /// the state is told only to who knows the password).
    pub async fn login(&self, login: &str, password: &Password, client: &Client) -> Result<Tokens> {
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
        let permit = self.admit(client).await?;
        let hash = user
            .as_ref()
            .map_or(DECOY_HASH, |u| u.password_hash.as_str());
        let matches = self.hasher.verify(password, hash).await?;
        drop(permit);
        match user {
            Some(user) if matches => {
                self.failures.clear(&attempt).await?;
                if user.disabled {
                    return Err(Error::AccountDisabled);
                }
                self.start_session(user.id, client, now).await
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

    async fn start_session(
        &self,
        user: UserId,
        client: &Client,
        now: DateTime<Utc>,
    ) -> Result<Tokens> {
        let id = SessionId::random();
        let refresh = self.tokens.refresh_token(&id);
        let expires_at = now + self.session_idle;
        self.sessions
            .create_session(&NewSession {
                id: id.clone(),
                user_id: user,
                created_at: now,
                expires_at,
                client: client.clone(),
                refresh_digest: refresh.digest,
            })
            .await?;
        Ok(Tokens {
            access: self.tokens.issue(user, &id)?,
            refresh: Some(refresh.token),
            session: id,
            session_expires_at: expires_at,
        })
    }

    /// The user a token stands for, read with its session in one storage read. A use of the
    /// session is written down (and its expiry pushed back) at most once a minute.
    ///
    /// # Errors
    /// `TokenExpired` for an expired token, `Unauthenticated` for a bad one or one whose
    /// session has ended or expired (disabling an account ends its sessions).
    pub async fn authenticate(&self, token: &str) -> Result<AuthUser> {
        let claims = self.tokens.verify(token)?;
        let session = self
            .sessions
            .find_session(&claims.session)
            .await?
            .filter(|s| s.user_id == claims.user_id)
            .ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        if session.expires_at <= now {
            return Err(Error::Unauthenticated);
        }
        let mut session_expires_at = session.expires_at;
        if now - session.last_used_at >= touch_every(self.session_idle) {
            session_expires_at = now + self.session_idle;
            if !self
                .sessions
                .touch_session(&session.id, now, session_expires_at)
                .await?
            {
                return Err(Error::Unauthenticated);
            }
        }
        Ok(AuthUser {
            id: session.user_id,
            username: session.username,
            session: session.id,
            session_expires_at: claims.expires_at.min(session_expires_at),
        })
    }

    /// Renews a session: a new access token and, in exchange for the refresh token
    /// presented, the next one. A refresh token that was already exchanged ends its session
    /// (someone else holds a copy), unless it comes back within seconds of its exchange,
    /// as it does when two tabs refresh at once; that one gets an access token only.
    ///
    /// # Errors
    /// `Unauthenticated` for a malformed or unknown token, or a session that has ended or
    /// expired; `RefreshTokenReused` when the token was already exchanged (the session is
    /// ended then).
    pub async fn refresh(&self, token: &str) -> Result<Tokens> {
        let (id, digest) = self
            .tokens
            .read_refresh(token)
            .ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        let live = |s: Option<Session>| s.filter(|s| s.expires_at > now);
        let mut session =
            live(self.sessions.find_session(&id).await?).ok_or(Error::Unauthenticated)?;
        let expires_at = now + self.session_idle;
        if session.refresh.current == digest {
            let next = self.tokens.refresh_token(&id);
            if self
                .sessions
                .rotate_refresh(&id, &digest, &next.digest, now, expires_at)
                .await?
            {
                return Ok(Tokens {
                    access: self.tokens.issue(session.user_id, &id)?,
                    refresh: Some(next.token),
                    session: id,
                    session_expires_at: expires_at,
                });
            }
            // Another refresh with this token came first; it is judged as the late one.
            session = live(self.sessions.find_session(&id).await?).ok_or(Error::Unauthenticated)?;
        }
        let racing = session.refresh.previous.as_deref() == Some(digest.as_str())
            && session
                .refresh
                .rotated_at
                .is_some_and(|at| now - at < refresh_race());
        if racing {
            return Ok(Tokens {
                access: self.tokens.issue(session.user_id, &id)?,
                refresh: None,
                session: id,
                session_expires_at: session.expires_at,
            });
        }
        if self.sessions.end_session(session.user_id, &id).await? {
            self.bus.publish(Event::SessionRevoked(id)).await?;
        }
        Err(Error::RefreshTokenReused)
    }

    /// The caller's account.
    ///
    /// # Errors
    /// `Unauthenticated` when the account is gone.
    pub async fn me(&self, me: &AuthUser) -> Result<User> {
        self.users.find(me.id).await?.ok_or(Error::Unauthenticated)
    }

    /// The caller's sessions that have not expired, most recently used first.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn sessions(&self, me: &AuthUser) -> Result<Vec<Session>> {
        self.sessions.list_sessions(me.id, self.clock.now()).await
    }

    /// Ends one of the caller's sessions (the current one too, if named); its tokens fail from
    /// now on and its sockets close.
    ///
    /// # Errors
    /// `SessionNotFound` when the caller has no session with that id (another user's is left
    /// alone).
    pub async fn end_session(&self, me: &AuthUser, id: SessionId) -> Result<()> {
        if !self.sessions.end_session(me.id, &id).await? {
            return Err(Error::SessionNotFound);
        }
        self.bus.publish(Event::SessionRevoked(id)).await
    }

    /// Ends every session of the caller but the current one; how many it ended.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn end_other_sessions(&self, me: &AuthUser) -> Result<usize> {
        let ended = self
            .sessions
            .end_sessions_except(me.id, Some(me.session.clone()))
            .await?;
        self.announce_ended(ended).await
    }

    /// Ends every session of `user`, wherever it is: for an operator who resets a password
    /// or locks an account out. How many it ended.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn end_all_sessions(&self, user: UserId) -> Result<usize> {
        let ended = self.sessions.end_sessions_except(user, None).await?;
        self.announce_ended(ended).await
    }

    async fn announce_ended(&self, ended: Vec<SessionId>) -> Result<usize> {
        let count = ended.len();
        for id in ended {
            self.bus.publish(Event::SessionRevoked(id)).await?;
        }
        Ok(count)
    }

    /// Changes the caller's password after checking the current one, and ends every other
    /// session of theirs: whoever else was signed in must sign in with the new one.
    ///
    /// # Errors
    /// `WrongPassword` when `current` is not the password (nothing changes then);
    /// `Unauthenticated` when the account is gone.
    pub async fn change_password(
        &self,
        me: &AuthUser,
        current: &Password,
        new: &Password,
    ) -> Result<()> {
        let user = self.me(me).await?;
        if !self.hasher.verify(current, &user.password_hash).await? {
            return Err(Error::WrongPassword);
        }
        let hash = self.hasher.hash(new).await?;
        self.users.set_password_hash(me.id, &hash).await?;
        self.end_other_sessions(me).await.map(drop)
    }

    /// Ends the caller's session: its tokens fail from now on and its sockets close.
    ///
    /// # Errors
    /// `Unexpected` on storage failure.
    pub async fn logout(&self, me: &AuthUser) -> Result<()> {
        self.sessions.end_session(me.id, &me.session).await?;
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
    use crate::domain::{AccessToken, Claims, RefreshState, RefreshToken};
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

    impl Mocks {
        /// Mocks whose login has failed nowhere before; failures are counted, successes clear.
        /// Tokens are made on demand; nothing is stored or published unless a test says so.
        fn new() -> Self {
            let mut failures = MockLoginFailures::new();
            failures.expect_get().returning(|_, _| Ok(None));
            failures.expect_add().returning(|_, _, _| Ok(()));
            failures.expect_clear().returning(|_| Ok(()));
            let mut tokens = MockTokenService::new();
            tokens.expect_issue().returning(|user, session| {
                Ok(AccessToken {
                    token: format!("access-{user}-{}", session.0),
                    expires_at: now() + Duration::minutes(30),
                })
            });
            tokens
                .expect_refresh_token()
                .returning(|session| RefreshToken {
                    token: format!("{}.next", session.0),
                    digest: "next-digest".into(),
                });
            let mut admission = MockHashAdmission::new();
            admission
                .expect_admit()
                .returning(|_, _, _, _| Some(HashPermit::new(())));
            Self {
                users: MockUserRepo::new(),
                sessions: MockSessionRepo::new(),
                hasher: MockPasswordHasher::new(),
                tokens,
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
            .with_session_idle(Duration::days(30))
        }

        /// Tokens verify to ann's session `s1`.
        fn verifying(&mut self) {
            self.tokens.expect_verify().returning(|_| {
                Ok(Claims {
                    user_id: UserId(7),
                    session: SessionId("s1".into()),
                    expires_at: now() + Duration::minutes(10),
                })
            });
        }

        /// Refresh tokens read back as session `s1` with the digest named by the token.
        fn reading_refresh(&mut self) {
            self.tokens
                .expect_read_refresh()
                .returning(|t| Some((SessionId("s1".into()), t.to_owned())));
        }

        /// Publishing these sessions' revocations, each once, and nothing else.
        fn publishing(&mut self, ended: &[&str]) {
            for id in ended {
                self.bus
                    .expect_publish()
                    .with(eq(Event::SessionRevoked(SessionId((*id).into()))))
                    .times(1)
                    .returning(|_| Ok(()));
            }
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

    fn client() -> Client {
        Client {
            address: "192.0.2.7".parse().unwrap(),
            user_agent: Some("Firefox".into()),
        }
    }

    /// Ann's session `s1`, last used `idle` ago, its current refresh digest `current`.
    fn ann_session(idle: Duration, current: &str) -> Session {
        Session {
            id: SessionId("s1".into()),
            user_id: UserId(7),
            username: Username::parse("ann").unwrap(),
            created_at: now() - Duration::days(1),
            last_used_at: now() - idle,
            expires_at: now() - idle + Duration::days(30),
            client: client(),
            refresh: RefreshState {
                current: current.into(),
                previous: Some("old".into()),
                rotated_at: Some(now() - Duration::hours(1)),
            },
        }
    }

    fn me() -> AuthUser {
        AuthUser {
            id: UserId(7),
            username: Username::parse("ann").unwrap(),
            session: SessionId("s1".into()),
            session_expires_at: now() + Duration::minutes(10),
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
                &client(),
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
        m.sessions.expect_create_session().times(0);
        let err = m
            .service()
            .login("ghost", &Password::for_login("whatever1"), &client())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials));
    }

    #[tokio::test]
    async fn login_with_wrong_password_starts_no_session() {
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.hasher.expect_verify().returning(|_, _| Ok(false));
        m.sessions.expect_create_session().times(0);
        m.tokens.checkpoint();
        m.tokens.expect_issue().times(0);
        m.tokens.expect_refresh_token().times(0);
        let err = m
            .service()
            .login("ann", &Password::for_login("wrong-password"), &client())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials));
    }

    #[tokio::test]
    async fn login_starts_a_session_for_the_client_and_issues_tokens_naming_it() {
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .with(eq("ann@example.com"))
            .returning(|_| Ok(Some(ann())));
        m.hasher
            .expect_verify()
            .withf(|_, hash| hash == "$argon2id$ann")
            .returning(|_, _| Ok(true));
        m.sessions
            .expect_create_session()
            .withf(|s| {
                s.user_id == UserId(7)
                    && s.client == client()
                    && s.created_at == now()
                    && s.expires_at == now() + Duration::days(30)
                    && s.refresh_digest == "next-digest"
            })
            .times(1)
            .returning(|_| Ok(()));
        let tokens = m
            .service()
            .login(
                " ann@example.com ",
                &Password::for_login("correct horse"),
                &client(),
            )
            .await
            .unwrap();
        let session = &tokens.session.0;
        assert_eq!(tokens.access.token, format!("access-7-{session}"));
        assert_eq!(tokens.refresh, Some(format!("{session}.next")));
        assert_eq!(tokens.session_expires_at, now() + Duration::days(30));
    }

    #[tokio::test]
    async fn each_login_is_a_session_of_its_own() {
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.hasher.expect_verify().returning(|_, _| Ok(true));
        m.sessions
            .expect_create_session()
            .times(2)
            .returning(|_| Ok(()));
        let auth = m.service();
        let password = Password::for_login("correct horse");
        let a = auth.login("ann", &password, &client()).await.unwrap();
        let b = auth.login("ann", &password, &client()).await.unwrap();
        assert_ne!(a.session, b.session);
    }

    #[tokio::test]
    async fn a_login_name_with_a_control_character_is_refused_before_anything_else() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        m.failures.expect_get().times(0);
        m.failures.expect_add().times(0);
        m.users.expect_find_by_login().times(0);
        m.hasher.expect_verify().times(0);
        m.sessions.expect_create_session().times(0);
        let err = m
            .service()
            .login("ann\u{0}", &Password::for_login("correct horse"), &client())
            .await;
        assert!(matches!(err, Err(Error::Invalid(v)) if v.field == "username"));
    }

    #[tokio::test]
    async fn a_recently_used_session_authenticates_with_one_read_and_no_write() {
        let mut m = Mocks::new();
        m.verifying();
        m.sessions
            .expect_find_session()
            .with(eq(SessionId("s1".into())))
            .times(1)
            .returning(|_| Ok(Some(ann_session(Duration::seconds(30), "d"))));
        m.sessions.expect_touch_session().times(0);
        m.users.expect_find().times(0);
        let me = m.service().authenticate("tok").await.unwrap();
        assert_eq!(me.id, UserId(7));
        assert_eq!(me.username.as_str(), "ann");
        assert_eq!(me.session, SessionId("s1".into()));
        assert_eq!(
            me.session_expires_at,
            now() + Duration::minutes(10),
            "the token expires before the session"
        );
    }

    #[tokio::test]
    async fn a_use_a_minute_after_the_last_pushes_the_expiry_back() {
        let mut m = Mocks::new();
        m.verifying();
        m.sessions
            .expect_find_session()
            .returning(|_| Ok(Some(ann_session(Duration::minutes(2), "d"))));
        m.sessions
            .expect_touch_session()
            .with(
                eq(SessionId("s1".into())),
                eq(now()),
                eq(now() + Duration::days(30)),
            )
            .times(1)
            .returning(|_, _, _| Ok(true));
        assert!(m.service().authenticate("tok").await.is_ok());
    }

    #[tokio::test]
    async fn an_ended_session_does_not_authenticate() {
        let mut m = Mocks::new();
        m.verifying();
        m.sessions.expect_find_session().returning(|_| Ok(None));
        let err = m.service().authenticate("tok").await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated));
    }

    #[tokio::test]
    async fn an_expired_session_does_not_authenticate_and_is_not_revived() {
        let mut m = Mocks::new();
        m.verifying();
        m.sessions
            .expect_find_session()
            .returning(|_| Ok(Some(ann_session(Duration::days(30), "d"))));
        m.sessions.expect_touch_session().times(0);
        let err = m.service().authenticate("tok").await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated));
    }

    #[tokio::test]
    async fn a_token_naming_another_users_session_does_not_authenticate() {
        let mut m = Mocks::new();
        m.tokens.expect_verify().returning(|_| {
            Ok(Claims {
                user_id: UserId(8),
                session: SessionId("s1".into()),
                expires_at: now() + Duration::minutes(10),
            })
        });
        m.sessions
            .expect_find_session()
            .returning(|_| Ok(Some(ann_session(Duration::seconds(1), "d"))));
        let err = m.service().authenticate("tok").await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated));
    }

    #[tokio::test]
    async fn refreshing_with_the_current_token_rotates_it() {
        let mut m = Mocks::new();
        m.reading_refresh();
        m.sessions
            .expect_find_session()
            .returning(|_| Ok(Some(ann_session(Duration::minutes(20), "current"))));
        m.sessions
            .expect_rotate_refresh()
            .with(
                eq(SessionId("s1".into())),
                eq("current"),
                eq("next-digest"),
                eq(now()),
                eq(now() + Duration::days(30)),
            )
            .times(1)
            .returning(|_, _, _, _, _| Ok(true));
        m.sessions.expect_end_session().times(0);
        let tokens = m.service().refresh("current").await.unwrap();
        assert_eq!(tokens.access.token, "access-7-s1");
        assert_eq!(tokens.refresh.as_deref(), Some("s1.next"));
        assert_eq!(tokens.session_expires_at, now() + Duration::days(30));
    }

    #[tokio::test]
    async fn a_rotated_token_presented_again_ends_the_session() {
        let mut m = Mocks::new();
        m.reading_refresh();
        m.sessions
            .expect_find_session()
            .returning(|_| Ok(Some(ann_session(Duration::minutes(20), "current"))));
        m.sessions.expect_rotate_refresh().times(0);
        m.sessions
            .expect_end_session()
            .with(eq(UserId(7)), eq(SessionId("s1".into())))
            .times(1)
            .returning(|_, _| Ok(true));
        m.publishing(&["s1"]);
        let err = m.service().refresh("old").await.unwrap_err();
        assert!(matches!(err, Error::RefreshTokenReused));
    }

    #[tokio::test]
    async fn an_unknown_token_of_a_session_ends_it_too() {
        let mut m = Mocks::new();
        m.reading_refresh();
        m.sessions
            .expect_find_session()
            .returning(|_| Ok(Some(ann_session(Duration::minutes(20), "current"))));
        m.sessions.expect_rotate_refresh().times(0);
        m.sessions
            .expect_end_session()
            .times(1)
            .returning(|_, _| Ok(true));
        m.publishing(&["s1"]);
        let err = m.service().refresh("older-still").await.unwrap_err();
        assert!(matches!(err, Error::RefreshTokenReused));
    }

    #[tokio::test]
    async fn the_token_just_rotated_by_another_tab_gets_an_access_token_only() {
        let mut m = Mocks::new();
        m.reading_refresh();
        m.sessions.expect_find_session().returning(|_| {
            let mut s = ann_session(Duration::seconds(2), "newest");
            s.refresh.rotated_at = Some(now() - Duration::seconds(2));
            Ok(Some(s))
        });
        m.sessions.expect_rotate_refresh().times(0);
        m.sessions.expect_end_session().times(0);
        let tokens = m.service().refresh("old").await.unwrap();
        assert_eq!(tokens.access.token, "access-7-s1");
        assert_eq!(tokens.refresh, None, "the session keeps the newest token");
    }

    #[tokio::test]
    async fn a_refresh_that_loses_the_race_to_rotate_gets_an_access_token_only() {
        let mut m = Mocks::new();
        m.reading_refresh();
        let mut seq = mockall::Sequence::new();
        m.sessions
            .expect_find_session()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(Some(ann_session(Duration::minutes(20), "current"))));
        m.sessions
            .expect_rotate_refresh()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _, _, _| Ok(false));
        m.sessions
            .expect_find_session()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| {
                let mut s = ann_session(Duration::zero(), "winner");
                s.refresh.previous = Some("current".into());
                s.refresh.rotated_at = Some(now());
                Ok(Some(s))
            });
        m.sessions.expect_end_session().times(0);
        let tokens = m.service().refresh("current").await.unwrap();
        assert_eq!(tokens.refresh, None);
    }

    #[tokio::test]
    async fn a_malformed_refresh_token_is_refused_without_a_lookup() {
        let mut m = Mocks::new();
        m.tokens.expect_read_refresh().returning(|_| None);
        m.sessions.expect_find_session().times(0);
        let err = m.service().refresh("garbage").await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated));
    }

    #[tokio::test]
    async fn an_expired_session_is_not_refreshed() {
        let mut m = Mocks::new();
        m.reading_refresh();
        m.sessions
            .expect_find_session()
            .returning(|_| Ok(Some(ann_session(Duration::days(31), "current"))));
        m.sessions.expect_rotate_refresh().times(0);
        let err = m.service().refresh("current").await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated));
    }

    #[tokio::test]
    async fn ending_a_session_that_is_not_the_callers_is_not_found_and_tells_nobody() {
        let mut m = Mocks::new();
        m.sessions
            .expect_end_session()
            .with(eq(UserId(7)), eq(SessionId("bobs".into())))
            .times(1)
            .returning(|_, _| Ok(false));
        m.bus.expect_publish().times(0);
        let err = m
            .service()
            .end_session(&me(), SessionId("bobs".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SessionNotFound));
    }

    #[tokio::test]
    async fn ending_one_of_the_callers_sessions_closes_its_sockets() {
        let mut m = Mocks::new();
        m.sessions
            .expect_end_session()
            .with(eq(UserId(7)), eq(SessionId("s2".into())))
            .times(1)
            .returning(|_, _| Ok(true));
        m.publishing(&["s2"]);
        m.service()
            .end_session(&me(), SessionId("s2".into()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn ending_the_other_sessions_keeps_the_callers_and_tells_each_ended_one() {
        let mut m = Mocks::new();
        m.sessions
            .expect_end_sessions_except()
            .with(eq(UserId(7)), eq(Some(SessionId("s1".into()))))
            .times(1)
            .returning(|_, _| Ok(vec![SessionId("s2".into()), SessionId("s3".into())]));
        m.publishing(&["s2", "s3"]);
        assert_eq!(m.service().end_other_sessions(&me()).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn ending_all_sessions_of_a_user_keeps_none() {
        let mut m = Mocks::new();
        m.sessions
            .expect_end_sessions_except()
            .with(eq(UserId(7)), eq(None))
            .times(1)
            .returning(|_, _| Ok(vec![SessionId("s1".into())]));
        m.publishing(&["s1"]);
        assert_eq!(m.service().end_all_sessions(UserId(7)).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_wrong_current_password_changes_nothing() {
        let mut m = Mocks::new();
        m.users.expect_find().returning(|_| Ok(Some(ann())));
        m.hasher
            .expect_verify()
            .withf(|p, hash| p.expose() == "wrong" && hash == "$argon2id$ann")
            .returning(|_, _| Ok(false));
        m.hasher.expect_hash().times(0);
        m.users.expect_set_password_hash().times(0);
        m.sessions.expect_end_sessions_except().times(0);
        m.bus.expect_publish().times(0);
        let err = m
            .service()
            .change_password(
                &me(),
                &Password::for_login("wrong"),
                &Password::parse_new("brand new pass", "brand new pass").unwrap(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::WrongPassword));
    }

    #[tokio::test]
    async fn a_password_change_stores_the_new_hash_and_ends_the_other_sessions() {
        let mut m = Mocks::new();
        m.users.expect_find().returning(|_| Ok(Some(ann())));
        m.hasher.expect_verify().returning(|_, _| Ok(true));
        m.hasher
            .expect_hash()
            .withf(|p| p.expose() == "brand new pass")
            .times(1)
            .returning(|_| Ok("$argon2id$new".into()));
        m.users
            .expect_set_password_hash()
            .with(eq(UserId(7)), eq("$argon2id$new"))
            .times(1)
            .returning(|_, _| Ok(()));
        m.sessions
            .expect_end_sessions_except()
            .with(eq(UserId(7)), eq(Some(SessionId("s1".into()))))
            .times(1)
            .returning(|_, _| Ok(vec![SessionId("s2".into())]));
        m.publishing(&["s2"]);
        m.service()
            .change_password(
                &me(),
                &Password::for_login("password123"),
                &Password::parse_new("brand new pass", "brand new pass").unwrap(),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn logout_ends_the_session_then_tells_the_sockets() {
        let mut m = Mocks::new();
        m.sessions
            .expect_end_session()
            .with(eq(UserId(7)), eq(SessionId("s1".into())))
            .times(1)
            .returning(|_, _| Ok(true));
        m.publishing(&["s1"]);
        m.service().logout(&me()).await.unwrap();
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

    #[tokio::test]
    async fn a_registration_past_the_admitted_hashes_is_refused_without_hashing() {
        let mut m = Mocks::new();
        m.admission.checkpoint();
        m.admission
            .expect_admit()
            .with(
                eq(from(2).address),
                eq(2),
                eq(16),
                eq(std::time::Duration::from_secs(1)),
            )
            .times(1)
            .returning(|_, _, _, _| None);
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
        m.tokens.checkpoint();
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
        m.tokens.checkpoint();
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
        m.sessions
            .expect_create_session()
            .times(1)
            .returning(|_| Ok(()));
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
            .returning(|_, _, _, _| None);
        m.failures.checkpoint();
        m.failures.expect_get().returning(|_, _| Ok(None));
        m.failures.expect_add().times(0);
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(ann())));
        m.hasher.expect_verify().times(0);
        m.tokens.checkpoint();
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
        m.sessions
            .expect_create_session()
            .times(1)
            .returning(|_| Ok(()));
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
    async fn a_disabled_account_with_the_right_password_is_told_so_and_gets_no_token() {
        let mut m = Mocks::new();
        m.users
            .expect_find_by_login()
            .returning(|_| Ok(Some(disabled_ann())));
        m.hasher.expect_verify().returning(|_, _| Ok(true));
        m.tokens.checkpoint();
        m.tokens.expect_issue().times(0);
        m.sessions.expect_create_session().times(0);
        let err = m
            .service()
            .login("ann", &Password::for_login("correct horse"), &client())
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
        m.tokens.checkpoint();
        m.tokens.expect_issue().times(0);
        m.sessions.expect_create_session().times(0);
        let err = m
            .service()
            .login("ann", &Password::for_login("wrong-password"), &client())
            .await;
        assert!(matches!(err, Err(Error::InvalidCredentials)), "{err:?}");
    }
}
