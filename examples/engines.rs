//! What each engine carries between two instances: events published on one instance's bus
//! and heard on another's, open loop, at rising rates.
//!
//! ```sh
//! cargo build --release --examples
//! E=target/release/examples/engines
//! $E postgres://postgres@127.0.0.1:54341/postgres                          # LISTEN/NOTIFY
//! $E postgres://postgres@127.0.0.1:54341/postgres --redis redis://127.0.0.1:6390  # Redis
//! $E ... --batch 32     # events published 32 at a time (`publish_all`, as group commit does)
//! ```
//!
//! Two buses, each with its own connections as two instances would have, run in this process;
//! PostgreSQL stays the store in both cases (a fresh database, dropped at the end). A step
//! offers `--rates` events a second (default 1 000 to 64 000) for `--secs` (default 5),
//! publishing each event (or batch) as its own task, as many sockets would; each event is a
//! message of 100 characters stamped with the time it was due. The other bus counts what it
//! hears, and latency runs from the due time to receipt. The sweep stops after the first step
//! whose p99 passes one second or that loses events.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use parley::adapters::bus::PgBus;
use parley::adapters::postgres::PgStore;
use parley::adapters::redis::{Redis, RedisBus};
use parley::domain::{ChatId, Event, Message, MessageBody, MessageId, Seq, UserId, Username};
use parley::ports::EventBus;
use support::{Scratch, pct};

struct Args {
    db: String,
    redis: Option<String>,
    rates: Vec<u64>,
    secs: f64,
    batch: usize,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        db: String::new(),
        redis: None,
        rates: vec![1000, 2000, 4000, 8000, 16_000, 32_000, 64_000],
        secs: 5.0,
        batch: 1,
    };
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} takes a value"));
        match a.as_str() {
            "--redis" => args.redis = Some(value("--redis")),
            "--rates" => {
                args.rates = value("--rates")
                    .split(',')
                    .map(|r| r.parse().expect("--rates takes numbers"))
                    .collect();
            }
            "--secs" => args.secs = value("--secs").parse().expect("a number"),
            "--batch" => args.batch = value("--batch").parse().expect("a number"),
            db => db.clone_into(&mut args.db),
        }
    }
    assert!(
        args.db.starts_with("postgres"),
        "usage: engines POSTGRES_URL [--redis URL] [--rates ...] [--secs S] [--batch N]"
    );
    args
}

fn message(n: i64, due: chrono::DateTime<Utc>) -> Event {
    Event::MessagePosted(Message {
        id: MessageId(n),
        chat_id: ChatId(1 + n % 50),
        seq: Seq(n),
        sender_id: UserId(1),
        sender_username: Username::parse("ann").unwrap(),
        body: MessageBody::from_trusted("x".repeat(100)),
        created_at: due,
        client_id: None,
        edited_at: None,
        deleted: false,
        reply_to: None,
        reactions: Vec::new(),
        change_seq: None,
    })
}

async fn bus(args: &Args, url: &str) -> Arc<dyn EventBus> {
    let store = PgStore::connect(url, 16).await.expect("PostgreSQL");
    store.migrate().await.expect("migrate");
    match &args.redis {
        Some(redis) => {
            let redis = Redis::connect(redis, &format!("bench{}", std::process::id()))
                .await
                .expect("Redis");
            Arc::new(RedisBus::start(&redis, store.pool().clone()).await.unwrap())
        }
        None => Arc::new(PgBus::start(store.pool().clone()).await.unwrap()),
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    let mut scratch = Scratch::new(&args.db).await;
    let (one, two) = (
        bus(&args, &scratch.url).await,
        bus(&args, &scratch.url).await,
    );
    let engine = if args.redis.is_some() {
        "redis"
    } else {
        "postgres"
    };
    println!(
        "parley engines, {engine}, batches of {}, {} cores",
        args.batch,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("| engine | batch | offered ev/s | heard ev/s | p50 ms | p99 ms | max ms | lost |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut heard = two.subscribe();
    let mut next = 0_i64;
    for &rate in &args.rates {
        let total = (rate as f64 * args.secs) as i64;
        let first = next;
        next += total;
        let failed = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let publisher = {
            let (one, failed, batch) = (one.clone(), failed.clone(), args.batch as i64);
            tokio::spawn(async move {
                let mut sent = 0;
                let mut tick = tokio::time::interval(Duration::from_millis(1));
                while sent < total {
                    tick.tick().await;
                    let due = (start.elapsed().as_secs_f64() * rate as f64) as i64;
                    while sent < total.min(due) {
                        let n = batch.min(total - sent);
                        let now = Utc::now();
                        let events: Vec<Event> =
                            (0..n).map(|k| message(first + sent + k, now)).collect();
                        sent += n;
                        let (one, failed) = (one.clone(), failed.clone());
                        tokio::spawn(async move {
                            let published = if events.len() == 1 {
                                one.publish(events.into_iter().next().unwrap()).await
                            } else {
                                one.publish_all(events).await
                            };
                            if published.is_err() {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                }
            })
        };
        let mut latencies = Vec::with_capacity(total as usize);
        let deadline = start + Duration::from_secs_f64(args.secs) + Duration::from_secs(5);
        while (latencies.len() as i64) < total {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, heard.next()).await {
                Ok(Some(Event::MessagePosted(m))) if m.id.0 >= first => {
                    latencies.push((Utc::now() - m.created_at).to_std().unwrap_or_default());
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let took = start.elapsed().as_secs_f64().max(args.secs);
        publisher.await.unwrap();
        let got = latencies.len() as i64;
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {engine} | {} | {rate} | {:.0} | {:.1} | {:.1} | {:.1} | {} |",
            args.batch,
            got as f64 / took,
            ms(pct(&latencies, 0.5)),
            ms(pct(&latencies, 0.99)),
            ms(latencies.last().copied().unwrap_or_default()),
            total - got,
        );
        if failed.load(Ordering::Relaxed) > 0 {
            println!("  ({} publishes failed)", failed.load(Ordering::Relaxed));
        }
        if total > got || pct(&latencies, 0.99) > Duration::from_secs(1) {
            break;
        }
        // Let the engine drain before the next step.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    scratch.drop_database().await;
}
