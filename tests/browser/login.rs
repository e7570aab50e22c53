//! The login and registration screen: errors beside their fields, and a session that
//! survives a reload.

use std::time::Instant;

use serde_json::json;

use crate::driver::Browser;
use crate::page::tid;
use crate::setup;
use crate::support::app::{Backend, PASSWORD, TestApp, register_body};

/// Registration errors from the API show next to the field they concern.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_errors_show_next_to_their_field() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let started = Instant::now();
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.user("taken").await;

    // What the API itself says, to compare with what the page shows.
    let api_detail = |username: &str, confirm: &str| {
        let body = register_body(
            username,
            &format!("{username}-x@example.com"),
            PASSWORD,
            confirm,
        );
        async {
            app.register(body).await.1["detail"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let mismatch_detail = api_detail("someone", "password124").await;
    let taken_detail = api_detail("taken", PASSWORD).await;

    let b = Browser::desktop(driver, "visitor").await;
    b.open_app(&app).await;
    b.wait_visible(&tid("login-form")).await;
    b.screenshot("login").await;

    b.click(&tid("register-tab")).await;
    b.fill(&tid("register-username"), "newbie").await;
    b.fill(&tid("register-email"), "newbie@example.com").await;
    b.fill(&tid("register-password"), PASSWORD).await;
    b.fill(&tid("register-password-confirm"), "password124")
        .await;
    b.click(&tid("register-submit")).await;
    let confirm_error = r#".field[data-field="password_confirm"] [data-testid="field-error"]"#;
    b.wait_visible(confirm_error).await;
    b.wait_text(confirm_error, &mismatch_detail).await;
    assert_eq!(
        b.js(
            "return document.querySelectorAll('#register-form [data-testid=field-error]').length;",
            vec![]
        )
        .await,
        json!(1),
        "only the confirmation field shows an error"
    );
    assert_eq!(
        b.js(
            "return document.getElementById('register-password-confirm').getAttribute('aria-invalid');",
            vec![]
        )
        .await,
        json!("true")
    );

    // Fixing the confirmation clears its error; a taken username shows next to the username.
    b.fill(&tid("register-password-confirm"), PASSWORD).await;
    b.wait_hidden(confirm_error).await;
    b.fill(&tid("register-username"), "taken").await;
    b.click(&tid("register-submit")).await;
    let username_error = r#".field[data-field="username"] [data-testid="field-error"]"#;
    b.wait_visible(username_error).await;
    b.wait_text(username_error, &taken_detail).await;
    assert!(!b.is_visible(confirm_error).await);
    assert!(!b.is_visible(&tid("app-screen")).await);

    // The 422 and the 409 are logged by the browser as failed loads; nothing else may be.
    b.assert_clean_console(&[
        "the server responded with a status of 422",
        "the server responded with a status of 409",
    ])
    .await;
    b.close().await;
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}

/// Reloading keeps the session, the open chat and its history; the page loads without
/// console errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_session_and_history() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let started = Instant::now();
    let app = TestApp::spawn(Backend::Sqlite).await;
    let [ann_api, bob_api] = app.users(["ann", "bob"]).await;
    let chat = bob_api.direct_with(&ann_api).await;
    bob_api.post_message(chat, "Morning!").await;
    bob_api.post_message(chat, "Did you get the tickets?").await;

    let ann = Browser::desktop(driver, "ann").await;
    ann.open_app(&app).await;
    ann.wait_visible(&tid("login-form")).await;
    // The only error a fresh visit may log is the expected 401 of the session check.
    ann.assert_clean_console(&[]).await;
    ann.login_here("ann").await;

    ann.open_chat("bob").await;
    ann.wait_message("Did you get the tickets?").await;
    ann.send("Yes, two of them.").await;

    ann.refresh().await;
    ann.wait_booted().await;
    ann.wait_logged_in("ann").await;
    // The open chat is in the URL, so it comes back with its history.
    ann.wait_text(&tid("chat-title"), "bob").await;
    ann.assert_once(&["Morning!", "Did you get the tickets?", "Yes, two of them."])
        .await;
    // Logged in, the page loads without a single console error.
    ann.assert_clean_console(&[]).await;

    ann.close().await;
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}
