//! An open-loop load generator for a release `parley` binary, which it starts itself on the
//! database named: `sqlite` (a new file), `memory`, or a `postgres://` URL (a new database is
//! created in that cluster for the run and dropped after it).
//!
//! ```text
//! cargo build --release --bin parley --examples
//! target/release/examples/load sweep  [DB] [--rates 250,500,1000] [--secs 10] [--users 100]
//! target/release/examples/load p50    [DB] [--rate 400] [--users 14] [--secs 10]
//! target/release/examples/load fanout [DB] [--rates 250,500,1000] [--secs 5] [--members 100]
//! target/release/examples/load idle   [DB] [--sockets 9000]
//! target/release/examples/load logins [DB] [--storm 32] [--admission off] [--hash-wait-ms 1000]
//! target/release/examples/load chart  --out docs/load.svg RECORD...
//! ```
//! The server runs with the rate limits, the per-user socket cap and the admission of password
//! hashes lifted; `logins` keeps the admission at the server's defaults (two hashes per
//! address, sixteen in all, waiting up to a second for a place) unless given `--admission off`;
//! `--hash-wait-ms 0` refuses at once instead of waiting.
//! `sweep`, `p50` and `fanout` also take `--record FILE` (append one line per step to FILE)
//! and `--label NAME` (the series the line belongs to; the backend's name by default).
//! `chart` reads such files, takes the median of each figure over the runs of one series at
//! one rate, prints them as a table and draws p50 and p99 against the offered rate.
//! `PARLEY_BIN` names another server binary than `target/release/parley`.
//!
//! Open loop: every socket sends on a fixed schedule whether or not earlier messages have
//! arrived, so an overloaded server shows as growing latency and lost messages rather than
//! as a lower offered rate. Each message's latency runs from the time it was *scheduled* to
//! be sent (a sender that falls behind does not hide the delay) to its receipt by another
//! member; its text carries its step, sender and number, so the receiver knows when it was
//! due and counts each message once: `lost` are sent but never received within 5 s of the
//! end of the step, `dup` are received more than once.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use sqlx::Connection as _;
use support::{Scratch, Server, Ws, pct, ticks_per_second};
use tokio_tungstenite::tungstenite::Message;

/// How long after the end of a step a message may still arrive.
const DRAIN: Duration = Duration::from_secs(5);
/// The per-user frame limit the load runs with: none.
const FRAMES_PER_SECOND: &str = "0";

struct Args {
    mode: String,
    db: String,
    rates: Vec<u64>,
    secs: f64,
    users: usize,
    sockets: usize,
    storm: usize,
    admission: bool,
    hash_wait_ms: String,
    record: Option<String>,
    label: Option<String>,
    out: Option<String>,
    files: Vec<String>,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_else(|| "sweep".into());
    let mut args = Args {
        db: "memory".into(),
        rates: match mode.as_str() {
            "p50" => vec![400],
            "fanout" => vec![250, 500, 1000, 2000, 4000],
            _ => vec![250, 500, 1000, 2000, 4000, 8000],
        },
        secs: if mode == "fanout" { 5.0 } else { 10.0 },
        users: match mode.as_str() {
            "p50" => 14,
            _ => 100,
        },
        sockets: 9000,
        storm: 32,
        admission: true,
        hash_wait_ms: "1000".into(),
        record: None,
        label: None,
        out: None,
        files: Vec::new(),
        mode,
    };
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} takes a value"));
        match a.as_str() {
            "--rates" | "--rate" => {
                args.rates = value("--rates")
                    .split(',')
                    .map(|r| r.parse().expect("--rates takes numbers"))
                    .collect();
            }
            "--secs" => args.secs = value("--secs").parse().expect("--secs takes a number"),
            "--users" | "--members" => {
                args.users = value("--users").parse().expect("--users takes a number");
            }
            "--sockets" => args.sockets = value("--sockets").parse().expect("a number"),
            "--storm" => args.storm = value("--storm").parse().expect("a number"),
            "--admission" => args.admission = value("--admission") != "off",
            "--hash-wait-ms" => args.hash_wait_ms = value("--hash-wait-ms"),
            "--record" => args.record = Some(value("--record")),
            "--label" => args.label = Some(value("--label")),
            "--out" => args.out = Some(value("--out")),
            other if args.mode == "chart" => args.files.push(other.to_owned()),
            db => db.clone_into(&mut args.db),
        }
    }
    args
}

/// What a backend is called in the output.
fn backend(db: &str) -> &str {
    if db.starts_with("postgres") {
        "postgres"
    } else {
        db
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    raise_open_files_limit();
    if args.mode == "chart" {
        return chart(&args);
    }
    let mut scratch = Scratch::new(&args.db).await;
    // The idle mode holds hundreds of sockets per user: lift the per-user socket cap too.
    let mut env = vec![
        ("PARLEY_WS_FRAMES_PER_SECOND", FRAMES_PER_SECOND),
        ("PARLEY_MAX_SOCKETS_PER_USER", "0"),
    ];
    if args.mode == "logins" && args.admission {
        // What the logins mode measures: the server's default admission of hashes.
        env.extend([
            ("PARLEY_MAX_HASHES_PER_ADDRESS", "2"),
            ("PARLEY_MAX_HASHES_IN_FLIGHT", "16"),
            ("PARLEY_MAX_HASH_WAIT_MS", args.hash_wait_ms.as_str()),
        ]);
    }
    let server = Server::start(&scratch.url, &env).await;
    println!(
        "parley load, {} on {}, {} cores",
        args.mode,
        backend(&args.db),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    match args.mode.as_str() {
        "sweep" | "p50" => rooms(&server, &args, &scratch, false).await,
        "fanout" => rooms(&server, &args, &scratch, true).await,
        "idle" => idle(&server, args.sockets).await,
        "logins" => logins(&server, args.storm).await,
        other => panic!("unknown mode {other}: sweep, p50, fanout, idle, logins or chart"),
    }
    drop(server);
    scratch.drop_database().await;
}

/// Lifts this process's soft limit on open files to its hard limit; the server, started
/// from here, inherits it.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given and nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit);
        }
    }
}

impl Scratch {
    /// PostgreSQL's counters of the whole cluster: (WAL fsyncs, commits in this database).
    async fn pg_counters(&self) -> Option<(i64, i64)> {
        let conn = sqlx::PgConnection::connect(&self.url).await.ok();
        let mut conn = conn?;
        let syncs: i64 = sqlx::query_scalar("SELECT wal_sync FROM pg_stat_wal")
            .fetch_one(&mut conn)
            .await
            .ok()?;
        let commits: i64 = sqlx::query_scalar(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .ok()?;
        let _ = conn.close().await;
        Some((syncs, commits))
    }
}

/// Registers `n` users named `{prefix}{i}` a few at a time: (id, token) of each, in order.
async fn users(server: &Server, prefix: &str, n: usize) -> Vec<(i64, String)> {
    futures_util::stream::iter(0..n)
        .map(|i| {
            let name = format!("{prefix}{i}");
            async move { server.user(&name).await }
        })
        .buffered(4)
        .collect()
        .await
}

type Sink = SplitSink<Ws, Message>;
type Stream = SplitStream<Ws>;

/// The sweep, p50 and fan-out modes: sockets in direct chats of two (or all in one group),
/// each step a fixed total rate spread evenly over every socket.
async fn rooms(server: &Server, args: &Args, scratch: &Scratch, fanout: bool) {
    let n = args.users;
    assert!(n >= 2 && n.is_multiple_of(2), "the user count must be even");
    let prefix = format!("l{}x", std::process::id() % 100_000);
    let people = users(server, &prefix, n).await;
    // chat_of[i]: the chat socket i is in; members[c]: the sockets of chat c.
    let mut chat_ids = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    if fanout {
        let others: Vec<i64> = people[1..].iter().map(|(id, _)| *id).collect();
        chat_ids.push(server.group_chat(&people[0].1, "load", &others).await);
        members.push((0..n).collect());
    } else {
        for pair in 0..n / 2 {
            let (a, b) = (&people[2 * pair], &people[2 * pair + 1]);
            chat_ids.push(server.direct_chat(&a.1, b.0).await);
            members.push(vec![2 * pair, 2 * pair + 1]);
        }
    }
    let mut sockets: Vec<(Sink, Stream)> = Vec::with_capacity(n);
    for (c, m) in members.iter().enumerate() {
        for &i in m {
            let ws = server
                .ws(&format!("/ws/{}", chat_ids[c]), &people[i].1)
                .await;
            sockets.push(ws.split());
        }
    }
    // The other members of each socket's chat.
    let peers: Vec<Arc<Vec<usize>>> = (0..n)
        .map(|i| {
            let chat = members.iter().find(|m| m.contains(&i)).expect("a chat");
            Arc::new(chat.iter().copied().filter(|&j| j != i).collect())
        })
        .collect();
    let label = args
        .label
        .clone()
        .unwrap_or_else(|| backend(&args.db).to_owned());
    let what = if fanout { "deliveries" } else { "messages" };
    println!(
        "{n} users in {} {}; {} s per step; latency in ms",
        members.len(),
        if fanout { "group" } else { "direct chats" },
        args.secs
    );
    println!();
    println!(
        "| offered msg/s | sent | {what}/s | p50 | p99 | max | lost | dup | errors | server CPU µs/msg | machine busy % | iowait % | WAL fsyncs/msg | commits/msg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (step, &rate) in args.rates.iter().enumerate() {
        let machine = MachineCpu::read();
        let cpu = server.cpu_ticks();
        let pg = scratch.pg_counters().await;
        let (back, r) = run_step(sockets, &peers, step, rate, args.secs).await;
        sockets = back;
        let cpu = server.cpu_ticks() - cpu;
        let machine = MachineCpu::read().since(&machine);
        let pg_delta = match (pg, scratch.pg_counters().await) {
            (Some((s0, c0)), Some((s1, c1))) => Some((s1 - s0, c1 - c0)),
            _ => None,
        };
        let sent = r.sent.max(1) as f64;
        let cpu_us = cpu as f64 * 1e6 / ticks_per_second() as f64 / sent;
        let per_msg = |v: i64| format!("{:.2}", v as f64 / sent);
        println!(
            "| {rate} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {cpu_us:.0} | {:.0} | {:.0} | {} | {} |",
            r.sent,
            r.achieved,
            r.p50,
            r.p99,
            r.max,
            r.lost,
            r.dup,
            r.errors,
            machine.0,
            machine.1,
            pg_delta.map_or_else(|| "-".into(), |(s, _)| per_msg(s)),
            pg_delta.map_or_else(|| "-".into(), |(_, c)| per_msg(c)),
        );
        if let Some(path) = &args.record {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            writeln!(
                f,
                "{label}\t{}\t{rate}\t{:.1}\t{:.3}\t{:.3}\t{:.3}\t{}\t{}\t{}\t{cpu_us:.1}",
                args.mode, r.achieved, r.p50, r.p99, r.max, r.sent, r.lost, r.dup
            )
            .unwrap();
        }
        if r.p99 > 1000.0 {
            println!("p99 past 1 s: the sweep stops here");
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The whole machine's CPU time from /proc/stat: (busy, iowait, total) jiffies.
struct MachineCpu(u64, u64, u64);

impl MachineCpu {
    fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let v: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let get = |i: usize| v.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        let total: u64 = (0..8).map(get).sum();
        Self(total - get(3) - get(4), get(4), total)
    }

    /// Busy and iowait shares of the time since `before`, in percent.
    fn since(&self, before: &Self) -> (f64, f64) {
        let total = (self.2 - before.2).max(1) as f64;
        (
            (self.0 - before.0) as f64 * 100.0 / total,
            (self.1 - before.1) as f64 * 100.0 / total,
        )
    }
}

/// The figures of one step.
struct StepResult {
    sent: u64,
    /// Messages (or, in a group, deliveries) received per second.
    achieved: f64,
    p50: f64,
    p99: f64,
    max: f64,
    lost: u64,
    dup: u64,
    errors: u64,
}

/// What a receiver saw in a step.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u32>,
    delivered: u64,
    dup: u64,
    errors: u64,
    last: Duration,
}

/// The fields of a frame the generator looks at.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    message: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    action: Option<std::borrow::Cow<'a, str>>,
}

/// One step at `rate` messages/s for `secs` over every socket; hands the sockets back.
async fn run_step(
    sockets: Vec<(Sink, Stream)>,
    peers: &[Arc<Vec<usize>>],
    step: usize,
    rate: u64,
    secs: f64,
) -> (Vec<(Sink, Stream)>, StepResult) {
    let n = sockets.len();
    // Socket i sends message k at start + offset(i) + k * every.
    let every = Duration::from_secs_f64(n as f64 / rate as f64);
    let offset = move |i: usize| every.mul_f64(i as f64 / n as f64);
    let count = move |i: usize| {
        let span = secs - offset(i).as_secs_f64();
        (span / every.as_secs_f64()).ceil().max(0.0) as usize
    };
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let start = Instant::now() + Duration::from_millis(200);
    let deadline = start + Duration::from_secs_f64(secs) + DRAIN;
    let mut senders = Vec::with_capacity(n);
    let mut receivers = Vec::with_capacity(n);
    for (i, (mut tx, mut rx)) in sockets.into_iter().enumerate() {
        let sent = sent.clone();
        senders.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at((start + offset(i)).into(), every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for k in 0..count(i) {
                tick.tick().await;
                let body = json!({"message": format!("{step}:{i}:{k}")}).to_string();
                if tx.send(Message::text(body)).await.is_err() {
                    break;
                }
                sent[i].fetch_add(1, Ordering::Relaxed);
            }
            tx
        }));
        let peers = peers[i].clone();
        receivers.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut got: Vec<Vec<bool>> = (0..n).map(|_| Vec::new()).collect();
            for &p in peers.iter() {
                got[p] = vec![false; count(p)];
            }
            let expected: u64 = peers.iter().map(|&p| count(p) as u64).sum();
            let tag = format!("{step}:");
            while seen.delivered < expected {
                let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline.into(), rx.next()).await
                else {
                    break;
                };
                let now = Instant::now();
                let Message::Text(text) = frame else { continue };
                let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
                    continue;
                };
                if frame.action.as_deref() == Some("error") {
                    seen.errors += 1;
                }
                let Some(body) = frame.message else { continue };
                let Some(rest) = body.strip_prefix(tag.as_str()) else {
                    continue;
                };
                let mut parts = rest.split(':').filter_map(|v| v.parse::<usize>().ok());
                let (Some(from), Some(k)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let Some(slot) = got.get_mut(from).and_then(|g| g.get_mut(k)) else {
                    continue; // Our own message, echoed back.
                };
                if std::mem::replace(slot, true) {
                    seen.dup += 1;
                    continue;
                }
                let due = start + offset(from) + every * k as u32;
                let latency = now.saturating_duration_since(due);
                seen.latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                seen.delivered += 1;
                seen.last = now.saturating_duration_since(start);
            }
            (rx, seen)
        }));
    }
    let mut back_tx = Vec::with_capacity(n);
    for s in senders {
        back_tx.push(s.await.unwrap());
    }
    let mut latencies = Vec::new();
    let (mut delivered, mut dup, mut errors, mut last) = (0, 0, 0, Duration::ZERO);
    let mut back = Vec::with_capacity(n);
    let mut expected_sent = 0;
    for (i, (r, tx)) in receivers.into_iter().zip(back_tx).enumerate() {
        let (rx, seen) = r.await.unwrap();
        back.push((tx, rx));
        latencies.extend(seen.latencies_us);
        delivered += seen.delivered;
        dup += seen.dup;
        errors += seen.errors;
        last = last.max(seen.last);
        expected_sent += peers[i]
            .iter()
            .map(|&p| sent[p].load(Ordering::Relaxed))
            .sum::<u64>();
    }
    latencies.sort_unstable();
    let ms = |us: Option<&u32>| us.map_or(0.0, |&v| f64::from(v) / 1e3);
    let q = |p: f64| ms(latencies.get(((latencies.len().max(1) - 1) as f64 * p).round() as usize));
    let span = last.max(Duration::from_secs_f64(secs)).as_secs_f64();
    let result = StepResult {
        sent: sent.iter().map(|s| s.load(Ordering::Relaxed)).sum(),
        achieved: delivered as f64 / span,
        p50: q(0.5),
        p99: q(0.99),
        max: ms(latencies.last()),
        lost: expected_sent.saturating_sub(delivered),
        dup,
        errors,
    };
    (back, result)
}

/// Idle sockets: the server's resident memory before, at half and at all `count` idle `/ws`
/// sockets, opened from several source addresses, each drained by its own small task.
async fn idle(server: &Server, count: usize) {
    let people = users(server, &format!("i{}x", std::process::id() % 100_000), 10).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss0 = server.rss_kib();
    let files0 = server.open_files();
    let opened = Arc::new(AtomicU64::new(0));
    let mut rows = vec![(0, rss0, files0)];
    let mut tasks = Vec::with_capacity(count);
    for half in [count / 2, count - count / 2] {
        let base = tasks.len();
        let mut fresh: Vec<_> = futures_util::stream::iter(base..base + half)
            .map(|i| {
                let token = people[i % people.len()].1.clone();
                let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 16) as u8));
                async move { server.ws_from("/ws", &token, source).await }
            })
            .buffer_unordered(32)
            .map(|ws| {
                let opened = opened.clone();
                tokio::spawn(async move {
                    opened.fetch_add(1, Ordering::Relaxed);
                    let (_tx, mut rx) = ws.split();
                    while let Some(Ok(_)) = rx.next().await {}
                })
            })
            .collect()
            .await;
        tasks.append(&mut fresh);
        tokio::time::sleep(Duration::from_secs(2)).await;
        rows.push((tasks.len(), server.rss_kib(), server.open_files()));
    }
    println!();
    println!("| idle /ws sockets | server RSS MiB | server open files | KiB per socket since 0 |");
    println!("|---|---|---|---|");
    for &(n, rss, files) in &rows {
        let per = if n == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}", (rss as f64 - rss0 as f64) / n as f64)
        };
        println!("| {n} | {:.1} | {files} | {per} |", rss as f64 / 1024.0);
    }
    let (n1, rss1, _) = rows[1];
    let (n2, rss2, _) = rows[2];
    println!(
        "marginal, from {n1} to {n2} sockets: {:.2} KiB per socket",
        (rss2 as f64 - rss1 as f64) / (n2 - n1) as f64
    );
    for t in tasks {
        t.abort();
    }
}

/// The time of a genuine login from one address (127.0.0.2), alone and while `storm` clients
/// at another (127.0.0.1) keep making bogus ones, each as soon as the last was answered.
async fn logins(server: &Server, storm: usize) {
    let name = format!("g{}x", std::process::id() % 100_000);
    server.user(&name).await;
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let login = |client: reqwest::Client, user: String, password: &'static str| {
        let url = format!("{}/auth/login", server.base);
        async move {
            let t = Instant::now();
            let status = client
                .post(url)
                .form(&[("username", user.as_str()), ("password", password)])
                .send()
                .await
                .map_or(0, |r| r.status().as_u16());
            (t.elapsed(), status)
        }
    };
    let mut alone = Vec::new();
    for _ in 0..5 {
        let (t, status) = login(client.clone(), name.clone(), "password123").await;
        assert_eq!(status, 200);
        alone.push(t);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let bogus = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let storm_started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..storm {
        let (stop, bogus, refused) = (stop.clone(), bogus.clone(), refused.clone());
        let client = reqwest::Client::new();
        let url = format!("{}/auth/login", server.base);
        tasks.push(tokio::spawn(async move {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                // A new name each time, so no per-name limit answers without hashing.
                let user = format!("bogus{t}x{k}");
                let status = client
                    .post(&url)
                    .form(&[("username", user.as_str()), ("password", "wrong-password")])
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16());
                if status == 429 {
                    refused.fetch_add(1, Ordering::Relaxed);
                } else {
                    bogus.fetch_add(1, Ordering::Relaxed);
                }
                k += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut during = Vec::new();
    for _ in 0..10 {
        let (t, status) = login(client.clone(), name.clone(), "password123").await;
        assert_eq!(status, 200, "the genuine login failed during the storm");
        during.push(t);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let storm_secs = storm_started.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    alone.sort();
    during.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!();
    println!("| genuine login | median ms | max ms | n |");
    println!("|---|---|---|---|");
    println!(
        "| alone | {:.0} | {:.0} | {} |",
        ms(pct(&alone, 0.5)),
        ms(*alone.last().unwrap()),
        alone.len()
    );
    println!(
        "| during {storm} concurrent bogus logins | {:.0} | {:.0} | {} |",
        ms(pct(&during, 0.5)),
        ms(*during.last().unwrap()),
        during.len()
    );
    println!(
        "bogus logins answered: {:.1}/s hashed, {:.1}/s refused with 429",
        bogus.load(Ordering::Relaxed) as f64 / storm_secs,
        refused.load(Ordering::Relaxed) as f64 / storm_secs
    );
}

/// A point of a chart: offered rate, p50 and p99.
type Point = (f64, f64, f64);
/// The runs of one series, by offered rate.
type Runs = BTreeMap<u64, Vec<[f64; 8]>>;

/// One recorded step, as `--record` writes it.
struct Record {
    label: String,
    mode: String,
    rate: u64,
    /// achieved, p50, p99, max, sent, lost, dup, server CPU µs/msg
    figures: [f64; 8],
}

/// Medians over runs, a table and an SVG chart of p50 and p99 against the offered rate.
fn chart(args: &Args) {
    let mut records = Vec::new();
    for file in &args.files {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 11 {
                continue;
            }
            let mut figures = [0.0; 8];
            for (slot, v) in figures.iter_mut().zip(&f[3..11]) {
                *slot = v.parse().unwrap_or(0.0);
            }
            records.push(Record {
                label: f[0].to_owned(),
                mode: f[1].to_owned(),
                rate: f[2].parse().unwrap_or(0),
                figures,
            });
        }
    }
    // (mode, label) -> rate -> runs
    let mut series: BTreeMap<(String, String), Runs> = BTreeMap::new();
    for r in records {
        series
            .entry((r.mode, r.label))
            .or_default()
            .entry(r.rate)
            .or_default()
            .push(r.figures);
    }
    let median = |runs: &[[f64; 8]], i: usize| {
        let mut v: Vec<f64> = runs.iter().map(|r| r[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "| mode | series | offered msg/s | runs | achieved/s | p50 ms | p99 ms | max ms | lost | dup | server CPU µs/msg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut lines: Vec<(String, Vec<Point>)> = Vec::new();
    for ((mode, label), rates) in &series {
        let mut points = Vec::new();
        for (rate, runs) in rates {
            let m = |i| median(runs, i);
            println!(
                "| {mode} | {label} | {rate} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} |",
                runs.len(),
                m(0),
                m(1),
                m(2),
                m(3),
                m(5),
                m(6),
                m(7)
            );
            points.push((*rate as f64, m(1), m(2)));
        }
        if mode == "sweep" {
            lines.push((label.clone(), points));
        }
    }
    if let Some(out) = &args.out {
        std::fs::write(out, svg(&lines)).unwrap();
        println!("chart written to {out}");
    }
}

/// A log-log chart: one colour per series, p50 solid and p99 dashed.
fn svg(series: &[(String, Vec<Point>)]) -> String {
    const W: f64 = 760.0;
    const H: f64 = 440.0;
    const L: f64 = 70.0;
    const R: f64 = 180.0;
    const T: f64 = 40.0;
    const B: f64 = 50.0;
    const COLOURS: [&str; 8] = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f",
    ];
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1) = (f64::MAX, f64::MIN);
    for &(x, _, _) in points.clone() {
        x0 = x0.min(x);
        x1 = x1.max(x);
    }
    let (y0, y1) = (0.1_f64, 10_000.0_f64);
    let (x0, x1) = (x0.max(1.0).log10().floor(), x1.max(10.0).log10().ceil());
    let px = |x: f64| L + (x.log10() - x0) / (x1 - x0) * (W - L - R);
    let py = |y: f64| {
        let y = y.clamp(y0, y1);
        H - B - (y.log10() - y0.log10()) / (y1.log10() - y0.log10()) * (H - T - B)
    };
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{L}" y="22" font-size="14">Parley: send-to-receipt latency against offered rate (100 users, 50 direct chats)</text>
"#
    );
    for e in 0..=4 {
        let y = 10f64.powi(e - 1);
        let label = if y < 1.0 {
            format!("{y}")
        } else {
            format!("{y:.0}")
        };
        s += &format!(
            "<line x1=\"{L}\" x2=\"{}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#ddd\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{label}</text>\n",
            W - R,
            py(y),
            L - 6.0,
            py(y) + 4.0
        );
    }
    let mut x = 10f64.powf(x0);
    while x <= 10f64.powf(x1) * 1.001 {
        for m in [1.0, 2.0, 5.0] {
            let v = x * m;
            if v < 10f64.powf(x0) || v > 10f64.powf(x1) * 1.001 {
                continue;
            }
            s += &format!(
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{T}\" y2=\"{1}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{v:.0}</text>\n",
                px(v),
                H - B,
                H - B + 16.0
            );
        }
        x *= 10.0;
    }
    s += &format!(
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">offered messages/s (log)</text>\n<text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">ms (log)</text>\n",
        (L + W - R) / 2.0,
        H - 10.0,
        (T + H - B) / 2.0,
        (T + H - B) / 2.0
    );
    s += &format!(
        "<rect x=\"{L}\" y=\"{T}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n",
        W - L - R,
        H - T - B
    );
    for (i, (label, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        for (which, dash) in [(1, ""), (2, " stroke-dasharray=\"6 4\"")] {
            let path: Vec<String> = points
                .iter()
                .map(|p| {
                    let y = if which == 1 { p.1 } else { p.2 };
                    format!("{:.1},{:.1}", px(p.0), py(y))
                })
                .collect();
            s += &format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>\n",
                path.join(" ")
            );
            for p in points {
                let y = if which == 1 { p.1 } else { p.2 };
                s += &format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>\n",
                    px(p.0),
                    py(y)
                );
            }
        }
        let ly = T + 10.0 + i as f64 * 36.0;
        let lx = W - R + 14.0;
        s += &format!(
            "<line x1=\"{lx}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">{label} p50</text>\n",
            lx + 24.0,
            lx + 30.0,
            ly + 4.0
        );
        s += &format!(
            "<line x1=\"{lx}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{}\">{label} p99</text>\n",
            lx + 24.0,
            ly + 16.0,
            ly + 16.0,
            lx + 30.0,
            ly + 20.0
        );
    }
    s += "</svg>\n";
    s
}
