//! A real PostgreSQL server for the integration tests.
//!
//! [`fresh_database_url`] hands every caller a new, empty database. The server behind it is
//! found once per test process, in this order:
//!
//! 1. `TEST_DATABASE_URL`, if set: a URL naming an admin-capable database on a running server
//!    (e.g. `postgres://postgres:pw@localhost:5432/postgres`); the tests create databases there.
//! 2. A server that another test process of the same user already runs (see below).
//! 3. Docker, if `docker info` succeeds: a `postgres:16-alpine` container via testcontainers.
//! 4. Local PostgreSQL server binaries (`initdb`, `pg_ctl` on `PATH`, in `pg_config --bindir` or
//!    in `/usr/lib/postgresql/*/bin`, as Debian's `postgresql` package installs them): a
//!    throwaway cluster in a temp dir, run as the `postgres` user when the tests run as root.
//! 5. Otherwise every test panics with instructions; nothing is skipped.
//!
//! Servers of cases 3 and 4 are shared by all test processes of one user (`cargo test` runs the
//! test binaries one after another, nextest runs each test in its own process), so a cluster is
//! started once per run, not once per process. Their bookkeeping lives in
//! `$TMPDIR/parley-test-pg-<uid>/`: `state` names the running server, every process using it
//! holds a shared `flock` on `users.lock` until it exits, and `setup.lock` serialises starting
//! and stopping. Each server has a detached watchdog (a small `sh` loop, see [`WATCHDOG`]) that
//! stops it, removes its files and then exits once no process has held `users.lock` for
//! [`GRACE_SECS`] seconds, so nothing is left behind even though statics are never dropped and
//! test processes may be killed.
//!
//! Needs `sh`, `flock` and (as root) `runuser` from util-linux, as every Debian has.
#![allow(dead_code)] // Not every test binary that includes `support` uses all of it.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

/// The Docker image started when Docker is available.
const IMAGE_TAG: &str = "16-alpine";
/// How long a shared server outlives the last test process that used it.
const GRACE_SECS: u32 = 3;
/// Server settings for speed: throwaway data, many parallel test pools.
const SERVER_SETTINGS: [&str; 4] = [
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
];

/// A fresh, empty database on a real PostgreSQL server, unique to the caller; returns its URL.
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

/// The URL of the admin database of this process's server, provisioning it on first use.
async fn admin_url() -> &'static str {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    // Provisioning blocks (child processes, file locks) and must not depend on the runtime of the
    // test that happens to come first: each #[tokio::test] has its own runtime.
    let server = tokio::task::spawn_blocking(|| SERVER.get_or_init(provision))
        .await
        .expect("provisioning PostgreSQL panicked");
    match server {
        Ok(url) => url,
        Err(msg) => panic!("{msg}"),
    }
}

async fn connect_with_retry(url: &str) -> PgConnection {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let err = match PgConnection::connect(url).await {
            Ok(conn) => return conn,
            Err(e) => e,
        };
        // Retry what passes: a refused or reset connection, "too many clients", "starting up".
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

/// `url` with its database (path) replaced by `db`, keeping any `?query`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{db}", &base[..path]);
    if let Some(query) = query {
        let _ = write!(out, "?{query}");
    }
    out
}

fn log(msg: &str) {
    eprintln!("[parley test postgres] {msg}");
}

// ---------------------------------------------------------------------------------------------
// Choosing and sharing a server
// ---------------------------------------------------------------------------------------------

/// Finds or starts the server; `Err` holds the message every test panics with.
fn provision() -> Result<String, String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => {
            log("using the server named by TEST_DATABASE_URL");
            return Ok(url.trim().to_owned());
        }
        _ => {}
    }
    let base = std::env::temp_dir().join(format!("parley-test-pg-{}", current_uid()));
    Shared::new(base)?.get_or_start()
}

/// The cross-process bookkeeping in `$TMPDIR/parley-test-pg-<uid>/`.
struct Shared {
    base: PathBuf,
}

/// What `state` records about the running shared server. The first line is the token the
/// watchdog compares with its own to see whether its server is still the current one.
struct State {
    token: String,
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    watchdog: Option<u32>,
    kind: Option<String>,
}

/// A server this process just started.
struct Started {
    kind: &'static str,
    url: String,
    host: String,
    port: u16,
}

impl Shared {
    fn new(base: PathBuf) -> Result<Self, String> {
        match fs::DirBuilder::new().mode(0o755).create(&base) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", base.display())),
        }
        let meta = fs::metadata(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        if meta.uid() != current_uid() {
            return Err(format!(
                "{} belongs to another user; remove it",
                base.display()
            ));
        }
        Ok(Self { base })
    }

    fn get_or_start(&self) -> Result<String, String> {
        let setup = self.lock("setup.lock", "-x")?;
        let reused = self.try_reuse();
        let result = match reused {
            Some(url) => Ok(url),
            None => self.start(),
        };
        if result.is_ok() {
            // Registers this process as a user until it exits; taken before `setup` is released
            // so the watchdog cannot stop the server in between.
            static USERS: OnceLock<File> = OnceLock::new();
            let users = self.lock("users.lock", "-s")?;
            let _ = USERS.set(users);
        }
        drop(setup);
        result
    }

    /// The URL of the running shared server, if `state` names one that answers.
    fn try_reuse(&self) -> Option<String> {
        let state = self.read_state()?;
        let alive = state.watchdog.is_some_and(pid_alive)
            && matches!((&state.host, state.port), (Some(h), Some(p)) if port_answers(h, p));
        if alive {
            let kind = state.kind.as_deref().unwrap_or("?");
            log(&format!(
                "reusing the shared {kind} server started by an earlier test process"
            ));
            return state.url;
        }
        // Stale. A live watchdog notices that `state` no longer names its server and cleans up;
        // a dead one cannot, so remove what it left.
        if !state.watchdog.is_some_and(pid_alive) {
            let dir = self.server_dir(&state.token);
            let stop = dir.join("stop");
            if stop.exists() {
                let _ = tool("/bin/sh")
                    .arg(&stop)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = fs::remove_dir_all(&dir);
        }
        None
    }

    fn start(&self) -> Result<String, String> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.server_dir(&token);
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // The watchdog comes first, with `state` naming a server that is not up yet: if this
        // process dies while starting it, the watchdog still removes whatever was made.
        let watchdog = self.spawn_watchdog(&token, &dir)?;
        self.write_state(&token, watchdog, None)?;

        let started = start_server(&dir);
        // Tells the watchdog that no child of ours (initdb, pg_ctl, docker) may still be at work
        // in `dir`; without it, it waits before cleaning up (this process died while starting).
        let _ = File::create(dir.join("settled"));
        let started = started?;
        self.write_state(&token, watchdog, Some(&started))?;
        Ok(started.url)
    }

    fn server_dir(&self, token: &str) -> PathBuf {
        self.base
            .join(format!("srv-{}", &token[..token.len().min(12)]))
    }

    /// Takes a `flock(2)` lock on `base/name` (`mode` "-x" or "-s") that lasts as long as the
    /// returned file stays open. std's `File::lock` needs Rust 1.89, above the crate's MSRV, so
    /// flock(1) takes it on our open file description, passed to it as its stdin.
    fn lock(&self, name: &str, mode: &str) -> Result<File, String> {
        let path = self.base.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let stdin = file
            .try_clone()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let status = tool("flock")
            .args([mode, "0"])
            .stdin(stdin)
            .status()
            .map_err(|e| format!("cannot run flock (util-linux): {e}"))?;
        if !status.success() {
            return Err(format!("flock {mode} {} failed: {status}", path.display()));
        }
        Ok(file)
    }

    fn spawn_watchdog(&self, token: &str, dir: &Path) -> Result<u32, String> {
        let child = tool("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("parley-test-pg-watchdog")
            .arg(&self.base)
            .arg(token)
            .arg(GRACE_SECS.to_string())
            .arg(dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Ctrl-C and nextest's kills of the test's group spare it.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot spawn the watchdog (sh): {e}"))?;
        Ok(child.id())
    }

    fn read_state(&self) -> Option<State> {
        let text = fs::read_to_string(self.base.join("state")).ok()?;
        let mut lines = text.lines();
        let mut state = State {
            token: lines.next()?.to_owned(),
            url: None,
            host: None,
            port: None,
            watchdog: None,
            kind: None,
        };
        if state.token.is_empty() || state.token.contains(['/', '.']) {
            return None;
        }
        for line in lines {
            match line.split_once('=') {
                Some(("url", v)) => state.url = Some(v.to_owned()),
                Some(("host", v)) => state.host = Some(v.to_owned()),
                Some(("port", v)) => state.port = v.parse().ok(),
                Some(("watchdog", v)) => state.watchdog = v.parse().ok(),
                Some(("kind", v)) => state.kind = Some(v.to_owned()),
                _ => {}
            }
        }
        Some(state)
    }

    fn write_state(
        &self,
        token: &str,
        watchdog: u32,
        started: Option<&Started>,
    ) -> Result<(), String> {
        let mut text = format!("{token}\nwatchdog={watchdog}\n");
        if let Some(s) = started {
            let _ = write!(
                text,
                "kind={}\nurl={}\nhost={}\nport={}\n",
                s.kind, s.url, s.host, s.port
            );
        }
        let tmp = self.base.join("state.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            fs::rename(&tmp, self.base.join("state"))
        };
        write().map_err(|e| format!("cannot write {}/state: {e}", self.base.display()))
    }
}

/// The watchdog, run as `sh -c WATCHDOG name BASE TOKEN GRACE DIR`. Every second it takes
/// `setup.lock` and checks, under it, whether `state` still names its server (TOKEN) and whether
/// any process holds `users.lock`. Once none has for GRACE checks in a row it removes `state`
/// (still under the lock, so no process can pick the server up meanwhile), or at once if `state`
/// names another server; then it runs `DIR/stop` (the commands that stop the server, if it got
/// that far) and removes DIR.
const WATCHDOG: &str = r#"
base=$1 token=$2 grace=$3 dir=$4
idle=0
while :; do
    sleep 1
    verdict=$(flock -x "$base/setup.lock" sh -c '
        [ "$(head -n 1 "$1/state" 2>/dev/null)" = "$2" ] || { echo orphaned; exit 0; }
        if flock -n -x "$1/users.lock" true; then
            if [ "$3" -ge "$4" ]; then rm -f "$1/state"; echo stop; else echo idle; fi
        else
            echo busy
        fi' sh "$base" "$token" "$((idle + 1))" "$grace")
    case $verdict in
        busy) idle=0 ;;
        idle) idle=$((idle + 1)) ;;
        *) break ;;
    esac
done
# Without `settled` the process that started the server died meanwhile: give the initdb,
# pg_ctl or docker it left running time to finish before stopping what they made.
[ -f "$dir/settled" ] || sleep 90
[ -f "$dir/stop" ] && sh "$dir/stop"
rm -rf "$dir"
"#;

/// Starts a server in Docker or, failing that, a local cluster, keeping its files in `dir`.
fn start_server(dir: &Path) -> Result<Started, String> {
    let mut reasons = Vec::new();
    match docker_available() {
        Ok(()) => match start_docker(dir) {
            Ok(started) => return Ok(started),
            Err(e) => {
                let e = format!("Docker answers, but starting postgres:{IMAGE_TAG} failed: {e}");
                log(&format!("{e}; trying local PostgreSQL server binaries"));
                reasons.push(e);
            }
        },
        Err(e) => reasons.push(e),
    }
    match find_local_bindir() {
        Some(bindir) => start_local(&bindir, dir)
            .map_err(|e| format!("starting a local PostgreSQL cluster failed: {e}")),
        None => {
            reasons.push(
                "no PostgreSQL server binaries (initdb, pg_ctl) on PATH, in `pg_config --bindir` \
                 or in /usr/lib/postgresql/*/bin"
                    .to_owned(),
            );
            Err(no_server_message(&reasons))
        }
    }
}

/// Appends a command to `dir/stop`, the script the watchdog runs to stop the server.
fn add_stop_command(dir: &Path, line: &str) -> Result<(), String> {
    let path = dir.join("stop");
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn no_server_message(reasons: &[String]) -> String {
    let mut msg = String::from("\n\nThe tests need a PostgreSQL server and found none:\n");
    for r in reasons {
        let _ = writeln!(msg, "  - {r}");
    }
    msg.push_str(
        "Get one in any of these ways:\n  \
         1. point the tests at a running server: \
         TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/postgres \
         (a database of a user that may CREATE DATABASE);\n  \
         2. start Docker (`docker info` must succeed); the tests then run postgres:16-alpine \
         with testcontainers;\n  \
         3. install the PostgreSQL server binaries, e.g. `apt-get install postgresql` \
         (initdb and pg_ctl are looked up on PATH, in `pg_config --bindir` and in \
         /usr/lib/postgresql/*/bin); the tests then start a throwaway cluster.\n",
    );
    msg
}

// ---------------------------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------------------------

fn docker_available() -> Result<(), String> {
    let mut child = match tool("docker")
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(_) => return Err("no `docker` command".to_owned()),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(_)) => return Err("`docker info` failed: no Docker daemon answers".to_owned()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("`docker info` did not answer within 5 s".to_owned());
            }
        }
    }
}

/// Starts postgres:16-alpine and leaves it running after this process; `dir/stop` removes it.
fn start_docker(dir: &Path) -> Result<Started, String> {
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::testcontainers::ImageExt;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;

    // Named up front so that `stop` can remove it even if this process dies while it starts.
    let name = format!(
        "parley-test-pg-{}",
        dir.file_name().unwrap_or_default().to_string_lossy()
    );
    add_stop_command(dir, &format!("docker rm -f -v {name} >/dev/null 2>&1"))?;
    // A runtime of its own on a thread of its own: the caller may be inside a test's runtime.
    let run = move || -> Result<Started, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let cmd = SERVER_SETTINGS.into_iter().flat_map(|s| ["-c", s]);
            let container = Postgres::default()
                .with_tag(IMAGE_TAG)
                .with_cmd(cmd)
                .with_container_name(&name)
                .with_label("parley-test", "postgres")
                .with_startup_timeout(Duration::from_secs(180))
                .start()
                .await
                .map_err(|e| e.to_string())?;
            let id = container.id().to_owned();
            let host = container
                .get_host()
                .await
                .map_err(|e| e.to_string())?
                .to_string();
            let port = container
                .get_host_port_ipv4(5432)
                .await
                .map_err(|e| e.to_string())?;
            // Dropping it would remove the container; the watchdog does that instead.
            std::mem::forget(container);
            log(&format!(
                "started Docker container {id} (postgres:{IMAGE_TAG}) on {host}:{port}"
            ));
            Ok(Started {
                kind: "docker",
                url: format!("postgres://postgres:postgres@{host}:{port}/postgres"),
                host,
                port,
            })
        })
    };
    std::thread::spawn(run)
        .join()
        .map_err(|_| "the Docker start-up thread panicked".to_owned())?
}

// ---------------------------------------------------------------------------------------------
// Local cluster
// ---------------------------------------------------------------------------------------------

/// A directory holding both `initdb` and `pg_ctl`.
fn find_local_bindir() -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let pg_config = tool("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success());
    if let Some(out) = pg_config {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    // Debian's layout, newest version first.
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    candidates.extend(versions.into_iter().map(|(_, d)| d));
    candidates.into_iter().find(|d| has_both(d))
}

/// initdb + pg_ctl start a cluster in `dir/pg`; writes `dir/stop`.
fn start_local(bindir: &Path, dir: &Path) -> Result<Started, String> {
    let t0 = Instant::now();
    let pg = dir.join("pg");
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&pg)
        .map_err(|e| format!("cannot create {}: {e}", pg.display()))?;
    // initdb refuses to run as root: then the server runs as the `postgres` system user.
    let run_as = if current_uid() == 0 {
        let (uid, gid) = user_ids("postgres").ok_or(
            "the tests run as root, and initdb refuses root, but there is no `postgres` user \
             to run the server as (Debian's postgresql package creates it)",
        )?;
        std::os::unix::fs::chown(&pg, Some(uid), Some(gid))
            .map_err(|e| format!("chown postgres {}: {e}", pg.display()))?;
        Some("postgres")
    } else {
        None
    };
    let pg_cmd = |program: &str| {
        let program = bindir.join(program);
        let mut cmd = match run_as {
            Some(user) => {
                let mut cmd = tool("runuser");
                cmd.args(["-u", user, "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.current_dir(&pg).stdin(Stdio::null());
        cmd
    };
    let data = pg.join("data");
    let pg_ctl = bindir.join("pg_ctl");

    // From here on the watchdog can stop the server.
    let mut stop = String::new();
    if let Some(user) = run_as {
        let _ = write!(stop, "runuser -u {user} -- ");
    }
    let _ = write!(
        stop,
        "{} -D {} stop -m immediate >/dev/null 2>&1",
        sh_quote(&pg_ctl.to_string_lossy()),
        sh_quote(&data.to_string_lossy())
    );
    add_stop_command(dir, &stop)?;

    // UTF-8 with C collation: byte-order sorting, but lower()/upper()/ILIKE know Unicode. Systems
    // without the C.UTF-8 locale get plain C.
    let mut initdb_errors = String::new();
    for locale in ["C.UTF-8", "C"] {
        let out = pg_cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .arg(format!("--locale={locale}"))
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if out.status.success() {
            initdb_errors.clear();
            break;
        }
        let _ = write!(
            initdb_errors,
            "initdb --locale={locale} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !initdb_errors.is_empty() {
        return Err(initdb_errors);
    }
    let log_file = pg.join("log");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = free_port().map_err(|e| format!("cannot find a free port: {e}"))?;
        // pg_ctl hands these to the server through a shell.
        let socket_dir = sh_quote(&pg.to_string_lossy());
        let mut opts = format!("-h 127.0.0.1 -p {port} -k {socket_dir} -F");
        for setting in SERVER_SETTINGS {
            let _ = write!(opts, " -c {setting}");
        }
        // pg_ctl's output goes to a file, not a pipe: the server it forks must not hold a pipe
        // of ours (or of the test harness) open.
        let ctl_out_path = dir.join("pg_ctl.out");
        let ctl_out = File::create(&ctl_out_path).map_err(|e| e.to_string())?;
        let ctl_err = ctl_out.try_clone().map_err(|e| e.to_string())?;
        let status = pg_cmd("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(&log_file)
            .arg("-o")
            .arg(&opts)
            .arg("start")
            .stdout(ctl_out)
            .stderr(ctl_err)
            .status()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if status.success() {
            log(&format!(
                "started a local PostgreSQL cluster ({}) in {} on 127.0.0.1:{port} in {:.1} s",
                bindir.display(),
                pg.display(),
                t0.elapsed().as_secs_f64()
            ));
            return Ok(Started {
                kind: "local",
                url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                host: "127.0.0.1".to_owned(),
                port,
            });
        }
        let server_log = fs::read_to_string(&log_file).unwrap_or_default();
        let port_taken =
            server_log.contains("could not bind") || server_log.contains("already in use");
        if !(port_taken && attempt < 5) {
            let ctl = fs::read_to_string(&ctl_out_path).unwrap_or_default();
            return Err(format!(
                "pg_ctl start failed ({status}):\n{ctl}\nserver log:\n{server_log}"
            ));
        }
        let _ = fs::remove_file(&log_file);
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// A command whose `PATH` (also used to find `program`) is the caller's followed by the system's
/// tool directories, so that the helpers and the watchdog find `flock`, `runuser`, `sleep` and
/// the like however `PATH` was trimmed.
fn tool(program: &str) -> Command {
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if !path.is_empty() {
        path.push(":");
    }
    path.push("/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    let mut cmd = Command::new(program);
    cmd.env("PATH", path);
    cmd
}

fn current_uid() -> u32 {
    static UID: OnceLock<u32> = OnceLock::new();
    *UID.get_or_init(|| {
        fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or_else(|_| {
                let out = tool("id").arg("-u").output().expect("cannot run `id -u`");
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .expect("`id -u` printed no number")
            })
    })
}

/// The uid and gid of `user`, via `id`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = tool("id")
            .args([flag, user])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn pid_alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by its parent) counts as dead.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

fn port_answers(host: &str, port: u16) -> bool {
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
