//! `/ws/{chat_id}`: the original one-chat socket.

use std::time::Duration;

use serde_json::json;

use crate::support::app::{Backend, TestApp, is_message, is_status, try_connect};

on_every_backend!(
    sockets_are_refused_before_the_upgrade,
    a_message_reaches_every_member_and_is_stored,
    typing_reaches_the_others_only,
    status_follows_the_first_and_last_socket,
    bad_frames_get_an_error_and_the_socket_stays_open,
);

async fn sockets_are_refused_before_the_upgrade(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, eve] = app.users(["ann", "bob", "eve"]).await;
    let chat = ann.direct_with(&bob).await;
    let url = |token: &str, chat: i64| format!("ws://{}/ws/{chat}?token={token}", app.addr);
    assert_eq!(
        try_connect(&format!("ws://{}/ws/{chat}", app.addr), &[])
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        try_connect(&url("forged.token.here", chat), &[])
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        try_connect(&url(&eve.token, chat), &[]).await.err(),
        Some(403)
    );
    assert_eq!(
        try_connect(&url(&ann.token, 987_654), &[]).await.err(),
        Some(404)
    );
    assert!(try_connect(&url(&ann.token, chat), &[]).await.is_ok());
    // The header works too.
    let bearer = format!("Bearer {}", bob.token);
    assert!(
        try_connect(
            &format!("ws://{}/ws/{chat}", app.addr),
            &[("authorization", &bearer)]
        )
        .await
        .is_ok()
    );
    app.stop().await;
}

async fn a_message_reaches_every_member_and_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, eve] = app.users(["ann", "bob", "eve"]).await;
    let chat = ann.direct_with(&bob).await;
    let other = eve.direct_with(&bob).await;
    let mut a = ann.ws_chat(chat).await;
    let mut b = bob.ws_chat(chat).await;
    let mut e = eve.ws_chat(other).await;
    a.expect("bob online", |v| is_status(v, "bob", true)).await;

    a.send_json(json!({"message": "  hello bob  "})).await;
    let got_b = b.expect("message", |v| is_message(v, "hello bob")).await;
    let got_a = a.expect("own echo", |v| is_message(v, "hello bob")).await;
    assert_eq!(got_a, got_b);
    assert_eq!(got_b["username"], "ann");
    assert_eq!(got_b["user_id"], ann.id);
    assert_eq!(got_b["chat_id"], chat);
    assert!(
        got_b["id"].as_i64().is_some()
            && got_b["time"].is_string()
            && got_b["created_at"].is_string()
    );
    e.expect_none("another chat's message", Duration::from_millis(300), |v| {
        is_message(v, "hello bob")
    })
    .await;

    let (_, history) = bob.get(&format!("/chats/{chat}/messages")).await;
    assert_eq!(history[0]["id"], got_b["id"]);
    assert_eq!(
        history[0]["created_at"], got_b["created_at"],
        "announced as stored"
    );
    app.stop().await;
}

async fn typing_reaches_the_others_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut a = ann.ws_chat(chat).await;
    let mut b = bob.ws_chat(chat).await;
    a.expect("bob online", |v| is_status(v, "bob", true)).await;
    a.send_json(json!({"action": "typing"})).await;
    let t = b.expect("typing", |v| v["action"] == "typing").await;
    assert_eq!(t["username"], "ann");
    a.send_json(json!({"action": "stop_typing"})).await;
    b.expect("stop_typing", |v| {
        v["action"] == "stop_typing" && v["username"] == "ann"
    })
    .await;
    a.expect_none("own typing", Duration::from_millis(300), |v| {
        v["action"] == "typing" || v["action"] == "stop_typing"
    })
    .await;
    app.stop().await;
}

async fn status_follows_the_first_and_last_socket(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut a = ann.ws_chat(chat).await;
    let b1 = bob.ws_chat(chat).await;
    a.expect("bob online", |v| is_status(v, "bob", true)).await;
    let (_, users) = ann.get("/users").await;
    assert_eq!(users[0]["is_online"], true);

    // A second tab opens and closes: bob stays online.
    let mut b2 = bob.ws_chat(chat).await;
    b2.stream.close(None).await.unwrap();
    a.expect_none("bob offline", Duration::from_millis(500), |v| {
        is_status(v, "bob", false)
    })
    .await;

    // The last tab closes: bob goes offline with a stored last_seen.
    drop(b1);
    let off = a
        .expect("bob offline", |v| is_status(v, "bob", false))
        .await;
    let last_seen = off["last_seen"].as_str().expect("last_seen set");
    let (_, users) = ann.get("/users").await;
    assert_eq!(users[0]["is_online"], false);
    assert_eq!(users[0]["last_seen"], last_seen);
    app.stop().await;
}

async fn bad_frames_get_an_error_and_the_socket_stays_open(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, eve] = app.users(["ann", "bob", "eve"]).await;
    let chat = ann.direct_with(&bob).await;
    let not_mine = bob.direct_with(&eve).await;
    let mut a = ann.ws_chat(chat).await;
    a.expect("own status", |v| is_status(v, "ann", true)).await;
    let too_long = "x".repeat(4001);
    for (frame, code) in [
        ("not json".to_owned(), "malformed_frame"),
        ("{\"message\": 5}".to_owned(), "malformed_frame"),
        ("{\"action\": \"dance\"}".to_owned(), "unknown_action"),
        ("{\"message\": \"   \"}".to_owned(), "invalid_field"),
        (json!({"message": too_long}).to_string(), "invalid_field"),
        (
            json!({"chat_id": not_mine, "message": "sneaky"}).to_string(),
            "wrong_chat",
        ),
    ] {
        a.send_text(&frame).await;
        let err = a.expect("error event", |v| v["action"] == "error").await;
        assert_eq!(err["code"], code, "{frame:.40}");
        assert!(err["detail"].is_string());
    }
    a.send_json(json!({"message": "still here"})).await;
    a.expect("message after errors", |v| is_message(v, "still here"))
        .await;
    let (_, history) = ann.get(&format!("/chats/{chat}/messages")).await;
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "only the good message was stored"
    );
    let (_, other) = bob.get(&format!("/chats/{not_mine}/messages")).await;
    assert_eq!(other.as_array().unwrap().len(), 0);
    app.stop().await;
}

/// The event kinds the original `/ws/{chat_id}` protocol knows; its clients draw anything else
/// as a chat bubble.
fn original_kind(v: &serde_json::Value) -> bool {
    match v["action"].as_str() {
        None => v["message"].is_string(),
        Some(action) => ["typing", "stop_typing", "user_status", "error"].contains(&action),
    }
}

#[tokio::test]
async fn the_original_socket_hears_only_its_five_kinds_unless_it_opts_in() {
    let app = TestApp::spawn(Backend::Memory).await;
    let [ann, bob, cid] = app.users(["ann", "bob", "cid"]).await;
    let (_, room) = ann
        .post(
            "/chats",
            json!({"name": "room", "member_ids": [bob.id], "visibility": "public"}),
        )
        .await;
    let room = room["chat_id"].as_i64().unwrap();
    let mut original = ann.ws_chat(room).await;
    let mut v2 = ann.ws_chat_v2(room).await;
    original
        .expect("own status", |v| is_status(v, "ann", true))
        .await;

    // Everything newer happens: a join, a read receipt, a leave.
    let mut b = bob.ws_chat(room).await;
    let id = bob.post_message(room, "from bob").await;
    b.send_json(json!({"action": "typing"})).await;
    b.send_json(json!({"action": "read", "message_id": id}))
        .await;
    cid.post(&format!("/chats/{room}/join"), json!({})).await;
    cid.delete(&format!("/chats/{room}/members/me")).await;
    b.send_json(json!({"message": "last"})).await;

    let heard = original.until_message("last").await;
    assert!(heard.iter().all(original_kind), "{heard:?}");
    assert!(heard.iter().any(|v| v["action"] == "typing"), "{heard:?}");
    // Resume is of the newer protocol too: refused here with an error the old client knows.
    original
        .send_json(json!({"action": "resume", "after_seq": 0}))
        .await;
    let refused = original
        .expect("resume refused", |v| v["action"] == "error")
        .await;
    assert_eq!(refused["code"], "unknown_action", "{refused}");
    // Opted in, the same chat's socket hears all of it. The frames of bob's socket and the
    // requests of cid race, so their events may come in either order.
    let heard = v2.until_message("last").await;
    for kind in ["read", "member_joined", "member_left"] {
        assert!(
            heard.iter().any(|v| v["action"] == kind),
            "{kind}: {heard:?}"
        );
    }
    app.stop().await;
}
