//! Registration, login, server sessions (authentication of every request and socket,
//! renewal with rotating refresh tokens, listing and ending them), password changes and
//! logout.

use std::sync::Arc;

use crate::domain::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};

use crate::domain::{
    AuthUser, Client, Email, Event, LoginName, NewSession, NewUser, Password, Session, SessionId,
    Tokens, User, UserId, Username,
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
    session_idle: Duration,
}

/// A PHC string of a password nobody has, verified when the login names no user so that
/// a wrong username costs as much time as a wrong password.
pub(crate) const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$K9SYXTgNqd8OJvxKLA0dwmFljpBJLX1FWbxDQrO9mhk";

impl AuthService {
    /// Sessions last [`default_session_idle`] unused; see [`AuthService::with_session_idle`].
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
            session_idle: default_session_idle(),
        }
    }

    /// Sessions end after `idle` without use.
    #[must_use]
    pub fn with_session_idle(mut self, idle: Duration) -> Self {
        self.session_idle = idle;
        self
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

    /// Checks a username-or-email and password, starts a session for `client` and issues
    /// its first access and refresh tokens.
    ///
    /// # Errors
    /// `Invalid` on `username` for a login name with a control character (refused before any
    /// lookup, hashing or counting); `InvalidCredentials`, the same whether the user exists or
    /// not; `TooManyAttempts` after ten failures on one login within fifteen minutes, until
    /// they are past.
    pub async fn login(&self, login: &str, password: &Password, client: &Client) -> Result<Tokens> {
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
                self.start_session(user.id, client, now).await
            }
            _ => {
                self.failures.add(&key, now, failure_window()).await?;
                Err(Error::InvalidCredentials)
            }
        }
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
    /// session has ended or expired.
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use mockall::predicate::{always, eq};

    use super::*;
    use crate::domain::{AccessToken, Claims, RefreshState, RefreshToken};
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
            Self {
                users: MockUserRepo::new(),
                sessions: MockSessionRepo::new(),
                hasher: MockPasswordHasher::new(),
                tokens,
                bus: MockEventBus::new(),
                failures,
            }
        }

        fn service(self) -> AuthService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            AuthService::new(
                Arc::new(self.users),
                Arc::new(self.sessions),
                Arc::new(self.hasher),
                Arc::new(self.tokens),
                Arc::new(clock),
                Arc::new(self.bus),
                Arc::new(self.failures),
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
        m.sessions.expect_create_session().times(0);
        let err = m
            .service()
            .login(" ANN ", &Password::for_login("guess"), &client())
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
        m.sessions
            .expect_create_session()
            .times(1)
            .returning(|_| Ok(()));
        assert!(
            m.service()
                .login("Ann", &Password::for_login("right"), &client())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_failure_is_counted_on_the_folded_login_for_fifteen_minutes() {
        let mut m = Mocks::new();
        m.failures.checkpoint();
        m.failures.expect_get().returning(|_, _| Ok(None));
        m.failures
            .expect_add()
            .with(eq("ann@example.com"), eq(now()), eq(Duration::minutes(15)))
            .times(1)
            .returning(|_, _, _| Ok(()));
        m.users.expect_find_by_login().returning(|_| Ok(None));
        m.hasher.expect_verify().returning(|_, _| Ok(false));
        let err = m
            .service()
            .login(" Ann@Example.com", &Password::for_login("guess"), &client())
            .await;
        assert!(matches!(err, Err(Error::InvalidCredentials)));
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
}
