//! The phone layout: the chat list and the open chat take turns on a small screen.

use std::time::Instant;

use crate::driver::Browser;
use crate::page::tid;
use crate::setup;
use crate::support::app::{Backend, TestApp};

/// On a phone-sized screen the list and the open chat take turns; back returns to the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_layout_shows_one_pane_at_a_time() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let started = Instant::now();
    let app = TestApp::spawn(Backend::Sqlite).await;
    let [ann_api, bob_api] = app.users(["ann", "bob"]).await;
    let chat = bob_api.direct_with(&ann_api).await;
    bob_api
        .post_message(chat, "Are we still on for lunch?")
        .await;
    ann_api
        .post_message(chat, "Yes! 12:30 at the usual place.")
        .await;
    bob_api.post_message(chat, "Great, see you there!").await;
    // Bob is online (connected), as a phone user would usually find him.
    let _bob_online = bob_api.ws_all().await;

    let ann = Browser::phone(driver, "ann-phone").await;
    ann.login(&app, "ann").await;
    assert!(ann.is_visible(&tid("chat-list")).await);
    assert!(!ann.is_visible(&tid("composer-input")).await);

    ann.open_chat("bob").await;
    ann.wait_message("Great, see you there!").await;
    assert!(
        !ann.is_visible(&tid("chat-list")).await,
        "the list hides while a chat is open"
    );
    ann.wait_visible(&tid("composer-input")).await;
    ann.screenshot("mobile").await;

    ann.click("#chat-back").await;
    ann.wait_visible(&tid("chat-list")).await;
    ann.wait_hidden(&tid("composer-input")).await;

    ann.assert_clean_console(&[]).await;
    ann.close().await;
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}
