//! One typed [`Config`], read in layers: defaults < optional `parley.toml` (path from
//! `PARLEY_CONFIG`) < environment (`PARLEY_*`, plus the `DATABASE_URL` and `SECRET_KEY` names
//! deployments already use). A bad value stops start-up with one line naming the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::adapters::jwt::MIN_SECRET_LEN;
pub use crate::adapters::sqlite::SqliteSync;

/// Everything a Parley server can be told.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// `postgres://...`, `sqlite://path`, or `memory://`. Unset: SQLite at `sqlite_path`.
    pub database_url: Option<String>,
    /// Where the embedded database lives when `database_url` is unset.
    pub sqlite_path: PathBuf,
    /// When SQLite makes a commit durable (see [`SqliteSync`]).
    pub sqlite_synchronous: SqliteSync,
    /// Largest PostgreSQL pool.
    pub db_max_connections: u32,
    /// HS256 signing key, at least 32 bytes. Unset: a random key for this run only.
    pub secret_key: Option<Secret>,
    /// How long an access token lives.
    pub token_ttl_minutes: i64,
    /// When set, how long an access token lives, in seconds, instead of `token_ttl_minutes`
    /// (for tests that watch tokens expire).
    pub token_ttl_seconds: Option<i64>,
    /// How long a session lasts unused; each use (at most one a minute is written down)
    /// starts the period again.
    pub session_idle_days: i64,
    /// When set, how long a session lasts unused, in seconds, instead of `session_idle_days`
    /// (for tests that watch sessions expire).
    pub session_idle_seconds: Option<i64>,
    /// Longest message body in characters.
    pub max_message_chars: usize,
    /// How long after posting a message its sender may edit it, in seconds; 0 for always.
    pub edit_window_seconds: u64,
    /// Frames one user may send per second over all their sockets, messages posted over HTTP
    /// included; bursts of three times as many pass. 0 for no limit.
    pub ws_frames_per_second: u32,
    /// Failed logins one address may make on one account before each further one doubles
    /// how long that address waits before trying that account again; 0 for no wait.
    pub login_free_failures: u32,
    /// Failed logins one address may make over all accounts in an hour; 0 for no limit.
    pub login_failures_per_address_per_hour: u32,
    /// Password hashes (logins, registrations) one address may have running or waiting at
    /// once; 0 for no limit.
    pub max_hashes_per_address: u32,
    /// Password hashes admitted at once over all addresses; 0 for no limit.
    pub max_hashes_in_flight: u32,
    /// How long, in milliseconds, a login or registration waits for a place among the
    /// admitted password hashes before it is refused; 0 refuses at once.
    pub max_hash_wait_ms: u64,
    /// HTTP requests one user may make per minute; 0 for no limit.
    pub requests_per_minute_per_user: u32,
    /// HTTP requests one client address may make per minute; 0 for no limit.
    pub requests_per_minute_per_address: u32,
    /// Registration attempts one address may make per hour; 0 for no limit.
    pub registrations_per_address_per_hour: u32,
    /// Behind a trusted proxy: the header it puts the client's address in (e.g.
    /// `X-Forwarded-For`), whose last address is taken. Unset: the peer's address.
    pub client_address_header: Option<String>,
    /// The most messages a socket's `resume` replays; from further back it gets `resync`.
    pub resume_max_messages: u32,
    /// The most sockets one user may hold open on this instance; 0 for no limit.
    pub max_sockets_per_user: u32,
    /// On PostgreSQL, how long an instance that stops without a goodbye keeps its users
    /// online for the other instances, in seconds.
    pub presence_lease_seconds: u64,
    /// `redis://[:password@]host[:port][/db]`: Redis as the engine between instances (event
    /// bus, presence, failed logins and rate limits), with PostgreSQL still the store. Unset:
    /// PostgreSQL alone ties instances together.
    pub redis_url: Option<Secret>,
    /// What every key Parley keeps in Redis starts with, so deployments can share one.
    pub redis_prefix: String,
    /// The URL people reach this server at (e.g. `https://chat.example.com`); its origin is
    /// allowed, and an https one makes the session cookie Secure.
    pub public_url: Option<String>,
    /// Extra origins allowed to make cookie-authenticated requests, comma separated.
    pub allowed_origins: String,
    /// Force the Secure flag of the session cookie on or off.
    pub cookie_secure: Option<bool>,
    /// Where `GET /metrics` is served on its own (e.g. `127.0.0.1:9100`), so that it need not
    /// be public; unset, it is served with the API.
    pub metrics_bind: Option<SocketAddr>,
    /// A tracing filter, e.g. `info` or `parley=debug,sqlx=warn`.
    pub log: String,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// After a stop signal, how long to keep serving with `/ready` at 503 before closing.
    pub drain_seconds: u64,
}

/// One setting as the documentation shows it: its environment names, its `parley.toml` key
/// (a field of [`Config`]), its default as shown, and what it means. [`SETTINGS`] is the one
/// place these are written; README's table and `parley config` are made from it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The environment variables that set it, the first the usual one.
    pub env: &'static [&'static str],
    pub key: &'static str,
    /// The default, in Markdown.
    pub default: &'static str,
    /// What it does, in Markdown.
    pub meaning: &'static str,
}

/// Every setting, in the order the documentation lists them; a field of [`Config`] without an
/// entry here fails the tests.
pub const SETTINGS: &[Setting] = &[
    Setting {
        env: &["PARLEY_BIND"],
        key: "bind",
        default: "`127.0.0.1:8000`",
        meaning: "Address to listen on (`0.0.0.0:8000` for all interfaces; port 0 picks one).",
    },
    Setting {
        env: &["DATABASE_URL", "PARLEY_DATABASE_URL"],
        key: "database_url",
        default: "unset",
        meaning: "`postgres://…` for PostgreSQL, `sqlite://path` for a SQLite file, `memory://` to keep nothing. Unset: SQLite at `PARLEY_SQLITE_PATH`. Any other scheme is refused.",
    },
    Setting {
        env: &["PARLEY_SQLITE_PATH"],
        key: "sqlite_path",
        default: "`parley.db`",
        meaning: "The embedded database file when `DATABASE_URL` is unset.",
    },
    Setting {
        env: &["PARLEY_SQLITE_SYNCHRONOUS"],
        key: "sqlite_synchronous",
        default: "`normal`",
        meaning: r#"`normal` or `full`: when SQLite makes a commit durable (see "The embedded database")."#,
    },
    Setting {
        env: &["PARLEY_DB_MAX_CONNECTIONS"],
        key: "db_max_connections",
        default: "`20`",
        meaning: "PostgreSQL pool size.",
    },
    Setting {
        env: &["SECRET_KEY", "PARLEY_SECRET_KEY"],
        key: "secret_key",
        default: "random per start",
        meaning: "HS256 signing key, at least 32 bytes.",
    },
    Setting {
        env: &["PARLEY_TOKEN_TTL_MINUTES"],
        key: "token_ttl_minutes",
        default: "`30`",
        meaning: r#"Lifetime of an access token (and its cookie); clients renew it with their refresh token (see "Sessions")."#,
    },
    Setting {
        env: &["PARLEY_TOKEN_TTL_SECONDS"],
        key: "token_ttl_seconds",
        default: "unset",
        meaning: "The same in seconds, replacing `PARLEY_TOKEN_TTL_MINUTES` when set (for tests that watch tokens expire).",
    },
    Setting {
        env: &["PARLEY_SESSION_IDLE_DAYS"],
        key: "session_idle_days",
        default: "`30`",
        meaning: "How long a session lasts unused. Every use (a request, a refresh) starts the period again; a use is written down at most once a minute.",
    },
    Setting {
        env: &["PARLEY_SESSION_IDLE_SECONDS"],
        key: "session_idle_seconds",
        default: "unset",
        meaning: "The same in seconds, replacing `PARLEY_SESSION_IDLE_DAYS` when set (for tests that watch sessions expire).",
    },
    Setting {
        env: &["PARLEY_MAX_MESSAGE_CHARS"],
        key: "max_message_chars",
        default: "`4000`",
        meaning: "Longest message, in characters after trimming.",
    },
    Setting {
        env: &["PARLEY_EDIT_WINDOW_SECONDS"],
        key: "edit_window_seconds",
        default: "`0`",
        meaning: "How long after posting a message its sender may edit it; past it an edit gets 403 `edit_window_passed`. `0` for always. Deleting has no window.",
    },
    Setting {
        env: &["PARLEY_MAX_SOCKETS_PER_USER"],
        key: "max_sockets_per_user",
        default: "`20`",
        meaning: "Sockets one user may hold open on one instance; past it the upgrade is refused with 429 `too_many_sockets` and `Retry-After`. `0` for no limit (load tests).",
    },
    Setting {
        env: &["PARLEY_PRESENCE_LEASE_SECONDS"],
        key: "presence_lease_seconds",
        default: "`30`",
        meaning: "On PostgreSQL or Redis, how long the other instances keep the users of an instance that stopped without a goodbye (killed, cut off) online; each instance renews its lease three times per lease and sweeps expired ones as often.",
    },
    Setting {
        env: &["PARLEY_REDIS_URL"],
        key: "redis_url",
        default: "unset",
        meaning: "`redis://[:password@]host[:port][/db]`: Redis carries the events between instances (a stream), presence and the counters of failed logins and rate limits, instead of PostgreSQL; PostgreSQL stays the store (needs `DATABASE_URL` to be PostgreSQL). Unset: PostgreSQL alone ties instances together.",
    },
    Setting {
        env: &["PARLEY_REDIS_PREFIX"],
        key: "redis_prefix",
        default: "`parley`",
        meaning: "What every key Parley keeps in Redis starts with, so deployments can share one Redis.",
    },
    Setting {
        env: &["PARLEY_RESUME_MAX_MESSAGES"],
        key: "resume_max_messages",
        default: "`1000`",
        meaning: "The most messages one `resume` replays; from further back the socket gets `resync`.",
    },
    Setting {
        env: &["PARLEY_WS_FRAMES_PER_SECOND"],
        key: "ws_frames_per_second",
        default: "`20`",
        meaning: "Frames one user may send per second over all their sockets, each `POST /chats/{id}/messages` counting as one (bursts of three times as many pass); past it a frame gets `error` `rate_limited`, a post 429 `rate_limited`. `0` for no limit.",
    },
    Setting {
        env: &["PARLEY_LOGIN_FREE_FAILURES"],
        key: "login_free_failures",
        default: "`5`",
        meaning: "Failed logins one address may make on one account (its username and email are one) before each further failure doubles how long that address waits before trying that account again: 1 s, 2 s, 4 s, ... up to 15 minutes; counts are kept a day. `0` for no wait.",
    },
    Setting {
        env: &["PARLEY_LOGIN_FAILURES_PER_ADDRESS_PER_HOUR"],
        key: "login_failures_per_address_per_hour",
        default: "`60`",
        meaning: "Failed logins one address may make over all accounts within an hour of its first; past it its logins are refused until the hour is out. `0` for no limit.",
    },
    Setting {
        env: &["PARLEY_MAX_HASHES_PER_ADDRESS"],
        key: "max_hashes_per_address",
        default: "`2`",
        meaning: "Logins and registrations one address may have hashing a password at once (running or waiting for a core); a further one waits for a place, up to `PARLEY_MAX_HASH_WAIT_MS`, then gets 429 `rate_limited`. `0` for no limit.",
    },
    Setting {
        env: &["PARLEY_MAX_HASHES_IN_FLIGHT"],
        key: "max_hashes_in_flight",
        default: "`16`",
        meaning: "Password hashes admitted at once over all addresses (running or waiting for a core: no more run at once than there are cores); a further one waits for a place, up to `PARLEY_MAX_HASH_WAIT_MS`, then gets 429 `rate_limited`. `0` for no limit.",
    },
    Setting {
        env: &["PARLEY_MAX_HASH_WAIT_MS"],
        key: "max_hash_wait_ms",
        default: "`1000`",
        meaning: "How long a login or registration waits for a place among the admitted password hashes before it is refused; `0` refuses at once. Waiting slows down a client that retries each refusal at once: its requests come no faster than its hashes are done.",
    },
    Setting {
        env: &["PARLEY_REQUESTS_PER_MINUTE_PER_USER"],
        key: "requests_per_minute_per_user",
        default: "`600`",
        meaning: "HTTP requests (socket upgrades included) one user may make per minute, counted by the token they carry; past it 429 `rate_limited`. `0` for no limit.",
    },
    Setting {
        env: &["PARLEY_REQUESTS_PER_MINUTE_PER_ADDRESS"],
        key: "requests_per_minute_per_address",
        default: "`1200`",
        meaning: "HTTP requests one client address may make per minute, `/health` excepted; past it 429 `rate_limited`. `0` for no limit.",
    },
    Setting {
        env: &["PARLEY_REGISTRATIONS_PER_ADDRESS_PER_HOUR"],
        key: "registrations_per_address_per_hour",
        default: "`20`",
        meaning: "`POST /auth/register` attempts one address may make per hour, refused ones included; past it 429 `rate_limited`. `0` for no limit.",
    },
    Setting {
        env: &["PARLEY_CLIENT_ADDRESS_HEADER"],
        key: "client_address_header",
        default: "unset",
        meaning: "Behind a trusted reverse proxy: the header it writes the client's address in, e.g. `X-Forwarded-For`. The client address is then the last address in the last such header (the one the proxy appended; earlier ones came from the client). Unset: the address of the connection's peer; the header is ignored. Set it only when every request comes through the proxy, or anyone can choose their address.",
    },
    Setting {
        env: &["PARLEY_PUBLIC_URL"],
        key: "public_url",
        default: "unset",
        meaning: "The URL people open; its origin may use the cookie and log in or register from a browser, and `https` makes the cookie `Secure`.",
    },
    Setting {
        env: &["PARLEY_ALLOWED_ORIGINS"],
        key: "allowed_origins",
        default: "empty",
        meaning: "More origins allowed to use the cookie and to log in or register from a browser, comma separated.",
    },
    Setting {
        env: &["PARLEY_COOKIE_SECURE"],
        key: "cookie_secure",
        default: "from `PARLEY_PUBLIC_URL`",
        meaning: "Force the cookie's `Secure` flag on or off.",
    },
    Setting {
        env: &["PARLEY_METRICS_BIND"],
        key: "metrics_bind",
        default: "unset",
        meaning: "An address (e.g. `127.0.0.1:9100`) to serve `GET /metrics` on, alone, so that it need not be public; unset, `/metrics` is served with the API.",
    },
    Setting {
        env: &["PARLEY_LOG"],
        key: "log",
        default: "`info`",
        meaning: r#"Log filter, e.g. `parley=debug,sqlx=warn`. At `info`, one access line per request on target `parley::access` (method, route template, status, `ms`, `user_id` when authenticated; never a token, a cookie or a query string); `parley::access=off` silences it. Every line about a request carries its `request_id` (see "Running it as a service")."#,
    },
    Setting {
        env: &["PARLEY_LOG_FORMAT"],
        key: "log_format",
        default: "`text`",
        meaning: "`text`, lines for people, or `json`: one JSON object per line on standard output (`timestamp`, `level`, `target`, `fields`, and `span`/`spans` with the `request_id`), for a log collector.",
    },
    Setting {
        env: &["PARLEY_DRAIN_SECONDS"],
        key: "drain_seconds",
        default: "`0`",
        meaning: "After SIGTERM or Ctrl-C, how long to keep serving with `/ready` at 503 before closing sockets and stopping, so a load balancer takes the instance out of rotation first.",
    },
];

/// The table of [`SETTINGS`] in Markdown, as README.md shows it.
pub fn settings_table() -> String {
    let mut table = String::from(
        "| Environment | `parley.toml` key | Default | Meaning |\n|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let env: Vec<String> = s.env.iter().map(|e| format!("`{e}`")).collect();
        table.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            env.join(" or "),
            s.key,
            s.default,
            s.meaning
        ));
    }
    table
}

/// How log lines are written to standard output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line a person reads.
    #[default]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database_url: None,
            sqlite_path: PathBuf::from("parley.db"),
            sqlite_synchronous: SqliteSync::Normal,
            db_max_connections: 20,
            secret_key: None,
            token_ttl_minutes: 30,
            token_ttl_seconds: None,
            session_idle_days: 30,
            session_idle_seconds: None,
            max_message_chars: 4000,
            edit_window_seconds: 0,
            ws_frames_per_second: 20,
            login_free_failures: 5,
            login_failures_per_address_per_hour: 60,
            max_hashes_per_address: 2,
            max_hashes_in_flight: 16,
            max_hash_wait_ms: 1000,
            requests_per_minute_per_user: 600,
            requests_per_minute_per_address: 1200,
            registrations_per_address_per_hour: 20,
            client_address_header: None,
            resume_max_messages: 1000,
            max_sockets_per_user: 20,
            presence_lease_seconds: 30,
            redis_url: None,
            redis_prefix: "parley".into(),
            public_url: None,
            allowed_origins: String::new(),
            cookie_secure: None,
            metrics_bind: None,
            log: "info".into(),
            log_format: LogFormat::Text,
            drain_seconds: 0,
        }
    }
}

/// A secret that never shows in `Debug` or logs.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database", &self.database().map(|d| d.describe()))
            .field("secret_key", &self.secret_key)
            .field("token_ttl_minutes", &self.token_ttl_minutes)
            .field("token_ttl_seconds", &self.token_ttl_seconds)
            .field("session_idle_days", &self.session_idle_days)
            .field("session_idle_seconds", &self.session_idle_seconds)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("max_message_chars", &self.max_message_chars)
            .field("edit_window_seconds", &self.edit_window_seconds)
            .field("redis_url", &self.redis_url)
            .field("redis_prefix", &self.redis_prefix)
            .field("public_url", &self.public_url)
            .field("allowed_origins", &self.allowed_origins)
            .field("client_address_header", &self.client_address_header)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("drain_seconds", &self.drain_seconds)
            .finish_non_exhaustive()
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Which storage a URL names.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Postgres(String),
    Sqlite(String),
    Memory,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Database {
    /// Where the data is, without credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres(url) => {
                let host = url.rsplit_once('@').map_or(url.as_str(), |(_, h)| h);
                format!("PostgreSQL at {host}")
            }
            Self::Sqlite(url) => format!("SQLite at {url}"),
            Self::Memory => "memory (nothing is kept across restarts)".into(),
        }
    }
}

impl Config {
    /// Reads the layers from the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad key.
    pub fn load() -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match std::env::var("PARLEY_CONFIG") {
            Ok(path) if !std::path::Path::new(&path).is_file() => {
                return Err(ConfigError::new(
                    "PARLEY_CONFIG",
                    format!("no file at {path}"),
                ));
            }
            Ok(path) => figment = figment.merge(Toml::file_exact(path)),
            Err(_) if std::path::Path::new("parley.toml").is_file() => {
                figment = figment.merge(Toml::file_exact("parley.toml"));
            }
            Err(_) => {}
        }
        let figment = figment
            .merge(Env::raw().only(&["DATABASE_URL", "SECRET_KEY"]))
            .merge(Env::prefixed("PARLEY_").ignore(&["CONFIG"]));
        let config: Config = figment.extract().map_err(|e| {
            let key = e
                .path
                .last()
                .map_or_else(|| "configuration".to_owned(), |k| env_name(k));
            ConfigError::new(key, e.kind.to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(secret) = &self.secret_key
            && secret.expose().len() < MIN_SECRET_LEN
        {
            return Err(ConfigError::new(
                "SECRET_KEY",
                format!(
                    "must be at least {MIN_SECRET_LEN} bytes (got {}); generate one with `openssl rand -hex 32`",
                    secret.expose().len()
                ),
            ));
        }
        if self.token_ttl_minutes < 1 {
            return Err(ConfigError::new(
                "PARLEY_TOKEN_TTL_MINUTES",
                "must be at least 1",
            ));
        }
        if self.token_ttl_seconds.is_some_and(|s| s < 1) {
            return Err(ConfigError::new(
                "PARLEY_TOKEN_TTL_SECONDS",
                "must be at least 1",
            ));
        }
        if self.session_idle_days < 1 {
            return Err(ConfigError::new(
                "PARLEY_SESSION_IDLE_DAYS",
                "must be at least 1",
            ));
        }
        if self.session_idle_seconds.is_some_and(|s| s < 1) {
            return Err(ConfigError::new(
                "PARLEY_SESSION_IDLE_SECONDS",
                "must be at least 1",
            ));
        }
        if self.max_message_chars < 1 {
            return Err(ConfigError::new(
                "PARLEY_MAX_MESSAGE_CHARS",
                "must be at least 1",
            ));
        }
        if self.resume_max_messages < 1 {
            return Err(ConfigError::new(
                "PARLEY_RESUME_MAX_MESSAGES",
                "must be at least 1",
            ));
        }
        if self.db_max_connections < 1 {
            return Err(ConfigError::new(
                "PARLEY_DB_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        self.database()?;
        for origin in self.extra_origins() {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError::new(
                    "PARLEY_ALLOWED_ORIGINS",
                    format!("{origin:?} is not an http(s) origin"),
                ));
            }
        }
        if let Some(name) = &self.client_address_header
            && !name.trim().is_empty()
            && salvo::http::header::HeaderName::from_bytes(name.trim().as_bytes()).is_err()
        {
            return Err(ConfigError::new(
                "PARLEY_CLIENT_ADDRESS_HEADER",
                format!("{name:?} is not a header name"),
            ));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "PARLEY_PUBLIC_URL",
                "must start with http:// or https://",
            ));
        }
        Ok(())
    }

    /// How long an access token lives.
    pub fn token_ttl(&self) -> chrono::Duration {
        self.token_ttl_seconds.map_or_else(
            || chrono::Duration::minutes(self.token_ttl_minutes),
            chrono::Duration::seconds,
        )
    }

    /// How long a session lasts unused.
    pub fn session_idle(&self) -> chrono::Duration {
        self.session_idle_seconds.map_or_else(
            || chrono::Duration::days(self.session_idle_days),
            chrono::Duration::seconds,
        )
    }

    /// The storage the configuration names.
    ///
    /// # Errors
    /// [`ConfigError`] on `DATABASE_URL` for an unknown scheme.
    pub fn database(&self) -> Result<Database, ConfigError> {
        let Some(url) = self
            .database_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            return Ok(Database::Sqlite(format!(
                "sqlite://{}",
                self.sqlite_path.display()
            )));
        };
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        match scheme {
            "postgres" | "postgresql" => Ok(Database::Postgres(url.to_owned())),
            "sqlite" => Ok(Database::Sqlite(url.to_owned())),
            "memory" => Ok(Database::Memory),
            _ => Err(ConfigError::new(
                "DATABASE_URL",
                format!("unsupported scheme {scheme:?}; use postgres://, sqlite:// or memory://"),
            )),
        }
    }

    /// Origins from `allowed_origins`.
    pub fn extra_origins(&self) -> impl Iterator<Item = String> + '_ {
        self.allowed_origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
    }
}

/// The environment variable users set for a config key.
fn env_name(key: &str) -> String {
    match key {
        "database_url" => "DATABASE_URL".into(),
        "secret_key" => "SECRET_KEY".into(),
        other => format!("PARLEY_{}", other.to_ascii_uppercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_shows_the_settings_table() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&settings_table()),
            "README.md's configuration table is not the one `parley config` prints; paste that in"
        );
    }

    #[test]
    fn every_field_has_one_setting_named_after_it() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let mut fields: Vec<&str> = defaults
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        fields.sort_unstable();
        keys.sort_unstable();
        assert_eq!(keys, fields);
        for s in SETTINGS {
            let env = format!("PARLEY_{}", s.key.to_ascii_uppercase());
            assert!(
                s.env.contains(&env.as_str()),
                "{} is not set by {env}",
                s.key
            );
        }
    }

    #[test]
    fn database_is_chosen_by_scheme() {
        let mut c = Config::default();
        assert!(matches!(c.database().unwrap(), Database::Sqlite(u) if u == "sqlite://parley.db"));
        c.database_url = Some("postgres://u:p@db:5432/parley".into());
        let db = c.database().unwrap();
        assert_eq!(db.describe(), "PostgreSQL at db:5432/parley");
        c.database_url = Some("memory://".into());
        assert!(matches!(c.database().unwrap(), Database::Memory));
        c.database_url = Some("mysql://x".into());
        assert_eq!(c.database().unwrap_err().key, "DATABASE_URL");
    }

    #[test]
    #[allow(clippy::result_large_err)] // The closure's type is figment's.
    fn sqlite_synchronous_reads_normal_or_full_and_names_the_key_otherwise() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PARLEY_SQLITE_SYNCHRONOUS", "full");
            assert_eq!(Config::load().unwrap().sqlite_synchronous, SqliteSync::Full);
            jail.set_env("PARLEY_SQLITE_SYNCHRONOUS", "sometimes");
            assert_eq!(Config::load().unwrap_err().key, "PARLEY_SQLITE_SYNCHRONOUS");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // The closure's type is figment's.
    fn limits_read_from_the_environment_and_zero_switches_them_off() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load().unwrap();
            assert_eq!(c.requests_per_minute_per_address, 1200);
            assert_eq!(c.client_address_header, None);
            jail.set_env("PARLEY_REQUESTS_PER_MINUTE_PER_USER", "0");
            jail.set_env("PARLEY_WS_FRAMES_PER_SECOND", "0");
            jail.set_env("PARLEY_CLIENT_ADDRESS_HEADER", "X-Forwarded-For");
            let c = Config::load().unwrap();
            assert_eq!(c.requests_per_minute_per_user, 0);
            assert_eq!(c.ws_frames_per_second, 0);
            assert_eq!(c.client_address_header.as_deref(), Some("X-Forwarded-For"));
            jail.set_env("PARLEY_CLIENT_ADDRESS_HEADER", "not a header");
            assert_eq!(
                Config::load().unwrap_err().key,
                "PARLEY_CLIENT_ADDRESS_HEADER"
            );
            jail.set_env("PARLEY_MAX_HASHES_PER_ADDRESS", "-1");
            jail.set_env("PARLEY_CLIENT_ADDRESS_HEADER", "X-Real-IP");
            assert_eq!(
                Config::load().unwrap_err().key,
                "PARLEY_MAX_HASHES_PER_ADDRESS"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // The closure's type is figment's.
    fn session_lifetimes_read_in_days_or_seconds() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load().unwrap();
            assert_eq!(c.session_idle(), chrono::Duration::days(30));
            assert_eq!(c.token_ttl(), chrono::Duration::minutes(30));
            jail.set_env("PARLEY_SESSION_IDLE_DAYS", "7");
            assert_eq!(
                Config::load().unwrap().session_idle(),
                chrono::Duration::days(7)
            );
            jail.set_env("PARLEY_SESSION_IDLE_SECONDS", "5");
            jail.set_env("PARLEY_TOKEN_TTL_SECONDS", "2");
            let c = Config::load().unwrap();
            assert_eq!(c.session_idle(), chrono::Duration::seconds(5));
            assert_eq!(c.token_ttl(), chrono::Duration::seconds(2));
            jail.set_env("PARLEY_SESSION_IDLE_DAYS", "0");
            assert_eq!(Config::load().unwrap_err().key, "PARLEY_SESSION_IDLE_DAYS");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // The closure's type is figment's.
    fn log_format_reads_text_or_json_and_names_the_key_otherwise() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(Config::load().unwrap().log_format, LogFormat::Text);
            jail.set_env("PARLEY_LOG_FORMAT", "json");
            assert_eq!(Config::load().unwrap().log_format, LogFormat::Json);
            jail.set_env("PARLEY_LOG_FORMAT", "xml");
            assert_eq!(Config::load().unwrap_err().key, "PARLEY_LOG_FORMAT");
            Ok(())
        });
    }

    #[test]
    fn a_short_secret_is_refused_by_name() {
        let c = Config {
            secret_key: Some(Secret::new("too-short")),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "SECRET_KEY");
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config {
            secret_key: Some(Secret::new("x".repeat(40))),
            database_url: Some("postgres://user:hunter2@db/parley".into()),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("xxxx") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
