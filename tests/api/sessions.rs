//! Server sessions: one per login, listed and ended by their owner, renewed with rotating
//! refresh tokens, ended by a password change, and expiring when unused; every end closes the
//! session's sockets with 4401.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::app::{Backend, TestApp, TestUser, Ws, is_status, session_of};

on_every_backend!(
    login_starts_a_session_listed_with_its_device,
    login_answers_the_original_fields_and_a_refresh_token,
    a_refresh_token_renews_once_and_a_reused_one_ends_the_session,
    a_refresh_racing_another_of_the_same_token_gets_an_access_token_only,
    the_refresh_cookie_renews_from_an_allowed_origin_only,
    refresh_refusals_are_clear,
    ending_a_session_from_another_device_closes_its_sockets,
    another_users_session_cannot_be_ended,
    logout_all_ends_every_other_session_and_closes_their_sockets,
    a_password_change_ends_the_other_sessions_and_needs_the_current_password,
    logout_ends_the_session_and_its_refresh_token,
    a_session_expires_when_unused_and_lives_on_while_used,
);

/// Logs `username` in with JSON from a device that calls itself `agent`; the login's answer.
async fn login(app: &TestApp, username: &str, agent: &str) -> Value {
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .header("user-agent", agent)
        .json(&json!({"username": username, "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login {username}");
    res.json().await.unwrap()
}

/// `user` signed in on another device: a session of its own.
async fn device(app: &TestApp, user: &TestUser, agent: &str) -> (TestUser, String) {
    let body = login(app, &user.username, agent).await;
    let token = body["access_token"].as_str().unwrap();
    (
        user.with_token(token),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// `POST /auth/refresh` with the token in the body.
async fn refresh(app: &TestApp, token: &str) -> (u16, Value) {
    let res = app
        .client()
        .post(app.url("/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn ids(sessions: &Value) -> Vec<&str> {
    sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

/// A `/ws` socket of `user` that is live.
async fn socket(user: &TestUser) -> Ws {
    user.ws_all().await
}

async fn login_starts_a_session_listed_with_its_device(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let (phone, _) = device(&app, &ann, "Phone/1.0").await;

    let (status, sessions) = phone.get("/auth/sessions").await;

    assert_eq!(status, 200, "{sessions}");
    let mut listed = ids(&sessions);
    listed.sort_unstable();
    let mut expected = vec![ann.session_id(), phone.session_id()];
    expected.sort();
    assert_eq!(listed, expected);
    let sessions = sessions.as_array().unwrap();
    let mine = sessions.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(mine["id"], phone.session_id());
    assert_eq!(mine["user_agent"], "Phone/1.0");
    assert_eq!(mine["address"], "127.0.0.1");
    for key in ["created_at", "last_used_at", "expires_at"] {
        let t = mine[key].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(t).is_ok(),
            "{key}: {t}"
        );
    }
    let expires = chrono::DateTime::parse_from_rfc3339(mine["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let days = (expires - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "30 days idle by default: {days}");
    assert_eq!(
        sessions.iter().filter(|s| s["current"] == true).count(),
        1,
        "only the caller's is current"
    );
    let (_, for_ann) = ann.get("/auth/sessions").await;
    let current: Vec<&Value> = for_ann
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], ann.session_id());
    app.stop().await;
}

async fn login_answers_the_original_fields_and_a_refresh_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;

    let body = login(&app, "ann", "Laptop").await;

    assert_eq!(body["token_type"], "bearer");
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(
        refresh.starts_with(&format!("{}.", session_of(access))),
        "{refresh}"
    );
    assert!(body["expires_at"].is_string() && body["session_expires_at"].is_string());
    let res = app
        .client()
        .get(app.url("/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the bearer token works as it always did");
    app.stop().await;
}

async fn a_refresh_token_renews_once_and_a_reused_one_ends_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let (laptop, first) = device(&app, &ann, "Laptop").await;

    let (status, renewed) = refresh(&app, &first).await;
    assert_eq!(status, 200, "{renewed}");
    let second = renewed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let access = renewed["access_token"].as_str().unwrap();
    assert_eq!(session_of(access), laptop.session_id(), "the same session");
    let renewed_laptop = laptop.with_token(access);
    assert_eq!(renewed_laptop.get("/auth/me").await.0, 200);
    let (status, again) = refresh(&app, &second).await;
    assert_eq!(status, 200, "{again}");
    let third = again["refresh_token"].as_str().unwrap().to_owned();
    let mut ws = socket(&renewed_laptop).await;

    // The first token, two rotations old: someone kept a copy.
    let (status, reused) = refresh(&app, &first).await;

    assert_eq!(
        (status, reused["code"].as_str()),
        (401, Some("refresh_token_reused"))
    );
    assert_eq!(ws.expect_close().await, Some(4401), "its sockets close");
    assert_eq!(renewed_laptop.get("/auth/me").await.0, 401);
    assert_eq!(laptop.get("/auth/me").await.0, 401);
    assert_eq!(refresh(&app, &third).await.0, 401, "the newest token too");
    assert_eq!(ann.get("/auth/me").await.0, 200, "other sessions go on");
    app.stop().await;
}

async fn a_refresh_racing_another_of_the_same_token_gets_an_access_token_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let (laptop, first) = device(&app, &ann, "Laptop").await;
    let (_, won) = refresh(&app, &first).await;
    let newest = won["refresh_token"].as_str().unwrap().to_owned();

    // A second tab sent the same cookie before the first one's answer arrived.
    let (status, late) = refresh(&app, &first).await;

    assert_eq!(status, 200, "{late}");
    assert!(late.get("refresh_token").is_none(), "{late}");
    let access = late["access_token"].as_str().unwrap();
    assert_eq!(laptop.with_token(access).get("/auth/me").await.0, 200);
    assert_eq!(
        refresh(&app, &newest).await.0,
        200,
        "the winner's token stays the session's"
    );
    app.stop().await;
}

async fn the_refresh_cookie_renews_from_an_allowed_origin_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .json(&json!({"username": "ann", "password": "password123"}))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let refresh_cookie = cookies
        .iter()
        .find(|c| c.starts_with("refresh_token="))
        .expect("a refresh_token cookie");
    let lower = refresh_cookie.to_ascii_lowercase();
    assert!(lower.contains("httponly"), "{refresh_cookie}");
    assert!(lower.contains("path=/auth"), "{refresh_cookie}");
    assert!(lower.contains("max-age="), "{refresh_cookie}");
    let pair = refresh_cookie.split(';').next().unwrap().to_owned();
    let post = |origin: Option<String>| {
        let mut req = app
            .client()
            .post(app.url("/auth/refresh"))
            .header("cookie", &pair);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };

    let foreign = post(Some("https://evil.example".into())).await.unwrap();
    let bare = post(None).await.unwrap();
    let own = post(Some(app.base.clone())).await.unwrap();

    assert_eq!(foreign.status(), 403);
    assert_eq!(bare.status(), 403);
    assert_eq!(own.status(), 200);
    let set: Vec<String> = own
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set.iter().any(|c| c.starts_with("access_token=")),
        "{set:?}"
    );
    let next = set
        .iter()
        .find(|c| c.starts_with("refresh_token="))
        .expect("the next refresh token");
    assert_ne!(next.split(';').next().unwrap(), pair);
    let body: Value = own.json().await.unwrap();
    let me = app
        .client()
        .get(app.url("/auth/me"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    app.stop().await;
}

async fn refresh_refusals_are_clear(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let post = |body: &'static str| {
        app.client()
            .post(app.url("/auth/refresh"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let code = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        (status, body["code"].as_str().unwrap_or_default().to_owned())
    };

    let missing = code(post("").await.unwrap()).await;
    let malformed = code(post("{").await.unwrap()).await;
    let garbage = code(post(r#"{"refresh_token": "garbage"}"#).await.unwrap()).await;
    let unknown = refresh(&app, &format!("{}.{}", "ab".repeat(16), "cd".repeat(32))).await;
    let access_token_instead = refresh(&app, &ann.token).await;

    assert_eq!(missing, (401, "not_authenticated".into()));
    assert_eq!(malformed, (400, "malformed_body".into()));
    assert_eq!(garbage, (401, "not_authenticated".into()));
    assert_eq!(unknown.0, 401);
    assert_eq!(unknown.1["code"], "not_authenticated");
    assert_eq!(access_token_instead.0, 401);
    assert_eq!(ann.get("/auth/me").await.0, 200, "nothing was ended");
    app.stop().await;
}

async fn ending_a_session_from_another_device_closes_its_sockets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let (phone, phone_refresh) = device(&app, &ann, "Phone").await;
    let mut phone_socket = socket(&phone).await;
    let mut laptop_socket = socket(&ann).await;

    let (status, body) = ann
        .delete(&format!("/auth/sessions/{}", phone.session_id()))
        .await;

    assert_eq!(status, 204, "{body}");
    assert_eq!(phone_socket.expect_close().await, Some(4401));
    assert_eq!(phone.get("/auth/me").await.0, 401);
    assert_eq!(refresh(&app, &phone_refresh).await.0, 401);
    assert_eq!(ann.get("/auth/me").await.0, 200);
    assert_eq!(ids(&ann.get("/auth/sessions").await.1), [ann.session_id()]);
    let (status, _) = ann
        .post(
            "/chats",
            json!({"name": "Notes", "member_ids": [], "visibility": "private"}),
        )
        .await;
    assert_eq!(status, 201);
    laptop_socket
        .expect("this device's socket still live", |v| {
            v["action"] == "chat_created"
        })
        .await;
    assert_eq!(
        ann.delete(&format!("/auth/sessions/{}", phone.session_id()))
            .await
            .0,
        404,
        "it is gone"
    );
    app.stop().await;
}

async fn another_users_session_cannot_be_ended(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut anns_socket = ann.ws_chat(chat).await;
    anns_socket
        .expect("own status", |v| is_status(v, "ann", true))
        .await;

    let (status, body) = bob
        .delete(&format!("/auth/sessions/{}", ann.session_id()))
        .await;
    let (unknown, _) = bob.delete("/auth/sessions/no-such-session").await;

    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("session_not_found"))
    );
    assert_eq!(unknown, 404);
    assert_eq!(ann.get("/auth/me").await.0, 200, "ann's session goes on");
    assert!(
        ids(&bob.get("/auth/sessions").await.1) == [bob.session_id()],
        "bob sees only his own"
    );
    bob.post_message(chat, "still there?").await;
    anns_socket.until_message("still there?").await;
    app.stop().await;
}

async fn logout_all_ends_every_other_session_and_closes_their_sockets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let (phone, _) = device(&app, &ann, "Phone").await;
    let (tablet, _) = device(&app, &ann, "Tablet").await;
    let mut phone_socket = socket(&phone).await;
    let mut tablet_socket = socket(&tablet).await;
    let mut bobs_socket = socket(&bob).await;

    let (status, body) = ann.post("/auth/logout-all", json!({})).await;

    assert_eq!((status, body["ended"].as_u64()), (200, Some(2)), "{body}");
    assert_eq!(phone_socket.expect_close().await, Some(4401));
    assert_eq!(tablet_socket.expect_close().await, Some(4401));
    assert_eq!(phone.get("/auth/me").await.0, 401);
    assert_eq!(tablet.get("/auth/me").await.0, 401);
    assert_eq!(ann.get("/auth/me").await.0, 200);
    assert_eq!(ids(&ann.get("/auth/sessions").await.1), [ann.session_id()]);
    assert_eq!(bob.get("/auth/me").await.0, 200, "other users keep theirs");
    let chat = bob.direct_with(&ann).await;
    bob.post_message(chat, "hello").await;
    bobs_socket.until_message("hello").await;
    app.stop().await;
}

async fn a_password_change_ends_the_other_sessions_and_needs_the_current_password(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let (phone, _) = device(&app, &ann, "Phone").await;
    let mut phone_socket = socket(&phone).await;
    let change = |current: &str, new: &str| {
        ann.post(
            "/auth/password",
            json!({"current_password": current, "new_password": new}),
        )
    };

    let (wrong, wrong_body) = change("not-my-password", "brand new password").await;
    let (weak, weak_body) = change("password123", "short").await;
    let (missing, missing_body) = ann
        .post("/auth/password", json!({"current_password": "password123"}))
        .await;
    assert_eq!(
        (wrong, wrong_body["code"].as_str()),
        (403, Some("wrong_password"))
    );
    assert_eq!(
        (weak, weak_body["field"].as_str()),
        (422, Some("new_password"))
    );
    assert_eq!(
        (missing, missing_body["field"].as_str()),
        (422, Some("new_password"))
    );
    assert_eq!(
        phone.get("/auth/me").await.0,
        200,
        "refusals change nothing"
    );

    let (status, body) = change("password123", "brand new password").await;

    assert_eq!(status, 204, "{body}");
    assert_eq!(phone_socket.expect_close().await, Some(4401));
    assert_eq!(phone.get("/auth/me").await.0, 401);
    assert_eq!(ann.get("/auth/me").await.0, 200, "this session goes on");
    let old = app
        .client()
        .post(app.url("/auth/login"))
        .json(&json!({"username": "ann", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    let new = app
        .client()
        .post(app.url("/auth/login"))
        .json(&json!({"username": "ann", "password": "brand new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(new.status(), 200);
    app.stop().await;
}

async fn logout_ends_the_session_and_its_refresh_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let (phone, phone_refresh) = device(&app, &ann, "Phone").await;

    let (status, _) = phone.post("/auth/logout", json!({})).await;

    assert_eq!(status, 204);
    assert_eq!(phone.get("/auth/me").await.0, 401);
    assert_eq!(refresh(&app, &phone_refresh).await.0, 401);
    assert_eq!(ids(&ann.get("/auth/sessions").await.1), [ann.session_id()]);
    app.stop().await;
}

/// Sessions that last three seconds unused (a use is written down every 750 ms at most) and
/// access tokens that outlive them, so that only the session can end them.
async fn a_session_expires_when_unused_and_lives_on_while_used(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.session_idle_seconds = Some(3)).await;
    let ann = app.user("ann").await;
    let (idle, idle_refresh) = device(&app, &ann, "Idle").await;
    let (busy, _) = device(&app, &ann, "Busy").await;
    let (renewing, renewing_refresh) = device(&app, &ann, "Renewing").await;
    let mut idle_socket = socket(&idle).await;
    let started = std::time::Instant::now();

    let mut renewing_refresh = renewing_refresh;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(busy.get("/auth/me").await.0, 200, "used, it lives on");
        let (status, body) = refresh(&app, &renewing_refresh).await;
        assert_eq!(status, 200, "refreshed, it lives on: {body}");
        renewing_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    }

    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(idle.get("/auth/me").await.0, 401, "unused, it expired");
    assert_eq!(refresh(&app, &idle_refresh).await.0, 401);
    assert_eq!(
        idle_socket.expect_close().await,
        Some(4401),
        "its socket closed when it expired"
    );
    assert_eq!(
        renewing.get("/auth/me").await.0,
        200,
        "an older access token works while its session lives"
    );
    let listed = ids(&busy.get("/auth/sessions").await.1)
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(listed.contains(&busy.session_id()));
    assert!(listed.contains(&renewing.session_id()));
    assert!(!listed.contains(&idle.session_id()));
    app.stop().await;
}

#[tokio::test]
async fn a_session_ended_on_one_instance_closes_its_sockets_on_another() {
    let one = TestApp::spawn(Backend::Postgres).await;
    let two = TestApp::spawn_at(&one.db_url, "127.0.0.1:0".parse().unwrap(), None).await;
    let ann = one.user("ann").await;
    let phone = two.logged_in("ann").await;
    let mut phone_socket = socket(&phone).await;

    let (status, _) = ann
        .delete(&format!("/auth/sessions/{}", phone.session_id()))
        .await;

    assert_eq!(status, 204);
    assert_eq!(phone_socket.expect_close().await, Some(4401));
    assert_eq!(phone.get("/auth/me").await.0, 401);
    two.stop().await;
    one.stop().await;
}
