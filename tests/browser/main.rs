//! Browser tests: the web client in headless Chromium, driven over WebDriver (chromedriver and
//! `fantoccini`) against a real Parley server on SQLite. Each person is a browser of their own:
//! a WebDriver session with its own profile and cookie jar.
//!
//! - `driver.rs`: chromedriver and [`driver::Browser`], one Chromium with the waiting, clicking
//!   and typing the scenarios are written in;
//! - `page.rs`: Parley's pages as a person uses them (register, log in, open a chat, send...);
//! - `screenshots.rs`: `PARLEY_SCREENSHOTS=1` refreshes `docs/screenshots/`;
//! - one file of scenarios per screen: `login.rs` (login and registration), `chat.rs` (a direct
//!   chat, reconnecting), `groups.rs` (groups, rooms, members and the chat list beside them),
//!   `phone.rs` (the phone layout), `sessions.rs` (staying signed in, and being signed out from
//!   another device), `actions.rs` (replying, reacting, editing and deleting).
//!
//! The server, and the people a scenario needs besides the ones at a browser, come from
//! `tests/support/app.rs`, as in the API tests.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (on `PATH` or in `/usr/bin`). Without them the
//! tests print `SKIPPED browser tests: ...` and pass, except with `CI=true`, where they fail.
//!
//! The first-paint benchmark of the web client uses the same driver: `examples/first_paint.rs`.

#[path = "../support/mod.rs"]
mod support;

mod driver;
mod page;
mod screenshots;

mod actions;
mod chat;
mod groups;
mod login;
mod phone;
mod sessions;

use std::io::Write;
use std::sync::OnceLock;

use driver::Driver;

/// The shared chromedriver, started on first use; `None` when the tests are to be skipped.
fn driver() -> Option<&'static Driver> {
    static DRIVER: OnceLock<Option<Driver>> = OnceLock::new();
    DRIVER
        .get_or_init(|| match driver::find_chromedriver() {
            Ok(chromedriver) => Some(Driver::start(&chromedriver)),
            Err(missing) => {
                let hint = "install them with `apt-get install -y chromium chromium-driver`";
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("browser tests cannot run: {missing}; {hint}");
                }
                // Written straight to stderr: the test harness captures eprintln! output of
                // passing tests, and a skip must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED browser tests: {missing}; {hint} (with CI=true this fails)"
                );
                None
            }
        })
        .as_ref()
}

/// Takes the serial lock and the driver; `None` means skip the test.
///
/// Browser tests run one at a time: the machine is small, and presence and typing indicators
/// are timing-sensitive enough without several Chromiums competing for two cores.
async fn setup() -> Option<(tokio::sync::MutexGuard<'static, ()>, &'static Driver)> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let driver = driver()?;
    Some((SERIAL.lock().await, driver))
}
