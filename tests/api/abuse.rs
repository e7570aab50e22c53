//! Abuse resistance: failed logins slowed per (address, account) and per address without
//! ever locking the owner out, password hashes admitted per address and in all, rate limits
//! per user and per address, one budget for what a user sends, registrations per address,
//! and the client address a trusted proxy names. Clients come from 127.0.0.2, 127.0.0.3, ...
//! (the server listens on 127.0.0.1; all of 127.0.0.0/8 reaches it).

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use parley::adapters::argon2::Argon2Hasher;
use parley::domain::{Password, Result};
use parley::ports::PasswordHasher;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::support::app::{Backend, PASSWORD, TestApp, WAIT, register_body};

/// A client whose connections come from `127.0.0.{last}`.
fn from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, last]))
        .build()
        .unwrap()
}

/// A refusal or an answer: the status, `Retry-After` in seconds if any, and the body.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    async fn of(req: reqwest::RequestBuilder) -> Self {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            retry_after,
            body,
        }
    }

    /// Asserts a 429 with `code`, a sentence and a `Retry-After`; returns the latter.
    fn refused(&self, code: &str) -> u64 {
        assert_eq!(self.status, 429, "{}", self.body);
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        self.retry_after.expect("429 carries Retry-After")
    }
}

async fn login(app: &TestApp, client: &reqwest::Client, name: &str, password: &str) -> Answer {
    Answer::of(
        client
            .post(app.url("/auth/login"))
            .form(&[("username", name), ("password", password)]),
    )
    .await
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str, token: &str) -> Answer {
    Answer::of(client.get(app.url(path)).bearer_auth(token)).await
}

async fn the_owner_gets_in_from_another_address_after_an_attackers_failures(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.login_free_failures = 2).await;
    app.user("ann").await;
    let (attacker, owner) = (from(2), from(3));
    for _ in 0..3 {
        assert_eq!(
            login(&app, &attacker, "ann", "guess-guess").await.status,
            401
        );
    }
    // The attacker waits now, even with the right password, and is told so without a hash.
    login(&app, &attacker, "ann", PASSWORD)
        .await
        .refused("too_many_attempts");
    let mine = login(&app, &owner, "ann", PASSWORD).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert!(mine.body["access_token"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn the_wait_doubles_with_each_failure_and_says_how_long() {
    let app = TestApp::spawn_with(Backend::Memory, |c| c.login_free_failures = 1).await;
    app.user("ann").await;
    let attacker = from(2);
    // One free failure; the second makes the address wait a second, the third two.
    assert_eq!(login(&app, &attacker, "ann", "guess-1").await.status, 401);
    assert_eq!(login(&app, &attacker, "ann", "guess-2").await.status, 401);
    let first = login(&app, &attacker, "ann", "guess-3")
        .await
        .refused("too_many_attempts");
    assert_eq!(first, 1);
    // The wait is time itself: nothing to await but the clock.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(login(&app, &attacker, "ann", "guess-3").await.status, 401);
    let second = login(&app, &attacker, "ann", "guess-4")
        .await
        .refused("too_many_attempts");
    assert_eq!(second, 2, "doubled");
    app.stop().await;
}

#[tokio::test]
async fn the_username_and_the_email_count_as_one_account() {
    let app = TestApp::spawn_with(Backend::Memory, |c| c.login_free_failures = 2).await;
    app.user("ann").await;
    let attacker = from(2);
    assert_eq!(login(&app, &attacker, "ann", "guess-1").await.status, 401);
    assert_eq!(
        login(&app, &attacker, "ANN@example.com", "guess-2")
            .await
            .status,
        401
    );
    assert_eq!(login(&app, &attacker, "Ann", "guess-3").await.status, 401);
    // Counted apart, the email would have one free failure left.
    login(&app, &attacker, "ann@example.com", "guess-4")
        .await
        .refused("too_many_attempts");
    app.stop().await;
}

#[tokio::test]
async fn an_address_trying_many_accounts_runs_out_of_failures() {
    let app = TestApp::spawn_with(Backend::Memory, |c| {
        c.login_free_failures = 0;
        c.login_failures_per_address_per_hour = 3;
    })
    .await;
    app.user("ann").await;
    let sprayer = from(2);
    for name in ["ann", "bob", "cid"] {
        assert_eq!(login(&app, &sprayer, name, "Summer2026!").await.status, 401);
    }
    let wait = login(&app, &sprayer, "dan", "Summer2026!")
        .await
        .refused("too_many_attempts");
    assert!(
        (3000..=3600).contains(&wait),
        "until the hour is out: {wait}"
    );
    login(&app, &sprayer, "ann", PASSWORD)
        .await
        .refused("too_many_attempts");
    assert_eq!(login(&app, &from(3), "ann", PASSWORD).await.status, 200);
    app.stop().await;
}

/// The password whose verification [`HeldHasher`] holds until released.
const HELD: &str = "held-password";

/// Hashes cheaply, but holds each verification of [`HELD`] until the test releases it, so
/// that a test knows exactly how many hashes are in flight.
struct HeldHasher {
    inner: Argon2Hasher,
    held: watch::Sender<usize>,
    release: Semaphore,
}

impl HeldHasher {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Argon2Hasher::with_params(512, 1, 1),
            held: watch::channel(0).0,
            release: Semaphore::new(0),
        })
    }

    /// Waits until `n` verifications are held.
    async fn holding(&self, n: usize) {
        let mut held = self.held.subscribe();
        tokio::time::timeout(WAIT, held.wait_for(|h| *h >= n))
            .await
            .expect("verifications held")
            .unwrap();
    }
}

#[async_trait]
impl PasswordHasher for HeldHasher {
    async fn hash(&self, password: &Password) -> Result<String> {
        self.inner.hash(password).await
    }

    async fn verify(&self, password: &Password, hash: &str) -> Result<bool> {
        if password.expose() == HELD {
            self.held.send_modify(|h| *h += 1);
            self.release.acquire().await.unwrap().forget();
        }
        self.inner.verify(password, hash).await
    }
}

#[tokio::test]
async fn a_storm_from_one_address_is_refused_at_once_while_another_logs_in() {
    let hasher = HeldHasher::new();
    let app = TestApp::spawn_hashing(
        Backend::Memory,
        |c| {
            c.max_hashes_per_address = 2;
            c.max_hashes_in_flight = 8;
            c.max_hash_wait_ms = 0;
        },
        hasher.clone(),
    )
    .await;
    app.user("ann").await;
    let storm = from(2);
    // Two logins of the storm are being hashed...
    let mut held = Vec::new();
    for n in 0..2 {
        let req = storm
            .post(app.url("/auth/login"))
            .form(&[("username", format!("bogus{n}")), ("password", HELD.into())]);
        held.push(tokio::spawn(Answer::of(req)));
    }
    hasher.holding(2).await;
    // ...so its third is refused before it is read into a hash, and so is a registration.
    let third = login(&app, &storm, "bogus3", HELD).await;
    assert_eq!(third.refused("rate_limited"), 1);
    let body = register_body("storm", "storm@example.com", PASSWORD, PASSWORD);
    let registration = Answer::of(storm.post(app.url("/auth/register")).json(&body)).await;
    registration.refused("rate_limited");
    // Another address is admitted and logs in.
    let owner = login(&app, &from(3), "ann", PASSWORD).await;
    assert_eq!(owner.status, 200, "{}", owner.body);
    hasher.release.add_permits(2);
    for answer in held {
        assert_eq!(answer.await.unwrap().status, 401);
    }
    // Their places are free again.
    assert_eq!(login(&app, &storm, "ann", PASSWORD).await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn hashes_in_flight_are_bounded_over_all_addresses() {
    let hasher = HeldHasher::new();
    let app = TestApp::spawn_hashing(
        Backend::Memory,
        |c| {
            c.max_hashes_per_address = 2;
            c.max_hashes_in_flight = 2;
            c.max_hash_wait_ms = 0;
        },
        hasher.clone(),
    )
    .await;
    app.user("ann").await;
    let mut held = Vec::new();
    for last in [2, 3] {
        let req = from(last)
            .post(app.url("/auth/login"))
            .form(&[("username", "ann"), ("password", HELD)]);
        held.push(tokio::spawn(Answer::of(req)));
    }
    hasher.holding(2).await;
    login(&app, &from(4), "ann", PASSWORD)
        .await
        .refused("rate_limited");
    hasher.release.add_permits(2);
    for answer in held {
        assert_eq!(answer.await.unwrap().status, 401);
    }
    assert_eq!(login(&app, &from(4), "ann", PASSWORD).await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_login_past_its_address_places_waits_for_one_and_no_longer_than_allowed() {
    let hasher = HeldHasher::new();
    let app = TestApp::spawn_hashing(
        Backend::Memory,
        |c| {
            c.max_hashes_per_address = 1;
            c.max_hashes_in_flight = 8;
            c.max_hash_wait_ms = 1000;
        },
        hasher.clone(),
    )
    .await;
    app.user("ann").await;
    let storm = from(2);
    let held = tokio::spawn(Answer::of(
        storm
            .post(app.url("/auth/login"))
            .form(&[("username", "bogus"), ("password", HELD)]),
    ));
    hasher.holding(1).await;
    // Nothing is given back within the wait: refused after it, not before.
    let started = std::time::Instant::now();
    login(&app, &storm, "ann", PASSWORD)
        .await
        .refused("rate_limited");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1000),
        "refused after {:?}",
        started.elapsed()
    );
    // A place given back while it waits admits it.
    let waiting = tokio::spawn(Answer::of(
        storm
            .post(app.url("/auth/login"))
            .form(&[("username", "ann"), ("password", PASSWORD)]),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    hasher.release.add_permits(1);
    assert_eq!(held.await.unwrap().status, 401);
    let admitted = waiting.await.unwrap();
    assert_eq!(admitted.status, 200, "{}", admitted.body);
    app.stop().await;
}

#[tokio::test]
async fn a_user_is_limited_in_requests_per_minute_whatever_their_address() {
    let app = TestApp::spawn_with(Backend::Memory, |c| c.requests_per_minute_per_user = 5).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    for last in [2, 3, 4, 5, 6] {
        assert_eq!(
            get(&app, &from(last), "/auth/me", &ann.token).await.status,
            200
        );
    }
    let wait = get(&app, &from(7), "/auth/me", &ann.token)
        .await
        .refused("rate_limited");
    assert!((1..=60).contains(&wait), "within the minute: {wait}");
    // A socket is a request too.
    let url = format!("ws://{}/ws?token={}", app.addr, ann.token);
    assert_eq!(
        crate::support::app::try_connect(&url, &[]).await.err(),
        Some(429)
    );
    assert_eq!(
        get(&app, &from(2), "/auth/me", &bob.token).await.status,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn an_address_is_limited_in_requests_per_minute_whoever_it_is() {
    let app = TestApp::spawn_with(Backend::Memory, |c| c.requests_per_minute_per_address = 5).await;
    let ann = app.user("ann").await;
    let crowd = from(2);
    for _ in 0..5 {
        assert_eq!(get(&app, &crowd, "/auth/session", "").await.status, 200);
    }
    get(&app, &crowd, "/auth/me", &ann.token)
        .await
        .refused("rate_limited");
    login(&app, &crowd, "ann", PASSWORD)
        .await
        .refused("rate_limited");
    // Health checks are never refused; another address is not affected.
    let health = crowd.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        get(&app, &from(3), "/auth/me", &ann.token).await.status,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn messages_posted_over_http_share_the_budget_of_socket_frames() {
    // One a second, bursts of three.
    let app = TestApp::spawn_with(Backend::Memory, |c| c.ws_frames_per_second = 1).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let path = format!("/chats/{chat}/messages");

    // Ann spends her burst on a socket: HTTP has nothing left for her.
    let mut a = ann.ws_chat_v2(chat).await;
    for n in 0..3 {
        a.send_json(json!({"message": format!("ws {n}"), "client_id": format!("w{n}")}))
            .await;
        a.expect("ack", |v| {
            v["action"] == "ack" && v["client_id"] == format!("w{n}")
        })
        .await;
    }
    let refused = Answer::of(
        from(2)
            .post(app.url(&path))
            .bearer_auth(&ann.token)
            .json(&json!({"message": "one too many"})),
    )
    .await;
    assert_eq!(refused.refused("rate_limited"), 1);

    // Bob spends his over HTTP: his socket has nothing left for him.
    for n in 0..3 {
        let (status, body) = bob
            .post(&path, json!({"message": format!("http {n}")}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let mut b = bob.ws_chat_v2(chat).await;
    b.send_json(json!({"message": "one too many", "client_id": "b1"}))
        .await;
    let limited = b.expect("rate_limited", |v| v["action"] == "error").await;
    assert_eq!(limited["code"], "rate_limited");
    assert_eq!(limited["client_id"], "b1");
    let (_, history) = ann.get(&path).await;
    assert_eq!(history.as_array().unwrap().len(), 6, "{history}");
    app.stop().await;
}

#[tokio::test]
async fn registrations_are_limited_per_address_per_hour() {
    let app = TestApp::spawn_with(Backend::Memory, |c| {
        c.registrations_per_address_per_hour = 2;
    })
    .await;
    let register = |client: reqwest::Client, name: &'static str| {
        let body = register_body(name, &format!("{name}@example.com"), PASSWORD, PASSWORD);
        Answer::of(client.post(app.url("/auth/register")).json(&body))
    };
    assert_eq!(register(from(2), "ann").await.status, 201);
    // A refused attempt counts too: probing for taken names is as slow as registering.
    assert_eq!(register(from(2), "ann").await.status, 409);
    let wait = register(from(2), "bob").await.refused("rate_limited");
    assert!(
        (3000..=3600).contains(&wait),
        "until the hour is out: {wait}"
    );
    assert_eq!(register(from(3), "bob").await.status, 201);
    app.stop().await;
}

/// Fails a login as coming through a proxy that says the client is `forwarded`.
async fn fail_via_proxy(app: &TestApp, forwarded: &str) -> Answer {
    Answer::of(
        from(2)
            .post(app.url("/auth/login"))
            .header("x-forwarded-for", forwarded)
            .form(&[("username", "nobody"), ("password", "guess-guess")]),
    )
    .await
}

#[tokio::test]
async fn the_proxy_header_names_the_client_only_when_configured() {
    let behind_proxy = TestApp::spawn_with(Backend::Memory, |c| {
        c.client_address_header = Some("X-Forwarded-For".into());
        c.login_free_failures = 0;
        c.login_failures_per_address_per_hour = 2;
    })
    .await;
    // The proxy appends the address it saw; what the client wrote before it is not trusted.
    for spoofed in ["198.51.100.1", "198.51.100.2"] {
        let answer = fail_via_proxy(&behind_proxy, &format!("{spoofed}, 203.0.113.7")).await;
        assert_eq!(answer.status, 401);
    }
    fail_via_proxy(&behind_proxy, "198.51.100.3, 203.0.113.7")
        .await
        .refused("too_many_attempts");
    // Another client behind the same proxy is someone else.
    assert_eq!(
        fail_via_proxy(&behind_proxy, "203.0.113.7, 203.0.113.8")
            .await
            .status,
        401
    );
    behind_proxy.stop().await;

    let direct = TestApp::spawn_with(Backend::Memory, |c| {
        c.login_free_failures = 0;
        c.login_failures_per_address_per_hour = 2;
    })
    .await;
    // Unconfigured, the header is anyone's to write and is ignored: the peer is counted.
    for forwarded in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(fail_via_proxy(&direct, forwarded).await.status, 401);
    }
    fail_via_proxy(&direct, "203.0.113.3")
        .await
        .refused("too_many_attempts");
    direct.stop().await;
}

#[tokio::test]
async fn limits_set_to_zero_are_off() {
    let app = TestApp::spawn_with(Backend::Memory, |c| {
        c.login_free_failures = 0;
        c.login_failures_per_address_per_hour = 0;
        c.ws_frames_per_second = 0;
    })
    .await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let attacker = from(2);
    for _ in 0..70 {
        assert_eq!(
            login(&app, &attacker, "ann", "guess-guess").await.status,
            401
        );
    }
    assert_eq!(login(&app, &attacker, "ann", PASSWORD).await.status, 200);
    let chat = ann.direct_with(&bob).await;
    let mut a = ann.ws_chat_v2(chat).await;
    for n in 0..100 {
        a.send_json(json!({"message": format!("m{n}"), "client_id": format!("c{n}")}))
            .await;
    }
    for n in 0..100 {
        let v = a
            .expect("an ack", |v| v["action"] == "ack" || v["action"] == "error")
            .await;
        assert_eq!(v["action"], "ack", "{v}");
        assert_eq!(v["client_id"], format!("c{n}"));
    }
    app.stop().await;
}

on_every_backend!(the_owner_gets_in_from_another_address_after_an_attackers_failures);
