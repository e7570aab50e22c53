//! What a socket may count on when things go wrong: a client that stops reading is cut off in
//! bounded time without slowing anyone else, a token's lifetime ends its sockets, and a typing
//! indicator never outlives its typist.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parley::adapters::jwt::JwtTokens;
use parley::domain::{SessionId, UserId};
use parley::ports::TokenService;
use serde_json::json;

use crate::support::app::{Backend, SECRET, TestApp, TestUser, is_message, is_status};

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_goes_offline_without_slowing_others() {
    let app = TestApp::spawn(Backend::Memory).await;
    let [ann, bob, cid] = app.users(["ann", "bob", "cid"]).await;
    let (_, room) = ann
        .post(
            "/chats",
            json!({"name": "busy", "member_ids": [bob.id, cid.id]}),
        )
        .await;
    let room = room["chat_id"].as_i64().unwrap();
    let mut watcher = cid.ws_chat(room).await;
    watcher
        .expect("own status", |v| is_status(v, "cid", true))
        .await;
    // Bob's socket reads nothing from here on.
    let mut slow = bob.ws_chat(room).await;
    watcher
        .expect("bob online", |v| is_status(v, "bob", true))
        .await;

    let started = Instant::now();
    let ann = Arc::new(ann);
    let big = "x".repeat(3900);
    let posting = {
        let (ann, big) = (ann.clone(), big.clone());
        tokio::spawn(async move {
            let mut sent = 0_u32;
            while started.elapsed() < Duration::from_secs(40) {
                ann.post_message(room, &big).await;
                sent += 1;
            }
            sent
        })
    };
    // The others keep hearing every message while bob's buffers fill, and then bob goes
    // offline: his connection was cut within the bound.
    let mut heard = 0_u32;
    loop {
        let v = watcher.expect("an event", |_| true).await;
        if is_status(&v, "bob", false) {
            break;
        }
        if is_message(&v, &big) {
            heard += 1;
        }
    }
    let cut_after = started.elapsed();
    posting.abort();
    assert!(heard > 100, "the others kept hearing messages: {heard}");
    assert!(
        cut_after < Duration::from_secs(35),
        "cut off {cut_after:?} after it stopped reading"
    );
    let latency = Instant::now();
    let probe = ann.post_message(room, "probe").await;
    watcher
        .expect("the probe, quickly", |v| v["id"] == probe)
        .await;
    assert!(latency.elapsed() < Duration::from_secs(2));
    // What bob's client still finds in its buffers ends, and the connection with it.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while slow
            .next_event_within(Duration::from_secs(5))
            .await
            .is_some()
        {}
    })
    .await;
    assert!(ended.is_ok(), "the slow socket's connection is gone");

    // Bob comes back and loses nothing. From the start, the resume reaches back further than
    // the server replays (1000 messages) if that many were posted: he is told to page the
    // history instead.
    let (_, all) = ann.get(&format!("/chats/{room}/messages?limit=1")).await;
    let last_seq = all[0]["seq"].as_i64().unwrap();
    let mut back = bob.ws_all().await;
    back.send_json(json!({"action": "resume", "chat_id": room, "after_seq": 0}))
        .await;
    if last_seq > 1000 {
        back.expect("resync", |v| {
            v["action"] == "resync" && v["chat_id"] == room
        })
        .await;
    } else {
        for seq in 1..=last_seq {
            let m = back
                .expect("a replayed message", |v| v.get("seq").is_some())
                .await;
            assert_eq!(m["seq"], seq);
        }
    }
    back.send_json(json!({"action": "resume", "chat_id": room, "after_seq": last_seq - 3}))
        .await;
    for seq in last_seq - 2..=last_seq {
        let m = back
            .expect("a replayed message", |v| v.get("seq").is_some())
            .await;
        assert_eq!(m["seq"], seq, "in order, from where he asked");
    }
    app.stop().await;
}

/// A token for `user`'s session that lives `seconds`, signed as the test server signs.
fn short_token(user: &TestUser, seconds: i64) -> String {
    JwtTokens::new(SECRET.as_bytes(), chrono::Duration::seconds(seconds))
        .unwrap()
        .issue(UserId(user.id), &SessionId(user.session_id()))
        .unwrap()
        .token
}

#[tokio::test]
async fn a_socket_closes_with_4401_when_its_token_expires() {
    let app = TestApp::spawn(Backend::Memory).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let token = short_token(&ann, 2);
    let mut a = crate::support::app::Ws::connect(
        &format!("ws://{}/ws/{chat}?token={token}", app.addr),
        &[],
    )
    .await;
    a.expect("own status", |v| is_status(v, "ann", true)).await;
    let opened = Instant::now();
    assert_eq!(a.expect_close().await, Some(4401));
    assert!(opened.elapsed() < Duration::from_secs(4));
    app.stop().await;
}

#[tokio::test]
async fn typing_stops_by_itself_and_when_the_typist_vanishes() {
    let app = TestApp::spawn(Backend::Memory).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut b = bob.ws_chat(chat).await;
    let mut a = ann.ws_chat(chat).await;
    b.expect("ann online", |v| is_status(v, "ann", true)).await;

    a.send_json(json!({"action": "typing"})).await;
    b.expect("typing", |v| v["action"] == "typing").await;
    let typed = Instant::now();
    // Longer than an `expect` waits: the indicator is meant to last six seconds.
    loop {
        let v = b
            .next_event_within(Duration::from_secs(10))
            .await
            .expect("stop_typing after the pause");
        if v["action"] == "stop_typing" && v["username"] == "ann" {
            break;
        }
    }
    let lasted = typed.elapsed();
    assert!(
        lasted >= Duration::from_secs(5) && lasted < Duration::from_secs(9),
        "the indicator lasted {lasted:?}"
    );

    a.send_json(json!({"action": "typing"})).await;
    b.expect("typing again", |v| v["action"] == "typing").await;
    drop(a);
    let gone = Instant::now();
    b.expect("stop_typing as ann vanishes", |v| {
        v["action"] == "stop_typing"
    })
    .await;
    assert!(gone.elapsed() < Duration::from_secs(3));
    app.stop().await;
}

#[tokio::test]
async fn a_user_holds_at_most_twenty_sockets() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ann = app.user("ann").await;
    let mut open = Vec::new();
    for _ in 0..20 {
        open.push(ann.ws_all().await);
    }
    let url = format!("ws://{}/ws?token={}", app.addr, ann.token);
    assert_eq!(
        crate::support::app::try_connect(&url, &[]).await.err(),
        Some(429)
    );
    // The refusal says when to come back, in the usual error shape.
    let refused = app
        .client()
        .get(app.url(&format!("/ws?token={}", ann.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "too_many_sockets");
    // Closing one frees its place.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    while crate::support::app::try_connect(&url, &[]).await.is_err() {
        assert!(Instant::now() < deadline, "a closed socket frees its place");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}
