//! A direct chat: found in "New chat", talked in both ways with typing and presence, and
//! kept whole when the server restarts under it.

use std::time::Instant;

use serde_json::json;

use crate::driver::Browser;
use crate::page::{ANON_PROBE, enter, tid};
use crate::setup;
use crate::support::app::{Backend, TestApp};

/// Two people register through the UI, start a direct chat, talk both ways with Enter, see
/// each other typing, and see each other go offline and come back in the chat header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_chat_between_two_browsers() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let started = Instant::now();
    let app = TestApp::spawn(Backend::Sqlite).await;
    // Launched one after the other: two Chromiums starting at once are slower than in turn.
    let ann = Browser::desktop(driver, "ann").await;
    let bob = Browser::desktop(driver, "bob").await;
    tokio::join!(ann.register(&app, "ann"), bob.register(&app, "bob"));

    // Ann finds Bob in the new-chat dialog's user search.
    ann.start_direct("bob").await;
    ann.wait_text(&tid("chat-status"), "online").await;
    ann.send("Hi Bob!").await;

    // Bob sees the chat arrive in his list and opens it.
    bob.open_chat("ann").await;
    bob.wait_message("Hi Bob!").await;
    bob.wait_text(&tid("chat-status"), "online").await;
    bob.send("Hey Ann! How are you?").await;
    ann.wait_message("Hey Ann! How are you?").await;
    ann.send("Good, thanks. Lunch tomorrow?").await;
    bob.wait_message("Good, thanks. Lunch tomorrow?").await;
    bob.send("Sure, where?").await;
    ann.wait_message("Sure, where?").await;

    // Typing: Bob sees "ann is typing..." while Ann types, and it goes when she sends.
    ann.keys(&tid("composer-input"), "At the usual").await;
    bob.wait_visible(&tid("typing-indicator")).await;
    bob.wait_text(&tid("typing-indicator"), "ann is typing...")
        .await;
    bob.screenshot("chat").await;
    ann.keys(
        &tid("composer-input"),
        &format!(" place, at noon.{}", enter()),
    )
    .await;
    bob.wait_message("At the usual place, at noon.").await;
    bob.wait_hidden(&tid("typing-indicator")).await;

    let all = [
        "Hi Bob!",
        "Hey Ann! How are you?",
        "Good, thanks. Lunch tomorrow?",
        "Sure, where?",
        "At the usual place, at noon.",
    ];
    tokio::join!(ann.assert_once(&all), bob.assert_once(&all));
    for b in [&ann, &bob] {
        assert_eq!(
            b.js(
                "return document.querySelectorAll('[data-testid=message-pending]').length;",
                vec![]
            )
            .await,
            json!(0),
            "{}: a message is still pending",
            b.name
        );
    }

    // Presence: Bob closes his browser; Ann's header says when he was last seen...
    bob.assert_clean_console(&[ANON_PROBE]).await;
    bob.close().await;
    let status = ann
        .wait_text_where("Bob to be shown offline", &tid("chat-status"), |s| {
            s.starts_with("last seen")
        })
        .await;
    assert_eq!(status, "last seen just now");

    // ...and "online" again when he is back, in a new browser.
    let bob = Browser::desktop(driver, "bob-again").await;
    bob.login(&app, "bob").await;
    ann.wait_text(&tid("chat-status"), "online").await;
    bob.open_chat("ann").await;
    bob.assert_once(&all).await;

    for b in [&ann, &bob] {
        b.assert_clean_console(&[ANON_PROBE]).await;
    }
    tokio::join!(ann.close(), bob.close());
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}

/// The server restarts under two open chats: both pages say "Reconnecting", recover, fetch
/// what they missed, and show every message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_is_survived() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let started = Instant::now();
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ann_api = app.user("ann").await;
    let bob_api = app.user("bob").await;
    let chat = ann_api.direct_with(&bob_api).await;
    ann_api.post_message(chat, "Before the restart").await;

    // Launched one after the other: two Chromiums starting at once are slower than in turn.
    let ann = Browser::desktop(driver, "ann").await;
    let bob = Browser::desktop(driver, "bob").await;
    tokio::join!(ann.login(&app, "ann"), bob.login(&app, "bob"));
    tokio::join!(ann.open_chat("bob"), bob.open_chat("ann"));
    bob.wait_message("Before the restart").await;

    // Stop the server: both pages notice and say so.
    let db_url = app.db_url.clone();
    let addr = app.addr;
    let dir = app.stop().await;
    for b in [&ann, &bob] {
        b.wait_visible(&tid("connection-banner")).await;
        b.wait_text_where("the banner", &tid("connection-banner"), |s| {
            s.contains("Reconnecting")
        })
        .await;
    }
    // Ann's browser also loses its network, so it stays disconnected after the server is back
    // until the test lets it reconnect.
    ann.set_offline(true).await;

    let app = TestApp::spawn_at(&db_url, addr, dir).await;
    bob.wait_hidden(&tid("connection-banner")).await;
    bob.wait_text(".me-status", "Online").await;
    // The restarted server knows Ann is not connected, and since when.
    let status = bob
        .wait_text_where("Ann to be shown offline", &tid("chat-status"), |s| {
            s.starts_with("last seen")
        })
        .await;
    assert_eq!(status, "last seen just now");

    // Posted through the API while Ann's page is disconnected: she must catch up on it.
    let bob_api = app.logged_in("bob").await;
    bob_api.post_message(chat, "Sent while you were away").await;
    bob.assert_once(&["Sent while you were away"]).await;
    assert!(
        ann.is_visible(&tid("connection-banner")).await,
        "ann's page should still be disconnected"
    );
    assert_eq!(ann.message_count("Sent while you were away").await, 0);

    ann.set_offline(false).await;
    ann.wait_hidden(&tid("connection-banner")).await;
    ann.wait_text(".me-status", "Online").await;
    ann.assert_once(&["Sent while you were away"]).await;
    ann.wait_text(&tid("chat-status"), "online").await;
    bob.wait_text(&tid("chat-status"), "online").await;

    // Live again both ways, exactly once.
    ann.send("After the restart").await;
    bob.wait_message("After the restart").await;
    bob.send("Still here").await;
    ann.wait_message("Still here").await;
    let all = [
        "Before the restart",
        "Sent while you were away",
        "After the restart",
        "Still here",
    ];
    tokio::join!(ann.assert_once(&all), bob.assert_once(&all));

    // Errors of failed connection attempts while the server was down are expected; any
    // other error (a script error, say) is not.
    for b in [&ann, &bob] {
        b.assert_clean_console(&[ANON_PROBE, "WebSocket connection to", "net::ERR_"])
            .await;
    }
    tokio::join!(ann.close(), bob.close());
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}
