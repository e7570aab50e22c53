//! Several instances on one PostgreSQL acting as one service: presence counts every
//! instance's sockets, and an instance that dies without a goodbye takes its users offline
//! within its lease.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::app::{Backend, SECRET, TestApp, TestUser, WAIT, is_status};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_on_two_instances_is_online_until_the_last_socket_anywhere_closes() {
    let one = TestApp::spawn(Backend::Postgres).await;
    let two = TestApp::spawn_at(&one.db_url, "127.0.0.1:0".parse().unwrap(), None).await;
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

/// A `parley` process on `db_url`, with a presence lease of `lease` seconds.
fn parley_process(db_url: &str, lease: u64) -> (Child, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .env("DATABASE_URL", db_url)
        .env("SECRET_KEY", SECRET)
        .env("PARLEY_BIND", format!("127.0.0.1:{port}"))
        .env("PARLEY_PRESENCE_LEASE_SECONDS", lease.to_string())
        .env("PARLEY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start parley");
    (child, format!("127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_without_a_goodbye_takes_its_users_offline_within_its_lease() {
    const LEASE: u64 = 3;
    let one = TestApp::spawn_configured(
        &crate::support::postgres::fresh_database_url().await,
        "127.0.0.1:0".parse().unwrap(),
        None,
        |c| c.presence_lease_seconds = LEASE,
    )
    .await;
    let (mut child, addr) = parley_process(&one.db_url, LEASE);
    let ann = one.user("ann").await;
    let mut bob = one.user("bob").await;
    ann.direct_with(&bob).await;
    let mut watching = ann.ws_all().await;
    // Bob's socket is on the other process.
    let deadline = Instant::now() + WAIT;
    while reqwest::get(format!("http://{addr}/health")).await.is_err() {
        assert!(Instant::now() < deadline, "the other process did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
