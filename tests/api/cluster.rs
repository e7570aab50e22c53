//! Several instances acting as one service, tied together by PostgreSQL alone or by Redis:
//! members on different instances chat over both kinds of socket, a burst arrives whole and in
//! order, presence counts every instance's sockets, an instance that dies without a goodbye
//! takes its users offline within its lease, a dropped bus connection loses no message, and
//! throttles and rate limits count every instance's requests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parley::config::{Config, Secret};
use serde_json::json;
use sqlx::Connection as _;

use crate::support::app::{SECRET, TestApp, TestUser, WAIT, is_message, is_status};
use crate::support::redis::TestRedis;

/// What ties a test's instances together.
#[derive(Clone, Copy, Debug)]
enum Engine {
    Postgres,
    Redis,
}

/// One PostgreSQL database, and the Redis when the engine is Redis.
struct Cluster {
    db_url: String,
    redis: Option<TestRedis>,
}

impl Cluster {
    async fn new(engine: Engine) -> Self {
        Self {
            db_url: crate::support::postgres::fresh_database_url().await,
            redis: match engine {
                Engine::Postgres => None,
                Engine::Redis => Some(TestRedis::start().await),
            },
        }
    }

    /// An instance in this process, with the test configuration changed by `configure`.
    async fn instance(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::spawn_configured(&self.db_url, "127.0.0.1:0".parse().unwrap(), None, |c| {
            if let Some(redis) = &self.redis {
                c.redis_url = Some(Secret::new(redis.url.clone()));
                c.redis_prefix.clone_from(&redis.prefix);
            }
            configure(c);
        })
        .await
    }

    /// Two instances with the test configuration.
    async fn pair(&self) -> (TestApp, TestApp) {
        (self.instance(|_| {}).await, self.instance(|_| {}).await)
    }

    /// A `parley` process in this cluster, with a presence lease of `lease` seconds; its
    /// address once it answers.
    async fn process(&self, lease: u64) -> (Child, String) {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
        command
            .env("DATABASE_URL", &self.db_url)
            .env("SECRET_KEY", SECRET)
            .env("PARLEY_BIND", format!("127.0.0.1:{port}"))
            .env("PARLEY_PRESENCE_LEASE_SECONDS", lease.to_string())
            .env("PARLEY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(redis) = &self.redis {
            command
                .env("PARLEY_REDIS_URL", &redis.url)
                .env("PARLEY_REDIS_PREFIX", &redis.prefix);
        }
        let child = command.spawn().expect("start parley");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        while reqwest::get(format!("http://{addr}/health")).await.is_err() {
            assert!(Instant::now() < deadline, "the other process did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (child, addr)
    }

    /// Cuts the connection every instance hears events on, as a network fault would; returns
    /// how many were cut.
    async fn cut_bus_connections(&self) -> usize {
        match &self.redis {
            Some(redis) => redis.cut_clients_running("xread").await,
            None => {
                let mut admin = sqlx::PgConnection::connect(&self.db_url)
                    .await
                    .expect("connect to the test database");
                let cut: Vec<bool> = sqlx::query_scalar(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND query LIKE 'LISTEN%'",
                )
                .fetch_all(&mut admin)
                .await
                .unwrap();
                cut.len()
            }
        }
    }
}

async fn is_online_in_users(viewer: &TestUser, username: &str) -> bool {
    let (status, users) = viewer.get("/users").await;
    assert_eq!(status, 200, "{users}");
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap_or_else(|| panic!("{username} listed: {users}"))["is_online"]
        .as_bool()
        .unwrap()
}

/// One test for each engine.
macro_rules! on_each_engine {
    ($(#[$attr:meta])* $name:ident) => {
        mod $name {
            use super::*;

            $(#[$attr])*
            async fn postgres() {
                super::$name(Engine::Postgres).await;
            }

            $(#[$attr])*
            async fn redis() {
                super::$name(Engine::Redis).await;
            }
        }
    };
}

on_each_engine!(
    #[tokio::test]
    members_on_two_instances_chat_over_both_kinds_of_socket
);
async fn members_on_two_instances_chat_over_both_kinds_of_socket(engine: Engine) {
    let cluster = Cluster::new(engine).await;
    let (one, two) = cluster.pair().await;
    let ann = one.user("ann").await;
    let bob = two.user("bob").await;
    let chat = ann.direct_with(&bob).await;
    let mut a = ann.ws_chat(chat).await;
    let mut b = bob.ws_chat_v2(chat).await;
    a.expect("bob online, from the other instance", |v| {
        is_status(v, "bob", true)
    })
    .await;

    a.send_json(json!({"message": "across"})).await;
    let got = b
        .expect("message from the other instance", |v| {
            is_message(v, "across")
        })
        .await;
    a.expect("own echo, once", |v| is_message(v, "across"))
        .await;
    b.send_json(json!({"action": "typing"})).await;
    a.expect("typing across", |v| {
        v["action"] == "typing" && v["username"] == "bob"
    })
    .await;

    // Too large for a NOTIFY payload: on PostgreSQL it travels through the database.
    let big = "é".repeat(4000);
    b.send_json(json!({"message": big})).await;
    let long = a
        .expect("a long message across", |v| is_message(v, &big))
        .await;
    assert!(long["id"].as_i64() > got["id"].as_i64());
    a.expect_none("a second copy", Duration::from_millis(300), |v| {
        is_message(v, "across")
    })
    .await;
    two.stop().await;
    one.stop().await;
}

on_each_engine!(
    #[tokio::test]
    a_burst_from_one_instance_arrives_whole_and_in_order_on_another
);
async fn a_burst_from_one_instance_arrives_whole_and_in_order_on_another(engine: Engine) {
    const BURST: usize = 300;
    let cluster = Cluster::new(engine).await;
    let (one, two) = cluster.pair().await;
    let ann = one.user("ann").await;
    let bob = two.user("bob").await;
    let chat = ann.direct_with(&bob).await;
    let mut a = ann.ws_chat_v2(chat).await;
    let mut b = bob.ws_chat(chat).await;
    for n in 0..BURST {
        a.send_json(json!({"message": format!("burst {n}")})).await;
    }
    let mut got = Vec::new();
    while got.len() < BURST {
        let event = b.expect("a message", |v| v["message"].is_string()).await;
        got.push(event["message"].as_str().unwrap().to_owned());
    }
    let sent: Vec<String> = (0..BURST).map(|n| format!("burst {n}")).collect();
    assert_eq!(got, sent, "whole and in order");
    b.expect_none("a second copy", Duration::from_millis(300), |v| {
        v["message"].is_string()
    })
    .await;
    two.stop().await;
    one.stop().await;
}

on_each_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_user_on_two_instances_is_online_until_the_last_socket_anywhere_closes
);
async fn a_user_on_two_instances_is_online_until_the_last_socket_anywhere_closes(engine: Engine) {
    let cluster = Cluster::new(engine).await;
    let (one, two) = cluster.pair().await;
    let ann = one.user("ann").await;
    let bob_there = two.user("bob").await;
    let bob_here = one.logged_in("bob").await;
    ann.direct_with(&bob_there).await;
    let mut watching = ann.ws_all().await;

    let mut far = bob_there.ws_all().await;
    watching
        .expect("bob online, from the other instance", |v| {
            is_status(v, "bob", true)
        })
        .await;
    assert!(
        is_online_in_users(&ann, "bob").await,
        "online on one, seen from the other"
    );
    let near = bob_here.ws_all().await;
    drop(near);
    watching
        .expect_none(
            "bob offline while a socket stays open",
            Duration::from_millis(500),
            |v| v["action"] == "user_status" && v["username"] == "bob",
        )
        .await;
    assert!(is_online_in_users(&ann, "bob").await);

    far.stream.close(None).await.unwrap();
    watching
        .expect("bob offline once his last socket closed", |v| {
            is_status(v, "bob", false)
        })
        .await;
    assert!(!is_online_in_users(&ann, "bob").await);
    two.stop().await;
    one.stop().await;
}

on_each_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_instance_killed_without_a_goodbye_takes_its_users_offline_within_its_lease
);
async fn an_instance_killed_without_a_goodbye_takes_its_users_offline_within_its_lease(
    engine: Engine,
) {
    const LEASE: u64 = 3;
    let cluster = Cluster::new(engine).await;
    let one = cluster.instance(|c| c.presence_lease_seconds = LEASE).await;
    let (mut child, addr) = cluster.process(LEASE).await;
    let ann = one.user("ann").await;
    let mut bob = one.user("bob").await;
    ann.direct_with(&bob).await;
    let mut watching = ann.ws_all().await;
    // Bob's socket is on the other process.
    bob.addr = addr.parse().unwrap();
    let _far = bob.ws_all().await;
    watching
        .expect("bob online on the other process", |v| {
            is_status(v, "bob", true)
        })
        .await;

    child.kill().expect("SIGKILL");
    let killed = Instant::now();
    let _ = child.wait();

    let deadline = killed + Duration::from_secs(LEASE * 3);
    let status = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = watching
            .next_event_within(left)
            .await
            .expect("bob offline within the lease and a sweep");
        if is_status(&event, "bob", false) {
            break event;
        }
    };
    assert!(status["last_seen"].is_string(), "{status}");
    assert!(
        killed.elapsed() >= Duration::from_secs(1),
        "not before the lease ran out"
    );
    assert!(!is_online_in_users(&ann, "bob").await);
    one.stop().await;
}

on_each_engine!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_instance_whose_bus_connection_drops_loses_no_message_for_its_sockets
);
async fn an_instance_whose_bus_connection_drops_loses_no_message_for_its_sockets(engine: Engine) {
    let cluster = Cluster::new(engine).await;
    let (one, two) = cluster.pair().await;
    let ann = one.user("ann").await;
    let bob = two.user("bob").await;
    let chat = ann.direct_with(&bob).await;
    let mut original = bob.ws_chat(chat).await;
    let mut v2 = bob.ws_chat_v2(chat).await;
    ann.post_message(chat, "before").await;
    original.expect("before", |v| is_message(v, "before")).await;
    v2.expect("before", |v| v["message"] == "before").await;

    // Act: cut every instance's listening connection, and post while they reconnect.
    let cut = cluster.cut_bus_connections().await;
    let texts: Vec<String> = (0..30).map(|n| format!("during {n}")).collect();
    for text in &texts {
        ann.post_message(chat, text).await;
    }

    // Assert: each message arrives once, in order, on both kinds of socket.
    for ws in [&mut original, &mut v2] {
        let mut got = Vec::new();
        while got.len() < texts.len() {
            let event = ws.expect("a message", |v| v["message"].is_string()).await;
            got.push(event["message"].as_str().unwrap().to_owned());
        }
        assert_eq!(got, texts);
        ws.expect_none("a second copy", Duration::from_millis(300), |v| {
            v["message"].is_string()
        })
        .await;
    }
    assert_eq!(cut, 2, "both instances were listening");
    two.stop().await;
    one.stop().await;
}

on_each_engine!(
    #[tokio::test]
    rate_limits_and_failed_logins_count_every_instance
);
async fn rate_limits_and_failed_logins_count_every_instance(engine: Engine) {
    let cluster = Cluster::new(engine).await;
    let tight = |c: &mut Config| {
        c.requests_per_minute_per_user = 6;
        c.login_failures_per_address_per_hour = 3;
    };
    let one = cluster.instance(tight).await;
    let two = cluster.instance(tight).await;
    let ann = one.user("ann").await;
    let mut ann_there = ann.clone();
    ann_there.addr = two.addr;

    // Requests: three on each instance spend the user's six, wherever they went, once the
    // instances have shared their counts (five times a second).
    for viewer in [&ann, &ann_there, &ann, &ann_there, &ann, &ann_there] {
        assert_eq!(viewer.get("/auth/me").await.0, 200);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = ann.get("/auth/me").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "rate_limited");

    // Failed logins: three on the two instances spend the address's hourly budget.
    let login = |app: &TestApp, password: &'static str| {
        let url = app.url("/auth/login");
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .form(&[("username", "nobody"), ("password", password)])
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap();
            (status, body)
        }
    };
    for app in [&one, &two, &one] {
        assert_eq!(login(app, "wrong-password").await.0, 401);
    }
    let (status, body) = login(&two, "wrong-password").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "too_many_attempts");
    two.stop().await;
    one.stop().await;
}

#[tokio::test]
async fn redis_needs_postgres_and_says_so() {
    let redis = TestRedis::start().await;
    let config = Config {
        database_url: Some("memory://".into()),
        redis_url: Some(Secret::new(redis.url.clone())),
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let err = parley::app::App::build(config)
        .await
        .err()
        .expect("refused");
    let err = format!("{err:#}");
    assert!(err.contains("PostgreSQL"), "{err}");
}

on_each_engine!(
    #[tokio::test]
    membership_reads_edits_and_session_ends_cross_instances
);
async fn membership_reads_edits_and_session_ends_cross_instances(engine: Engine) {
    let cluster = Cluster::new(engine).await;
    let (one, two) = cluster.pair().await;
    let ann = one.user("ann").await;
    let bob = two.user("bob").await;
    let cid = two.user("cid").await;
    let mut b = bob.ws_all().await;

    // A group made on one reaches its member on the other.
    let (status, group) = ann
        .post("/chats", json!({"name": "crew", "member_ids": [bob.id]}))
        .await;
    assert_eq!(status, 201, "{group}");
    let chat = group["chat_id"].as_i64().unwrap();
    b.expect("chat_created across", |v| {
        v["action"] == "chat_created" && v["chat_id"] == chat
    })
    .await;
    let (status, _) = ann
        .post(
            &format!("/chats/{chat}/members"),
            json!({"user_id": cid.id}),
        )
        .await;
    assert_eq!(status, 204);
    b.expect("member_joined across", |v| {
        v["action"] == "member_joined" && v["username"] == "cid"
    })
    .await;

    // A read marker and an edit made on one reach the other.
    let id = ann.post_message(chat, "first").await;
    b.expect("the message", |v| v["message"] == "first").await;
    let mut a = ann.ws_all().await;
    b.send_json(json!({"chat_id": chat, "action": "read", "message_id": id}))
        .await;
    a.expect("read across", |v| {
        v["action"] == "read" && v["username"] == "bob" && v["message_id"] == id
    })
    .await;
    a.send_json(json!({"chat_id": chat, "action": "edit", "id": id, "message": "first!"}))
        .await;
    b.expect("message_edited across", |v| {
        v["action"] == "message_edited" && v["message"] == "first!"
    })
    .await;

    // A session ended on two closes its socket on one.
    let mut phone = two.logged_in("bob").await;
    phone.addr = one.addr;
    let mut phone_socket = phone.ws_all().await;
    let (status, _) = bob
        .delete(&format!("/auth/sessions/{}", phone.session_id()))
        .await;
    assert_eq!(status, 204);
    assert_eq!(phone_socket.expect_close().await, Some(4401));
    two.stop().await;
    one.stop().await;
}
