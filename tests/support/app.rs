//! A real Parley server on `127.0.0.1:0` per test, built the way `main` builds it, with typed
//! helpers for the HTTP API and WebSockets. The API tests and the browser tests both use them,
//! the latter to set up what a scenario starts from and to act as another person.
#![allow(dead_code)] // Not every test binary uses every helper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parley::App;
use parley::adapters::argon2::Argon2Hasher;
use parley::app::{Backing, Stopper};
use parley::config::{Config, Secret};
use parley::ports::PasswordHasher;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "test-secret-test-secret-test-secret!";
/// The password of every user the helpers register.
pub const PASSWORD: &str = "password123";

/// The body of `POST /auth/register`.
pub fn register_body(username: &str, email: &str, password: &str, confirm: &str) -> Value {
    json!({"username": username, "email": email, "password": password, "password_confirm": confirm})
}

/// Cheap hashing keeps tests fast; production parameters are tested in the adapter.
pub fn cheap_hasher() -> Arc<dyn PasswordHasher> {
    Arc::new(Argon2Hasher::with_params(512, 1, 1))
}

/// The configuration of a test server on `db_url` at `bind`, with [`generous`] limits.
fn config(db_url: &str, bind: SocketAddr) -> Config {
    let mut config = Config {
        bind,
        database_url: Some(db_url.to_owned()),
        secret_key: Some(Secret::new(SECRET)),
        db_max_connections: 10,
        ..Config::default()
    };
    generous(&mut config);
    config
}

/// Switches off the limits that tests of something else would trip (every test client comes
/// from one address, registers many users and logs them in at once, and some post as fast as
/// they can): requests, registrations and password hashes per address and per user, and
/// what a user may send. Failed logins stay counted as in production (no test fails sixty).
pub fn generous(config: &mut Config) {
    config.ws_frames_per_second = 0;
    config.requests_per_minute_per_user = 0;
    config.requests_per_minute_per_address = 0;
    config.registrations_per_address_per_hour = 0;
    config.max_hashes_per_address = 0;
    config.max_hashes_in_flight = 0;
}

/// A new, empty database of `backend`: its URL, and the temp dir that holds it (SQLite), which
/// lives as long as the returned guard.
async fn fresh_database(backend: Backend) -> (String, Option<Arc<tempfile::TempDir>>) {
    match backend {
        Backend::Memory => ("memory://".to_owned(), None),
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("parley.db").display());
            (url, Some(Arc::new(dir)))
        }
        Backend::Postgres => (super::postgres::fresh_database_url().await, None),
    }
}

/// Which storage a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// A running test server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub db_url: String,
    stopper: Stopper,
    handle: tokio::task::JoinHandle<()>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl TestApp {
    /// A server on a fresh database of `backend`, with the limits of [`generous`].
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// A server on a fresh database of `backend`, configured by `configure` after
    /// [`generous`]: the tests of a limit set it tight here.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_hashing(backend, configure, cheap_hasher()).await
    }

    /// [`TestApp::spawn_with`], hashing passwords with `hasher`.
    pub async fn spawn_hashing(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
        hasher: Arc<dyn PasswordHasher>,
    ) -> Self {
        let (db_url, dir) = fresh_database(backend).await;
        let mut config = config(&db_url, "127.0.0.1:0".parse().unwrap());
        configure(&mut config);
        Self::start(config, dir, hasher).await
    }

    /// A server on an existing database URL, bound to `bind`.
    pub async fn spawn_at(
        db_url: &str,
        bind: SocketAddr,
        dir: Option<Arc<tempfile::TempDir>>,
    ) -> Self {
        Self::start(config(db_url, bind), dir, cheap_hasher()).await
    }

    /// [`TestApp::spawn_at`] with the test configuration changed by `configure`.
    pub async fn spawn_configured(
        db_url: &str,
        bind: SocketAddr,
        dir: Option<Arc<tempfile::TempDir>>,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = config(db_url, bind);
        configure(&mut config);
        Self::start(config, dir, cheap_hasher()).await
    }

    async fn start(
        config: Config,
        dir: Option<Arc<tempfile::TempDir>>,
        hasher: Arc<dyn PasswordHasher>,
    ) -> Self {
        let db_url = config.database_url.clone().expect("a database URL");
        let backing = Backing::open(&config).await.expect("open storage");
        let app = App::build_with(config, backing, hasher)
            .await
            .expect("build app");
        Self::run(app, &db_url, dir)
    }

    /// A server on a fresh database of `backend`, with its configuration changed by
    /// `configure` and its parts by `build` (a clock of the test's, say).
    pub async fn spawn_building(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
        build: impl FnOnce(parley::app::AppBuilder) -> parley::app::AppBuilder,
    ) -> Self {
        let (db_url, dir) = fresh_database(backend).await;
        let mut config = config(&db_url, "127.0.0.1:0".parse().unwrap());
        configure(&mut config);
        let backing = Backing::open(&config).await.expect("open storage");
        let builder = App::builder(config).backing(backing).hasher(cheap_hasher());
        let app = build(builder).build().await.expect("build app");
        Self::run(app, &db_url, dir)
    }

    /// Runs a server built elsewhere (with [`App::builder`], say) on `db_url`.
    pub fn run(app: App, db_url: &str, dir: Option<Arc<tempfile::TempDir>>) -> Self {
        let db_url = db_url.to_owned();
        let addr = app.local_addr();
        let stopper = app.stopper();
        let handle = tokio::spawn(async move {
            app.run_until_stopped().await.expect("server runs");
        });
        Self {
            addr,
            base: format!("http://{addr}"),
            db_url,
            stopper,
            handle,
            _dir: dir,
        }
    }

    /// Tells the server to stop, as a signal would, without waiting for it.
    pub fn signal_stop(&self) {
        self.stopper.stop();
    }

    /// Stops the server and waits until it has.
    pub async fn stop(self) -> Option<Arc<tempfile::TempDir>> {
        self.stopper.stop();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.handle).await;
        self._dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A plain client without cookies.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// `POST /auth/register` with `body`; the status and the JSON answer.
    pub async fn register(&self, body: Value) -> (u16, Value) {
        let res = self
            .client()
            .post(self.url("/auth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    /// Registers `username` (email `{username}@example.com`, password [`PASSWORD`]) and logs in.
    pub async fn user(&self, username: &str) -> TestUser {
        let email = format!("{username}@example.com");
        let (status, body) = self
            .register(register_body(username, &email, PASSWORD, PASSWORD))
            .await;
        assert_eq!(status, 201, "register {username}: {body}");
        let id = body["id"].as_i64().unwrap();
        let token = self.login(username, PASSWORD).await;
        TestUser {
            id,
            username: username.to_owned(),
            token,
            base: self.base.clone(),
            addr: self.addr,
        }
    }

    /// Registers and logs in each of `names`, in order.
    pub async fn users<const N: usize>(&self, names: [&str; N]) -> [TestUser; N] {
        let mut users = Vec::with_capacity(N);
        for name in names {
            users.push(self.user(name).await);
        }
        users
            .try_into()
            .unwrap_or_else(|_| unreachable!("one user per name"))
    }

    /// Logs in `username`, registered earlier (in a browser, say), with [`PASSWORD`].
    pub async fn logged_in(&self, username: &str) -> TestUser {
        let mut user = TestUser {
            id: 0,
            username: username.to_owned(),
            token: self.login(username, PASSWORD).await,
            base: self.base.clone(),
            addr: self.addr,
        };
        let (status, me) = user.get("/auth/me").await;
        assert_eq!(status, 200, "{me}");
        user.id = me["id"].as_i64().unwrap();
        user
    }

    /// Logs in with a form body; returns the token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let res = self
            .client()
            .post(self.url("/auth/login"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "login {username}");
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A registered, logged-in user.
#[derive(Clone)]
pub struct TestUser {
    pub id: i64,
    pub username: String,
    pub token: String,
    pub base: String,
    pub addr: SocketAddr,
}

impl TestUser {
    /// The server session this user's token belongs to (its `sid` claim).
    pub fn session_id(&self) -> String {
        session_of(&self.token)
    }

    /// This user signed in with another token (of another session, say).
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: token.to_owned(),
            ..self.clone()
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.req(reqwest::Method::POST, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::DELETE, path)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.req(reqwest::Method::PATCH, path).json(&body)).await
    }

    pub async fn put(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::PUT, path)).await
    }

    /// Opens (or finds) the direct chat with `other`; returns its id.
    pub async fn direct_with(&self, other: &TestUser) -> i64 {
        let (status, body) = self.post(&format!("/chats/{}", other.id), json!({})).await;
        assert!(status == 200 || status == 201, "{status} {body}");
        body["chat_id"].as_i64().unwrap()
    }

    /// Posts `text` to `chat_id` over HTTP; returns the message's id.
    pub async fn post_message(&self, chat_id: i64, text: &str) -> i64 {
        let (status, body) = self
            .post(
                &format!("/chats/{chat_id}/messages"),
                json!({ "message": text }),
            )
            .await;
        assert_eq!(status, 201, "post message: {body}");
        body["id"].as_i64().unwrap()
    }

    /// Opens `/ws/{chat_id}?token=...`.
    pub async fn ws_chat(&self, chat_id: i64) -> Ws {
        Ws::connect(
            &format!("ws://{}/ws/{chat_id}?token={}", self.addr, self.token),
            &[],
        )
        .await
    }

    /// Opens `/ws/{chat_id}?v=2&token=...`: the chat's socket, speaking the full protocol.
    pub async fn ws_chat_v2(&self, chat_id: i64) -> Ws {
        Ws::connect(
            &format!("ws://{}/ws/{chat_id}?v=2&token={}", self.addr, self.token),
            &[],
        )
        .await
    }

    /// Opens `/ws?token=...` and waits for its `ready` greeting.
    pub async fn ws_all(&self) -> Ws {
        let mut ws = Ws::connect(&format!("ws://{}/ws?token={}", self.addr, self.token), &[]).await;
        ws.expect("ready", |v| v["action"] == "ready").await;
        ws
    }
}

/// The session (`sid` claim) of an access token signed with [`SECRET`].
pub fn session_of(token: &str) -> String {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .expect("a token signed by the test server")
    .claims["sid"]
        .as_str()
        .expect("a sid claim")
        .to_owned()
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// A client WebSocket with helpers to wait for events.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How long a test waits for an expected event.
pub const WAIT: Duration = Duration::from_secs(5);

impl Ws {
    /// Connects, panicking unless the upgrade succeeds.
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Self {
        match try_connect(url, headers).await {
            Ok(ws) => ws,
            Err(status) => panic!("upgrade refused with {status}"),
        }
    }

    pub async fn send_json(&mut self, v: Value) {
        self.stream
            .send(Message::text(v.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, s: &str) {
        self.stream.send(Message::text(s.to_owned())).await.unwrap();
    }

    /// The next JSON event, or `None` on close or timeout.
    pub async fn next_event_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(wait, self.stream.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                _ => return None,
            }
        }
    }

    /// Waits for the first event satisfying `pred`, skipping others.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event_within(left).await {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Every event up to and including the message `text`.
    pub async fn until_message(&mut self, text: &str) -> Vec<Value> {
        let mut heard = Vec::new();
        loop {
            let v = self.expect(&format!("message {text:?}"), |_| true).await;
            let last = is_message(&v, text);
            heard.push(v);
            if last {
                return heard;
            }
        }
    }

    /// Asserts no event satisfying `pred` arrives within `wait`.
    pub async fn expect_none(&mut self, what: &str, wait: Duration, pred: impl Fn(&Value) -> bool) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match self.next_event_within(left).await {
                Some(v) if pred(&v) => panic!("unexpected {what}: {v}"),
                Some(_) => {}
                None => return,
            }
        }
    }

    /// Waits until the server closes the socket; returns the close code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.stream.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return None,
                Err(_) => panic!("socket did not close"),
            }
        }
    }
}

/// Tries an upgrade; the HTTP status when refused.
pub async fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<Ws, u16> {
    let mut request = url.into_client_request().unwrap();
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap();
        request.headers_mut().insert(name, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => Ok(Ws { stream }),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("connect failed: {e}"),
    }
}

/// Whether `v` is a message event with this text.
pub fn is_message(v: &Value, text: &str) -> bool {
    v.get("action").is_none() && v["message"] == text
}

/// Whether `v` is a `user_status` event for `username` with this online state.
pub fn is_status(v: &Value, username: &str, online: bool) -> bool {
    v["action"] == "user_status" && v["username"] == username && v["is_online"] == online
}
