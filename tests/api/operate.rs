//! Running Parley as a service: readiness, request ids, JSON logs, cacheable assets, and the
//! `parley` command (migrate, backup, admin) against the database of a running server.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::app::{Backend, PASSWORD, TestApp, try_connect};

on_every_backend!(ready_answers_when_storage_and_bus_are_up);

mod durable {
    on_every_backend_but_memory!(
        an_account_made_by_the_command_logs_in,
        a_disabled_account_cannot_log_in_and_its_tokens_stop_working,
        reset_password_replaces_the_password,
        list_users_shows_every_account_and_its_state,
    );

    use super::*;
}

/// Waits, a few milliseconds at a time, until `check` holds; panics after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The body of the first 503 from `/ready`, asking until `limit` has passed.
async fn not_ready(app: &TestApp, limit: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let res = get(app, "/ready").await;
        if res.status() == 503 {
            return res.json().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/ready never answered 503"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client().get(app.url(path)).send().await.unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------------------------

async fn ready_answers_when_storage_and_bus_are_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let res = get(&app, "/ready").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ready");
    let head = app.client().head(app.url("/ready")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.text().await.unwrap(), "");
    app.stop().await;
}

#[tokio::test]
async fn ready_answers_503_while_draining_and_health_stays_ok() {
    let app = TestApp::spawn_with(Backend::Memory, |c| c.drain_seconds = 60).await;
    assert_eq!(get(&app, "/ready").await.status(), 200);

    app.signal_stop();

    let body = not_ready(&app, Duration::from_secs(5)).await;
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["detail"], "The server is shutting down.");
    let head = app.client().head(app.url("/ready")).send().await.unwrap();
    assert_eq!(head.status(), 503);
    let health = get(&app, "/health").await;
    assert_eq!(health.status(), 200, "still alive while draining");
    // The server drains for a minute; the test's runtime ends it.
}

/// A connection to the PostgreSQL server of `db_url`, on its `postgres` database.
async fn postgres_admin(db_url: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    let (server, _) = db_url.rsplit_once('/').unwrap();
    sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap()
}

fn database_name(db_url: &str) -> String {
    db_url.rsplit_once('/').unwrap().1.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_answers_503_while_postgres_is_down_and_200_once_it_is_back() {
    let app = TestApp::spawn(Backend::Postgres).await;
    assert_eq!(get(&app, "/ready").await.status(), 200);
    let name = database_name(&app.db_url);
    let mut admin = postgres_admin(&app.db_url).await;

    // Down: no new connection, and every open one (pool and listener) cut.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let body = not_ready(&app, Duration::from_secs(10)).await;
    assert_eq!(body["code"], "not_ready");
    assert!(
        body["detail"] == "The database does not answer."
            || body["detail"] == "The event bus is disconnected.",
        "{body}"
    );
    assert_eq!(get(&app, "/health").await.status(), 200);

    // Back: the pool reconnects, and the bus hears its heartbeat.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS true"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    eventually(
        "/ready answers 200 again",
        Duration::from_secs(20),
        || async { get(&app, "/ready").await.status() == 200 },
    )
    .await;
    // Events flow again: the bus really listens.
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut b = bob.ws_chat(chat).await;
    ann.post_message(chat, "after the outage").await;
    b.expect("a message after the outage", |v| {
        crate::support::app::is_message(v, "after the outage")
    })
    .await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Request ids
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn(Backend::Memory).await;
    let with = |id: &str| {
        app.client()
            .get(app.url("/health"))
            .header("x-request-id", id)
            .send()
    };

    let generated = header(&get(&app, "/health").await, "x-request-id");
    let another = header(&get(&app, "/nothing/here").await, "x-request-id");
    let kept = header(&with("abc-123.X:y_z").await.unwrap(), "x-request-id");
    let replaced = header(&with("two words").await.unwrap(), "x-request-id");
    let too_long = header(&with(&"a".repeat(129)).await.unwrap(), "x-request-id");

    for id in [&generated, &another, &replaced, &too_long] {
        assert_eq!(id.len(), 32, "a new id: {id:?}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    assert_ne!(generated, another);
    assert_eq!(kept, "abc-123.X:y_z");
    app.stop().await;
}

#[tokio::test]
async fn a_500_names_its_request_id_and_a_refusal_does_not() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let ann = app.user("ann").await;
    let (status, refused) = ann.get("/chats/999999").await;
    assert_eq!(status, 404);
    assert!(refused.get("request_id").is_none(), "{refused}");
    // Break the storage under the server: every read of users fails.
    let mut admin = {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect(&app.db_url).await.unwrap()
    };
    sqlx::raw_sql("ALTER TABLE users RENAME TO users_gone")
        .execute(&mut admin)
        .await
        .unwrap();

    let res = app
        .client()
        .get(app.url("/users"))
        .bearer_auth(&ann.token)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 500);
    assert_eq!(header(&res, "x-request-id"), "trace-me-42");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "internal_error");
    assert_eq!(body["request_id"], "trace-me-42");
    assert!(
        !body.to_string().contains("users_gone"),
        "no cause shown: {body}"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Cacheable assets
// ---------------------------------------------------------------------------------------------

/// The versioned URLs `index.html` names, `/js/app.js?v=...`.
fn versioned_urls(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with('/') && s.contains("?v="))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn assets_are_versioned_and_cached_for_a_year_while_the_page_is_revalidated() {
    let app = TestApp::spawn(Backend::Memory).await;

    let page = get(&app, "/").await;
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "cache-control"), "no-cache");
    let page_etag = header(&page, "etag");
    assert!(page_etag.starts_with('"'), "{page_etag}");
    let html = page.text().await.unwrap();
    let urls = versioned_urls(&html);
    for asset in [
        "/app.css?v=",
        "/favicon.svg?v=",
        "/js/app.js?v=",
        "/js/store.js?v=",
    ] {
        assert!(
            urls.iter().any(|u| u.starts_with(asset)),
            "{asset} in index.html: {urls:?}"
        );
    }

    for url in &urls {
        let res = get(&app, url).await;
        assert_eq!(res.status(), 200, "{url}");
        assert_eq!(
            header(&res, "cache-control"),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        if url.starts_with("/js/") {
            assert!(
                header(&res, "content-type").starts_with("text/javascript"),
                "{url}"
            );
            let js = res.text().await.unwrap();
            for line in js.lines().filter(|l| l.contains(" from '.")) {
                assert!(line.contains(".js?v="), "{url}: unversioned import {line}");
            }
        }
    }

    // The same URLs the next time: nothing to fetch again.
    let again = get(&app, "/").await.text().await.unwrap();
    assert_eq!(versioned_urls(&again), urls);
    let revalidated = app
        .client()
        .get(app.url("/"))
        .header("if-none-match", &page_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.text().await.unwrap(), "");

    // Without the current version a file is served but revalidated.
    for url in ["/js/app.js", "/favicon.svg?v=0123456789abcdef"] {
        let res = get(&app, url).await;
        assert_eq!(res.status(), 200, "{url}");
        assert_eq!(header(&res, "cache-control"), "no-cache", "{url}");
    }
    let missing = get(&app, "/js/nothing.js").await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

/// Runs `parley args...` on `db_url` in an empty directory, with `stdin` as its input.
async fn parley(db_url: &str, args: &[&str], stdin: &str) -> Output {
    let db_url = db_url.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
            .args(&args)
            .current_dir(dir.path())
            .env_clear()
            .env("DATABASE_URL", &db_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run parley");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// `POST /auth/login`: the status and the JSON answer.
async fn login(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn an_account_made_by_the_command_logs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let out = parley(
        &app.db_url,
        &["admin", "create-user", "ann", "ann@example.com"],
        "correct horse battery\n",
    )
    .await;

    assert_success(&out);
    assert!(stdout(&out).contains("created ann"), "{}", stdout(&out));
    let (status, body) = login(&app, "ann", "correct horse battery").await;
    assert_eq!(status, 200, "{body}");
    let again = parley(
        &app.db_url,
        &["admin", "create-user", "ANN", "other@example.com"],
        "correct horse battery\n",
    )
    .await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("username is already taken"),
        "{}",
        stderr(&again)
    );
    let short = parley(
        &app.db_url,
        &["admin", "create-user", "bob", "bob@example.com"],
        "short\n",
    )
    .await;
    assert!(!short.status.success());
    assert!(
        stderr(&short).to_lowercase().contains("password"),
        "{}",
        stderr(&short)
    );
    let none = parley(
        &app.db_url,
        &["admin", "create-user", "cid", "cid@example.com"],
        "",
    )
    .await;
    assert!(!none.status.success());
    assert!(stderr(&none).contains("no password"), "{}", stderr(&none));
    app.stop().await;
}

async fn a_disabled_account_cannot_log_in_and_its_tokens_stop_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut socket = ann.ws_all().await;

    let out = parley(&app.db_url, &["admin", "disable-user", "ann"], "").await;

    assert_success(&out);
    let (status, body) = login(&app, "ann", PASSWORD).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "account_disabled");
    let (status, body) = login(&app, "ann", "not-her-password").await;
    assert_eq!(status, 401, "a wrong password tells nothing: {body}");
    assert_eq!(body["code"], "invalid_credentials");
    let (status, _) = ann.get("/auth/me").await;
    assert_eq!(status, 401, "her token no longer works");
    let ws = format!("ws://{}/ws/{chat}?token={}", app.addr, ann.token);
    assert_eq!(try_connect(&ws, &[]).await.err(), Some(401));
    if backend == Backend::Postgres {
        // The command told every server through the bus.
        assert_eq!(socket.expect_close().await, Some(4401));
    }
    let (status, _) = bob.get("/auth/me").await;
    assert_eq!(status, 200, "others are not affected");

    let out = parley(
        &app.db_url,
        &["admin", "enable-user", "ann@example.com"],
        "",
    )
    .await;
    assert_success(&out);
    let (status, body) = login(&app, "ann", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let unknown = parley(&app.db_url, &["admin", "disable-user", "nobody"], "").await;
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("User not found"),
        "{}",
        stderr(&unknown)
    );
    app.stop().await;
}

async fn reset_password_replaces_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("ann").await;

    let out = parley(
        &app.db_url,
        &["admin", "reset-password", "ann"],
        "a brand new password\n",
    )
    .await;

    assert_success(&out);
    assert_eq!(login(&app, "ann", PASSWORD).await.0, 401);
    assert_eq!(login(&app, "ann", "a brand new password").await.0, 200);
    app.stop().await;
}

async fn list_users_shows_every_account_and_its_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.users(["bob", "ann"]).await;
    assert_success(&parley(&app.db_url, &["admin", "disable-user", "bob"], "").await);

    let out = parley(&app.db_url, &["admin", "list-users"], "").await;

    assert_success(&out);
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].contains("ann")
            && rows[0].contains("ann@example.com")
            && rows[0].contains("active"),
        "{text}"
    );
    assert!(
        rows[1].contains("bob") && rows[1].contains("disabled"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn migrate_creates_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let url = format!("sqlite://{}", db.display());

    let out = parley(&url, &["migrate"], "").await;

    assert_success(&out);
    assert!(db.is_file());
    let listed = parley(&url, &["admin", "list-users"], "").await;
    assert_success(&listed);
    assert_eq!(stdout(&listed).lines().count(), 1, "only the header");
}

/// The usernames in the SQLite file at `path`.
async fn usernames_in(path: &Path) -> Vec<String> {
    let store =
        parley::adapters::sqlite::SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
    use parley::ports::UserRepo as _;
    let names = store
        .list_all()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username.as_str().to_owned())
        .collect();
    store.close().await;
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_a_live_sqlite_database_and_never_overwrites() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    ann.post_message(chat, "kept in the copy").await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let copy_arg = copy.to_str().unwrap();

    let out = parley(&app.db_url, &["backup", copy_arg], "").await;

    assert_success(&out);
    assert_eq!(usernames_in(&copy).await, ["ann", "bob"]);
    let before = std::fs::read(&copy).unwrap();
    let again = parley(&app.db_url, &["backup", copy_arg], "").await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before, "untouched");
    let (status, _) = ann.get("/auth/me").await;
    assert_eq!(status, 200, "the server goes on");
    app.stop().await;
}

#[tokio::test]
async fn backup_on_postgres_points_to_pg_dump() {
    let url = crate::support::postgres::fresh_database_url().await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");

    let out = parley(&url, &["backup", copy.to_str().unwrap()], "").await;

    assert!(!out.status.success());
    assert!(stderr(&out).contains("pg_dump"), "{}", stderr(&out));
    assert!(!copy.exists());
}

#[tokio::test]
async fn admin_commands_refuse_memory() {
    let out = parley("memory://", &["admin", "list-users"], "").await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("memory://"), "{}", stderr(&out));
}

#[tokio::test]
async fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["backup", "--help"],
        &["admin", "--help"],
        &["admin", "create-user", "--help"],
        &["admin", "reset-password", "--help"],
        &["admin", "list-users", "--help"],
        &["admin", "disable-user", "--help"],
        &["admin", "enable-user", "--help"],
    ] {
        let out = parley("memory://", args, "").await;
        assert_success(&out);
        assert!(
            stdout(&out).contains("Usage: parley"),
            "{args:?}: {}",
            stdout(&out)
        );
    }
    let unknown = parley("memory://", &["frobnicate"], "").await;
    assert_eq!(unknown.status.code(), Some(2));
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_carrying_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .current_dir(dir.path())
        .env_clear()
        .env("DATABASE_URL", "memory://")
        .env("PARLEY_BIND", "127.0.0.1:0")
        .env("PARLEY_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .expect("run parley");
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = async |lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>| -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.recv())
            .await
            .expect("a log line")
            .expect("the server is running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let addr = loop {
        let entry = next(&mut lines).await;
        let message = entry["fields"]["message"].as_str().unwrap_or_default();
        if let Some(addr) = message.strip_prefix("Parley is listening on http://") {
            break addr.to_owned();
        }
    };

    let res = reqwest::Client::new()
        .get(format!("http://{addr}/health"))
        .header("x-request-id", "from-the-edge-7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let access = loop {
        let entry = next(&mut lines).await;
        if entry["target"] == "parley::access" {
            break entry;
        }
    };
    assert_eq!(access["fields"]["route"], "/health", "{access}");
    assert_eq!(access["fields"]["status"], 200, "{access}");
    assert_eq!(access["span"]["request_id"], "from-the-edge-7", "{access}");
    child.kill().unwrap();
    child.wait().unwrap();
}
