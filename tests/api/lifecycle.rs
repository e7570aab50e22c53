//! The server's life: data kept across a restart on SQLite, many writers at once, shutdown
//! closing sockets with 1001, and the binary refusing bad settings.

use std::process::Command;

use serde_json::json;

use crate::support::app::{Backend, TestApp, is_message, is_status};

#[tokio::test]
async fn sqlite_keeps_everything_across_a_restart() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    for text in ["one", "two", "three"] {
        ann.post(&format!("/chats/{chat}/messages"), json!({"message": text}))
            .await;
    }
    let (db_url, addr) = (app.db_url.clone(), app.addr);
    let dir = app.stop().await;

    let app = TestApp::spawn_at(&db_url, addr, dir).await;
    // The same secret: the old token still works, and so does a fresh login.
    let (status, history) = bob.get(&format!("/chats/{chat}/messages")).await;
    assert_eq!(status, 200);
    let texts: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two", "three"]);
    app.login("ann", "password123").await;
    let (_, chats) = bob.get("/chats").await;
    assert_eq!(chats[0]["username"], "ann");
    assert_eq!(chats[0]["unread"], 3);
    app.stop().await;
}

#[tokio::test]
async fn fifty_clients_posting_at_once_on_sqlite_store_every_message() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let owner = app.user("owner").await;
    let (_, room) = owner
        .post(
            "/chats",
            json!({"name": "busy", "member_ids": [], "visibility": "public"}),
        )
        .await;
    let room = room["chat_id"].as_i64().unwrap();
    let mut users = Vec::new();
    for i in 0..50 {
        let u = app.user(&format!("user{i}")).await;
        assert_eq!(
            u.post(&format!("/chats/{room}/join"), json!({})).await.0,
            200
        );
        users.push(u);
    }
    let mut tasks = Vec::new();
    for u in users {
        tasks.push(tokio::spawn(async move {
            let mut ws = u.ws_chat(room).await;
            for n in 0..10 {
                ws.send_json(json!({"message": format!("{} #{n}", u.username)}))
                    .await;
            }
            // Each sender sees its own ten messages come back: all were stored.
            for n in 0..10 {
                let text = format!("{} #{n}", u.username);
                let got = ws
                    .expect("own message", |v| {
                        is_message(v, &text) || v["action"] == "error"
                    })
                    .await;
                assert!(got.get("action").is_none(), "error event: {got}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    let mut before: Option<i64> = None;
    loop {
        let q = before.map_or(String::new(), |b| format!("&before={b}"));
        let (_, page) = owner
            .get(&format!("/chats/{room}/messages?limit=200{q}"))
            .await;
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        total += page.len();
        before = page[0]["id"].as_i64();
    }
    assert_eq!(total, 500);
    app.stop().await;
}

#[tokio::test]
async fn stopping_the_server_closes_sockets_with_1001() {
    let app = TestApp::spawn(Backend::Memory).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut a = ann.ws_chat(chat).await;
    a.expect("own status", |v| is_status(v, "ann", true)).await;
    let mut b = bob.ws_all().await;
    app.stop().await;
    assert_eq!(a.expect_close().await, Some(1001));
    assert_eq!(b.expect_close().await, Some(1001));
}

fn parley() -> Command {
    Command::new(env!("CARGO_BIN_EXE_parley"))
}

#[test]
fn a_bad_setting_exits_with_status_2_naming_the_key() {
    for (key, value, named) in [
        ("DATABASE_URL", "mysql://localhost/x", "DATABASE_URL"),
        ("SECRET_KEY", "short", "SECRET_KEY"),
        ("PARLEY_BIND", "not-an-address", "PARLEY_BIND"),
        (
            "PARLEY_TOKEN_TTL_MINUTES",
            "soon",
            "PARLEY_TOKEN_TTL_MINUTES",
        ),
    ] {
        let out = parley()
            .env_clear()
            .env(key, value)
            .output()
            .expect("run parley");
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(named), "{key}: {stderr}");
    }
}

#[tokio::test]
async fn a_flooding_socket_is_slowed_down_not_served_or_dropped() {
    // The production default: 20 a second, bursts of 60.
    let app = TestApp::spawn_with(Backend::Memory, |c| c.ws_frames_per_second = 20).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut a = ann.ws_chat(chat).await;
    a.expect("own status", |v| is_status(v, "ann", true)).await;
    for n in 0..100 {
        a.send_json(json!({"message": format!("flood {n}"), "client_id": format!("c{n}")}))
            .await;
    }
    let limited = a
        .expect("rate_limited", |v| v["code"] == "rate_limited")
        .await;
    assert_eq!(limited["action"], "error");
    assert!(
        limited["client_id"]
            .as_str()
            .is_some_and(|c| c.starts_with('c')),
        "the refusal names the refused message: {limited}"
    );
    let (_, history) = ann.get(&format!("/chats/{chat}/messages?limit=200")).await;
    let stored = history.as_array().unwrap().len();
    assert!(
        (60..100).contains(&stored),
        "a burst passes, the rest is refused: {stored}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    a.send_json(json!({"message": "calm again"})).await;
    a.expect("a message after the flood", |v| is_message(v, "calm again"))
        .await;
    app.stop().await;
}
