//! A direct chat: found in "New chat", talked in both ways with typing and presence, and
//! kept whole when the server restarts under it, messages typed meanwhile included.

use std::time::Instant;

use serde_json::json;

use crate::driver::Browser;
use crate::page::{enter, tid};
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
    bob.assert_clean_console(&[]).await;
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
        b.assert_clean_console(&[]).await;
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
    let [ann_api, bob_api] = app.users(["ann", "bob"]).await;
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
        b.assert_clean_console(&["WebSocket connection to", "net::ERR_"])
            .await;
    }
    tokio::join!(ann.close(), bob.close());
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}

/// Messages typed while the server is unreachable wait as pending bubbles and are delivered
/// exactly once when it is back: one on the same page as it reconnects, one typed before the
/// page was left and delivered when it is opened again (the outbox is kept in the browser).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsent_messages_are_delivered_once_after_a_restart_and_a_reload() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let started = Instant::now();
    let app = TestApp::spawn(Backend::Sqlite).await;
    let [ann_api, bob_api] = app.users(["ann", "bob"]).await;
    let chat = ann_api.direct_with(&bob_api).await;
    bob_api.post_message(chat, "Are you there?").await;

    let ann = Browser::desktop(driver, "ann").await;
    ann.login(&app, "ann").await;
    ann.open_chat("bob").await;
    ann.wait_message("Are you there?").await;
    let pending = tid("message-pending");
    let pending_count = "return document.querySelectorAll('[data-testid=message-pending]').length;";

    // The server goes away (and so does Ann's network, so that she reconnects as soon as it
    // is given back rather than at the end of a backoff): her message waits, pending.
    let (db_url, addr) = (app.db_url.clone(), app.addr);
    let dir = app.stop().await;
    ann.wait_visible(&tid("connection-banner")).await;
    ann.set_offline(true).await;
    ann.keys(
        &tid("composer-input"),
        &format!("Typed while the server was down{}", enter()),
    )
    .await;
    ann.wait_text_where("the message to wait", &pending, |s| {
        s.contains("Typed while the server was down") && s.contains("Waiting for connection")
    })
    .await;
    assert_eq!(
        ann.message_count("Typed while the server was down").await,
        0
    );

    // Back: it is delivered once, and the pending bubble becomes the message.
    let app = TestApp::spawn_at(&db_url, addr, dir).await;
    ann.set_offline(false).await;
    ann.wait_hidden(&tid("connection-banner")).await;
    ann.assert_once(&["Are you there?", "Typed while the server was down"])
        .await;
    ann.wait_js("no pending message", pending_count, vec![], |v| {
        *v == json!(0)
    })
    .await;

    // Down again: a message typed now is still pending when Ann leaves the page...
    let dir = app.stop().await;
    ann.wait_visible(&tid("connection-banner")).await;
    ann.keys(
        &tid("composer-input"),
        &format!("Kept across a reload{}", enter()),
    )
    .await;
    ann.wait_text_where("the second message to wait", &pending, |s| {
        s.contains("Kept across a reload")
    })
    .await;
    ann.goto("about:blank").await;

    // ...and is sent, once, when she opens it again after the server is back.
    let app = TestApp::spawn_at(&db_url, addr, dir).await;
    ann.goto(&format!("{}/#chat/{chat}", app.base)).await;
    ann.wait_booted().await;
    ann.wait_logged_in("ann").await;
    ann.wait_text(&tid("chat-title"), "bob").await;
    let all = [
        "Are you there?",
        "Typed while the server was down",
        "Kept across a reload",
    ];
    ann.assert_once(&all).await;
    ann.wait_js("no pending message", pending_count, vec![], |v| {
        *v == json!(0)
    })
    .await;

    // Stored once each, as Bob's history says.
    let bob_api = app.logged_in("bob").await;
    let (status, history) = bob_api.get(&format!("/chats/{chat}/messages")).await;
    assert_eq!(status, 200, "{history}");
    let texts: Vec<&str> = history
        .as_array()
        .expect("a list of messages")
        .iter()
        .filter_map(|m| m["message"].as_str())
        .collect();
    assert_eq!(texts, all, "each message stored once, in order");

    // Failed attempts while the server was down are expected; nothing else may be logged.
    ann.assert_clean_console(&["WebSocket connection to", "net::ERR_"])
        .await;
    ann.close().await;
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}
