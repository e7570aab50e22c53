//! What the benchmarks share: a release `parley` binary started as its own process on a fresh
//! database (so its memory and files can be read from /proc), and clients for it.
#![allow(dead_code)] // Each benchmark uses a part of it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection as _;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The limits a benchmark would trip by coming from one address: all off.
pub const LIMITS_OFF: &[(&str, &str)] = &[
    ("PARLEY_REQUESTS_PER_MINUTE_PER_USER", "0"),
    ("PARLEY_REQUESTS_PER_MINUTE_PER_ADDRESS", "0"),
    ("PARLEY_REGISTRATIONS_PER_ADDRESS_PER_HOUR", "0"),
    ("PARLEY_LOGIN_FREE_FAILURES", "0"),
    ("PARLEY_LOGIN_FAILURES_PER_ADDRESS_PER_HOUR", "0"),
    ("PARLEY_MAX_HASHES_PER_ADDRESS", "0"),
    ("PARLEY_MAX_HASHES_IN_FLIGHT", "0"),
];

/// A running server process; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub addr: String,
    /// The SQLite file when the server runs on SQLite.
    pub sqlite_path: Option<PathBuf>,
    pub database_url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `target/release/parley` (or `PARLEY_BIN`) on `db`: `sqlite` (a new file),
    /// `memory`, or a `postgres://` URL, with `env` added to its environment. The rate limits
    /// and the admission of password hashes are off (one client address registers and logs
    /// in every user), unless `env` sets them.
    pub async fn start(db: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let sqlite_path = (db == "sqlite").then(|| dir.path().join("bench.db"));
        let database_url = match (&sqlite_path, db) {
            (Some(path), _) => format!("sqlite://{}", path.display()),
            (None, "memory") => "memory://".to_owned(),
            (None, url) => url.to_owned(),
        };
        let bin = std::env::var("PARLEY_BIN").unwrap_or_else(|_| "target/release/parley".into());
        let child = Command::new(bin)
            .env("PARLEY_BIND", &addr)
            .env("DATABASE_URL", &database_url)
            .env("SECRET_KEY", "bench-secret-bench-secret-bench-secret")
            .env("PARLEY_LOG", "warn")
            .envs(LIMITS_OFF.iter().copied())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("run target/release/parley (cargo build --release first)");
        let server = Self {
            child,
            base: format!("http://{addr}"),
            addr,
            sqlite_path,
            database_url,
            _dir: dir,
        };
        for _ in 0..100 {
            if reqwest::get(format!("{}/health", server.base))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not start");
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// How many files (sockets included) the server holds open.
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, Iterator::count)
    }

    /// Stops the server with SIGTERM, as a service manager would, and waits for it.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }

    /// Registers `name` and logs in: its id and token.
    pub async fn user(&self, name: &str) -> (i64, String) {
        let c = reqwest::Client::new();
        let r: Value = c
            .post(format!("{}/auth/register", self.base))
            .json(&json!({"username": name, "email": format!("{name}@bench.io"), "password": "password123", "password_confirm": "password123"}))
            .send().await.unwrap().json().await.unwrap();
        let t: Value = c
            .post(format!("{}/auth/login", self.base))
            .form(&[("username", name), ("password", "password123")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            r["id"].as_i64().unwrap(),
            t["access_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Opens the direct chat of `token`'s user with `peer`.
    pub async fn direct_chat(&self, token: &str, peer: i64) -> i64 {
        let chat: Value = reqwest::Client::new()
            .post(format!("{}/chats/{peer}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        chat["chat_id"].as_i64().unwrap()
    }

    /// A WebSocket on `path` authenticated by `token`.
    pub async fn ws(&self, path: &str, token: &str) -> Ws {
        let url = format!("ws://{}{path}?token={token}", self.addr);
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }
}

/// The size of a file in bytes, 0 when it does not exist.
pub fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The `p` quantile (0..=1) of sorted samples.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

impl Server {
    /// Creates a group named `name` owned by `token`'s user with `members`: its id.
    pub async fn group_chat(&self, token: &str, name: &str, members: &[i64]) -> i64 {
        let chat: Value = reqwest::Client::new()
            .post(format!("{}/chats", self.base))
            .bearer_auth(token)
            .json(&json!({"name": name, "member_ids": members}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        chat["chat_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no group: {chat}"))
    }

    /// A WebSocket on `path` from the local address `source` (so that many thousands of
    /// sockets do not run out of ephemeral ports on one source address).
    pub async fn ws_from(&self, path: &str, token: &str, source: std::net::IpAddr) -> Ws {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(source, 0)).unwrap();
        let stream = socket.connect(self.addr.parse().unwrap()).await.unwrap();
        let url = format!("ws://{}{path}?token={token}", self.addr);
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .unwrap()
            .0
    }

    /// The CPU time the server has used so far (user and system), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.pid())
    }
}

/// The CPU time process `pid` has used so far (user and system), in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are the 14th and 15th fields of the line, so the 12th and 13th here.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Clock ticks per second, the unit of [`cpu_ticks`].
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).unwrap_or(100)
}

/// The database a run uses: for PostgreSQL a new database in the cluster named, dropped at
/// the end, so every run starts empty.
pub struct Scratch {
    pub url: String,
    admin: Option<(String, String)>,
}

impl Scratch {
    pub async fn new(db: &str) -> Self {
        if !db.starts_with("postgres") {
            return Self {
                url: db.to_owned(),
                admin: None,
            };
        }
        let name = format!(
            "parley_load_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        );
        let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
        let mut url = reqwest::Url::parse(db).unwrap();
        url.set_path(&name);
        Self {
            url: url.to_string(),
            admin: Some((db.to_owned(), name)),
        }
    }

    pub async fn drop_database(&mut self) {
        if let Some((admin, name)) = self.admin.take()
            && let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}
