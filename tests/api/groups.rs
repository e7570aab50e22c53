//! Group chats, rooms, membership and read receipts.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::app::{Backend, TestApp, TestUser, is_message};

on_every_backend!(
    a_group_lists_with_its_members_and_roles,
    members_add_people_to_private_groups_and_outsiders_cannot_join,
    public_rooms_can_be_browsed_and_joined,
    leaving_stops_events_and_history_at_once,
    only_the_owner_removes_members,
    read_markers_move_forward_and_count_unread,
    group_input_is_validated,
);

async fn group(owner: &TestUser, name: &str, members: &[&TestUser], visibility: &str) -> i64 {
    let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    let (status, body) = owner
        .post(
            "/chats",
            json!({"name": name, "member_ids": ids, "visibility": visibility}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["chat_id"].as_i64().unwrap()
}

fn member_names(details: &Value) -> Vec<(String, String)> {
    details["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn a_group_lists_with_its_members_and_roles(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, eve] = app.users(["ann", "bob", "eve"]).await;
    let chat = group(&ann, "Rustaceans", &[&bob, &bob], "private").await;
    let (_, chats) = bob.get("/chats").await;
    assert_eq!(chats[0]["kind"], "group");
    assert_eq!(chats[0]["name"], "Rustaceans");
    assert_eq!(
        chats[0]["username"], "Rustaceans",
        "older clients render the title"
    );
    let (status, details) = bob.get(&format!("/chats/{chat}")).await;
    assert_eq!(status, 200);
    assert_eq!(details["visibility"], "private");
    assert_eq!(
        member_names(&details),
        [
            ("ann".into(), "owner".into()),
            ("bob".into(), "member".into())
        ]
    );
    let (status, _) = eve.get(&format!("/chats/{chat}")).await;
    assert_eq!(status, 403);
    app.stop().await;
}

async fn members_add_people_to_private_groups_and_outsiders_cannot_join(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, cid, eve] = app.users(["ann", "bob", "cid", "eve"]).await;
    let chat = group(&ann, "Private", &[&bob], "private").await;
    let (status, _) = eve.post(&format!("/chats/{chat}/join"), json!({})).await;
    assert_eq!(status, 403, "a private group cannot be joined");
    let (status, _) = eve
        .post(
            &format!("/chats/{chat}/members"),
            json!({"user_id": eve.id}),
        )
        .await;
    assert_eq!(status, 403, "an outsider cannot add themselves");
    let (status, _) = bob
        .post(
            &format!("/chats/{chat}/members"),
            json!({"user_id": cid.id}),
        )
        .await;
    assert_eq!(status, 204, "any member adds people");
    let (status, _) = cid.get(&format!("/chats/{chat}/messages")).await;
    assert_eq!(status, 200);
    let (status, _) = bob
        .post(
            &format!("/chats/{chat}/members"),
            json!({"user_id": 999_999}),
        )
        .await;
    assert_eq!(status, 404);
    let direct = ann.direct_with(&bob).await;
    let (status, _) = ann
        .post(
            &format!("/chats/{direct}/members"),
            json!({"user_id": cid.id}),
        )
        .await;
    assert_eq!(status, 403, "direct chats keep their two members");
    let (status, _) = ann.delete(&format!("/chats/{direct}/members/me")).await;
    assert_eq!(status, 403);
    app.stop().await;
}

async fn public_rooms_can_be_browsed_and_joined(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let room = group(&ann, "lobby", &[], "public").await;
    group(&ann, "hidden", &[], "private").await;
    let (_, rooms) = bob.get("/rooms").await;
    assert_eq!(
        rooms,
        json!([{"chat_id": room, "name": "lobby", "members_count": 1, "is_member": false}])
    );
    let mut a = ann.ws_chat_v2(room).await;
    let (status, body) = bob.post(&format!("/chats/{room}/join"), json!({})).await;
    assert_eq!((status, body["chat_id"].as_i64()), (200, Some(room)));
    let joined = a
        .expect("member_joined", |v| v["action"] == "member_joined")
        .await;
    assert_eq!(
        (joined["username"].as_str(), joined["chat_id"].as_i64()),
        (Some("bob"), Some(room))
    );
    let (_, rooms) = bob.get("/rooms").await;
    assert_eq!(rooms[0]["members_count"], 2);
    assert_eq!(rooms[0]["is_member"], true);
    // Joining twice changes nothing.
    assert_eq!(
        bob.post(&format!("/chats/{room}/join"), json!({})).await.0,
        200
    );
    assert_eq!(bob.get("/rooms").await.1[0]["members_count"], 2);
    app.stop().await;
}

async fn leaving_stops_events_and_history_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = group(&ann, "team", &[&bob], "private").await;
    let mut b_chat = bob.ws_chat(chat).await;
    let mut b_all = bob.ws_all().await;
    let mut a = ann.ws_chat_v2(chat).await;
    a.send_json(json!({"message": "before"})).await;
    b_all
        .expect("message before leaving", |v| is_message(v, "before"))
        .await;

    assert_eq!(
        bob.delete(&format!("/chats/{chat}/members/me")).await.0,
        204
    );
    let left = a
        .expect("member_left", |v| v["action"] == "member_left")
        .await;
    assert_eq!(left["username"], "bob");
    assert_eq!(
        b_chat.expect_close().await,
        Some(4403),
        "the chat's socket closes"
    );
    a.send_json(json!({"message": "after"})).await;
    a.expect("own echo", |v| is_message(v, "after")).await;
    b_all
        .expect_none("message after leaving", Duration::from_millis(400), |v| {
            is_message(v, "after")
        })
        .await;
    assert_eq!(bob.get(&format!("/chats/{chat}/messages")).await.0, 403);
    b_all
        .send_json(json!({"chat_id": chat, "message": "ghost"}))
        .await;
    let err = b_all.expect("error", |v| v["action"] == "error").await;
    assert_eq!(err["code"], "not_a_member");
    app.stop().await;
}

async fn only_the_owner_removes_members(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, cid] = app.users(["ann", "bob", "cid"]).await;
    let chat = group(&ann, "team", &[&bob, &cid], "private").await;
    let (status, _) = bob
        .delete(&format!("/chats/{chat}/members/{}", cid.id))
        .await;
    assert_eq!(status, 403);
    let (status, _) = ann
        .delete(&format!("/chats/{chat}/members/{}", cid.id))
        .await;
    assert_eq!(status, 204);
    assert_eq!(cid.get(&format!("/chats/{chat}/messages")).await.0, 403);
    // The owner leaves: the longest-standing member takes over.
    assert_eq!(
        ann.delete(&format!("/chats/{chat}/members/me")).await.0,
        204
    );
    let (_, details) = bob.get(&format!("/chats/{chat}")).await;
    assert_eq!(member_names(&details), [("bob".into(), "owner".into())]);
    app.stop().await;
}

async fn read_markers_move_forward_and_count_unread(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, m) = ann
            .post(
                &format!("/chats/{chat}/messages"),
                json!({"message": format!("m{i}")}),
            )
            .await;
        ids.push(m["id"].as_i64().unwrap());
    }
    bob.post(
        &format!("/chats/{chat}/messages"),
        json!({"message": "mine"}),
    )
    .await;
    assert_eq!(
        bob.get("/chats").await.1[0]["unread"],
        3,
        "own messages are not unread"
    );

    let mut a = ann.ws_chat_v2(chat).await;
    let mut b = bob.ws_chat(chat).await;
    b.send_json(json!({"action": "read", "message_id": ids[1]}))
        .await;
    let read = a.expect("read receipt", |v| v["action"] == "read").await;
    assert_eq!(
        (read["username"].as_str(), read["message_id"].as_i64()),
        (Some("bob"), Some(ids[1]))
    );
    assert_eq!(bob.get("/chats").await.1[0]["unread"], 1);

    // Backwards is ignored: no event, no change.
    let (status, _) = bob
        .post(
            &format!("/chats/{chat}/read"),
            json!({"message_id": ids[0]}),
        )
        .await;
    assert_eq!(status, 204);
    a.expect_none("backwards receipt", Duration::from_millis(300), |v| {
        v["action"] == "read"
    })
    .await;
    assert_eq!(bob.get("/chats").await.1[0]["unread"], 1);
    let (_, details) = ann.get(&format!("/chats/{chat}")).await;
    let bob_row = details["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(bob_row["last_read_message_id"], ids[1]);

    let (status, _) = bob
        .post(
            &format!("/chats/{chat}/read"),
            json!({"message_id": ids[2]}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(bob.get("/chats").await.1[0]["unread"], 0);
    let (status, _) = bob
        .post(
            &format!("/chats/{chat}/read"),
            json!({"message_id": 999_999}),
        )
        .await;
    assert_eq!(status, 404, "a message of another chat cannot be marked");
    drop(b);
    app.stop().await;
}

async fn group_input_is_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    for (body, field) in [
        (json!({"name": "", "member_ids": []}), "name"),
        (json!({"name": "x".repeat(65), "member_ids": []}), "name"),
        (json!({"name": "ok", "visibility": "secret"}), "visibility"),
        (json!({"member_ids": []}), "name"),
        (json!({"name": "ok", "member_ids": "1"}), "member_ids"),
    ] {
        let (status, res) = ann.post("/chats", body.clone()).await;
        assert_eq!(
            (status, res["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
    }
    let (status, _) = ann
        .post("/chats", json!({"name": "ok", "member_ids": [424_242]}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(ann.get("/chats").await.1, json!([]), "nothing half-created");
    app.stop().await;
}
