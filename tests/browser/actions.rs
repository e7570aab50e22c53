//! What people do with a message in the web client: reply to it (and jump to what a reply
//! answers), react to it, edit it with the Up arrow, delete it, each seen at once by the other
//! person.

use std::time::Instant;

use fantoccini::key::Key;
use serde_json::json;

use crate::driver::Browser;
use crate::page::{enter, tid};
use crate::setup;
use crate::support::app::{Backend, TestApp};

/// The message of the open chat whose text is `arguments[0]`, by its id.
const MESSAGE_ID_JS: &str = "const e = [...document.querySelectorAll(\
    '[data-testid=message] [data-testid=message-text]')]\
    .find((t) => t.textContent === arguments[0]); \
    return e ? e.closest('[data-message-id]').dataset.messageId : null;";

impl Browser {
    /// The selector of the message showing `text`, once it shows.
    async fn message(&self, text: &str) -> String {
        let id = self
            .wait_js(
                format!("message {text:?}"),
                MESSAGE_ID_JS,
                vec![json!(text)],
                |v| v.is_string(),
            )
            .await;
        format!(r#"[data-message-id="{}"]"#, id.as_str().unwrap())
    }

    /// Clicks one of the actions of the message showing `text` (reply, react-picker, edit,
    /// delete), shown the way a long press shows them.
    async fn message_action(&self, text: &str, action: &str) {
        let message = self.message(text).await;
        self.js(
            "document.querySelector(arguments[0]).classList.add('show-actions');",
            vec![json!(message)],
        )
        .await;
        self.click(&format!("{message} {}", tid(&format!("action-{action}"))))
            .await;
    }

    /// Waits until the message showing `text` has the reaction chip `emoji` with `count`.
    async fn wait_reaction(&self, text: &str, emoji: &str, count: u64) {
        let message = self.message(text).await;
        self.wait_js(
            format!("{emoji} x{count} on {text:?}"),
            "const c = document.querySelector(arguments[0] + \
                ' [data-testid=reaction-chip][data-emoji=\"' + arguments[1] + '\"]'); \
             return c ? Number(c.querySelector('.reaction-count').textContent) : 0;",
            vec![json!(message), json!(emoji)],
            |v| v.as_u64() == Some(count),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_react_edit_and_delete_between_two_browsers() {
    let Some((_serial, driver)) = setup().await else {
        return;
    };
    let started = Instant::now();
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ann = Browser::desktop(driver, "ann").await;
    let bob = Browser::desktop(driver, "bob").await;
    tokio::join!(ann.register(&app, "ann"), bob.register(&app, "bob"));
    ann.start_direct("bob").await;
    ann.send("See you at noon").await;
    bob.open_chat("ann").await;

    // Bob answers Ann's message; both see the quote above his reply.
    bob.message_action("See you at noon", "reply").await;
    bob.wait_text(".composer-mode .mode-label", "Replying to ann")
        .await;
    bob.send("Noon works").await;
    bob.wait_hidden(&tid("composer-mode")).await;
    let reply = ann.message("Noon works").await;
    ann.wait_text(
        &format!("{reply} {} .quote-text", tid("message-quote")),
        "See you at noon",
    )
    .await;

    // Ann reacts from the picker; Bob sees it and adds his own by clicking the chip.
    ann.message_action("Noon works", "react-picker").await;
    ann.click(&format!(
        r#"{} [data-testid="picker-emoji"][data-emoji="👍"]"#,
        tid("react-picker")
    ))
    .await;
    bob.wait_reaction("Noon works", "👍", 1).await;
    let on_bob = bob.message("Noon works").await;
    bob.click(&format!(
        r#"{on_bob} [data-testid="reaction-chip"][data-emoji="👍"]"#
    ))
    .await;
    ann.wait_reaction("Noon works", "👍", 2).await;
    // Clicking one's own reaction takes it back.
    bob.click(&format!(
        r#"{on_bob} [data-testid="reaction-chip"][data-emoji="👍"]"#
    ))
    .await;
    ann.wait_reaction("Noon works", "👍", 1).await;

    // Up in the empty composer edits Ann's last message; Esc would cancel, Enter saves.
    ann.keys(&tid("composer-input"), &String::from(char::from(Key::Up)))
        .await;
    ann.wait_text(".composer-mode .mode-label", "Editing your message")
        .await;
    ann.keys(
        &tid("composer-input"),
        &String::from(char::from(Key::Escape)),
    )
    .await;
    ann.wait_hidden(&tid("composer-mode")).await;
    ann.keys(&tid("composer-input"), &String::from(char::from(Key::Up)))
        .await;
    ann.fill(
        &tid("composer-input"),
        &format!("See you at one{}", enter()),
    )
    .await;
    let edited = bob.message("See you at one").await;
    bob.wait_visible(&format!("{edited} {}", tid("message-edited")))
        .await;
    bob.wait_text(
        &format!("{on_bob} {} .quote-text", tid("message-quote")),
        "See you at one",
    )
    .await;

    // Bob jumps from his reply's quote to the message it answers.
    bob.click(&format!("{on_bob} {}", tid("message-quote")))
        .await;
    bob.wait_js(
        "the answered message to flash",
        "return document.querySelector(arguments[0]).classList.contains('flash');",
        vec![json!(edited)],
        |v| *v == json!(true),
    )
    .await;

    // Ann deletes it (a second click confirms); Bob sees a tombstone, and his quote says so.
    ann.message_action("See you at one", "delete").await;
    let on_ann = ann.message("See you at one").await;
    ann.click(&format!("{on_ann} {}", tid("action-delete")))
        .await;
    bob.wait_text(
        &format!("{edited} {}", tid("message-text")),
        "This message was deleted",
    )
    .await;
    bob.wait_text(
        &format!("{on_bob} {} .quote-text", tid("message-quote")),
        "Deleted message",
    )
    .await;
    ann.wait_text(
        &format!("{on_ann} {}", tid("message-text")),
        "This message was deleted",
    )
    .await;

    // After a reload, history shows the same.
    bob.refresh().await;
    bob.wait_booted().await;
    bob.open_chat("ann").await;
    bob.wait_text(
        &format!("{edited} {}", tid("message-text")),
        "This message was deleted",
    )
    .await;
    bob.wait_reaction("Noon works", "👍", 1).await;

    for b in [&ann, &bob] {
        b.assert_clean_console(&[]).await;
    }
    tokio::join!(ann.close(), bob.close());
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}
