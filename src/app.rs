//! Wires one [`Config`] into a running server: storage chosen by URL, the token, password,
//! clock and event adapters, the domain services, and the HTTP service on a bound socket.
//! Tests build it exactly as `main` does, on port 0.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use salvo::conn::tcp::TcpAcceptor;
use salvo::prelude::*;
use tokio::sync::{Notify, watch};

use crate::adapters::argon2::Argon2Hasher;
use crate::adapters::bus::{LocalBus, PgBus};
use crate::adapters::clock::SystemClock;
use crate::adapters::http::limits::{HttpLimits, SendBudget, SyncedWindows};
use crate::adapters::http::registry::Registry;
use crate::adapters::http::{self, HttpState};
use crate::adapters::jwt::JwtTokens;
use crate::adapters::memory::MemoryStore;
use crate::adapters::postgres::{PgLoginFailures, PgPresence, PgRateWindows, PgStore};
use crate::adapters::presence::LocalPresence;
use crate::adapters::redis::{Redis, RedisBus, RedisLoginFailures, RedisPresence, RedisWindows};
use crate::adapters::sqlite::SqliteStore;
use crate::adapters::throttle::{LocalHashAdmission, LocalLoginFailures};
use crate::config::{Config, Database};
use crate::ports::{
    ChatRepo, Clock, EventBus, HashAdmission, LoginFailures, MessageRepo, PasswordHasher,
    PresenceTracker, RateWindows, SessionRepo, StorageProbe, TokenService, UserRepo,
};
use crate::services::{
    AdminService, AuthService, ChatService, Limits, LoginLimits, MembershipService, MessageService,
    PresenceService, Readiness, UserDirectory,
};

/// What to do with the storage once the server has stopped.
type CloseHook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// The storage ports, however they are implemented.
#[derive(Clone)]
pub struct Storage {
    pub users: Arc<dyn UserRepo>,
    pub chats: Arc<dyn ChatRepo>,
    pub messages: Arc<dyn MessageRepo>,
    pub sessions: Arc<dyn SessionRepo>,
    /// Answers the readiness check.
    pub probe: Arc<dyn StorageProbe>,
    on_close: Option<CloseHook>,
}

impl Storage {
    /// One store implementing every port.
    pub fn from_store<S>(store: S) -> Self
    where
        S: UserRepo + ChatRepo + MessageRepo + SessionRepo + StorageProbe,
    {
        Self::from_arc(Arc::new(store))
    }

    /// One shared store implementing every port: the caller may keep its own handle, to wrap
    /// or inspect it.
    pub fn from_arc<S>(store: Arc<S>) -> Self
    where
        S: UserRepo + ChatRepo + MessageRepo + SessionRepo + StorageProbe,
    {
        Self::new(
            store.clone(),
            store.clone(),
            store.clone(),
            store.clone(),
            store,
        )
    }

    /// Storage port by port, each from wherever the caller likes.
    pub fn new(
        users: Arc<dyn UserRepo>,
        chats: Arc<dyn ChatRepo>,
        messages: Arc<dyn MessageRepo>,
        sessions: Arc<dyn SessionRepo>,
        probe: Arc<dyn StorageProbe>,
    ) -> Self {
        Self {
            users,
            chats,
            messages,
            sessions,
            probe,
            on_close: None,
        }
    }

    /// Runs `close` when the server stops, after the last request: to flush and close a
    /// database, say.
    #[must_use]
    pub fn on_close<F>(mut self, close: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.on_close = Some(Arc::new(move || Box::pin(close())));
        self
    }

    /// Runs what [`Storage::on_close`] was given, if anything.
    pub async fn close(&self) {
        if let Some(close) = &self.on_close {
            close().await;
        }
    }
}

/// The storage ports, and the event bus and presence tracker that go with them.
#[derive(Clone)]
pub struct Backing {
    pub storage: Storage,
    pub bus: Arc<dyn EventBus>,
    pub presence: Arc<dyn PresenceTracker>,
    /// Failed logins counted with every instance, when the engine can; otherwise each
    /// instance counts its own.
    pub login_failures: Option<Arc<dyn LoginFailures>>,
    /// Windows of the HTTP rate limits counted with every instance, when the engine can.
    pub windows: Option<Arc<dyn RateWindows>>,
}

impl Backing {
    /// Opens the database the configuration names and applies its migrations. On PostgreSQL
    /// events travel through the database, so instances sharing it hear each other; otherwise
    /// they stay in this process.
    ///
    /// # Errors
    /// When the database cannot be opened, migrated or listened to, or the configuration names
    /// no database Parley knows.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        Self::open_with_bus(config, true).await
    }

    /// [`Backing::open`], starting the shared bus only when `shared_bus` is set (a caller
    /// that brings its own bus needs none); without it the bus is in-process.
    async fn open_with_bus(config: &Config, shared_bus: bool) -> anyhow::Result<Self> {
        let database = config.database()?;
        if config.redis_url.is_some() && !matches!(database, Database::Postgres(_)) {
            anyhow::bail!(
                "redis_url: Redis ties instances together over one PostgreSQL database; \
                 set DATABASE_URL to a postgres:// URL, or unset PARLEY_REDIS_URL"
            );
        }
        Ok(match database {
            Database::Postgres(url) => {
                let store = PgStore::connect(&url, config.db_max_connections)
                    .await
                    .context("cannot open the PostgreSQL database")?;
                let lease = Duration::from_secs(config.presence_lease_seconds.max(1));
                if let Some(redis_url) = &config.redis_url {
                    return Self::over_redis(config, redis_url.expose(), store, shared_bus, lease)
                        .await;
                }
                let bus: Arc<dyn EventBus> = if shared_bus {
                    Arc::new(
                        PgBus::start(store.pool().clone())
                            .await
                            .context("cannot listen for events on PostgreSQL")?,
                    )
                } else {
                    Arc::new(LocalBus::default())
                };
                let presence = PgPresence::start(store.pool().clone(), lease)
                    .await
                    .context("cannot take a presence lease on PostgreSQL")?;
                let pool = store.pool().clone();
                Self {
                    storage: Storage::from_store(store),
                    bus,
                    presence,
                    login_failures: Some(Arc::new(PgLoginFailures::new(pool.clone()))),
                    windows: Some(Arc::new(PgRateWindows::new(pool))),
                }
            }
            Database::Sqlite(url) => {
                let store = SqliteStore::connect_with(&url, config.sqlite_synchronous)
                    .await
                    .with_context(|| format!("cannot open the SQLite database {url}"))?;
                let closing = store.clone();
                Self::local(Storage::from_store(store).on_close(move || {
                    let store = closing.clone();
                    async move { store.close().await }
                }))
            }
            Database::Memory => Self::local(Storage::from_store(MemoryStore::new())),
        })
    }

    /// PostgreSQL as the store, and Redis for what ties instances together.
    async fn over_redis(
        config: &Config,
        url: &str,
        store: PgStore,
        shared_bus: bool,
        lease: Duration,
    ) -> anyhow::Result<Self> {
        let redis = Redis::connect(url, &config.redis_prefix)
            .await
            .context("cannot connect to Redis (PARLEY_REDIS_URL)")?;
        let bus: Arc<dyn EventBus> = if shared_bus {
            Arc::new(
                RedisBus::start(&redis, store.pool().clone())
                    .await
                    .context("cannot read events from Redis")?,
            )
        } else {
            Arc::new(LocalBus::default())
        };
        let presence = RedisPresence::start(&redis, lease)
            .await
            .context("cannot take a presence lease on Redis")?;
        Ok(Self {
            storage: Storage::from_store(store),
            bus,
            presence,
            login_failures: Some(Arc::new(RedisLoginFailures::new(&redis))),
            windows: Some(Arc::new(RedisWindows::new(&redis))),
        })
    }

    /// `storage` with an in-process bus and presence.
    pub fn local(storage: Storage) -> Self {
        Self {
            storage,
            bus: Arc::new(LocalBus::default()),
            presence: Arc::new(LocalPresence::new()),
            login_failures: None,
            windows: None,
        }
    }
}

/// Stops a running [`App`] from elsewhere, as Ctrl-C would.
#[derive(Clone)]
pub struct Stopper(Arc<Notify>);

impl Stopper {
    pub fn stop(&self) {
        self.0.notify_one();
    }
}

/// A built server, bound and ready to run.
pub struct App {
    listener: tokio::net::TcpListener,
    /// Where `/metrics` is served on its own, when configured.
    metrics_listener: Option<tokio::net::TcpListener>,
    local_addr: SocketAddr,
    state: Arc<HttpState>,
    storage: Storage,
    shutdown: watch::Sender<bool>,
    draining: watch::Sender<bool>,
    drain_for: Duration,
    stop: Arc<Notify>,
}

impl App {
    /// A builder for the server the configuration describes; every part not given is made
    /// from the configuration, exactly as the `parley` binary makes it.
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            storage: None,
            bus: None,
            hasher: None,
            tokens: None,
            clock: None,
            limits: None,
            presence: None,
            login_failures: None,
            hash_admission: None,
            windows: None,
        }
    }

    /// Builds the server the configuration describes, opening its database.
    ///
    /// # Errors
    /// When the database cannot be opened or the address cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::builder(config).build().await
    }

    /// Builds the server over storage, a bus and a password hasher of the caller's choosing;
    /// the same as [`App::builder`] with [`AppBuilder::backing`] and [`AppBuilder::hasher`].
    ///
    /// # Errors
    /// When the address cannot be bound or the secret is too short.
    pub async fn build_with(
        config: Config,
        backing: Backing,
        hasher: Arc<dyn PasswordHasher>,
    ) -> anyhow::Result<Self> {
        Self::builder(config)
            .backing(backing)
            .hasher(hasher)
            .build()
            .await
    }
}

/// Builds an [`App`] from a [`Config`] and any parts the caller brings instead: storage, an
/// event bus, a password hasher, a token service, a clock, limits, a presence tracker or a
/// counter of failed logins. What is not given is made from the configuration.
///
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// use std::sync::Arc;
/// use parley::adapters::memory::MemoryStore;
/// use parley::{App, Config, Storage};
///
/// let store = Arc::new(MemoryStore::new());
/// let app = App::builder(Config::default())
///     .storage(Storage::from_arc(store.clone()))
///     .build()
///     .await?;
/// app.run_until(async { /* the host's own shutdown signal */ }).await
/// # }
/// ```
#[must_use]
pub struct AppBuilder {
    config: Config,
    storage: Option<Storage>,
    bus: Option<Arc<dyn EventBus>>,
    hasher: Option<Arc<dyn PasswordHasher>>,
    tokens: Option<Arc<dyn TokenService>>,
    clock: Option<Arc<dyn Clock>>,
    limits: Option<Limits>,
    presence: Option<Arc<dyn PresenceTracker>>,
    login_failures: Option<Arc<dyn LoginFailures>>,
    hash_admission: Option<Arc<dyn HashAdmission>>,
    windows: Option<Arc<dyn RateWindows>>,
}

impl AppBuilder {
    /// The storage ports. Without a bus as well, events stay in this process.
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = Some(storage);
        self
    }

    /// The event bus. A bus must keep [`EventBus::subscribe`] delivering every event
    /// published from then on: the server's sockets hear of messages only through it.
    pub fn bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Storage, bus and presence together, as [`Backing::open`] makes them, with the
    /// shared counters of failed logins and rate limits when the backing has them.
    pub fn backing(mut self, backing: Backing) -> Self {
        if let Some(failures) = backing.login_failures {
            self.login_failures = Some(failures);
        }
        self.windows = backing.windows.or(self.windows);
        self.storage(backing.storage)
            .bus(backing.bus)
            .presence(backing.presence)
    }

    /// How passwords are hashed; [`Argon2Hasher::owasp`] by default.
    pub fn hasher(mut self, hasher: Arc<dyn PasswordHasher>) -> Self {
        self.hasher = Some(hasher);
        self
    }

    /// How access tokens are issued and checked; HS256 JWTs signed with `secret_key` and
    /// living `token_ttl_minutes` by default.
    pub fn tokens(mut self, tokens: Arc<dyn TokenService>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// What time it is; the system clock by default.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The limits the services apply; by default from `max_message_chars` and the defaults
    /// of [`Limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Who is online; counted in this process by default.
    pub fn presence(mut self, presence: Arc<dyn PresenceTracker>) -> Self {
        self.presence = Some(presence);
        self
    }

    /// Where failed logins are counted; in this process by default.
    pub fn login_failures(mut self, failures: Arc<dyn LoginFailures>) -> Self {
        self.login_failures = Some(failures);
        self
    }

    /// Where the windows of the HTTP rate limits are counted when every instance must count
    /// them together; in this process by default (or as [`Backing::open`] chose).
    pub fn rate_windows(mut self, windows: Arc<dyn RateWindows>) -> Self {
        self.windows = Some(windows);
        self
    }

    /// Where password hashes are admitted (so many per address, so many in all); counted in
    /// this process by default.
    pub fn hash_admission(mut self, admission: Arc<dyn HashAdmission>) -> Self {
        self.hash_admission = Some(admission);
        self
    }

    /// Opens what was not given and binds the configured address.
    ///
    /// # Errors
    /// When the database cannot be opened, the address cannot be bound or the secret is too
    /// short.
    pub async fn build(self) -> anyhow::Result<App> {
        let Self {
            config,
            storage,
            bus,
            hasher,
            tokens,
            clock,
            limits,
            presence,
            mut login_failures,
            hash_admission,
            mut windows,
        } = self;
        let (storage, bus, presence) = match (storage, bus) {
            (Some(storage), Some(bus)) => (storage, bus, presence),
            (Some(storage), None) => (
                storage,
                Arc::new(LocalBus::default()) as Arc<dyn EventBus>,
                presence,
            ),
            (None, bus) => {
                tracing::info!(database = %config.database()?.describe(), "opening storage");
                let opened = Backing::open_with_bus(&config, bus.is_none()).await?;
                login_failures = login_failures.or(opened.login_failures);
                windows = windows.or(opened.windows);
                (
                    opened.storage,
                    bus.unwrap_or(opened.bus),
                    presence.or(Some(opened.presence)),
                )
            }
        };
        // Installed before anything is counted.
        crate::adapters::metrics::Metrics::get();
        let hasher = hasher.unwrap_or_else(|| Arc::new(Argon2Hasher::owasp()));
        let tokens = match tokens {
            Some(tokens) => tokens,
            None => Arc::new(default_tokens(&config)?),
        };
        let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
        let limits = limits.unwrap_or(Limits {
            max_message_chars: config.max_message_chars,
            edit_window: (config.edit_window_seconds > 0)
                .then(|| std::time::Duration::from_secs(config.edit_window_seconds)),
            ..Limits::default()
        });
        let presence = presence.unwrap_or_else(|| Arc::new(LocalPresence::new()));
        let login_failures = login_failures.unwrap_or_else(|| Arc::new(LocalLoginFailures::new()));
        let hash_admission = hash_admission.unwrap_or_else(|| Arc::new(LocalHashAdmission::new()));
        let closing = storage.clone();
        let auth = AuthService::new(
            storage.users.clone(),
            storage.sessions.clone(),
            hasher,
            tokens,
            clock.clone(),
            bus.clone(),
            login_failures,
            hash_admission,
            LoginLimits {
                free_failures: config.login_free_failures,
                failures_per_address: config.login_failures_per_address_per_hour,
                address_window: chrono::Duration::hours(1),
                hashes_per_address: config.max_hashes_per_address as usize,
                hashes_in_flight: config.max_hashes_in_flight as usize,
                hash_wait: std::time::Duration::from_millis(config.max_hash_wait_ms),
                ..LoginLimits::default()
            },
        )
        .with_session_idle(config.session_idle());
        let users = UserDirectory::new(storage.users.clone());
        let chats = ChatService::new(storage.chats.clone(), bus.clone(), clock.clone(), limits);
        let members = MembershipService::new(
            storage.users.clone(),
            storage.chats.clone(),
            bus.clone(),
            clock.clone(),
        );
        let messages = MessageService::new(
            storage.chats.clone(),
            storage.messages,
            bus.clone(),
            clock.clone(),
            limits,
        );
        let presence =
            PresenceService::new(storage.users, storage.chats, bus.clone(), clock, presence);
        let storage_probe = storage.probe.clone();
        let readiness = Readiness::new(storage.probe, bus.clone());

        let listener =
            listen(config.bind).with_context(|| format!("cannot listen on {}", config.bind))?;
        let metrics_listener = config
            .metrics_bind
            .map(|addr| listen(addr).with_context(|| format!("cannot listen on {addr}")))
            .transpose()?;
        let local_addr = listener.local_addr()?;

        let registry = Arc::new(Registry::new());
        let events = bus.subscribe();
        let pump = registry.clone();
        tokio::spawn(async move { pump.pump(events).await });

        let (shutdown, shutdown_rx) = watch::channel(false);
        tokio::spawn(expire_dead_instances(
            presence.clone(),
            Duration::from_secs(config.presence_lease_seconds.max(3) / 3),
            shutdown_rx.clone(),
        ));
        let (draining, draining_rx) = watch::channel(false);
        let state = Arc::new(HttpState {
            auth,
            users,
            chats,
            members,
            messages,
            presence,
            readiness,
            draining: draining_rx,
            registry,
            origins: allowed_origins(&config, local_addr),
            cookie_secure: config.cookie_secure.unwrap_or_else(|| {
                config
                    .public_url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("https://"))
            }),
            shutdown: shutdown_rx,
            limits: HttpLimits {
                requests_per_minute_per_user: config.requests_per_minute_per_user,
                requests_per_minute_per_address: config.requests_per_minute_per_address,
                registrations_per_address_per_hour: config.registrations_per_address_per_hour,
                sends_per_second_per_user: config.ws_frames_per_second,
            },
            budget: SendBudget::new(config.ws_frames_per_second),
            shared_windows: windows.map(SyncedWindows::start),
            storage_probe,
            client_address_header: config
                .client_address_header
                .as_deref()
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| {
                    salvo::http::header::HeaderName::from_bytes(h.as_bytes())
                        .context("PARLEY_CLIENT_ADDRESS_HEADER is not a header name")
                })
                .transpose()?,
            resume_max_messages: config.resume_max_messages,
            max_sockets_per_user: config.max_sockets_per_user as usize,
            serve_metrics: config.metrics_bind.is_none(),
        });
        Ok(App {
            listener,
            metrics_listener,
            local_addr,
            state,
            storage: closing,
            shutdown,
            draining,
            drain_for: Duration::from_secs(config.drain_seconds),
            stop: Arc::new(Notify::new()),
        })
    }
}

/// The JWT service the configuration describes: its secret, or a random one for this run.
fn default_tokens(config: &Config) -> anyhow::Result<JwtTokens> {
    let secret = match &config.secret_key {
        Some(s) => s.expose().as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "SECRET_KEY is not set: using a random key, so sessions end when the server restarts"
            );
            let bytes: [u8; 32] = rand::random();
            bytes.to_vec()
        }
    };
    Ok(JwtTokens::new(&secret, config.token_ttl())?)
}

/// The services of a built [`App`], for a host program to call directly.
#[derive(Clone)]
pub struct Services {
    pub auth: AuthService,
    pub users: UserDirectory,
    pub chats: ChatService,
    pub members: MembershipService,
    pub messages: MessageService,
    pub presence: PresenceService,
}

impl App {
    /// The address the server listens on (the real port when the configuration said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops the server.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// The running services, for a host program to call directly: what it does through them
    /// reaches the server's sockets as any request's would.
    pub fn services(&self) -> Services {
        let s = &self.state;
        Services {
            auth: s.auth.clone(),
            users: s.users.clone(),
            chats: s.chats.clone(),
            members: s.members.clone(),
            messages: s.messages.clone(),
            presence: s.presence.clone(),
        }
    }

    /// The whole HTTP surface (API, sockets, API description and web client) as a salvo
    /// router, to mount in a host's own salvo server, under a path prefix if it likes:
    /// `Router::with_path("chat").push(app.router())`. The web client expects to be served at
    /// the root; under a prefix the API and the sockets work, and browsers calling them from
    /// the host's pages need its origin in `allowed_origins` or `public_url`. Sockets close
    /// when [`Stopper::stop`] is called.
    pub fn router(&self) -> Router {
        http::router(self.state.clone())
    }

    /// Ends an app whose [`router`](App::router) a host served: closes every socket with 1001
    /// and closes the storage. An app run with [`App::run_until`] does this itself.
    pub async fn close(self) {
        let _ = self.shutdown.send(true);
        wait_for_sockets_to_close(&self.state.registry).await;
        self.storage.close().await;
    }

    /// Serves until Ctrl-C, SIGTERM or [`Stopper::stop`]: then `/ready` answers 503 at once,
    /// the server keeps serving for the configured drain time (so a load balancer stops sending
    /// it traffic first), then stops accepting, closes every socket with 1001, waits for
    /// in-flight requests and closes the storage.
    ///
    /// # Errors
    /// When the listener fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(signal()).await
    }

    /// Serves until `shutdown` resolves or [`Stopper::stop`] is called, then stops as
    /// [`App::run_until_stopped`] does. Signals are left to the caller.
    ///
    /// # Errors
    /// When the listener fails.
    pub async fn run_until(
        self,
        stop_when: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        if let Some(listener) = self.metrics_listener {
            let server = Server::new(TcpAcceptor::try_from(listener)?);
            let handle = server.handle();
            let mut stopping = self.state.shutdown.clone();
            tokio::spawn(async move {
                let _ = stopping.changed().await;
                handle.stop_graceful(Some(Duration::from_secs(1)));
            });
            tokio::spawn(server.serve(Router::with_path("metrics").get(
                crate::adapters::metrics::Endpoint {
                    storage: self.state.storage_probe.clone(),
                },
            )));
        }
        let acceptor = TcpAcceptor::try_from(self.listener)?;
        let server = Server::new(acceptor);
        let handle = server.handle();
        let registry = self.state.registry.clone();
        let stop = self.stop.clone();
        let shutdown = self.shutdown;
        let draining = self.draining;
        let drain_for = self.drain_for;
        tokio::spawn(async move {
            tokio::select! {
                () = stop.notified() => {}
                () = stop_when => {}
            }
            let _ = draining.send(true);
            if !drain_for.is_zero() {
                tracing::info!(
                    seconds = drain_for.as_secs(),
                    "draining: /ready answers 503"
                );
                tokio::time::sleep(drain_for).await;
            }
            tracing::info!("shutting down: closing sockets");
            let _ = shutdown.send(true);
            wait_for_sockets_to_close(&registry).await;
            handle.stop_graceful(Some(Duration::from_secs(10)));
        });
        server.serve(http::service(self.state)).await;
        self.storage.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Sets offline, every `period` until shutdown, the users of instances that stopped without
/// a goodbye.
async fn expire_dead_instances(
    presence: PresenceService,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = presence.expire_dead().await {
                    tracing::error!(error = ?e, "cannot expire the presence of stopped instances");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Gives the sockets told to close up to a second to do so.
async fn wait_for_sockets_to_close(registry: &Registry) {
    for _ in 0..50 {
        if registry.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Applies the pending migrations of the configured database, then closes it.
///
/// # Errors
/// When the database cannot be opened or a migration fails, and for `memory://`, which has no
/// schema to keep.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    match config.database()? {
        Database::Postgres(url) => {
            let store = PgStore::connect(&url, 1)
                .await
                .context("cannot migrate the PostgreSQL database")?;
            store.pool().close().await;
        }
        Database::Sqlite(url) => {
            let store = SqliteStore::connect_with(&url, config.sqlite_synchronous)
                .await
                .with_context(|| format!("cannot migrate the SQLite database {url}"))?;
            store.close().await;
        }
        Database::Memory => anyhow::bail!("memory:// keeps nothing, so it has nothing to migrate"),
    }
    Ok(())
}

/// Writes a consistent copy of the configured SQLite database to `dest`, while servers may be
/// using it (`VACUUM INTO`: one read transaction, so the copy is the database as of one
/// instant, compacted). `dest` must not exist.
///
/// # Errors
/// On PostgreSQL (whose own `pg_dump` is the tool) and `memory://`; when `dest` exists or the
/// copy fails.
pub async fn backup(config: &Config, dest: &std::path::Path) -> anyhow::Result<()> {
    match config.database()? {
        Database::Sqlite(url) => SqliteStore::backup(&url, dest).await,
        Database::Postgres(_) => anyhow::bail!(
            "parley backup copies SQLite databases; for PostgreSQL use pg_dump \
             (e.g. pg_dump --format=custom --file=parley.dump \"$DATABASE_URL\")"
        ),
        Database::Memory => anyhow::bail!("memory:// keeps nothing, so it has nothing to back up"),
    }
}

/// Account administration over the configured database, with the server's password hasher,
/// and the storage to close when done. On PostgreSQL, events (a disabled account) reach
/// every running server through the bus; on SQLite they stay in this process.
///
/// # Errors
/// When the database cannot be opened, and for `memory://`, whose accounts live only inside
/// one running server.
pub async fn admin(config: &Config) -> anyhow::Result<(AdminService, Storage)> {
    if config.database()? == Database::Memory {
        anyhow::bail!("memory:// keeps nothing outside the running server; nothing to administer");
    }
    let Backing { storage, bus, .. } = Backing::open(config).await?;
    let admin = AdminService::new(
        storage.users.clone(),
        storage.sessions.clone(),
        Arc::new(Argon2Hasher::owasp()),
        Arc::new(SystemClock),
        bus,
    );
    Ok((admin, storage))
}

/// A listening socket on `addr` whose accepted connections have `TCP_NODELAY` set.
///
/// Without it, a second frame written to a socket within one round trip waits for the
/// client's delayed ACK (30-40 ms on Linux) behind Nagle's algorithm. salvo's acceptor does not
/// set the option on what it accepts and does not hand out the accepted stream, so it is set
/// once on the listening socket, from which Linux and the BSDs copy it into every accepted one
/// (the test below checks an accepted socket, not the listener). Otherwise this binds as
/// [`tokio::net::TcpListener::bind`] does: address reuse on Unix and a backlog of 1024.
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// The configured public URL, the bound address (and its `localhost` alias when it is a
/// loopback or wildcard address), and any extra origins.
fn allowed_origins(config: &Config, addr: SocketAddr) -> HashSet<String> {
    let mut origins: HashSet<String> = config.extra_origins().collect();
    if let Some(url) = &config.public_url {
        origins.insert(http::auth::origin_of(url));
    }
    let port = addr.port();
    origins.insert(format!("http://{addr}"));
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        origins.insert(format!("http://localhost:{port}"));
        origins.insert(format!("http://127.0.0.1:{port}"));
        origins.insert(format!("http://[::1]:{port}"));
    }
    origins
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::mem::ManuallyDrop;
    use std::net::TcpStream;

    use super::*;

    /// The server's end of the TCP connection whose client end is `client`, found among this
    /// process's open files.
    #[cfg(target_os = "linux")]
    fn server_end_of(client: &TcpStream) -> Option<ManuallyDrop<TcpStream>> {
        use std::os::fd::FromRawFd as _;
        let (ours, server) = (client.local_addr().ok()?, client.peer_addr().ok()?);
        std::fs::read_dir("/proc/self/fd")
            .ok()?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .find_map(|fd| {
                // SAFETY: the stream is only queried and never dropped, so the descriptor is
                // neither closed nor taken from its owner; on a descriptor that is not a
                // socket the queries fail.
                let stream = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
                let is_it = stream.local_addr().ok() == Some(server)
                    && stream.peer_addr().ok() == Some(ours);
                is_it.then_some(stream)
            })
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accepted_connections_have_nodelay() {
        // Arrange
        let config = Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: Some("memory://".into()),
            ..Config::default()
        };
        let app = App::build(config).await.unwrap();
        let addr = app.local_addr();
        let stopper = app.stopper();
        let server = tokio::spawn(app.run_until_stopped());

        // Act: one request on a connection that stays open, so the server has accepted it.
        let client = tokio::task::spawn_blocking(move || {
            let mut client = TcpStream::connect(addr).unwrap();
            client
                .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut head = [0_u8; 12];
            client.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200");
            client
        })
        .await
        .unwrap();

        // Assert
        let accepted = server_end_of(&client).expect("the server's end of the connection");
        assert!(
            accepted.nodelay().unwrap(),
            "TCP_NODELAY on the accepted socket"
        );
        assert!(
            !client.nodelay().unwrap(),
            "the client's end was left as it was"
        );
        drop(client);
        stopper.stop();
        server.await.unwrap().unwrap();
    }
}
