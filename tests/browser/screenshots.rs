//! The screenshots in `docs/screenshots/`, refreshed by `PARLEY_SCREENSHOTS=1 cargo test --test
//! browser`. The scenarios take them where the screen shows what the picture is for: `login`
//! (`login.rs`), `chat` (`chat.rs`), `group` and `chat-list` (`groups.rs`), `mobile`
//! (`phone.rs`). Without the variable they are skipped.

use std::path::Path;
use std::time::Duration;

use crate::driver::Browser;

impl Browser {
    /// Saves the page as `docs/screenshots/{name}.png` when `PARLEY_SCREENSHOTS=1`.
    pub async fn screenshot(&self, name: &str) {
        if std::env::var("PARLEY_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        // No caret or hover artefacts, and no half-finished transitions.
        self.js("document.activeElement?.blur();", vec![]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = self.png().await;
        assert!(
            png.len() < 300 * 1024,
            "{name}.png is {} KB, over 300 KB",
            png.len() / 1024
        );
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}
