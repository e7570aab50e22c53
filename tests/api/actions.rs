//! What people do with a message once it is posted: edit it, delete it, answer it and react to
//! it, over HTTP and both sockets, with every refusal; and how a client that was away learns
//! what changed (`changed_after`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::support::app::{Backend, TestApp, TestUser, Ws, is_message};

on_every_backend!(
    an_edit_reaches_every_socket_after_its_message_and_history_shows_it,
    an_edit_over_a_socket_is_told_to_the_chat,
    edits_are_refused_for_others_messages_unknown_ones_and_bad_text,
    an_edit_past_the_window_is_refused,
    a_delete_leaves_a_tombstone_and_the_replies_keep_their_anchor,
    deletes_are_refused_unless_own_or_the_groups_owner,
    a_reply_quotes_its_original_over_http_and_sockets,
    a_reply_to_a_message_of_another_chat_is_not_found,
    reactions_are_counted_once_per_member_and_told_to_the_chat,
    reactions_are_refused_for_outsiders_bad_emoji_and_past_the_bound,
    changed_after_answers_what_changed_since_a_change,
);

/// A group of `owner` with `members`; its id.
async fn group(owner: &TestUser, members: &[&TestUser]) -> i64 {
    let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    let (status, body) = owner
        .post("/chats", json!({"name": "Room", "member_ids": ids}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["chat_id"].as_i64().unwrap()
}

fn path(chat: i64, id: i64) -> String {
    format!("/chats/{chat}/messages/{id}")
}

fn reaction(chat: i64, id: i64, emoji: &str) -> String {
    format!("/chats/{chat}/messages/{id}/reactions/{emoji}")
}

async fn history(user: &TestUser, chat: i64) -> Vec<Value> {
    let (status, body) = user.get(&format!("/chats/{chat}/messages")).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

fn by_id(history: &[Value], id: i64) -> Value {
    history
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("message {id} not in {history:?}"))
        .clone()
}

fn is_action(v: &Value, action: &str, id: i64) -> bool {
    v["action"] == action && v["id"] == id
}

/// Posts a marker message on `ws` and returns every event `ws` heard up to it: what it heard
/// before is then known to be all it will hear of what came first.
async fn heard_until_marker(ws: &mut Ws, poster: &TestUser, chat: i64, marker: &str) -> Vec<Value> {
    poster.post_message(chat, marker).await;
    ws.until_message(marker).await
}

async fn an_edit_reaches_every_socket_after_its_message_and_history_shows_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut b = bob.ws_all().await;
    let mut v2 = ann.ws_chat_v2(chat).await;
    let mut old = ann.ws_chat(chat).await;

    let id = ann.post_message(chat, "helo").await;
    let (status, edited) = ann
        .patch(&path(chat, id), json!({"message": " hello "}))
        .await;

    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["id"], id);
    assert_eq!(edited["seq"], 1);
    assert_eq!(edited["message"], "hello");
    assert!(edited["edited_at"].is_string(), "{edited}");
    assert_eq!(edited["change_seq"], 1);
    let heard = b.until_message("helo");
    let heard = heard.await;
    assert_eq!(heard.last().unwrap()["id"], id, "the message first");
    let event = b
        .expect("message_edited", |v| is_action(v, "message_edited", id))
        .await;
    assert_eq!(
        (
            event["chat_id"].as_i64(),
            &event["message"],
            &event["change_seq"]
        ),
        (Some(chat), &json!("hello"), &json!(1))
    );
    assert_eq!(event["seq"], 1);
    assert!(event["edited_at"].is_string());
    v2.expect("message_edited on ?v=2", |v| {
        is_action(v, "message_edited", id)
    })
    .await;
    let old_heard = heard_until_marker(&mut old, &ann, chat, "marker").await;
    assert!(
        old_heard
            .iter()
            .all(|v| v.get("action").is_none() || v["action"] == "user_status"),
        "the original protocol hears no edits: {old_heard:?}"
    );
    let listed = by_id(&history(&bob, chat).await, id);
    assert_eq!(listed["message"], "hello");
    assert_eq!(listed["seq"], 1);
    assert_eq!(listed["edited_at"], edited["edited_at"]);
    app.stop().await;
}

async fn an_edit_over_a_socket_is_told_to_the_chat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut a = ann.ws_all().await;
    let mut b = bob.ws_chat_v2(chat).await;
    let id = ann.post_message(chat, "typo").await;

    a.send_json(json!({"action": "edit", "chat_id": chat, "id": id, "message": "fixed"}))
        .await;

    let own = a
        .expect("own message_edited", |v| is_action(v, "message_edited", id))
        .await;
    let other = b
        .expect("message_edited", |v| is_action(v, "message_edited", id))
        .await;
    assert_eq!(own, other);
    assert_eq!(other["message"], "fixed");
    assert_eq!(by_id(&history(&ann, chat).await, id)["message"], "fixed");
    app.stop().await;
}

async fn edit(user: &TestUser, chat: i64, id: i64, text: &str) -> (u16, Value) {
    user.patch(&path(chat, id), json!({"message": text})).await
}

async fn edits_are_refused_for_others_messages_unknown_ones_and_bad_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, eve] = app.users(["ann", "bob", "eve"]).await;
    let chat = ann.direct_with(&bob).await;
    let other = eve.direct_with(&bob).await;
    let id = ann.post_message(chat, "mine").await;
    let elsewhere = eve.post_message(other, "eve's").await;
    let gone = ann.post_message(chat, "gone").await;
    assert_eq!(ann.delete(&path(chat, gone)).await.0, 204);

    for ((status, body), want_status, want_code) in [
        (edit(&bob, chat, id, "bob's now").await, 403, "forbidden"),
        (
            edit(&ann, chat, 987_654, "x").await,
            404,
            "message_not_found",
        ),
        (
            edit(&ann, chat, elsewhere, "x").await,
            404,
            "message_not_found",
        ),
        (edit(&eve, chat, id, "x").await, 403, "not_a_member"),
        (edit(&ann, chat, id, "   ").await, 422, "invalid_field"),
        (edit(&ann, chat, gone, "back").await, 409, "message_deleted"),
    ] {
        assert_eq!(
            (status, body["code"].as_str()),
            (want_status, Some(want_code)),
            "{body}"
        );
    }
    let (status, body) = ann.patch(&path(chat, id), json!({})).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("message")));

    // The same refusals on a socket, as error events; the socket stays open.
    let mut b = bob.ws_all().await;
    for (frame, code) in [
        (
            json!({"action": "edit", "chat_id": chat, "id": id, "message": "x"}),
            "forbidden",
        ),
        (
            json!({"action": "edit", "chat_id": chat, "id": 987_654, "message": "x"}),
            "message_not_found",
        ),
        (
            json!({"action": "edit", "chat_id": other, "id": id, "message": "x"}),
            "message_not_found",
        ),
        (
            json!({"action": "edit", "chat_id": chat, "id": id}),
            "invalid_field",
        ),
    ] {
        b.send_json(frame.clone()).await;
        let error = b.expect("error", |v| v["action"] == "error").await;
        assert_eq!(error["code"], code, "{frame}");
    }
    let mut e = eve.ws_all().await;
    e.send_json(json!({"action": "edit", "chat_id": chat, "id": id, "message": "x"}))
        .await;
    let error = e.expect("error", |v| v["action"] == "error").await;
    assert_eq!(error["code"], "not_a_member");
    // The original protocol does not take these frames.
    let mut old = ann.ws_chat(chat).await;
    old.send_json(json!({"action": "edit", "id": id, "message": "x"}))
        .await;
    let error = old.expect("error", |v| v["action"] == "error").await;
    assert_eq!(error["code"], "unknown_action");
    assert_eq!(by_id(&history(&ann, chat).await, id)["message"], "mine");
    app.stop().await;
}

/// A clock the test moves forward.
struct MovableClock(AtomicI64);

impl parley::ports::Clock for MovableClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.0.load(Ordering::SeqCst))
    }
}

async fn an_edit_past_the_window_is_refused(backend: Backend) {
    let clock = Arc::new(MovableClock(AtomicI64::new(0)));
    let app = TestApp::spawn_building(backend, |config| config.edit_window_seconds = 60, {
        let clock = clock.clone();
        |builder| builder.clock(clock)
    })
    .await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let id = ann.post_message(chat, "fresh").await;
    let (status, _) = ann
        .patch(&path(chat, id), json!({"message": "still fresh"}))
        .await;
    assert_eq!(status, 200, "within the window");

    clock.0.store(61, Ordering::SeqCst);
    let (status, body) = ann
        .patch(&path(chat, id), json!({"message": "too late"}))
        .await;
    let mut a = ann.ws_all().await;
    a.send_json(json!({"action": "edit", "chat_id": chat, "id": id, "message": "too late"}))
        .await;
    let error = a.expect("error", |v| v["action"] == "error").await;

    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("edit_window_passed"))
    );
    assert_eq!(error["code"], "edit_window_passed");
    assert_eq!(
        by_id(&history(&ann, chat).await, id)["message"],
        "still fresh"
    );
    app.stop().await;
}

async fn a_delete_leaves_a_tombstone_and_the_replies_keep_their_anchor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut b = bob.ws_all().await;
    let mut old = bob.ws_chat(chat).await;
    let first = ann.post_message(chat, "first").await;
    let secret = ann.post_message(chat, "the secret").await;
    let (status, reply) = bob
        .post(
            &format!("/chats/{chat}/messages"),
            json!({"message": "what secret?", "reply_to": secret}),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(bob.put(&reaction(chat, secret, "😮")).await.0, 200);

    let (status, _) = ann.delete(&path(chat, secret)).await;

    assert_eq!(status, 204);
    let event = b
        .expect("message_deleted", |v| {
            is_action(v, "message_deleted", secret)
        })
        .await;
    assert_eq!(event["chat_id"], chat);
    assert_eq!(event["seq"], 2);
    let listed = history(&bob, chat).await;
    let seqs: Vec<i64> = listed.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3], "the tombstone keeps its place");
    let tombstone = by_id(&listed, secret);
    assert_eq!(tombstone["deleted"], true);
    assert_eq!(tombstone["message"], "");
    assert_eq!(
        tombstone["reactions"],
        json!([]),
        "its reactions went with it"
    );
    assert_eq!(by_id(&listed, first)["deleted"], false);
    let quote = &by_id(&listed, reply["id"].as_i64().unwrap())["reply_to"];
    assert_eq!(quote["id"], secret);
    assert_eq!(
        (&quote["deleted"], &quote["message"]),
        (&json!(true), &json!(""))
    );
    assert!(
        !serde_json::to_string(&listed)
            .unwrap()
            .contains("the secret"),
        "{listed:?}"
    );
    // A second delete changes nothing and tells no one.
    assert_eq!(ann.delete(&path(chat, secret)).await.0, 204);
    let heard = heard_until_marker(&mut b, &ann, chat, "after").await;
    assert!(
        heard.iter().all(|v| v["action"] != "message_deleted"),
        "{heard:?}"
    );
    // The original protocol hears nothing of it; its history shows the empty text.
    let old_heard = heard_until_marker(&mut old, &ann, chat, "after again").await;
    assert!(
        old_heard
            .iter()
            .all(|v| v.get("action").is_none() || v["action"] == "user_status"),
        "{old_heard:?}"
    );
    app.stop().await;
}

async fn deletes_are_refused_unless_own_or_the_groups_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, cid, eve] = app.users(["ann", "bob", "cid", "eve"]).await;
    let direct = ann.direct_with(&bob).await;
    let room = group(&ann, &[&bob, &cid]).await;
    let elsewhere = eve.direct_with(&bob).await;
    let anns = ann.post_message(direct, "ann's").await;
    let owners = ann.post_message(room, "the owner's").await;
    let bobs = bob.post_message(room, "bob's").await;
    let cids = cid.post_message(room, "cid's").await;
    let eves = eve.post_message(elsewhere, "eve's").await;

    for (user, chat, id, status, code) in [
        (&bob, direct, anns, 403, Some("forbidden")),
        (&bob, room, owners, 403, Some("forbidden")),
        (&bob, room, cids, 403, Some("forbidden")),
        (&eve, room, bobs, 403, Some("not_a_member")),
        (&ann, room, 987_654, 404, Some("message_not_found")),
        (&bob, room, eves, 404, Some("message_not_found")),
    ] {
        let (got, body) = user.delete(&path(chat, id)).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, code),
            "{} on {id}: {body}",
            user.username
        );
    }
    let mut b = bob.ws_all().await;
    b.send_json(json!({"action": "delete", "chat_id": room, "id": cids}))
        .await;
    let error = b.expect("error", |v| v["action"] == "error").await;
    assert_eq!(error["code"], "forbidden");
    b.send_json(json!({"action": "delete", "chat_id": room, "id": 987_654}))
        .await;
    let error = b.expect("error", |v| v["action"] == "error").await;
    assert_eq!(error["code"], "message_not_found");

    // The owner of a group may delete anyone's message; anyone may delete their own.
    assert_eq!(ann.delete(&path(room, bobs)).await.0, 204);
    b.expect("message_deleted", |v| is_action(v, "message_deleted", bobs))
        .await;
    b.send_json(json!({"action": "delete", "chat_id": direct, "id": anns}))
        .await;
    let error = b.expect("error", |v| v["action"] == "error").await;
    assert_eq!(error["code"], "forbidden");
    let mut c = cid.ws_all().await;
    c.send_json(json!({"action": "delete", "chat_id": room, "id": cids}))
        .await;
    c.expect("message_deleted", |v| is_action(v, "message_deleted", cids))
        .await;
    let listed = history(&ann, room).await;
    let deleted: Vec<bool> = listed.iter().map(|m| m["deleted"] == true).collect();
    assert_eq!(deleted, [false, true, true]);
    app.stop().await;
}

async fn a_reply_quotes_its_original_over_http_and_sockets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut b = bob.ws_all().await;
    let mut old = bob.ws_chat(chat).await;
    let long = "x".repeat(150);
    let original = ann.post_message(chat, &long).await;

    b.send_json(json!({"chat_id": chat, "message": "agreed", "reply_to": original}))
        .await;
    let reply = b.expect("the reply", |v| is_message(v, "agreed")).await;
    let (status, by_http) = ann
        .post(
            &format!("/chats/{chat}/messages"),
            json!({"message": "thanks", "reply_to": reply["id"]}),
        )
        .await;

    let quote = &reply["reply_to"];
    assert_eq!(quote["id"], original);
    assert_eq!(quote["user_id"], ann.id);
    assert_eq!(quote["username"], "ann");
    assert_eq!(quote["message"], format!("{}…", "x".repeat(100)));
    assert_eq!(quote["deleted"], false);
    assert_eq!(status, 201, "{by_http}");
    assert_eq!(by_http["reply_to"]["id"], reply["id"]);
    assert_eq!(by_http["reply_to"]["message"], "agreed");
    let on_old = old.expect("the reply", |v| is_message(v, "thanks")).await;
    assert_eq!(
        on_old["reply_to"]["username"], "bob",
        "a new field, fine for old clients"
    );
    let listed = history(&ann, chat).await;
    assert_eq!(
        by_id(&listed, reply["id"].as_i64().unwrap())["reply_to"],
        *quote
    );
    app.stop().await;
}

async fn a_reply_to_a_message_of_another_chat_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, eve] = app.users(["ann", "bob", "eve"]).await;
    let chat = ann.direct_with(&bob).await;
    let other = eve.direct_with(&bob).await;
    let elsewhere = eve.post_message(other, "eve's").await;

    let post = |reply_to: i64| {
        let ann = &ann;
        async move {
            ann.post(
                &format!("/chats/{chat}/messages"),
                json!({"message": "re", "reply_to": reply_to}),
            )
            .await
        }
    };
    for reply_to in [elsewhere, 987_654] {
        let (status, body) = post(reply_to).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("message_not_found"))
        );
    }
    let mut a = ann.ws_all().await;
    a.send_json(
        json!({"chat_id": chat, "message": "re", "reply_to": elsewhere, "client_id": "r1"}),
    )
    .await;
    let error = a.expect("error", |v| v["action"] == "error").await;
    assert_eq!(error["code"], "message_not_found");
    assert_eq!(error["client_id"], "r1");
    assert!(history(&ann, chat).await.is_empty(), "nothing was stored");
    app.stop().await;
}

async fn reactions_are_counted_once_per_member_and_told_to_the_chat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut a = ann.ws_all().await;
    let mut old = ann.ws_chat(chat).await;
    let id = ann.post_message(chat, "lunch?").await;

    // Percent-encoded in the path, as a browser's fetch sends it.
    let (status, once) = bob.put(&reaction(chat, id, "%F0%9F%91%8D")).await;
    let (_, twice) = bob.put(&reaction(chat, id, "👍")).await;

    assert_eq!(status, 200, "{once}");
    let expected = json!([{"emoji": "👍", "count": 1, "user_ids": [bob.id]}]);
    assert_eq!(once["reactions"], expected);
    assert_eq!(
        twice["reactions"], expected,
        "the same reaction twice counts once"
    );
    let event = a.expect("reaction", |v| is_action(v, "reaction", id)).await;
    assert_eq!(
        (
            &event["emoji"],
            &event["user_id"],
            &event["username"],
            &event["on"]
        ),
        (&json!("👍"), &json!(bob.id), &json!("bob"), &json!(true))
    );
    assert_eq!(event["chat_id"], chat);
    assert_eq!(event["reactions"], expected);

    a.send_json(json!({"action": "react", "chat_id": chat, "id": id, "emoji": "👍", "on": true}))
        .await;
    let event = a
        .expect("ann's reaction", |v| is_action(v, "reaction", id))
        .await;
    assert_eq!(
        event["reactions"],
        json!([{"emoji": "👍", "count": 2, "user_ids": [bob.id, ann.id]}])
    );
    let (status, taken) = bob.delete(&reaction(chat, id, "👍")).await;
    assert_eq!(status, 200);
    assert_eq!(
        taken["reactions"],
        json!([{"emoji": "👍", "count": 1, "user_ids": [ann.id]}])
    );
    let event = a
        .expect("taken back", |v| is_action(v, "reaction", id))
        .await;
    assert_eq!(
        (&event["on"], &event["user_id"]),
        (&json!(false), &json!(bob.id))
    );
    // Nothing about the repeated reaction reached anyone.
    let heard = heard_until_marker(&mut a, &bob, chat, "marker").await;
    assert!(heard.iter().all(|v| v["action"] != "reaction"), "{heard:?}");
    let old_heard = heard_until_marker(&mut old, &bob, chat, "marker 2").await;
    assert!(
        old_heard
            .iter()
            .all(|v| v.get("action").is_none() || v["action"] == "user_status"),
        "{old_heard:?}"
    );
    assert_eq!(
        by_id(&history(&bob, chat).await, id)["reactions"],
        taken["reactions"]
    );
    app.stop().await;
}

async fn reactions_are_refused_for_outsiders_bad_emoji_and_past_the_bound(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, eve] = app.users(["ann", "bob", "eve"]).await;
    let chat = ann.direct_with(&bob).await;
    let other = eve.direct_with(&bob).await;
    let id = ann.post_message(chat, "react to me").await;
    let elsewhere = eve.post_message(other, "not here").await;
    let gone = ann.post_message(chat, "gone").await;
    assert_eq!(ann.delete(&path(chat, gone)).await.0, 204);

    for (user, chat, id, emoji, status, code) in [
        (&eve, chat, id, "👍", 403, "not_a_member"),
        (&bob, chat, 987_654, "👍", 404, "message_not_found"),
        (&bob, chat, elsewhere, "👍", 404, "message_not_found"),
        (&bob, chat, id, "a%20b", 422, "invalid_field"),
        (
            &bob,
            chat,
            id,
            "x".repeat(33).as_str(),
            422,
            "invalid_field",
        ),
        (&bob, chat, gone, "👍", 409, "message_deleted"),
    ] {
        let (got, body) = user.put(&reaction(chat, id, emoji)).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{emoji}: {body}"
        );
    }
    let mut e = eve.ws_all().await;
    e.send_json(json!({"action": "react", "chat_id": chat, "id": id, "emoji": "👍"}))
        .await;
    let error = e.expect("error", |v| v["action"] == "error").await;
    assert_eq!(error["code"], "not_a_member");
    let mut b = bob.ws_all().await;
    b.send_json(json!({"action": "react", "chat_id": chat, "id": id, "emoji": "a b"}))
        .await;
    let error = b.expect("error", |v| v["action"] == "error").await;
    assert_eq!(error["code"], "invalid_field");

    // Twenty different emoji, then no more; a given one may still be given again.
    let emoji: Vec<String> = (0..21)
        .map(|i| char::from_u32(0x1F600 + i).unwrap().to_string())
        .collect();
    for e in &emoji[..20] {
        assert_eq!(bob.put(&reaction(chat, id, e)).await.0, 200, "{e}");
    }
    let (status, body) = bob.put(&reaction(chat, id, &emoji[20])).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("too_many_reactions"))
    );
    b.send_json(json!({"action": "react", "chat_id": chat, "id": id, "emoji": emoji[20]}))
        .await;
    let error = b.expect("error", |v| v["action"] == "error").await;
    assert_eq!(error["code"], "too_many_reactions");
    let (status, body) = ann.put(&reaction(chat, id, &emoji[0])).await;
    assert_eq!(status, 200);
    assert_eq!(body["reactions"].as_array().unwrap().len(), 20);
    assert_eq!(body["reactions"][0]["count"], 2);
    app.stop().await;
}

async fn changed_after_answers_what_changed_since_a_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, eve] = app.users(["ann", "bob", "eve"]).await;
    let chat = ann.direct_with(&bob).await;
    let a = ann.post_message(chat, "a").await;
    let b = ann.post_message(chat, "b").await;
    ann.post_message(chat, "c").await;
    ann.patch(&path(chat, a), json!({"message": "a!"})).await;
    bob.put(&reaction(chat, b, "👍")).await;
    ann.delete(&path(chat, a)).await;
    let changed = |after: &str| {
        let bob = &bob;
        let q = format!("/chats/{chat}/messages?changed_after={after}");
        async move { bob.get(&q).await }
    };

    let (status, all) = changed("0").await;
    let (_, since_two) = changed("2").await;
    let (_, none) = changed("3").await;

    assert_eq!(status, 200, "{all}");
    let summary: Vec<(i64, i64, bool)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_i64().unwrap(),
                m["change_seq"].as_i64().unwrap(),
                m["deleted"] == true,
            )
        })
        .collect();
    assert_eq!(summary, [(b, 2, false), (a, 3, true)]);
    assert_eq!(since_two.as_array().unwrap().len(), 1);
    assert_eq!(none, json!([]));
    for (query, status, code) in [
        ("-1", 422, "invalid_field"),
        ("x", 422, "invalid_field"),
        ("0&before=5", 422, "invalid_field"),
        ("0&limit=0", 422, "invalid_field"),
    ] {
        let (got, body) = changed(query).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{query}: {body}"
        );
    }
    let (status, body) = eve
        .get(&format!("/chats/{chat}/messages?changed_after=0"))
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("not_a_member")));
    app.stop().await;
}
