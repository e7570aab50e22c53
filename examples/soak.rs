//! A soak of a release `parley` binary: a fixed message rate for a set time, sampling every
//! minute what must stay flat under steady load: the server's resident memory, its open files,
//! and the size of its database (for SQLite the main file, the write-ahead log and its index;
//! for PostgreSQL the database and the server's WAL directory), beside the delivery latency.
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/soak [sqlite|memory|postgres://...] [--rate 300] [--minutes 30] [--users 100]
//! ```
//! The load is open-loop: each of `users` members of `users / 2` direct chats has a
//! `/ws/{chat_id}` socket and sends on a fixed schedule whether or not earlier messages have
//! arrived, so a slow server shows up as growing latency rather than as a lower rate. At the
//! end the server is stopped with SIGTERM and what is left on disk is reported.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::Connection as _;
use support::{Server, file_size, pct};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

struct Args {
    db: String,
    rate: u64,
    minutes: u64,
    users: usize,
}

fn args() -> Args {
    let mut args = Args {
        db: "sqlite".into(),
        rate: 300,
        minutes: 30,
        users: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} takes a number"))
        };
        match a.as_str() {
            "--rate" => args.rate = value("--rate"),
            "--minutes" => args.minutes = value("--minutes"),
            "--users" => args.users = value("--users") as usize,
            db => args.db = db.to_owned(),
        }
    }
    assert!(
        args.users >= 2 && args.users.is_multiple_of(2),
        "--users must be even"
    );
    args
}

/// Latencies and counts of the current sampling period.
#[derive(Default)]
struct Period {
    latencies: Mutex<Vec<Duration>>,
    sent: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
}

/// What is on disk for the database, in bytes: (main, wal, wal index), as far as it is known.
async fn disk(s: &Server) -> (Option<u64>, Option<u64>, Option<u64>) {
    if let Some(path) = &s.sqlite_path {
        let wal = path.with_extension("db-wal");
        let shm = path.with_extension("db-shm");
        return (
            Some(file_size(path)),
            Some(file_size(&wal)),
            Some(file_size(&shm)),
        );
    }
    if !s.database_url.starts_with("postgres") {
        return (None, None, None);
    }
    let Ok(mut conn) = sqlx::PgConnection::connect(&s.database_url).await else {
        return (None, None, None);
    };
    let db: Option<i64> = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await
        .ok();
    // Needs a superuser or pg_monitor; reported as unknown otherwise.
    let wal: Option<i64> =
        sqlx::query_scalar("SELECT COALESCE(sum(size), 0)::bigint FROM pg_ls_waldir()")
            .fetch_one(&mut conn)
            .await
            .ok();
    let _ = conn.close().await;
    (db.map(|v| v as u64), wal.map(|v| v as u64), None)
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".into(), |b| format!("{:.1}", b as f64 / 1048576.0))
}

/// Prints one row of the series: the period's traffic and what the server holds now.
async fn sample(minute: u64, s: &Server, period: &Period) {
    let mut lat = std::mem::take(&mut *period.latencies.lock().await);
    lat.sort();
    let (main, wal, shm) = disk(s).await;
    println!(
        "| {minute} | {} | {} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} |",
        period.sent.swap(0, Ordering::Relaxed),
        period.delivered.swap(0, Ordering::Relaxed),
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        s.rss_kib() as f64 / 1024.0,
        s.open_files(),
        mib(main),
        mib(wal),
        mib(shm),
    );
}

#[tokio::main]
async fn main() {
    let Args {
        db,
        rate,
        minutes,
        users,
    } = args();
    let mut s = Server::start(&db, &[("PARLEY_WS_FRAMES_PER_SECOND", "1000")]).await;
    println!(
        "parley soak on {db}: {users} users in {} direct chats, {rate} messages/s for {minutes} min, {} cores",
        users / 2,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut sockets = Vec::with_capacity(users);
    for pair in 0..users / 2 {
        let (_, a) = s.user(&format!("soak{pair}a")).await;
        let (b_id, b) = s.user(&format!("soak{pair}b")).await;
        let chat = s.direct_chat(&a, b_id).await;
        for token in [a, b] {
            sockets.push(s.ws(&format!("/ws/{chat}"), &token).await);
        }
    }

    let start = Instant::now();
    let period = Arc::new(Period::default());
    let end = start + Duration::from_secs(minutes * 60);
    // Each socket sends every `users / rate` seconds, the sockets spread evenly over that time.
    let every = Duration::from_secs_f64(users as f64 / rate as f64);
    let mut tasks = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let period = period.clone();
        let first = start + every.mul_f64(i as f64 / users as f64);
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = socket.split();
            let me = format!("s{i}:");
            let send = async {
                let mut tick = tokio::time::interval_at(first.into(), every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                loop {
                    let at = tick.tick().await;
                    if Instant::from(at) >= end {
                        break;
                    }
                    let sent_us = start.elapsed().as_micros();
                    let body = json!({"message": format!("{me}{sent_us}")}).to_string();
                    if tx.send(Message::text(body)).await.is_err() {
                        period.errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    period.sent.fetch_add(1, Ordering::Relaxed);
                }
            };
            let recv = async {
                while let Some(Ok(frame)) = rx.next().await {
                    let Message::Text(text) = frame else { continue };
                    let v: Value = serde_json::from_str(&text).unwrap_or_default();
                    let Some(body) = v["message"].as_str() else {
                        continue;
                    };
                    if body.starts_with(&me) {
                        continue; // Our own message, echoed back.
                    }
                    let Some(sent_us) = body.split(':').nth(1).and_then(|t| t.parse().ok()) else {
                        continue;
                    };
                    let latency = start
                        .elapsed()
                        .saturating_sub(Duration::from_micros(sent_us));
                    period.latencies.lock().await.push(latency);
                    period.delivered.fetch_add(1, Ordering::Relaxed);
                }
            };
            tokio::select! {
                () = async { send.await; tokio::time::sleep(Duration::from_secs(5)).await } => {}
                () = recv => {}
            }
        }));
    }

    println!();
    println!(
        "| minute | sent | delivered | p50 ms | p99 ms | RSS MiB | open files | database MiB | WAL MiB | WAL index MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    sample(0, &s, &period).await;
    for minute in 1..=minutes {
        tokio::time::sleep_until((start + Duration::from_secs(minute * 60)).into()).await;
        sample(minute, &s, &period).await;
    }
    for task in tasks {
        let _ = task.await;
    }
    let errors = period.errors.load(Ordering::Relaxed);
    let status = s.terminate();
    let (main, wal, shm) = disk(&s).await;
    println!();
    println!(
        "send errors {errors}; after SIGTERM ({status}): database {} MiB, WAL {} MiB, WAL index {} MiB",
        mib(main),
        mib(wal),
        mib(shm)
    );
}
