//! How soon the web client paints: a benchmark in headless Chromium, over WebDriver, against
//! a Parley server on SQLite in this process. The login page is opened 15 times (load 1 cold
//! in a fresh profile, then warm), then a logged-in user's chat of 50 messages is reloaded 10
//! times. Prints the browser's own paint, navigation and resource timings; record them with
//! the machine in `docs/benchmarks.md`.
//!
//! ```text
//! cargo run --example first_paint
//! ```
//! Needs `/usr/bin/chromium` and `chromedriver` (`apt-get install chromium chromium-driver`).
//! It drives the browser with the browser tests' own driver and page helpers, and sets up its
//! server and users with the test helpers, all included from `tests/`.

#[allow(dead_code)]
#[path = "../tests/browser/driver.rs"]
mod driver;
#[allow(dead_code)]
#[path = "../tests/browser/page.rs"]
mod page;
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use driver::{Browser, Driver};
use serde_json::{Value, json};
use support::app::{Backend, TestApp};

/// Installed by CDP before any of the page's own scripts run, on every document: a
/// `requestAnimationFrame` loop that records in `window.__bench` the time (ms since navigation
/// start) of the first frame that shows the login form (`form`) or the 50th message
/// (`messages`), then stops.
const BENCH_MARKS_JS: &str = "window.__bench = {};
    (function tick() {
      const b = window.__bench;
      const form = document.getElementById('login-form');
      if (form && !form.closest('[hidden]') && form.getClientRects().length > 0) {
        b.form = performance.now();
      } else if (document.querySelectorAll('[data-testid=message]').length >= 50) {
        b.messages = performance.now();
      } else {
        requestAnimationFrame(tick);
      }
    })();";

/// Reads the page's performance entries once the document has loaded, has painted, and the
/// mark `arguments[0]` of [`BENCH_MARKS_JS`] is set; `null` until then.
const BENCH_READ_JS: &str = "const nav = performance.getEntriesByType('navigation')[0];
    const paint = {};
    for (const e of performance.getEntriesByType('paint')) paint[e.name] = e.startTime;
    const shown = window.__bench && window.__bench[arguments[0]];
    if (!nav || !(nav.loadEventEnd > 0) || paint['first-contentful-paint'] === undefined
        || shown === undefined) return null;
    const res = performance.getEntriesByType('resource');
    const sum = (k) => res.reduce((n, r) => n + r[k], 0);
    return {
      type: nav.type, ttfb: nav.responseStart,
      fp: paint['first-paint'] ?? null, fcp: paint['first-contentful-paint'],
      dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, shown,
      doc_transfer: nav.transferSize, doc_body: nav.encodedBodySize,
      res_count: res.length, res_transfer: sum('transferSize'), res_body: sum('encodedBodySize'),
      waterfall: res.map((r) => [new URL(r.name).pathname, r.initiatorType, r.startTime,
        r.responseEnd, r.transferSize]),
    };";

/// One page load as the browser timed it: times in ms since navigation start, sizes in bytes.
struct PageLoad {
    nav_type: String,
    ttfb: f64,
    fp: f64,
    fcp: f64,
    dcl: f64,
    load: f64,
    /// The login form, or the 50th message, first shown.
    shown: f64,
    doc_transfer: f64,
    doc_body: f64,
    res_count: f64,
    res_transfer: f64,
    res_body: f64,
    /// `[path, initiator, start, end, transferSize]` of every resource.
    waterfall: Vec<Value>,
}

impl Browser {
    /// Runs a Chrome DevTools Protocol command in this browser's page.
    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}/goog/cdp/execute", self.session_url()))
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .expect("a CDP command");
        let ok = res.status().is_success();
        let body: Value = res.json().await.expect("CDP JSON");
        assert!(ok, "{}: CDP {cmd}: {body}", self.name);
        body["value"].clone()
    }

    /// Waits for the load just started to finish and show `mark` (see [`BENCH_MARKS_JS`]),
    /// and returns what the browser measured.
    async fn page_load(&self, mark: &str) -> PageLoad {
        let v = self
            .wait_js(
                format!("the page to load and show its {mark}"),
                BENCH_READ_JS,
                vec![json!(mark)],
                |v| !v.is_null(),
            )
            .await;
        let n = |k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("{}: no {k} in the performance entries: {v}", self.name))
        };
        PageLoad {
            nav_type: v["type"].as_str().unwrap_or_default().to_owned(),
            ttfb: n("ttfb"),
            fp: n("fp"),
            fcp: n("fcp"),
            dcl: n("dcl"),
            load: n("load"),
            shown: n("shown"),
            doc_transfer: n("doc_transfer"),
            doc_body: n("doc_body"),
            res_count: n("res_count"),
            res_transfer: n("res_transfer"),
            res_body: n("res_body"),
            waterfall: v["waterfall"].as_array().cloned().unwrap_or_default(),
        }
    }
}

/// The median of `xs` (the mean of the middle two for an even count).
fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    if s.len().is_multiple_of(2) {
        (s[mid - 1] + s[mid]) / 2.0
    } else {
        s[mid]
    }
}

/// The 90th percentile of `xs` (nearest rank).
fn p90(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (s.len() * 9).div_ceil(10).max(1);
    s[rank - 1]
}

/// One line per load, then the resources of the first one: when each started and finished.
fn print_loads(title: &str, loads: &[PageLoad]) {
    println!("\n{title}: each load (ms since navigation start; bytes)");
    println!(
        "  {:>2} {:<8} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}  {:>9} {:>4} {:>9} {:>9}",
        "#",
        "type",
        "ttfb",
        "FP",
        "FCP",
        "DCL",
        "load",
        "shown",
        "doc xfer",
        "res",
        "res xfer",
        "res body"
    );
    for (i, l) in loads.iter().enumerate() {
        println!(
            "  {:>2} {:<8} {:>6.0} {:>6.0} {:>6.0} {:>6.0} {:>6.0} {:>6.0}  {:>9.0} {:>4.0} {:>9.0} {:>9.0}",
            i + 1,
            l.nav_type,
            l.ttfb,
            l.fp,
            l.fcp,
            l.dcl,
            l.load,
            l.shown,
            l.doc_transfer,
            l.res_count,
            l.res_transfer,
            l.res_body
        );
    }
    println!("  resources of load 1 (path, initiator, start, end, transferSize):");
    for r in &loads[0].waterfall {
        println!(
            "    {:<28} {:<15} {:>6.0} {:>6.0} {:>7}",
            r[0].as_str().unwrap_or_default(),
            r[1].as_str().unwrap_or_default(),
            r[2].as_f64().unwrap_or_default(),
            r[3].as_f64().unwrap_or_default(),
            r[4]
        );
    }
}

/// Picks one figure out of a [`PageLoad`].
type Metric = fn(&PageLoad) -> f64;

/// The summary table: `cold` (if any) beside the median and p90 of `warm`.
fn print_summary(title: &str, shown: &str, cold: Option<&PageLoad>, warm: &[PageLoad]) {
    let rows: [(&str, Metric); 11] = [
        ("responseStart of the document (ms)", |l| l.ttfb),
        ("first-paint (ms)", |l| l.fp),
        ("first-contentful-paint (ms)", |l| l.fcp),
        ("domContentLoadedEventEnd (ms)", |l| l.dcl),
        ("loadEventEnd (ms)", |l| l.load),
        ("", |l| l.shown),
        ("document transferSize (B)", |l| l.doc_transfer),
        ("document encodedBodySize (B)", |l| l.doc_body),
        ("resources (count)", |l| l.res_count),
        ("resources transferSize (B)", |l| l.res_transfer),
        ("resources encodedBodySize (B)", |l| l.res_body),
    ];
    println!("\n{title}");
    println!(
        "  | {:<34} | {:>8} | {:>11} | {:>8} |",
        "", "cold", "warm median", "warm p90"
    );
    println!("  |{:-<36}|{:-<10}|{:-<13}|{:-<10}|", "", "", "", "");
    for (name, f) in rows {
        let name = if name.is_empty() { shown } else { name };
        let xs: Vec<f64> = warm.iter().map(f).collect();
        let cold = cold.map_or_else(|| "-".to_owned(), |c| format!("{:.0}", f(c)));
        println!(
            "  | {name:<34} | {cold:>8} | {:>11.0} | {:>8.0} |",
            median(&xs),
            p90(&xs)
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let chromedriver = driver::find_chromedriver().unwrap_or_else(|missing| {
        eprintln!("first_paint needs Chromium and chromedriver: {missing}; install them with `apt-get install chromium chromium-driver`");
        std::process::exit(1);
    });
    let driver = Driver::start(&chromedriver);
    let started = Instant::now();
    let app = TestApp::spawn(Backend::Sqlite).await;
    let [ann_api, bob_api] = app.users(["ann", "bob"]).await;
    let chat = ann_api.direct_with(&bob_api).await;
    for i in 1..=50 {
        let from = if i % 2 == 0 { &ann_api } else { &bob_api };
        from.post_message(chat, &format!("Message number {i} of the benchmark chat"))
            .await;
    }

    let b = Browser::desktop(&driver, "bench").await;
    b.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": BENCH_MARKS_JS }),
    )
    .await;
    let agent = b.js("return navigator.userAgent;", vec![]).await;
    println!("\nfirst_paint in {}", agent.as_str().unwrap_or_default());

    // The login page, 15 fresh documents: from about:blank each time, so each is a new
    // navigation (not a reload) that may use the HTTP cache of the earlier ones.
    let mut login = Vec::new();
    for _ in 0..15 {
        b.goto("about:blank").await;
        b.goto(&app.base).await;
        login.push(b.page_load("form").await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    b.assert_clean_console(&[]).await;

    // Logged in, with the chat of 50 messages open (it is in the URL): 10 reloads.
    b.login_here("ann").await;
    b.open_chat("bob").await;
    b.wait_js(
        "the 50 messages",
        "return document.querySelectorAll('[data-testid=message]').length;",
        vec![],
        |v| v.as_u64() >= Some(50),
    )
    .await;
    let mut chat_loads = Vec::new();
    for _ in 0..10 {
        b.refresh().await;
        chat_loads.push(b.page_load("messages").await);
        b.wait_text(".me-status", "Online").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    b.assert_clean_console(&[]).await;

    print_loads("login page", &login);
    print_loads("chat of 50 messages, reloaded", &chat_loads);
    print_summary(
        "login page: cold = load 1 (fresh profile), warm = loads 2-15",
        "login form shown (ms)",
        Some(&login[0]),
        &login[1..],
    );
    print_summary(
        "chat of 50 messages: all 10 reloads (warm)",
        "50th message shown (ms)",
        None,
        &chat_loads,
    );

    b.close().await;
    app.stop().await;
    eprintln!("took {:?}", started.elapsed());
}
