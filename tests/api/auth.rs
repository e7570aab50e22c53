//! Registration, login, tokens and the error shape.

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::app::{Backend, SECRET, TestApp, register_body};

on_every_backend!(
    register_returns_the_new_account,
    usernames_and_emails_are_unique_regardless_of_case,
    invalid_fields_are_named_in_a_422,
    a_malformed_body_is_a_400,
    login_accepts_a_form_or_json_and_a_username_or_email,
    wrong_credentials_look_the_same_whether_or_not_the_user_exists,
    requests_without_a_good_token_are_refused,
    users_lists_everyone_else_by_username,
    unknown_routes_answer_in_the_error_shape,
    repeated_failed_logins_are_throttled,
    login_and_registration_from_a_foreign_origin_are_refused,
    login_and_registration_from_an_allowed_origin_or_none_work,
);

async fn register_returns_the_new_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app
        .register(register_body(
            "ann",
            "ann@example.com",
            "password123",
            "password123",
        ))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["username"], "ann");
    assert_eq!(body["email"], "ann@example.com");
    assert!(body["id"].as_i64().unwrap() > 0);
    assert!(body.get("password_hash").is_none() && body.get("password").is_none());
    app.stop().await;
}

async fn usernames_and_emails_are_unique_regardless_of_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;
    let (status, body) = app
        .register(register_body(
            "ANN",
            "other@example.com",
            "password123",
            "password123",
        ))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("username_taken"))
    );
    let (status, body) = app
        .register(register_body(
            "annie",
            "Ann@Example.COM",
            "password123",
            "password123",
        ))
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("email_taken")));
    assert!(body["detail"].as_str().unwrap().len() > 10);
    app.stop().await;
}

async fn invalid_fields_are_named_in_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (body, field) in [
        (
            register_body("an", "a@b.co", "password123", "password123"),
            "username",
        ),
        (
            register_body("ann b", "a@b.co", "password123", "password123"),
            "username",
        ),
        (
            register_body("ann", "not-an-email", "password123", "password123"),
            "email",
        ),
        (register_body("ann", "a@b.co", "short", "short"), "password"),
        (
            register_body("ann", "a@b.co", "password123", "password124"),
            "password_confirm",
        ),
        (
            json!({"username": "ann", "email": "a@b.co", "password": "password123"}),
            "password_confirm",
        ),
        (
            json!({"username": 5, "email": "a@b.co", "password": "password123", "password_confirm": "password123"}),
            "username",
        ),
    ] {
        let (status, res) = app.register(body.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(res["code"], "invalid_field");
        assert_eq!(res["field"], field, "{body} -> {res}");
        assert!(res["detail"].is_string());
    }
    // Nothing was stored by the refused requests.
    let ann = app.user("ann").await;
    assert_eq!(ann.get("/users").await.1, json!([]));
    app.stop().await;
}

async fn a_malformed_body_is_a_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .client()
        .post(app.url("/auth/register"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "malformed_body");
    app.stop().await;
}

async fn login_accepts_a_form_or_json_and_a_username_or_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let form = app
        .client()
        .post(app.url("/auth/login"))
        .form(&[("username", "ann@example.com"), ("password", "password123")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let body: Value = form.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    let token = body["access_token"].as_str().unwrap();
    let json_login = app
        .client()
        .post(app.url("/auth/login"))
        .json(&json!({"username": "ANN", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_login.status(), 200);
    let me = app
        .client()
        .get(app.url("/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(me["id"], ann.id);
    app.stop().await;
}

async fn wrong_credentials_look_the_same_whether_or_not_the_user_exists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;
    let mut answers = Vec::new();
    for (user, pw) in [("ann", "wrong-password"), ("nobody", "password123")] {
        let res = app
            .client()
            .post(app.url("/auth/login"))
            .form(&[("username", user), ("password", pw)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers().get("set-cookie").is_none());
        answers.push(res.json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0]["code"], "invalid_credentials");
    app.stop().await;
}

fn token_for(user_id: i64, session: &str, exp_offset_secs: i64, secret: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    jsonwebtoken::encode(
        &Header::default(),
        &json!({"sub": user_id.to_string(), "sid": session, "jti": "t", "iat": now, "exp": now + exp_offset_secs}),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn requests_without_a_good_token_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    let get = |token: Option<String>| {
        let mut req = app.client().get(app.url("/chats"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap()["code"].clone())
        }
    };
    assert_eq!(get(None).await, (401, json!("not_authenticated")));
    assert_eq!(
        get(Some("garbage".into())).await,
        (401, json!("not_authenticated"))
    );
    let session = ann.session_id();
    let forged = token_for(
        ann.id,
        &session,
        600,
        "another-secret-another-secret-another",
    );
    assert_eq!(get(Some(forged)).await, (401, json!("not_authenticated")));
    let expired = token_for(ann.id, &session, -60, SECRET);
    assert_eq!(get(Some(expired)).await, (401, json!("token_expired")));
    let valid = token_for(ann.id, &session, 600, SECRET);
    assert_eq!(get(Some(valid)).await.0, 200);
    let ghost = token_for(9999, &session, 600, SECRET);
    assert_eq!(
        get(Some(ghost)).await.0,
        401,
        "a user that is not the session's"
    );
    let no_session = token_for(ann.id, "0123456789abcdef0123456789abcdef", 600, SECRET);
    assert_eq!(
        get(Some(no_session)).await,
        (401, json!("not_authenticated")),
        "a session that does not exist"
    );
    app.stop().await;
}

async fn users_lists_everyone_else_by_username(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    app.user("Zed").await;
    app.user("bob").await;
    let (status, users) = ann.get("/users").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "Zed"]);
    assert_eq!(users[0]["is_online"], false);
    assert_eq!(users[0]["last_seen"], Value::Null);
    app.stop().await;
}

async fn unknown_routes_answer_in_the_error_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .client()
        .get(app.url("/api/nope/x"))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    // Unknown paths fall to the web client, which answers 404 for a missing file.
    assert_eq!(status, 404);
    assert!(ct.starts_with("application/json"), "{ct}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    app.stop().await;
}

async fn repeated_failed_logins_are_throttled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;
    let attempt = |pw: &'static str| {
        let req = app
            .client()
            .post(app.url("/auth/login"))
            .form(&[("username", "ann"), ("password", pw)]);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap()["code"].clone())
        }
    };
    // Five free failures; the sixth makes this address wait before it tries ann again.
    for _ in 0..6 {
        assert_eq!(attempt("wrong-password").await.0, 401);
    }
    assert_eq!(
        attempt("wrong-password").await,
        (429, json!("too_many_attempts"))
    );
    assert_eq!(
        attempt("password123").await.0,
        429,
        "this address waits even with the right password"
    );
    // Another account is not affected.
    app.user("bob").await;
    app.stop().await;
}

/// Sends `body` to `path` with `content_type` and the given `origin` / `referer`; the status
/// and the answer.
async fn post_from(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: String,
    origin: Option<&str>,
    referer: Option<&str>,
) -> (u16, Value) {
    let mut req = app
        .client()
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if let Some(r) = referer {
        req = req.header("referer", r);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn login_and_registration_from_a_foreign_origin_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;
    let login_json = json!({"username": "ann", "password": "password123"}).to_string();
    let login_form = "username=ann&password=password123".to_owned();
    let register = register_body("mallory", "m@example.com", "password123", "password123");
    let evil = "https://evil.example";
    let own_lookalike = format!("{}.evil.example", app.base);
    for (origin, referer) in [
        (Some(evil), None),
        (Some("null"), None),
        (Some(own_lookalike.as_str()), None),
        (None, Some("https://evil.example/login.html")),
        (Some(evil), Some(format!("{}/", app.base).as_str())),
    ] {
        for (path, content_type, body) in [
            ("/auth/login", "application/json", login_json.clone()),
            (
                "/auth/login",
                "application/x-www-form-urlencoded",
                login_form.clone(),
            ),
            ("/auth/login", "text/plain", login_json.clone()),
            ("/auth/register", "application/json", register.to_string()),
            ("/auth/register", "text/plain", register.to_string()),
        ] {
            let (status, res) = post_from(&app, path, content_type, body, origin, referer).await;
            let what = format!("{path} {content_type} origin {origin:?} referer {referer:?}");
            assert_eq!(status, 403, "{what}: {res}");
            assert_eq!(res["code"], "origin_not_allowed", "{what}");
        }
    }
    // Nothing was registered: the name is still free.
    let (status, body) = app.register(register).await;
    assert_eq!(status, 201, "{body}");
    app.stop().await;
}

async fn login_and_registration_from_an_allowed_origin_or_none_work(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let own = app.base.clone();
    let page = format!("{own}/index.html");
    for (i, (origin, referer)) in [
        (Some(own.as_str()), None),
        (None, Some(page.as_str())),
        (None, None),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("user{i}");
        let body = register_body(
            &name,
            &format!("{name}@example.com"),
            "password123",
            "password123",
        );
        let (status, res) = post_from(
            &app,
            "/auth/register",
            "application/json",
            body.to_string(),
            origin,
            referer,
        )
        .await;
        assert_eq!(status, 201, "register {origin:?} {referer:?}: {res}");
        let (status, res) = post_from(
            &app,
            "/auth/login",
            "application/x-www-form-urlencoded",
            format!("username={name}&password=password123"),
            origin,
            referer,
        )
        .await;
        assert_eq!(status, 200, "login {origin:?} {referer:?}: {res}");
        assert!(res["access_token"].is_string());
    }
    app.stop().await;
}

#[tokio::test]
async fn the_session_check_answers_200_signed_in_or_not() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ann = app.user("ann").await;
    let anonymous = app
        .client()
        .get(app.url("/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 200);
    assert_eq!(
        anonymous.json::<Value>().await.unwrap(),
        json!({"authenticated": false})
    );
    let (status, signed_in) = ann.get("/auth/session").await;
    assert_eq!(status, 200);
    assert_eq!(signed_in["authenticated"], true);
    assert_eq!(signed_in["user"]["username"], "ann");
    assert_eq!(signed_in["user"]["id"], ann.id);
    let forged = app
        .client()
        .get(app.url("/auth/session"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        200,
        "a bad token is no session, not an error"
    );
    assert_eq!(
        forged.json::<Value>().await.unwrap()["authenticated"],
        false
    );
    app.stop().await;
}
