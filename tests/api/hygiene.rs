//! Text hygiene, the same on every backend: control characters, invisible-only text and
//! bidirectional overrides are refused with a 422 naming the field (or an `error` event on a
//! socket), never a 500; accepted text is stored as sent. Also `HEAD`, and the access log.

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, Mutex, Once};

use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;

use crate::support::app::{Backend, PASSWORD, TestApp, TestUser, register_body};

on_every_backend!(
    registration_refuses_control_characters_naming_the_field,
    a_login_name_with_a_control_character_is_a_422_never_a_500,
    group_names_refuse_controls_bidi_overrides_and_invisible_text,
    messages_refuse_control_characters_and_invisible_text,
    messages_are_stored_exactly_as_accepted,
    the_socket_refuses_bad_text_with_an_invalid_field_error,
    head_answers_wherever_get_does_without_a_body,
);

/// Asserts a 422 `invalid_field` on `field`.
fn assert_invalid(status: u16, body: &Value, field: &str, what: &str) {
    assert_eq!(status, 422, "{what}: {body}");
    assert_eq!(body["code"], "invalid_field", "{what}: {body}");
    assert_eq!(body["field"], field, "{what}: {body}");
}

async fn registration_refuses_control_characters_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let pw = "password\u{0}123";
    for (body, field) in [
        (
            register_body("ann\u{0}", "a@b.co", PASSWORD, PASSWORD),
            "username",
        ),
        (
            register_body("\u{1b}[31mann", "a@b.co", PASSWORD, PASSWORD),
            "username",
        ),
        (
            register_body("ann\u{202E}", "a@b.co", PASSWORD, PASSWORD),
            "username",
        ),
        (
            register_body("ann", "a\u{0}@b.co", PASSWORD, PASSWORD),
            "email",
        ),
        (
            register_body("ann", "a@b.co\u{7f}", PASSWORD, PASSWORD),
            "email",
        ),
        (register_body("ann", "a@b.co", pw, pw), "password"),
    ] {
        let (status, res) = app.register(body.clone()).await;
        assert_invalid(status, &res, field, &body.to_string());
    }
    // None of them was stored: the plain name is still free.
    let ann = app.user("ann").await;
    assert_eq!(ann.get("/users").await.1, json!([]));
    app.stop().await;
}

async fn a_login_name_with_a_control_character_is_a_422_never_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;
    let client = app.client();
    for login in [
        "ann\u{0}",
        "\u{0}",
        "ann@example.com\u{0}",
        "ann\u{1b}",
        "ghost\u{0}",
    ] {
        let res = client
            .post(app.url("/auth/login"))
            .json(&json!({"username": login, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert_invalid(status, &body, "username", &format!("json {login:?}"));

        let res = client
            .post(app.url("/auth/login"))
            .form(&[("username", login), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert_invalid(status, &body, "username", &format!("form {login:?}"));
    }
    // A NUL in the password cannot match: an ordinary wrong password.
    let res = client
        .post(app.url("/auth/login"))
        .json(&json!({"username": "ann", "password": "pass\u{0}word"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // None of the refusals counted against the account, and it still logs in.
    app.login("ann", PASSWORD).await;
    app.stop().await;
}

/// Creates a group named `name` owned by `owner`; the status and the answer.
async fn create_group(owner: &TestUser, name: &str) -> (u16, Value) {
    owner
        .post(
            "/chats",
            json!({"name": name, "member_ids": [], "visibility": "public"}),
        )
        .await
}

async fn group_names_refuse_controls_bidi_overrides_and_invisible_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user("ann").await;
    for bad in [
        "team\u{0}",
        "\u{1b}[2Jteam",
        "two\nlines",
        "team\u{202E}nib",
        "\u{202A}team",
        "\u{2066}team\u{2069}",
        "\u{200B}",
        "\u{200B}\u{200C}\u{200D}",
        "\u{2060}\u{FEFF}",
        "\u{180E}",
        " \u{200B} \u{200F} ",
    ] {
        let (status, body) = create_group(&ann, bad).await;
        assert_invalid(status, &body, "name", &format!("{bad:?}"));
    }
    assert_eq!(ann.get("/rooms").await.1, json!([]), "nothing was stored");
    let name = "\u{05E6}\u{05D5}\u{05D5}\u{05EA} team \u{1F680}";
    let (status, body) = create_group(&ann, name).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(ann.get("/rooms").await.1[0]["name"], name);
    app.stop().await;
}

async fn messages_refuse_control_characters_and_invisible_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let path = format!("/chats/{chat}/messages");
    for bad in [
        "hi\u{0}",
        "\u{0}",
        "\u{1b}[31mred\u{1b}[0m",
        "carriage\rreturn",
        "bell\u{7}",
        "\u{9b}31m",
        "\u{200B}",
        "\u{200B}\u{200D}\u{2060}",
        "\u{FEFF}",
        "\u{180E}\u{2064}",
        "\u{200E}\u{200F}",
        " \u{200B}\n\t\u{3000}",
    ] {
        let (status, body) = ann.post(&path, json!({"message": bad})).await;
        assert_invalid(status, &body, "message", &format!("{bad:?}"));
    }
    for bad in ["c\u{0}1", "\u{1b}"] {
        let (status, body) = ann
            .post(&path, json!({"message": "hi", "client_id": bad}))
            .await;
        assert_invalid(status, &body, "client_id", &format!("{bad:?}"));
    }
    assert_eq!(ann.get(&path).await.1, json!([]), "nothing was stored");
    app.stop().await;
}

async fn messages_are_stored_exactly_as_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let path = format!("/chats/{chat}/messages");
    let texts = [
        "line one\n\tline two",
        "\u{202E}reversed\u{202C} and \u{2067}isolated\u{2069}",
        "family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} zero\u{200B}width soft\u{AD}hyphen",
        "cafe\u{301} \u{2764}\u{FE0F} \u{05E9}\u{05DC}\u{05D5}\u{05DD}",
    ];
    for text in texts {
        let (status, body) = ann.post(&path, json!({"message": text})).await;
        assert_eq!(status, 201, "{text:?}: {body}");
        assert_eq!(body["message"], text);
    }
    let (_, history) = bob.get(&path).await;
    let stored: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(stored, texts);
    app.stop().await;
}

async fn the_socket_refuses_bad_text_with_an_invalid_field_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut ws = ann.ws_all().await;
    for (frame, what) in [
        (json!({"chat_id": chat, "message": "nul\u{0}"}), "NUL"),
        (json!({"chat_id": chat, "message": "\u{1b}[2J"}), "escape"),
        (
            json!({"chat_id": chat, "message": "\u{200B}\u{FEFF}"}),
            "invisible",
        ),
        (
            json!({"chat_id": chat, "message": "hi", "client_id": "c\u{0}"}),
            "client_id",
        ),
    ] {
        ws.send_json(frame).await;
        let err = ws.expect(what, |v| v["action"] == "error").await;
        assert_eq!(err["code"], "invalid_field", "{what}: {err}");
    }
    let text = "still \u{200B}here";
    ws.send_json(json!({"chat_id": chat, "message": text}))
        .await;
    let echo = ws
        .expect("the good message", |v| v.get("action").is_none())
        .await;
    assert_eq!(echo["message"], text);
    let (_, history) = bob.get(&format!("/chats/{chat}/messages")).await;
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    app.stop().await;
}

async fn head_answers_wherever_get_does_without_a_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let client = app.client();
    let head = |path: String, token: Option<&str>| {
        let mut req = client.head(app.url(&path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let content_type = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = res.bytes().await.unwrap();
            assert!(
                body.is_empty(),
                "HEAD {path}: a body of {} bytes",
                body.len()
            );
            (status, content_type)
        }
    };
    assert_eq!(head("/health".into(), None).await.0, 200);
    for page in ["/", "/index.html"] {
        let (status, content_type) = head(page.into(), None).await;
        assert_eq!(status, 200, "{page}");
        assert!(content_type.unwrap().starts_with("text/html"), "{page}");
    }
    assert_eq!(head("/auth/me".into(), Some(&ann.token)).await.0, 200);
    let messages = format!("/chats/{chat}/messages");
    assert_eq!(head(messages.clone(), Some(&ann.token)).await.0, 200);
    assert_eq!(head(messages, None).await.0, 401, "as GET would");
    assert_eq!(head("/auth/me".into(), None).await.0, 401, "as GET would");
    let get_login = client.get(app.url("/auth/login")).send().await.unwrap();
    assert_eq!(
        head("/auth/login".into(), None).await.0,
        get_login.status().as_u16(),
        "a route without GET answers HEAD as it answers GET"
    );
    app.stop().await;
}

/// The lines logged on one test's thread, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    static SINK: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// Writes to the capture of the thread it is used on, if that thread has one.
struct ToThisThread;

impl io::Write for ToThisThread {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        SINK.with(|sink| {
            if let Some(c) = &*sink.borrow() {
                c.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ToThisThread {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        Self
    }
}

/// Captures what is logged at info level and above on this thread from now on.
///
/// The subscriber is the process's global one, not a thread-local default: tracing caches
/// whether a call site is enabled across all threads, and a test running beside this one
/// would otherwise cache "disabled" for the call sites it reaches first.
fn capture_this_thread() -> Captured {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(ToThisThread)
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
    let captured = Captured::default();
    SINK.with(|sink| *sink.borrow_mut() = Some(captured.clone()));
    captured
}

// The server runs on this test's one thread, so everything it logs is captured.
#[tokio::test(flavor = "current_thread")]
async fn every_request_writes_one_access_line_without_secrets() {
    let captured = capture_this_thread();

    let app = TestApp::spawn(Backend::Memory).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    ann.post_message(chat, "hello").await;
    assert_eq!(ann.get(&format!("/chats/{chat}/messages")).await.0, 200);
    let cookie = app
        .client()
        .get(app.url("/auth/me"))
        .header("cookie", format!("access_token={}", ann.token))
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status(), 200);
    let _ws = ann.ws_all().await;
    for _ in 0..2 {
        app.client().get(app.url("/health")).send().await.unwrap();
    }
    let nowhere = app
        .client()
        .post(app.url("/chats/12345/nowhere/67890?token=secret"))
        .send()
        .await
        .unwrap();
    assert!(nowhere.status().is_client_error());
    app.stop().await;

    let log = captured.text();
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("parley::access"))
        .collect();
    let line_for = |route: &str| {
        access
            .iter()
            .copied()
            .filter(|l| l.contains(&format!("route={route} ")))
            .collect::<Vec<_>>()
    };
    assert_eq!(line_for("/health").len(), 2, "one line per request: {log}");

    let history = line_for("/chats/{chat_id}/messages");
    let get = history
        .iter()
        .find(|l| l.contains("method=GET"))
        .unwrap_or_else(|| panic!("no line for the history: {log}"));
    assert!(get.contains(" INFO "), "{get}");
    assert!(get.contains("status=200"), "{get}");
    assert!(get.contains(&format!("user_id={}", ann.id)), "{get}");
    let ms: f64 = get
        .split("ms=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no duration: {get}"));
    assert!(ms >= 0.0);
    let post = history
        .iter()
        .find(|l| l.contains("method=POST"))
        .unwrap_or_else(|| panic!("no line for the post: {log}"));
    assert!(post.contains("status=201"), "{post}");

    let me = line_for("/auth/me");
    assert!(me[0].contains(&format!("user_id={}", ann.id)), "{me:?}");
    assert!(
        line_for("/auth/login")
            .iter()
            .all(|l| !l.contains("user_id"))
    );
    assert!(!line_for("/ws").is_empty(), "the socket's upgrade: {log}");
    let unmatched = line_for("/chats/{id}/nowhere/{id}");
    assert!(
        unmatched.len() == 1 && unmatched[0].contains("method=POST"),
        "{log}"
    );

    for secret in [ann.token.as_str(), bob.token.as_str(), "token=", PASSWORD] {
        assert!(!log.contains(secret), "{secret:?} is in the log: {log}");
    }
    for id in [chat.to_string(), "12345".into(), "67890".into()] {
        assert!(
            access.iter().all(|l| !l.contains(&format!("/{id}"))),
            "a raw id: {log}"
        );
    }
}
