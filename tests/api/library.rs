//! Parley as a library: a server built with `App::builder` from parts the host brings, run
//! until the host says stop, and mounted inside the host's own salvo server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use parley::adapters::argon2::Argon2Hasher;
use parley::adapters::bus::LocalBus;
use parley::adapters::memory::MemoryStore;
use parley::config::Secret;
use parley::domain::{ChatId, ChatName, Event, Visibility};
use parley::ports::{Clock, EventBus, EventStream, Result, UserRepo};
use parley::services::Limits;
use parley::{App, Config, Storage};
use salvo::prelude::*;
use serde_json::json;

use crate::support::app::{SECRET, TestApp, is_message};

/// Keeps every event it carries, and carries them on.
#[derive(Default)]
struct RecordingBus {
    inner: LocalBus,
    seen: Mutex<Vec<Event>>,
}

#[parley::async_trait]
impl EventBus for RecordingBus {
    async fn publish(&self, event: Event) -> Result<()> {
        self.seen.lock().unwrap().push(event.clone());
        self.inner.publish(event).await
    }

    fn subscribe(&self) -> EventStream {
        self.inner.subscribe()
    }
}

struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn config() -> Config {
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        secret_key: Some(Secret::new(SECRET)),
        ..Config::default()
    }
}

#[tokio::test]
async fn the_builder_uses_the_storage_bus_clock_and_limits_it_is_given() {
    // Arrange
    let store = Arc::new(MemoryStore::new());
    let bus = Arc::new(RecordingBus::default());
    let noon = Utc.with_ymd_and_hms(2030, 1, 2, 12, 0, 0).unwrap();
    let app = App::builder(config())
        .storage(Storage::from_arc(store.clone()))
        .bus(bus.clone())
        .clock(Arc::new(FixedClock(noon)))
        .limits(Limits {
            max_message_chars: 10,
            ..Limits::default()
        })
        .hasher(Arc::new(Argon2Hasher::with_params(512, 1, 1)))
        .build()
        .await
        .expect("build");
    let app = TestApp::run(app, "memory://", None);
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;

    // Act
    let (too_long, refusal) = ann
        .post(
            &format!("/chats/{chat}/messages"),
            json!({"message": "eleven chars"}),
        )
        .await;
    let (posted, message) = ann
        .post(&format!("/chats/{chat}/messages"), json!({"message": "hi"}))
        .await;

    // Assert
    let stored = store
        .find_by_login("ann")
        .await
        .unwrap()
        .expect("ann stored");
    assert_eq!(stored.id.0, ann.id);
    assert_eq!(stored.created_at, noon);
    assert_eq!(too_long, 422, "{refusal}");
    assert_eq!(posted, 201, "{message}");
    assert_eq!(
        message["created_at"].as_str(),
        Some("2030-01-02T12:00:00.000000Z"),
        "{message}"
    );
    let seen = bus.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::MessagePosted(m) if m.chat_id == ChatId(chat) && m.body.as_str() == "hi"
        )),
        "{seen:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn run_until_stops_when_the_hosts_future_resolves() {
    let app = App::builder(config())
        .storage(Storage::from_store(MemoryStore::new()))
        .build()
        .await
        .expect("build");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.status(), 200);

    stop.send(()).unwrap();

    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("stopped in time")
        .unwrap()
        .expect("ran cleanly");
    assert!(reqwest::get(format!("http://{addr}/health")).await.is_err());
}

#[handler]
async fn hello(res: &mut Response) {
    res.render(Text::Plain("the host's own page"));
}

#[tokio::test]
async fn the_router_mounts_under_a_prefix_in_the_hosts_server_and_its_services_reach_sockets() {
    // Arrange: the host's own salvo server, with Parley under /chat.
    let app = App::builder(config())
        .storage(Storage::from_store(MemoryStore::new()))
        .hasher(Arc::new(Argon2Hasher::with_params(512, 1, 1)))
        .build()
        .await
        .expect("build");
    let services = app.services();
    let host = Router::new()
        .push(Router::with_path("hello").get(hello))
        .push(Router::with_path("chat").push(app.router()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = salvo::conn::tcp::TcpAcceptor::try_from(listener).unwrap();
    let server = Server::new(acceptor);
    let handle = server.handle();
    let serving = tokio::spawn(server.serve(host));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    // Act
    let page = client.get(format!("{base}/hello")).send().await.unwrap();
    let health = client
        .get(format!("{base}/chat/health"))
        .send()
        .await
        .unwrap();
    let registered = client
        .post(format!("{base}/chat/auth/register"))
        .json(&json!({"username": "ann", "email": "ann@example.com",
                      "password": "password123", "password_confirm": "password123"}))
        .send()
        .await
        .unwrap();
    let login: serde_json::Value = client
        .post(format!("{base}/chat/auth/login"))
        .form(&[("username", "ann"), ("password", "password123")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().expect("a token").to_owned();
    let me = services
        .auth
        .authenticate(&token)
        .await
        .expect("the host authenticates");
    let group = services
        .chats
        .create_group(
            &me,
            ChatName::parse("Host room").unwrap(),
            Visibility::Private,
            Vec::new(),
        )
        .await
        .expect("the host creates a group");
    let mut ws = crate::support::app::Ws::connect(
        &format!("ws://{addr}/chat/ws/{}?token={token}", group.id.0),
        &[],
    )
    .await;
    services
        .messages
        .post_message(&me, group.id, "from the host", None)
        .await
        .expect("the host posts");

    // Assert
    assert_eq!(page.text().await.unwrap(), "the host's own page");
    assert_eq!(health.status(), 200);
    assert_eq!(registered.status(), 201);
    ws.expect("the host's message", |v| is_message(v, "from the host"))
        .await;
    handle.stop_graceful(Some(Duration::from_secs(5)));
    serving.await.unwrap();
    app.close().await;
}
