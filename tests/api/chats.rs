//! Direct chats and history over HTTP.

use serde_json::{Value, json};

use crate::support::app::{Backend, TestApp};

on_every_backend!(
    opening_a_direct_chat_creates_it_once,
    concurrent_opens_of_the_same_pair_yield_one_chat,
    direct_chat_refusals,
    chats_lists_the_other_member_as_title,
    history_pages_back_and_catches_up,
    history_is_for_members_only,
    a_message_sent_twice_with_one_client_id_is_stored_once,
    history_pages_by_seq,
    a_bad_client_id_is_refused_and_stores_nothing,
);

async fn opening_a_direct_chat_creates_it_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let (s1, b1) = ann.post(&format!("/chats/{}", bob.id), json!({})).await;
    let (s2, b2) = ann.post(&format!("/chats/{}", bob.id), json!({})).await;
    let (s3, b3) = bob.post(&format!("/chats/{}", ann.id), json!({})).await;
    assert_eq!((s1, s2, s3), (201, 200, 200));
    assert_eq!(b1["chat_id"], b2["chat_id"]);
    assert_eq!(b1["chat_id"], b3["chat_id"]);
    app.stop().await;
}

async fn concurrent_opens_of_the_same_pair_yield_one_chat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (me, other) = if i % 2 == 0 {
            (ann.clone(), bob.clone())
        } else {
            (bob.clone(), ann.clone())
        };
        tasks.push(tokio::spawn(async move {
            me.post(&format!("/chats/{}", other.id), json!({})).await
        }));
    }
    let mut ids = Vec::new();
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(status == 200 || status == 201, "{status} {body}");
        created += usize::from(status == 201);
        ids.push(body["chat_id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one chat for the pair");
    assert_eq!(created, 1, "exactly one request created it");
    assert_eq!(ann.get("/chats").await.1.as_array().unwrap().len(), 1);
    app.stop().await;
}

async fn direct_chat_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let (status, body) = ann.post(&format!("/chats/{}", ann.id), json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("chat_with_self"))
    );
    let (status, body) = ann.post("/chats/99999", json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("user_not_found"))
    );
    let (status, body) = ann.post("/chats/abc", json!({})).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("user_id")));
    app.stop().await;
}

async fn chats_lists_the_other_member_as_title(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, cid] = app.users(["ann", "bob", "cid"]).await;
    let with_bob = ann.direct_with(&bob).await;
    let with_cid = ann.direct_with(&cid).await;
    ann.post(
        &format!("/chats/{with_bob}/messages"),
        json!({"message": "hi bob"}),
    )
    .await;
    let (_, chats) = ann.get("/chats").await;
    let chats = chats.as_array().unwrap();
    assert_eq!(chats.len(), 2);
    // Most recent activity first: the chat with a message, then the newer empty one.
    assert_eq!(chats[0]["chat_id"], with_bob);
    assert_eq!(chats[0]["username"], "bob");
    assert_eq!(chats[0]["kind"], "direct");
    assert_eq!(chats[0]["last_message"]["message"], "hi bob");
    assert_eq!(chats[1]["chat_id"], with_cid);
    assert_eq!(chats[1]["username"], "cid");
    let (_, bobs) = bob.get("/chats").await;
    assert_eq!(bobs[0]["username"], "ann");
    assert_eq!(bobs[0]["unread"], 1);
    let (_, cids) = cid.get("/chats").await;
    assert_eq!(
        cids.as_array().unwrap().len(),
        1,
        "cid sees only his own chat"
    );
    app.stop().await;
}

fn texts(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap().to_owned())
        .collect()
}

async fn history_pages_back_and_catches_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let who = if i % 2 == 0 { &ann } else { &bob };
        ids.push(who.post_message(chat, &format!("m{i}")).await);
    }
    let (status, latest) = bob.get(&format!("/chats/{chat}/messages")).await;
    assert_eq!(status, 200);
    let expected: Vec<String> = (10..60).map(|i| format!("m{i}")).collect();
    assert_eq!(texts(&latest), expected, "latest 50, oldest first");
    let first = &latest[0];
    assert_eq!(first["username"], "ann");
    assert_eq!(first["user_id"], ann.id);
    assert_eq!(first["chat_id"], chat);
    assert_eq!(first["seq"], 11, "m10 is the chat's eleventh message");
    assert!(first.get("client_id").is_none(), "sent without one");
    assert_eq!(latest[49]["seq"], 60);
    assert_eq!(first["time"].as_str().unwrap().len(), 5);
    assert!(chrono::DateTime::parse_from_rfc3339(first["created_at"].as_str().unwrap()).is_ok());

    let (_, older) = bob
        .get(&format!(
            "/chats/{chat}/messages?before={}&limit=20",
            ids[10]
        ))
        .await;
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(texts(&older), expected);

    let (_, newer) = bob
        .get(&format!("/chats/{chat}/messages?after={}&limit=5", ids[50]))
        .await;
    let expected: Vec<String> = (51..56).map(|i| format!("m{i}")).collect();
    assert_eq!(texts(&newer), expected);

    for bad in ["limit=0", "limit=201", "limit=x", "before=x"] {
        let (status, body) = bob.get(&format!("/chats/{chat}/messages?{bad}")).await;
        assert_eq!(status, 422, "{bad}");
        assert_eq!(body["code"], "invalid_field");
    }
    app.stop().await;
}

async fn history_is_for_members_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob, eve] = app.users(["ann", "bob", "eve"]).await;
    let chat = ann.direct_with(&bob).await;
    ann.post_message(chat, "secret").await;
    let (status, body) = eve.get(&format!("/chats/{chat}/messages")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("not_a_member")));
    let (status, _) = eve
        .post(
            &format!("/chats/{chat}/messages"),
            json!({"message": "let me in"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = eve.get("/chats/424242/messages").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("chat_not_found"))
    );
    let (_, history) = ann.get(&format!("/chats/{chat}/messages")).await;
    assert_eq!(
        texts(&history),
        ["secret"],
        "the refused post stored nothing"
    );
    app.stop().await;
}

async fn a_message_sent_twice_with_one_client_id_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let path = format!("/chats/{chat}/messages");
    let before = ann.post_message(chat, "before").await;

    let (first_status, first) = ann
        .post(&path, json!({"message": "hello", "client_id": "c-1"}))
        .await;
    let (again_status, again) = ann
        .post(&path, json!({"message": "hello", "client_id": "c-1"}))
        .await;
    let (bobs_status, bobs) = bob
        .post(&path, json!({"message": "same name", "client_id": "c-1"}))
        .await;

    assert_eq!((first_status, again_status, bobs_status), (201, 200, 201));
    assert_eq!(first["client_id"], "c-1");
    assert_eq!(first["seq"], 2);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again, first, "the message as first stored");
    assert_ne!(
        bobs["id"], first["id"],
        "another sender's c-1 is another message"
    );
    assert_eq!(bobs["seq"], 3, "the resend used no seq");
    let (_, history) = bob.get(&path).await;
    assert_eq!(texts(&history), ["before", "hello", "same name"]);
    let seqs: Vec<i64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(history[0]["id"], before);
    assert!(history[0].get("client_id").is_none());
    assert_eq!(history[1], first);
    app.stop().await;
}

async fn history_pages_by_seq(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    for i in 1..=12 {
        ann.post_message(chat, &format!("m{i}")).await;
    }
    let page = |query: &'static str| {
        let bob = bob.clone();
        async move {
            let (status, body) = bob.get(&format!("/chats/{chat}/messages?{query}")).await;
            assert_eq!(status, 200, "{query}: {body}");
            body.as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };

    assert_eq!(page("after_seq=5&limit=3").await, [6, 7, 8]);
    assert_eq!(page("after_seq=10").await, [11, 12]);
    assert_eq!(page("after_seq=12").await, Vec::<i64>::new());
    assert_eq!(page("before_seq=5").await, [1, 2, 3, 4]);
    assert_eq!(page("before_seq=11&limit=2").await, [9, 10]);
    assert_eq!(page("after_seq=2&before_seq=7").await, [3, 4, 5, 6]);
    assert_eq!(page("after_seq=2&before_seq=7&limit=2").await, [5, 6]);
    let (_, caught_up) = bob
        .get(&format!("/chats/{chat}/messages?after_seq=10"))
        .await;
    assert_eq!(texts(&caught_up), ["m11", "m12"]);

    for (bad, field) in [
        ("after_seq=x", "after_seq"),
        ("before_seq=1.5", "before_seq"),
        ("after_seq=", "after_seq"),
    ] {
        let (status, body) = bob.get(&format!("/chats/{chat}/messages?{bad}")).await;
        assert_eq!(status, 422, "{bad}");
        assert_eq!(body["code"], "invalid_field");
        assert_eq!(body["field"], field, "{bad}");
    }
    app.stop().await;
}

async fn a_bad_client_id_is_refused_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let path = format!("/chats/{chat}/messages");

    for bad in [
        json!(""),
        json!("x".repeat(65)),
        json!("line\nbreak"),
        json!(42),
    ] {
        let (status, body) = ann
            .post(&path, json!({"message": "hi", "client_id": bad}))
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["code"], "invalid_field");
        assert_eq!(body["field"], "client_id", "{bad}");
    }

    let (_, history) = ann.get(&path).await;
    assert_eq!(texts(&history), Vec::<String>::new());
    let (status, _) = ann
        .post(&path, json!({"message": "hi", "client_id": "x".repeat(64)}))
        .await;
    assert_eq!(status, 201, "64 characters are fine");
    app.stop().await;
}
