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
use crate::adapters::http::registry::Registry;
use crate::adapters::http::{self, HttpState};
use crate::adapters::jwt::JwtTokens;
use crate::adapters::memory::MemoryStore;
use crate::adapters::postgres::PgStore;
use crate::adapters::presence::LocalPresence;
use crate::adapters::sqlite::SqliteStore;
use crate::adapters::throttle::LocalLoginFailures;
use crate::config::{Config, Database};
use crate::ports::{
    ChatRepo, Clock, EventBus, MessageRepo, PasswordHasher, SessionRepo, StorageProbe, UserRepo,
};
use crate::services::{
    AdminService, AuthService, ChatService, Limits, MembershipService, MessageService,
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
        let store = Arc::new(store);
        Self {
            users: store.clone(),
            chats: store.clone(),
            messages: store.clone(),
            sessions: store.clone(),
            probe: store,
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

/// The storage ports and the event bus that goes with them.
#[derive(Clone)]
pub struct Backing {
    pub storage: Storage,
    pub bus: Arc<dyn EventBus>,
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
        Ok(match config.database()? {
            Database::Postgres(url) => {
                let store = PgStore::connect(&url, config.db_max_connections)
                    .await
                    .context("cannot open the PostgreSQL database")?;
                let bus = PgBus::start(store.pool().clone())
                    .await
                    .context("cannot listen for events on PostgreSQL")?;
                Self {
                    storage: Storage::from_store(store),
                    bus: Arc::new(bus),
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

    /// `storage` with an in-process bus.
    pub fn local(storage: Storage) -> Self {
        Self {
            storage,
            bus: Arc::new(LocalBus::default()),
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
    local_addr: SocketAddr,
    state: Arc<HttpState>,
    storage: Storage,
    shutdown: watch::Sender<bool>,
    draining: watch::Sender<bool>,
    drain_for: Duration,
    stop: Arc<Notify>,
}

impl App {
    /// Builds the server the configuration describes, opening its database.
    ///
    /// # Errors
    /// When the database cannot be opened or the address cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = config.database()?;
        tracing::info!(database = %db.describe(), "opening storage");
        let backing = Backing::open(&config).await?;
        Self::build_with(config, backing, Arc::new(Argon2Hasher::owasp())).await
    }

    /// Builds the server over storage, a bus and a password hasher of the caller's choosing.
    ///
    /// # Errors
    /// When the address cannot be bound or the secret is too short.
    pub async fn build_with(
        config: Config,
        backing: Backing,
        hasher: Arc<dyn PasswordHasher>,
    ) -> anyhow::Result<Self> {
        let Backing { storage, bus } = backing;
        let closing = storage.clone();
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
        let tokens = JwtTokens::new(&secret, chrono::Duration::minutes(config.token_ttl_minutes))?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let limits = Limits {
            max_message_chars: config.max_message_chars,
            ..Limits::default()
        };
        let auth = AuthService::new(
            storage.users.clone(),
            storage.sessions.clone(),
            hasher,
            Arc::new(tokens),
            clock.clone(),
            bus.clone(),
            Arc::new(LocalLoginFailures::new()),
        );
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
        let presence = PresenceService::new(
            storage.users,
            storage.chats,
            bus.clone(),
            clock,
            Arc::new(LocalPresence::new()),
        );
        let readiness = Readiness::new(storage.probe, bus.clone());

        let listener =
            listen(config.bind).with_context(|| format!("cannot listen on {}", config.bind))?;
        let local_addr = listener.local_addr()?;

        let registry = Arc::new(Registry::new());
        let events = bus.subscribe();
        let pump = registry.clone();
        tokio::spawn(async move { pump.pump(events).await });

        let (shutdown, shutdown_rx) = watch::channel(false);
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
            frames_per_second: config.ws_frames_per_second,
            resume_max_messages: config.resume_max_messages,
            max_sockets_per_user: config.max_sockets_per_user as usize,
        });
        Ok(Self {
            listener,
            local_addr,
            state,
            storage: closing,
            shutdown,
            draining,
            drain_for: Duration::from_secs(config.drain_seconds),
            stop: Arc::new(Notify::new()),
        })
    }

    /// The address the server listens on (the real port when the configuration said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops the server.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Serves until Ctrl-C, SIGTERM or [`Stopper::stop`]: then `/ready` answers 503 at once,
    /// the server keeps serving for the configured drain time (so a load balancer stops sending
    /// it traffic first), then stops accepting, closes every socket with 1001, waits for
    /// in-flight requests and closes the storage.
    ///
    /// # Errors
    /// When the listener fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
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
                () = signal() => {}
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
            for _ in 0..50 {
                if registry.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            handle.stop_graceful(Some(Duration::from_secs(10)));
        });
        server.serve(http::service(self.state)).await;
        self.storage.close().await;
        tracing::info!("stopped");
        Ok(())
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
    let Backing { storage, bus } = Backing::open(config).await?;
    let admin = AdminService::new(
        storage.users.clone(),
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
