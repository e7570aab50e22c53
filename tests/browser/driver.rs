//! chromedriver and one headless Chromium per [`Browser`], with the waiting, clicking and
//! typing that the scenarios are written in. Nothing here knows Parley's pages (`page.rs`
//! does). `examples/first_paint.rs` uses this module too.
//!
//! One chromedriver serves the whole process. It runs in a process group of its own under a
//! small shell watchdog that kills the group (chromedriver and every Chromium it started) as
//! soon as this process is gone, however it ends; each [`Browser`] also ends its WebDriver
//! session when dropped, so a failing test closes its windows too.

use std::fmt::Display;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// The longest any single expectation is waited for.
pub const WAIT: Duration = Duration::from_secs(10);
/// How often a waited-for condition is re-checked.
pub const POLL: Duration = Duration::from_millis(100);
pub const CHROMIUM: &str = "/usr/bin/chromium";
const DESKTOP: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);

/// A running chromedriver.
pub struct Driver {
    port: u16,
}

/// chromedriver on `PATH` or in `/usr/bin`, provided Chromium is at [`CHROMIUM`]; otherwise
/// what is missing.
pub fn find_chromedriver() -> Result<PathBuf, String> {
    if !Path::new(CHROMIUM).is_file() {
        return Err(format!("{CHROMIUM} is missing"));
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("chromedriver"))
        .find(|p| p.is_file());
    on_path
        .or_else(|| Some(PathBuf::from("/usr/bin/chromedriver")).filter(|p| p.is_file()))
        .ok_or_else(|| "chromedriver is missing (not on PATH nor in /usr/bin)".to_owned())
}

impl Driver {
    /// Starts `chromedriver` on a free port and waits until it listens.
    pub fn start(chromedriver: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // The guard: chromedriver runs in the background of a shell that leads a new process
        // group; once this process is gone, however it ended, the shell kills the group,
        // which takes chromedriver and every Chromium it started along with it.
        let script = r#"
            "$1" --port="$2" --log-level=OFF >/dev/null 2>&1 &
            while kill -0 "$3" 2>/dev/null; do sleep 0.2; done
            kill -KILL 0
        "#;
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("chromedriver-watchdog")
            .arg(chromedriver)
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        // Reaps the shell when it is done (it outlives this process in practice).
        std::thread::spawn(move || guard.wait());
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A headless Chromium in a WebDriver session of its own.
pub struct Browser {
    /// Who this browser is in messages: "ann", "bob-again", ...
    pub name: String,
    c: Client,
    session: String,
    driver_port: u16,
    open: bool,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A desktop-sized window.
    pub async fn desktop(driver: &Driver, name: &str) -> Self {
        Self::launch(driver, name, DESKTOP, false).await
    }

    /// A phone: a 390x844 touch screen.
    pub async fn phone(driver: &Driver, name: &str) -> Self {
        Self::launch(driver, name, PHONE, true).await
    }

    async fn launch(driver: &Driver, name: &str, (w, h): (u32, u32), phone: bool) -> Self {
        let t = Instant::now(); // for a note when Chromium is slow to start
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--mute-audio",
            "--hide-scrollbars",
            "--lang=en-US",
            "--force-device-scale-factor=1",
            &format!("--window-size={w},{h}"),
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = json!({ "binary": CHROMIUM, "args": args });
        if phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": w, "height": h, "pixelRatio": 1.0, "touch": true },
                "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
                    (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
            });
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps: Capabilities = serde_json::from_value(caps).unwrap();
        let c = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("{name}: could not start Chromium: {e}"));
        let session = c
            .session_id()
            .await
            .unwrap()
            .expect("a WebDriver session id");
        let b = Self {
            name: name.to_owned(),
            c,
            session,
            driver_port: driver.port,
            open: true,
            _profile: profile,
        };
        if !phone {
            // --window-size sizes the window, not the page: grow it until the page is w x h.
            let inner = b.js("return [innerWidth, innerHeight];", vec![]).await;
            let (iw, ih) = (inner[0].as_u64().unwrap(), inner[1].as_u64().unwrap());
            if (iw, ih) != (u64::from(w), u64::from(h)) {
                let (ow, oh) = b.c.get_window_size().await.unwrap();
                let grow = |outer: u64, want: u32, inner: u64| {
                    u32::try_from(outer + u64::from(want)).unwrap() - u32::try_from(inner).unwrap()
                };
                b.c.set_window_size(grow(ow, w, iw), grow(oh, h, ih))
                    .await
                    .unwrap();
            }
        }
        if t.elapsed() > Duration::from_secs(3) {
            eprintln!("slow: launching {name} took {:?}", t.elapsed());
        }
        b
    }

    /// Ends the session, closing the browser.
    pub async fn close(mut self) {
        self.open = false;
        let _ = self.c.clone().close().await;
    }

    /// The chromedriver URL of this browser's session, for commands fantoccini lacks.
    pub fn session_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/session/{}",
            self.driver_port, self.session
        )
    }

    pub async fn goto(&self, url: &str) {
        self.c
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{}: open {url}: {e}", self.name));
    }

    pub async fn refresh(&self) {
        self.c
            .refresh()
            .await
            .unwrap_or_else(|e| panic!("{}: reload: {e}", self.name));
    }

    /// Runs `script` (a function body; arguments in `arguments`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.c
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("{}: script failed: {e}\n{script}", self.name))
    }

    /// Re-runs `script` until `done` accepts its result; panics with the last result after
    /// [`WAIT`].
    pub async fn wait_js(
        &self,
        what: impl Display,
        script: &str,
        args: Vec<Value>,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.js(script, args.clone()).await;
            if done(&v) {
                let took = WAIT - deadline.saturating_duration_since(Instant::now());
                if took > Duration::from_millis(700) {
                    eprintln!("slow: {}: {what} took {took:?}", self.name);
                }
                return v;
            }
            if Instant::now() >= deadline {
                self.dump(&format!("timeout-{what}")).await;
                panic!(
                    "{}: timed out after {WAIT:?} waiting for {what}; last seen: {v}",
                    self.name
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the first element matching `css` has exactly this text.
    pub async fn wait_text(&self, css: &str, want: &str) {
        self.wait_js(
            format!("{css} to read {want:?}"),
            TEXT_JS,
            vec![json!(css)],
            |v| v.as_str() == Some(want),
        )
        .await;
    }

    /// Waits until the text of the first element matching `css` satisfies `ok`; returns it.
    pub async fn wait_text_where(
        &self,
        what: &str,
        css: &str,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let v = self
            .wait_js(what, TEXT_JS, vec![json!(css)], |v| {
                v.as_str().is_some_and(&ok)
            })
            .await;
        v.as_str().unwrap().to_owned()
    }

    /// Whether an element matching `css` is rendered (not hidden, has a box).
    pub async fn is_visible(&self, css: &str) -> bool {
        self.js(VISIBLE_JS, vec![json!(css)]).await == json!(true)
    }

    pub async fn wait_visible(&self, css: &str) {
        self.wait_js(
            format!("{css} to be shown"),
            VISIBLE_JS,
            vec![json!(css)],
            |v| *v == json!(true),
        )
        .await;
    }

    pub async fn wait_hidden(&self, css: &str) {
        self.wait_js(
            format!("{css} to go away"),
            VISIBLE_JS,
            vec![json!(css)],
            |v| *v == json!(false),
        )
        .await;
    }

    /// Clicks the element matching `css` once it is shown and enabled, the way a person
    /// would (a real WebDriver click: it fails if something covers the element, and is retried).
    pub async fn click(&self, css: &str) {
        self.wait_js(
            format!("{css} to be clickable"),
            CLICKABLE_JS,
            vec![json!(css)],
            |v| *v == json!(true),
        )
        .await;
        let deadline = Instant::now() + WAIT;
        loop {
            let result = match self.c.find(Locator::Css(css)).await {
                Ok(el) => el.click().await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    self.dump("click-failed").await;
                    panic!("{}: could not click {css}: {e}", self.name)
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Types `text` into the element matching `css` (after clearing it when `clear`).
    async fn type_into(&self, css: &str, text: &str, clear: bool) {
        self.wait_visible(css).await;
        let el = self
            .c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: find {css}: {e}", self.name));
        if clear {
            el.clear()
                .await
                .unwrap_or_else(|e| panic!("{}: clear {css}: {e}", self.name));
        }
        el.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("{}: type into {css}: {e}", self.name));
    }

    /// Presses keys in the element matching `css` without clearing it.
    pub async fn keys(&self, css: &str, text: &str) {
        self.type_into(css, text, false).await;
    }

    /// Replaces the value of the field matching `css` with `text`, typed.
    pub async fn fill(&self, css: &str, text: &str) {
        self.type_into(css, text, true).await;
    }

    /// Picks the option with this value in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: find {css}: {e}", self.name))
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("{}: select {value:?} in {css}: {e}", self.name));
    }

    /// The browser's console log since the last call (`[{level, message, source}]`).
    pub async fn console(&self) -> Vec<Value> {
        let res = reqwest::Client::new()
            .post(format!("{}/se/log", self.session_url()))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .expect("read the browser log");
        let body: Value = res.json().await.expect("log JSON");
        body["value"].as_array().cloned().unwrap_or_default()
    }

    /// Asserts the console logged no error since the last look, except ones containing one
    /// of `allowed` (say, the expected 401 of the session check on a fresh visit).
    pub async fn assert_clean_console(&self, allowed: &[&str]) {
        let errors = self
            .console_errors(|m| allowed.iter().any(|a| m.contains(a)))
            .await;
        assert!(
            errors.is_empty(),
            "{}: console errors: {errors:#?}",
            self.name
        );
    }

    /// Console errors (SEVERE) since the last call, except those `allowed` accepts.
    pub async fn console_errors(&self, allowed: impl Fn(&str) -> bool) -> Vec<String> {
        self.console()
            .await
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .filter(|m| !allowed(m))
            .collect()
    }

    /// Cuts this browser off the network (`offline`) or reconnects it.
    pub async fn set_offline(&self, offline: bool) {
        let body = json!({ "network_conditions": {
            "offline": offline, "latency": 0,
            "download_throughput": 100_000_000, "upload_throughput": 100_000_000,
        }});
        let res = reqwest::Client::new()
            .post(format!(
                "{}/chromium/network_conditions",
                self.session_url()
            ))
            .json(&body)
            .send()
            .await
            .expect("set network conditions");
        assert!(
            res.status().is_success(),
            "network conditions: {}",
            res.text().await.unwrap_or_default()
        );
    }

    /// A PNG of the viewport.
    pub async fn png(&self) -> Vec<u8> {
        self.c
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("{}: screenshot: {e}", self.name))
    }

    /// On a failure: a screenshot and the page's HTML under `target/browser-failures/`.
    pub async fn dump(&self, why: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-failures");
        let _ = std::fs::create_dir_all(&dir);
        let stem: String = format!("{}-{why}", self.name)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        if let Ok(png) = self.c.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{stem}.png")), png);
        }
        if let Ok(html) = self.c.source().await {
            let _ = std::fs::write(dir.join(format!("{stem}.html")), html);
        }
    }
}

impl Drop for Browser {
    /// A test that fails half-way still ends its session, which closes Chromium.
    fn drop(&mut self) {
        if self.open {
            delete_session(self.driver_port, &self.session);
        }
    }
}

/// `DELETE /session/{id}` with a blocking socket (Drop cannot await).
fn delete_session(port: u16, session: &str) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(WAIT));
    let req = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_ok() {
        // chromedriver answers once the browser has quit; the start of the answer will do
        // (it may keep the connection open, so don't read to the end).
        let _ = s.read(&mut [0; 1024]);
    }
}

const TEXT_JS: &str =
    "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;";
const VISIBLE_JS: &str = "const e = document.querySelector(arguments[0]); \
    return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;";
const CLICKABLE_JS: &str = "const e = document.querySelector(arguments[0]); \
    return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0 && !e.disabled;";
