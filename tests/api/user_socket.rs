//! `/ws`: one socket for all of a user's chats.

use std::time::Duration;

use serde_json::json;

use crate::support::app::{Backend, TestApp, Ws, is_message, is_status};

on_every_backend!(
    one_socket_carries_every_chat_with_its_chat_id,
    a_chat_created_while_connected_starts_flowing,
    the_old_socket_keeps_working_beside_the_new,
    sending_needs_a_chat_id_and_membership,
);

async fn one_socket_carries_every_chat_with_its_chat_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, cid] = app.users(["ann", "bob", "cid"]).await;
    let with_bob = ann.direct_with(&bob).await;
    let with_cid = ann.direct_with(&cid).await;
    let mut a = ann.ws_all().await;
    a.expect("own status", |v| is_status(v, "ann", true)).await;
    let mut b = bob.ws_all().await;
    let mut c = cid.ws_all().await;
    a.expect("bob online", |v| {
        is_status(v, "bob", true) && v["chat_id"] == with_bob
    })
    .await;
    b.send_json(json!({"chat_id": with_bob, "message": "from bob"}))
        .await;
    c.send_json(json!({"chat_id": with_cid, "message": "from cid"}))
        .await;
    // The two senders race; take the messages in whichever order they come.
    let first = a
        .expect("a message", |v| {
            is_message(v, "from bob") || is_message(v, "from cid")
        })
        .await;
    let other = if first["message"] == "from bob" {
        "from cid"
    } else {
        "from bob"
    };
    let second = a
        .expect("the other message", |v| is_message(v, other))
        .await;
    let (m1, m2) = if first["message"] == "from bob" {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(m1["chat_id"], with_bob);
    assert_eq!(m2["chat_id"], with_cid);
    b.expect_none("cid's message", Duration::from_millis(300), |v| {
        is_message(v, "from cid")
    })
    .await;
    c.send_json(json!({"chat_id": with_cid, "action": "typing"}))
        .await;
    let t = a.expect("typing", |v| v["action"] == "typing").await;
    assert_eq!(
        (t["chat_id"].as_i64(), t["username"].as_str()),
        (Some(with_cid), Some("cid"))
    );
    app.stop().await;
}

async fn a_chat_created_while_connected_starts_flowing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let mut b = bob.ws_all().await;
    let chat = ann.direct_with(&bob).await;
    let created = b
        .expect("chat_created", |v| v["action"] == "chat_created")
        .await;
    assert_eq!(created["chat_id"], chat);
    ann.post(
        &format!("/chats/{chat}/messages"),
        json!({"message": "new chat"}),
    )
    .await;
    b.expect("message in the new chat", |v| is_message(v, "new chat"))
        .await;

    let (_, g) = ann
        .post("/chats", json!({"name": "later", "member_ids": []}))
        .await;
    let group = g["chat_id"].as_i64().unwrap();
    ann.post(
        &format!("/chats/{group}/messages"),
        json!({"message": "not yet"}),
    )
    .await;
    b.expect_none("a group bob is not in", Duration::from_millis(300), |v| {
        is_message(v, "not yet")
    })
    .await;
    ann.post(
        &format!("/chats/{group}/members"),
        json!({"user_id": bob.id}),
    )
    .await;
    b.expect("added", |v| {
        v["action"] == "member_joined" && v["chat_id"] == group
    })
    .await;
    ann.post(
        &format!("/chats/{group}/messages"),
        json!({"message": "now"}),
    )
    .await;
    b.expect("message after being added", |v| is_message(v, "now"))
        .await;
    app.stop().await;
}

async fn the_old_socket_keeps_working_beside_the_new(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut old = ann.ws_chat(chat).await;
    let mut new = bob.ws_all().await;
    old.expect("bob online", |v| is_status(v, "bob", true))
        .await;
    old.send_json(json!({"message": "legacy"})).await;
    new.expect("legacy message", |v| is_message(v, "legacy"))
        .await;
    new.send_json(json!({"chat_id": chat, "message": "modern"}))
        .await;
    old.expect("modern message", |v| is_message(v, "modern"))
        .await;
    app.stop().await;
}

async fn sending_needs_a_chat_id_and_membership(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, eve] = app.users(["ann", "bob", "eve"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut e = eve.ws_all().await;
    e.send_json(json!({"message": "where?"})).await;
    assert_eq!(
        e.expect("error", |v| v["action"] == "error").await["code"],
        "missing_chat_id"
    );
    e.send_json(json!({"chat_id": chat, "message": "intrude"}))
        .await;
    assert_eq!(
        e.expect("error", |v| v["action"] == "error").await["code"],
        "not_a_member"
    );
    e.send_json(json!({"chat_id": chat, "action": "read", "message_id": 1}))
        .await;
    assert_eq!(
        e.expect("error", |v| v["action"] == "error").await["code"],
        "not_a_member"
    );
    assert_eq!(
        ann.get(&format!("/chats/{chat}/messages")).await.1,
        json!([])
    );
    app.stop().await;
}

#[tokio::test]
async fn the_greeting_names_the_chats_and_the_limits_the_server_enforces() {
    let app = TestApp::spawn(Backend::Memory).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut a = Ws::connect(&format!("ws://{}/ws?token={}", app.addr, ann.token), &[]).await;
    let ready = a.expect("ready", |v| v["action"] == "ready").await;
    assert_eq!(ready["user_id"], ann.id);
    assert_eq!(ready["username"], "ann");
    assert_eq!(ready["chat_ids"], json!([chat]));
    assert_eq!(
        ready["limits"],
        json!({"max_message_chars": 4000, "max_group_name_chars": 64, "max_history_page": 200})
    );
    // The message limit it names is the one applied.
    a.send_json(json!({"chat_id": chat, "message": "x".repeat(4001)}))
        .await;
    let refused = a.expect("refusal", |v| v["action"] == "error").await;
    assert_eq!(refused["code"], "invalid_field", "{refused}");
}
