//! A real Redis for the tests: [`TestRedis::start`] gives each test a Redis of its own.
//!
//! 1. `TEST_REDIS_URL`: a running server; each test then keeps its keys under a prefix of its
//!    own, so tests sharing the server never see each other's keys.
//! 2. Otherwise a throwaway `redis-server` (Debian package `redis-server`; `scripts/test`
//!    installs it) on a free port of 127.0.0.1, without persistence, stopped when the test
//!    drops it.
//!
//! With neither, the test fails saying how to get one.
#![allow(dead_code)] // Not every test binary that includes `support` uses all of it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Redis server for one test, and the key prefix the test's instances use on it.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
    server: Option<Child>,
}

impl TestRedis {
    pub async fn start() -> Self {
        let prefix = format!("parley-test-{}", uuid::Uuid::new_v4().simple());
        if let Ok(url) = std::env::var("TEST_REDIS_URL") {
            let redis = Self {
                url,
                prefix,
                server: None,
            };
            redis.wait_until_it_answers().await;
            return redis;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let server = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}). The Redis tests need Redis: install the \
                     server (`apt-get install -y redis-server`; `scripts/test` does it for you) \
                     or set TEST_REDIS_URL to a running one, e.g. redis://127.0.0.1:6379"
                )
            });
        let redis = Self {
            url: format!("redis://127.0.0.1:{port}"),
            prefix,
            server: Some(server),
        };
        redis.wait_until_it_answers().await;
        redis
    }

    async fn wait_until_it_answers(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.connection().await {
                Ok(mut conn) => {
                    if redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .is_ok()
                    {
                        return;
                    }
                }
                Err(e) if Instant::now() > deadline => {
                    panic!("Redis at {} does not answer: {e}", self.url)
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A connection of the test's own, to look at or disturb the server.
    pub async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url.as_str())?
            .get_multiplexed_async_connection()
            .await
    }

    /// Closes every client connection whose latest command was `command` (e.g. `xread`),
    /// as a network fault would; returns how many were closed.
    pub async fn cut_clients_running(&self, command: &str) -> usize {
        let mut conn = self.connection().await.expect("connect to Redis");
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut conn)
            .await
            .expect("CLIENT LIST");
        let mut cut = 0;
        for line in clients.lines() {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            };
            if field("cmd") == Some(command)
                && let Some(id) = field("id")
            {
                let killed: i64 = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(id)
                    .query_async(&mut conn)
                    .await
                    .expect("CLIENT KILL");
                cut += usize::try_from(killed).unwrap_or(0);
            }
        }
        cut
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}
