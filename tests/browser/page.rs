//! Parley's web client as a person uses it: open it, register or log in, find someone, open
//! a chat, send and read messages. Elements are found by their `data-testid`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::driver::{Browser, POLL};
use crate::support::app::{PASSWORD, TestApp};

/// `[data-testid="id"]`.
pub fn tid(id: &str) -> String {
    format!(r#"[data-testid="{id}"]"#)
}

/// The entry of the chat titled `title` in the chat list.
pub fn chat_item(title: &str) -> String {
    format!(r#"[data-testid="chat-item"][data-title="{title}"]"#)
}

/// The Enter key, to type at the end of a message.
pub fn enter() -> char {
    fantoccini::key::Key::Enter.into()
}

/// Counts the delivered messages of the open chat whose text is `arguments[0]`.
const COUNT_JS: &str = "return [...document.querySelectorAll(\
    '[data-testid=message] [data-testid=message-text]')]\
    .filter((e) => e.textContent === arguments[0]).length;";

impl Browser {
    /// Opens the app and waits for it to boot (the splash screen to go).
    pub async fn open_app(&self, app: &TestApp) {
        self.goto(&app.base).await;
        self.wait_booted().await;
    }

    /// Waits until the page loaded or reloaded last has booted.
    pub async fn wait_booted(&self) {
        self.wait_js(
            "the app to boot",
            "return !document.getElementById('splash');",
            vec![],
            |v| *v == json!(true),
        )
        .await;
    }

    /// Registers through the "Create account" form and waits for the app.
    pub async fn register(&self, app: &TestApp, username: &str) {
        self.open_app(app).await;
        self.click(&tid("register-tab")).await;
        self.fill(&tid("register-username"), username).await;
        self.fill(&tid("register-email"), &format!("{username}@example.com"))
            .await;
        self.fill(&tid("register-password"), PASSWORD).await;
        self.fill(&tid("register-password-confirm"), PASSWORD).await;
        self.click(&tid("register-submit")).await;
        self.wait_logged_in(username).await;
    }

    /// Opens the app and logs in through the login form.
    pub async fn login(&self, app: &TestApp, username: &str) {
        self.open_app(app).await;
        self.login_here(username).await;
    }

    /// Logs in through the login form on the page already open, and waits for the app.
    pub async fn login_here(&self, username: &str) {
        self.fill(&tid("login-username"), username).await;
        self.fill(&tid("login-password"), PASSWORD).await;
        self.click(&tid("login-submit")).await;
        self.wait_logged_in(username).await;
    }

    pub async fn wait_logged_in(&self, username: &str) {
        self.wait_visible(&tid("app-screen")).await;
        self.wait_text(&tid("me-name"), username).await;
        assert!(!self.is_visible(&tid("auth-screen")).await);
        // Connected: the socket is open (the footer says so).
        self.wait_text(".me-status", "Online").await;
    }

    /// Opens (or finds) the direct chat with `username` from the "New chat" dialog.
    pub async fn start_direct(&self, username: &str) {
        self.click(&tid("new-chat")).await;
        self.fill(&tid("user-search"), username).await;
        self.click(&format!(
            r#"[data-testid="user-item"][data-username="{username}"]"#
        ))
        .await;
        self.wait_text(&tid("chat-title"), username).await;
        self.wait_hidden("dialog.modal").await;
    }

    /// Opens the chat titled `title` from the chat list.
    pub async fn open_chat(&self, title: &str) {
        self.click(&chat_item(title)).await;
        self.wait_text(&tid("chat-title"), title).await;
    }

    /// Types a message and sends it with Enter.
    pub async fn send(&self, text: &str) {
        self.keys(&tid("composer-input"), &format!("{text}{}", enter()))
            .await;
        self.wait_message(text).await;
    }

    /// How many delivered messages with exactly this text the open chat shows.
    pub async fn message_count(&self, text: &str) -> u64 {
        self.js(COUNT_JS, vec![json!(text)])
            .await
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits until the open chat shows the delivered message `text`.
    pub async fn wait_message(&self, text: &str) {
        self.wait_js(
            format!("message {text:?}"),
            COUNT_JS,
            vec![json!(text)],
            |v| v.as_u64().unwrap_or(0) >= 1,
        )
        .await;
    }

    /// Asserts the open chat shows each of `texts` exactly once, and still does a moment
    /// later (a duplicate from a catch-up racing a live event would show up in that time).
    pub async fn assert_once(&self, texts: &[&str]) {
        let texts: Vec<Value> = texts.iter().map(|t| json!(t)).collect();
        let script = "return arguments[0].map((t) => [...document.querySelectorAll(\
            '[data-testid=message] [data-testid=message-text]')]\
            .filter((e) => e.textContent === t).length);";
        let counts = |v: &Value| -> Vec<u64> {
            v.as_array()
                .map(|a| a.iter().map(|n| n.as_u64().unwrap_or(0)).collect())
                .unwrap_or_default()
        };
        self.wait_js(
            format!("messages {texts:?}"),
            script,
            vec![json!(texts)],
            |v| counts(v).iter().all(|&n| n >= 1),
        )
        .await;
        let until = Instant::now() + Duration::from_millis(600);
        loop {
            let seen = counts(&self.js(script, vec![json!(texts)]).await);
            assert!(
                seen.iter().all(|&n| n == 1),
                "{}: messages {texts:?} are shown {seen:?} times, want once each",
                self.name
            );
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
