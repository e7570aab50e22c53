//! Groups: creating one in the "New group" dialog, joining a public one from "Browse rooms",
//! the members panel, and the chat list beside them with its unread badges.

use std::time::Instant;

use serde_json::json;

use crate::driver::Browser;
use crate::page::{chat_item, tid};
use crate::setup;
use crate::support::app::{Backend, TestApp};

/// A group made in the UI (name, members, public) is joined by a third person from "Browse
/// rooms", and a message in it reaches all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_created_joined_and_shared_by_three() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let started = Instant::now();
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ann = Browser::desktop(driver, "ann").await;
    let bob = Browser::desktop(driver, "bob").await;
    let carol = Browser::desktop(driver, "carol").await;
    tokio::join!(
        ann.register(&app, "ann"),
        bob.register(&app, "bob"),
        carol.register(&app, "carol"),
    );

    // Ann creates a public group with Bob in it.
    ann.click(&tid("new-group")).await;
    ann.fill(&tid("group-name"), "Weekend hikers").await;
    ann.select(&tid("group-visibility"), "public").await;
    ann.click(r#"[data-testid="group-member"][data-username="bob"]"#)
        .await;
    ann.wait_text(".picked-count", "1 person selected").await;
    ann.click(&tid("group-create")).await;
    ann.wait_text(&tid("chat-title"), "Weekend hikers").await;
    ann.wait_text_where("the group's subtitle", &tid("chat-subtitle"), |s| {
        s.starts_with("Public group · 2 members")
    })
    .await;

    // Bob was added: the group shows up in his list.
    bob.open_chat("Weekend hikers").await;

    // Carol finds it under "Browse rooms" and joins.
    carol.click(&tid("browse-rooms")).await;
    let room = r#"[data-testid="room-item"][data-name="Weekend hikers"]"#;
    carol
        .wait_text_where("the room in the list", room, |s| s.contains("2 members"))
        .await;
    carol
        .click(&format!(r#"{room} [data-testid="room-join"]"#))
        .await;
    carol.wait_text(&tid("chat-title"), "Weekend hikers").await;
    carol.wait_hidden("dialog.modal").await;
    ann.wait_text_where("Carol to count as a member", &tid("chat-subtitle"), |s| {
        s.starts_with("Public group · 3 members")
    })
    .await;

    // One message from each reaches everyone, once.
    carol.send("Hello hikers!").await;
    ann.send("Welcome, Carol.").await;
    bob.send("Saturday at nine?").await;
    let all = ["Hello hikers!", "Welcome, Carol.", "Saturday at nine?"];
    tokio::join!(
        ann.assert_once(&all),
        bob.assert_once(&all),
        carol.assert_once(&all)
    );

    // Ann also has a direct chat with an unread message, for the overview screenshot.
    let bob_api = app.logged_in("bob").await;
    let ann_api = app.logged_in("ann").await;
    let direct = bob_api.direct_with(&ann_api).await;
    bob_api.post_message(direct, "Bring snacks?").await;
    ann.wait_visible(&format!("{} {}", chat_item("bob"), tid("unread-badge")))
        .await;
    ann.click(&tid("members-button")).await;
    ann.wait_js(
        "three members in the panel",
        "return document.querySelectorAll('[data-testid=member-item]').length;",
        vec![],
        |v| *v == json!(3),
    )
    .await;
    ann.screenshot("group").await;
    ann.click(".panel-close").await;
    ann.screenshot("chat-list").await;

    for b in [&ann, &bob, &carol] {
        b.assert_clean_console(&[]).await;
    }
    tokio::join!(ann.close(), bob.close(), carol.close());
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}
