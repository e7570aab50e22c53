//! Sessions as a person meets them: a page in use stays signed in past its short-lived access
//! token, without a visible interruption, and a page whose session was ended from another
//! device goes back to the login screen.

use std::time::{Duration, Instant};

use parley::adapters::jwt::JwtTokens;
use parley::domain::{SessionId, UserId};
use parley::ports::TokenService;
use serde_json::json;

use crate::driver::Browser;
use crate::page::tid;
use crate::setup;
use crate::support::app::{Backend, SECRET, TestApp, TestUser, WAIT, is_message};

/// Watches the page for the "Reconnecting..." banner from now on; read with
/// [`BANNER_SEEN_JS`].
const WATCH_BANNER_JS: &str = "window.__bannerSeen = false; \
    new MutationObserver(() => { \
      if (document.querySelector('[data-testid=connection-banner]')) window.__bannerSeen = true; \
    }).observe(document.body, { childList: true, subtree: true }); \
    return true;";
const BANNER_SEEN_JS: &str = "return window.__bannerSeen;";

/// `user` with a token of the same session that lives an hour, signed as the server signs.
fn long_lived(user: &TestUser) -> TestUser {
    let token = JwtTokens::new(SECRET.as_bytes(), chrono::Duration::hours(1))
        .unwrap()
        .issue(UserId(user.id), &SessionId(user.session_id()))
        .unwrap()
        .token;
    user.with_token(&token)
}

/// Access tokens live three seconds: the page renews them before they expire, and its socket
/// (which closes when the token it was opened with expires) reconnects and resumes quietly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_in_use_stays_signed_in_past_the_access_token_lifetime() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let started = Instant::now();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.token_ttl_seconds = Some(3)).await;
    let [ann_api, bob_api] = app.users(["ann", "bob"]).await;
    // The people on the API side hold tokens that outlast the test.
    let (ann_api, bob_api) = (long_lived(&ann_api), long_lived(&bob_api));
    let chat = bob_api.direct_with(&ann_api).await;
    let ann = Browser::desktop(driver, "ann").await;
    ann.login(&app, "ann").await;
    ann.open_chat("bob").await;
    let mut bob_socket = bob_api.ws_all().await;
    ann.js(WATCH_BANNER_JS, vec![]).await;

    // Three lifetimes of the first token, with the page open and used.
    let lifetimes = Instant::now();
    for round in 0..3 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let text = format!("from bob, round {round}");
        bob_api.post_message(chat, &text).await;
        ann.wait_message(&text).await;
        let mine = format!("from ann, round {round}");
        ann.send(&mine).await;
        bob_socket
            .expect(&format!("ann's {mine:?}"), |v| is_message(v, &mine))
            .await;
    }
    assert!(lifetimes.elapsed() >= Duration::from_secs(9));

    assert!(ann.is_visible(&tid("app-screen")).await);
    assert!(!ann.is_visible(&tid("auth-screen")).await);
    assert_eq!(
        ann.js(BANNER_SEEN_JS, vec![]).await,
        json!(false),
        "no \"Reconnecting...\" while the token was renewed"
    );
    ann.wait_text(".me-status", "Online").await;
    // One session all along (besides the one set up over the API): renewing is not
    // logging in again.
    let (_, sessions) = ann_api.get("/auth/sessions").await;
    assert_eq!(sessions.as_array().unwrap().len(), 2, "{sessions}");
    // Renewed in time, the page never had a request refused.
    ann.assert_clean_console(&[]).await;
    ann.close().await;
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}

/// Reopened after its access token expired, a page signs in again with its refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_reopened_after_its_token_expired_is_still_signed_in() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.token_ttl_seconds = Some(2)).await;
    app.user("ann").await;
    let ann = Browser::desktop(driver, "ann").await;
    ann.login(&app, "ann").await;
    ann.goto("about:blank").await;
    // Longer than the token and its cookie live.
    tokio::time::sleep(Duration::from_secs(3)).await;

    ann.open_app(&app).await;

    ann.wait_logged_in("ann").await;
    ann.assert_clean_console(&[]).await;
    ann.close().await;
    app.stop().await;
}

/// Signed out from another device, the page goes back to the login screen at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_from_another_device_signs_the_page_out() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let started = Instant::now();
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.user("ann").await;
    let ann = Browser::desktop(driver, "ann").await;
    ann.login(&app, "ann").await;
    let phone = app.logged_in("ann").await;
    let (_, sessions) = phone.get("/auth/sessions").await;
    let browser_session = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .expect("the browser's session")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let ended = Instant::now();
    let (status, _) = phone
        .delete(&format!("/auth/sessions/{browser_session}"))
        .await;
    assert_eq!(status, 204);

    ann.wait_visible(&tid("login-form")).await;
    assert!(ended.elapsed() < WAIT);
    assert!(!ann.is_visible(&tid("app-screen")).await);
    ann.wait_text(
        "#auth-message",
        "Your session has ended. Please log in again.",
    )
    .await;
    // Reloading does not bring it back.
    ann.refresh().await;
    ann.wait_booted().await;
    ann.wait_visible(&tid("login-form")).await;
    assert_eq!(
        phone.get("/auth/me").await.0,
        200,
        "the phone stays signed in"
    );
    // The refused renewal is the one failed request the page may log.
    ann.assert_clean_console(&["the server responded with a status of 401"])
        .await;
    ann.close().await;
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}

/// The Sessions dialog lists the devices, signs one out, then every other one, and changes
/// the password; each device signed out is refused from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_dialog_signs_devices_out_and_changes_the_password() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite).await;
    let phone = app.user("ann").await;
    let tablet = app.logged_in("ann").await;
    let ann = Browser::desktop(driver, "ann").await;
    ann.login(&app, "ann").await;

    ann.click(&tid("sessions")).await;
    let items = r#"[data-testid="session-item"]"#;
    let count = |n: u64| move |v: &serde_json::Value| *v == json!(n);
    let count_js = "return document.querySelectorAll('[data-testid=session-item]').length;";
    ann.wait_js("three sessions", count_js, vec![], count(3))
        .await;
    ann.wait_visible(&format!(r#"{items}[data-current="true"]"#))
        .await;

    ann.click(&format!(
        r#"{items}[data-id="{}"] [data-testid="session-end"]"#,
        phone.session_id()
    ))
    .await;
    ann.wait_js("two sessions", count_js, vec![], count(2))
        .await;
    assert_eq!(
        phone.get("/auth/me").await.0,
        401,
        "the phone is signed out"
    );
    assert_eq!(tablet.get("/auth/me").await.0, 200);

    ann.click(&tid("logout-others")).await;
    ann.wait_js("this session only", count_js, vec![], count(1))
        .await;
    assert_eq!(
        tablet.get("/auth/me").await.0,
        401,
        "the tablet is signed out"
    );

    let wrong_field = r#".field[data-field="current_password"] [data-testid="field-error"]"#;
    ann.fill(&tid("sessions-current_password"), "not my password")
        .await;
    ann.fill(&tid("sessions-new_password"), "a brand new password")
        .await;
    ann.click(&tid("change-password")).await;
    ann.wait_visible(wrong_field).await;
    let other = app.logged_in("ann").await;
    ann.fill(
        &tid("sessions-current_password"),
        crate::support::app::PASSWORD,
    )
    .await;
    ann.fill(&tid("sessions-new_password"), "a brand new password")
        .await;
    ann.click(&tid("change-password")).await;
    ann.wait_js(
        "the password changed",
        "return document.querySelector('.modal-sessions [role=status]').textContent;",
        vec![],
        |v| {
            v.as_str()
                .is_some_and(|t| t.starts_with("Password changed."))
        },
    )
    .await;
    assert!(!ann.is_visible(wrong_field).await);
    ann.wait_js("this session only, again", count_js, vec![], count(1))
        .await;
    assert_eq!(
        other.get("/auth/me").await.0,
        401,
        "signed out by the change"
    );
    let old = app
        .client()
        .post(app.url("/auth/login"))
        .json(&json!({"username": "ann", "password": crate::support::app::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401, "the old password no longer works");
    assert!(
        ann.is_visible(&tid("app-screen")).await,
        "this page stays signed in"
    );
    ann.assert_clean_console(&["the server responded with a status of 403"])
        .await;
    ann.close().await;
    app.stop().await;
}
