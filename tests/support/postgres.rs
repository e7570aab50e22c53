//! A real PostgreSQL server for the tests: [`fresh_database_url`] gives each test a new, empty
//! database of its own.
//!
//! The server is found once per test process, the first that answers of:
//!
//! 1. `TEST_DATABASE_URL`: a running server, named by a URL to a database of a user that may
//!    `CREATE DATABASE` (e.g. `postgres://postgres:pw@localhost:5432/postgres`).
//! 2. Docker, when `docker info` succeeds: testcontainers starts `postgres:16-alpine` for this
//!    process. Statics are never dropped, so a detached `sh` loop removes the container once
//!    this process has ended.
//! 3. `scripts/test-postgres start`: a throwaway cluster (initdb and pg_ctl from the local
//!    PostgreSQL server binaries) that the script shares between all test processes of the
//!    user. This process registers itself and, when it is the parent, the `cargo` or
//!    `cargo-nextest` running it; the script's watcher stops the cluster a few seconds after
//!    the last of them has ended. So `cargo test` starts one cluster for all its binaries,
//!    nextest one for all its test processes, and none is left running afterwards. How it
//!    does so is told at the top of the script.
//!
//! With none of these every PostgreSQL test fails, saying why and how to get a server.
#![allow(dead_code)] // Not every test binary that includes `support` uses all of it.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

/// Settings for speed over safety: throwaway data, many test pools at once. The script starts
/// its cluster with the same ones.
const SERVER_SETTINGS: [&str; 4] = [
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
];

/// A new, empty database on the test server; returns its URL.
pub async fn fresh_database_url() -> String {
    let admin_url = admin_url().await;
    let name = format!("parley_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = connect_with_retry(admin_url).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin_url} failed: {e}"));
    let _ = conn.close().await;
    with_database(admin_url, &name)
}

/// The URL of an admin database on this process's server, found on first use.
async fn admin_url() -> &'static str {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    // Finding it blocks (child processes), and every #[tokio::test] has a runtime of its own.
    let server = tokio::task::spawn_blocking(|| SERVER.get_or_init(find_server))
        .await
        .expect("finding PostgreSQL panicked");
    match server {
        Ok(url) => url,
        Err(msg) => panic!("{msg}"),
    }
}

/// The three ways, in order; `Err` is the message every PostgreSQL test fails with.
fn find_server() -> Result<String, String> {
    if let Some(url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
    {
        return Ok(url.trim().to_owned());
    }
    let mut reasons = vec!["TEST_DATABASE_URL is not set".to_owned()];
    if docker_answers() {
        match docker_container() {
            Ok(url) => return Ok(url),
            Err(e) => reasons.push(format!("Docker answers, but the container failed: {e}")),
        }
    } else {
        reasons.push("no Docker daemon answers `docker info`".to_owned());
    }
    match local_cluster() {
        Ok(url) => return Ok(url),
        Err(e) => reasons.push(format!("scripts/test-postgres could not start one: {e}")),
    }
    Err(format!(
        "\n\nThe PostgreSQL tests need a server and found none:\n  - {}\n\
         Get one in any of these ways:\n  \
         1. point the tests at a running server: \
         TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/postgres (a user that may \
         CREATE DATABASE);\n  \
         2. start Docker (`docker info` must succeed): the tests then run postgres:16-alpine \
         with testcontainers;\n  \
         3. install the PostgreSQL server binaries, e.g. `apt-get install postgresql`: the \
         tests then start a throwaway cluster with scripts/test-postgres.\n",
        reasons.join("\n  - ")
    ))
}

fn docker_answers() -> bool {
    Command::new("timeout")
        .args(["10", "docker", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Starts `postgres:16-alpine` with testcontainers, on a runtime and thread of its own (the
/// caller's runtime belongs to whichever test came first).
fn docker_container() -> Result<String, String> {
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::testcontainers::ImageExt;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;

    let start = || -> Result<(String, String), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let container = Postgres::default()
                .with_tag("16-alpine")
                .with_cmd(SERVER_SETTINGS.into_iter().flat_map(|s| ["-c", s]))
                .with_startup_timeout(Duration::from_secs(180))
                .start()
                .await
                .map_err(|e| e.to_string())?;
            let host = container.get_host().await.map_err(|e| e.to_string())?;
            let port = container
                .get_host_port_ipv4(5432)
                .await
                .map_err(|e| e.to_string())?;
            let id = container.id().to_owned();
            // Dropping it would remove the container at the end of this runtime.
            std::mem::forget(container);
            Ok((
                id,
                format!("postgres://postgres:postgres@{host}:{port}/postgres"),
            ))
        })
    };
    let (id, url) = std::thread::spawn(start)
        .join()
        .map_err(|_| "the thread starting it panicked".to_owned())??;
    // Waits, in a process group of its own (spared by Ctrl-C and by a test runner killing
    // ours), for this process to end; then removes the container.
    Command::new("sh")
        .arg("-c")
        .arg(r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; docker rm -f -v "$2""#)
        .args([
            "parley-test-postgres-reaper",
            &std::process::id().to_string(),
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the shell that removes container {id}: {e}"))?;
    eprintln!("[parley test postgres] container {id} (postgres:16-alpine) at {url}");
    Ok(url)
}

/// `scripts/test-postgres start`, registering this process and the test runner that runs it.
fn local_cluster() -> Result<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test-postgres");
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .arg("start")
        .arg(std::process::id().to_string());
    let parent = std::os::unix::process::parent_id();
    let parent_name = std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    if matches!(parent_name.trim(), "cargo" | "cargo-nextest") {
        cmd.arg(parent.to_string());
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run bash {script}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(stderr.trim().to_owned());
    }
    eprint!("{stderr}");
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn connect_with_retry(url: &str) -> PgConnection {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let err = match PgConnection::connect(url).await {
            Ok(conn) => return conn,
            Err(e) => e,
        };
        // What passes: a refused or reset connection, "too many clients", "starting up".
        let transient = match &err {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
            sqlx::Error::Database(e) => matches!(e.code().as_deref(), Some("53300" | "57P03")),
            _ => false,
        };
        if !transient || Instant::now() >= deadline {
            panic!("cannot connect to the test PostgreSQL server at {url}: {err}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `url` with its database (the path) replaced by `db`, keeping any `?query`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    match query {
        Some(query) => format!("{}/{db}?{query}", &base[..path]),
        None => format!("{}/{db}", &base[..path]),
    }
}
