//! Cookie sessions, the Origin checks that guard them, and logout.

use serde_json::{Value, json};

use crate::support::app::{Backend, TestApp, try_connect};

on_every_backend!(
    login_sets_an_http_only_lax_cookie,
    cookie_requests_that_change_state_need_an_allowed_origin,
    cookie_socket_upgrades_need_an_allowed_origin,
    logout_ends_the_token_everywhere_and_closes_its_sockets,
);

/// Logs in and returns the `Set-Cookie` header and the `name=value` pair.
async fn cookie_login(app: &TestApp, username: &str) -> (String, String) {
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .json(&json!({"username": username, "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Login sets the refresh token cookie too, in no particular order.
    let set = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("access_token="))
        .expect("an access_token cookie");
    let pair = set.split(';').next().unwrap().to_owned();
    (set, pair)
}

async fn login_sets_an_http_only_lax_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;
    let (set, pair) = cookie_login(&app, "ann").await;
    assert!(pair.starts_with("access_token="));
    let lower = set.to_ascii_lowercase();
    assert!(lower.contains("httponly"), "{set}");
    assert!(lower.contains("samesite=lax"), "{set}");
    assert!(lower.contains("path=/"), "{set}");
    assert!(
        !lower.contains("secure"),
        "not Secure on plain http by default: {set}"
    );
    let res = app
        .client()
        .get(app.url("/auth/me"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["username"], "ann");
    app.stop().await;
}

async fn cookie_requests_that_change_state_need_an_allowed_origin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;
    let bob = app.user("bob").await;
    let (_, pair) = cookie_login(&app, "ann").await;
    let own = app.base.clone();
    let post = |origin: Option<&str>, referer: Option<&str>| {
        let mut req = app
            .client()
            .post(app.url(&format!("/chats/{}", bob.id)))
            .header("cookie", &pair);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(r) = referer {
            req = req.header("referer", r);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None, None).await, 403, "no Origin nor Referer");
    assert_eq!(post(Some("https://evil.example"), None).await, 403);
    assert_eq!(
        post(Some(&format!("{own}.evil.example")), None).await,
        403,
        "look-alike"
    );
    assert_eq!(
        post(Some("http://127.0.0.1:1"), None).await,
        403,
        "other port"
    );
    assert_eq!(post(None, Some("https://evil.example/page")).await, 403);
    assert_eq!(post(Some(&own), None).await, 201);
    assert_eq!(
        post(None, Some(&format!("{own}/chat"))).await,
        200,
        "Referer of our own page"
    );
    // A Bearer token is not sent by browsers on their own: no Origin needed.
    let res = app
        .client()
        .post(app.url(&format!("/chats/{}", bob.id)))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        400,
        "bob with himself; authenticated without Origin"
    );
    app.stop().await;
}

async fn cookie_socket_upgrades_need_an_allowed_origin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;
    let (_, pair) = cookie_login(&app, "ann").await;
    let url = format!("ws://{}/ws", app.addr);
    let own = app.base.clone();
    assert_eq!(
        try_connect(
            &url,
            &[("cookie", &pair), ("origin", "https://evil.example")]
        )
        .await
        .err(),
        Some(403)
    );
    assert_eq!(
        try_connect(
            &url,
            &[
                ("cookie", &pair),
                ("origin", &format!("{own}.evil.example"))
            ]
        )
        .await
        .err(),
        Some(403)
    );
    assert_eq!(
        try_connect(&url, &[("cookie", &pair)]).await.err(),
        Some(403),
        "cookie without Origin"
    );
    assert!(
        try_connect(&url, &[("cookie", &pair), ("origin", &own)])
            .await
            .is_ok()
    );
    app.stop().await;
}

async fn logout_ends_the_token_everywhere_and_closes_its_sockets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let chat = ann.direct_with(&bob).await;
    let mut per_chat = ann.ws_chat(chat).await;
    let mut all = ann.ws_all().await;
    let other_session = app.login("ann", "password123").await;

    let (status, _) = ann.post("/auth/logout", json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(per_chat.expect_close().await, Some(4401));
    assert_eq!(all.expect_close().await, Some(4401));
    assert_eq!(ann.get("/chats").await.0, 401);
    assert_eq!(ann.post("/auth/logout", json!({})).await.0, 401);
    let url = format!("ws://{}/ws/{chat}?token={}", app.addr, ann.token);
    assert_eq!(try_connect(&url, &[]).await.err(), Some(401));
    // Only that session ended.
    let res = app
        .client()
        .get(app.url("/chats"))
        .bearer_auth(&other_session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
}
