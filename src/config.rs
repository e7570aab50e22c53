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
    /// Longest message body in characters.
    pub max_message_chars: usize,
    /// How long after posting a message its sender may edit it, in seconds; 0 for always.
    pub edit_window_seconds: u64,
    /// Frames a client may send per second on one socket; bursts of three times as many pass.
    pub ws_frames_per_second: u32,
    /// The most messages a socket's `resume` replays; from further back it gets `resync`.
    pub resume_max_messages: u32,
    /// The most sockets one user may hold open on this instance; 0 for no limit.
    pub max_sockets_per_user: u32,
    /// The URL people reach this server at (e.g. `https://chat.example.com`); its origin is
    /// allowed, and an https one makes the session cookie Secure.
    pub public_url: Option<String>,
    /// Extra origins allowed to make cookie-authenticated requests, comma separated.
    pub allowed_origins: String,
    /// Force the Secure flag of the session cookie on or off.
    pub cookie_secure: Option<bool>,
    /// A tracing filter, e.g. `info` or `parley=debug,sqlx=warn`.
    pub log: String,
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
            max_message_chars: 4000,
            edit_window_seconds: 0,
            ws_frames_per_second: 20,
            resume_max_messages: 1000,
            max_sockets_per_user: 20,
            public_url: None,
            allowed_origins: String::new(),
            cookie_secure: None,
            log: "info".into(),
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
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("max_message_chars", &self.max_message_chars)
            .field("edit_window_seconds", &self.edit_window_seconds)
            .field("public_url", &self.public_url)
            .field("allowed_origins", &self.allowed_origins)
            .field("log", &self.log)
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
        if self.max_message_chars < 1 {
            return Err(ConfigError::new(
                "PARLEY_MAX_MESSAGE_CHARS",
                "must be at least 1",
            ));
        }
        if self.ws_frames_per_second < 1 {
            return Err(ConfigError::new(
                "PARLEY_WS_FRAMES_PER_SECOND",
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
