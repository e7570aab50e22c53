//! A rerunnable benchmark of a release `parley` binary, run as its own process so its memory
//! can be read from /proc: message round-trip latency over WebSockets, fan-out throughput in a
//! group, history reads over HTTP, and the memory an idle socket costs.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench -- [sqlite|memory|postgres://...]
//! ```
//! Prints medians (and p90/p99) of each figure; record them with the machine in
//! `docs/benchmarks.md`.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Server, Ws, pct};
use tokio_tungstenite::tungstenite::Message;

const ROUND_TRIPS: usize = 2000;
const GROUP_SIZE: usize = 10;
const PER_SENDER: usize = 200;
const IDLE_SOCKETS: usize = 1000;
const HISTORY_READS: usize = 1000;

async fn next_message(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await.expect("socket open").unwrap() {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v.get("action").is_none() {
                    return v;
                }
            }
            _ => continue,
        }
    }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<34} median {:>8.3} ms   p90 {:>8.3} ms   p99 {:>8.3} ms   (n={})",
        pct(&samples, 0.5).as_secs_f64() * 1e3,
        pct(&samples, 0.9).as_secs_f64() * 1e3,
        pct(&samples, 0.99).as_secs_f64() * 1e3,
        samples.len()
    );
}

#[tokio::main]
async fn main() {
    let db = std::env::args().nth(1).unwrap_or_else(|| "sqlite".into());
    // The fan-out senders post as fast as they can, and one user holds the idle sockets:
    // lift the per-socket flood limit and the per-user socket cap.
    let s = Server::start(
        &db,
        &[
            ("PARLEY_WS_FRAMES_PER_SECOND", "0"),
            ("PARLEY_MAX_SOCKETS_PER_USER", "0"),
        ],
    )
    .await;
    println!(
        "parley bench on {db}, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let c = reqwest::Client::new();

    // Round trip: ann posts on her socket, bob's socket receives it (stored first).
    let (_, ann) = s.user("ann").await;
    let (bob_id, bob) = s.user("bob").await;
    let chat = s.direct_chat(&ann, bob_id).await;
    let mut a = s.ws(&format!("/ws/{chat}"), &ann).await;
    let mut b = s.ws(&format!("/ws/{chat}"), &bob).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut rtt = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS {
        let t = Instant::now();
        a.send(Message::text(
            json!({"message": format!("ping {i}")}).to_string(),
        ))
        .await
        .unwrap();
        let got = next_message(&mut b).await;
        rtt.push(t.elapsed());
        assert_eq!(got["message"], format!("ping {i}"));
        next_message(&mut a).await;
    }
    report("message round trip (ws -> ws)", rtt);

    // History: the latest 50 of the chat.
    let mut reads = Vec::with_capacity(HISTORY_READS);
    for _ in 0..HISTORY_READS {
        let t = Instant::now();
        let r = c
            .get(format!("{}/chats/{chat}/messages", s.base))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        reads.push(t.elapsed());
    }
    report("GET history (50 messages)", reads);

    // Fan-out: GROUP_SIZE members each post PER_SENDER messages at once; every member
    // receives every message.
    let mut members = Vec::new();
    for i in 0..GROUP_SIZE {
        members.push(s.user(&format!("member{i}")).await);
    }
    let ids: Vec<i64> = members.iter().map(|m| m.0).collect();
    let g: Value = c
        .post(format!("{}/chats", s.base))
        .bearer_auth(&ann)
        .json(&json!({"name": "bench", "member_ids": ids}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let group = g["chat_id"].as_i64().unwrap();
    let mut sockets = Vec::new();
    for (_, token) in &members {
        sockets.push(s.ws(&format!("/ws/{group}"), token).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let total = GROUP_SIZE * PER_SENDER;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (i, sock) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = sock.split();
            let send = async {
                for n in 0..PER_SENDER {
                    tx.send(Message::text(
                        json!({"message": format!("{i}:{n}")}).to_string(),
                    ))
                    .await
                    .unwrap();
                }
            };
            let recv = async {
                let mut seen = 0;
                while seen < total {
                    match rx.next().await {
                        Some(Ok(Message::Text(t))) if !t.contains("\"action\"") => seen += 1,
                        Some(Ok(_)) => {}
                        other => panic!("socket closed after {seen} of {total}: {other:?}"),
                    }
                }
            };
            tokio::join!(send, recv);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let took = t.elapsed();
    println!(
        "{:<34} {total} messages stored, {} deliveries in {:.2} s: {:.0} stored/s, {:.0} delivered/s",
        format!("group fan-out ({GROUP_SIZE} members)"),
        total * GROUP_SIZE,
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        (total * GROUP_SIZE) as f64 / took.as_secs_f64()
    );

    // Idle sockets: the server's resident memory before and after opening them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = s.rss_kib();
    let mut idle = Vec::with_capacity(IDLE_SOCKETS);
    for _ in 0..IDLE_SOCKETS {
        let mut w = s.ws("/ws", &bob).await;
        // Wait for the greeting so the socket is fully set up.
        while let Some(Ok(m)) = w.next().await {
            if m.to_text().is_ok_and(|t| t.contains("\"ready\"")) {
                break;
            }
        }
        idle.push(w);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = s.rss_kib();
    println!(
        "{:<34} {:.1} KiB per socket (server RSS {} -> {} KiB)",
        format!("idle /ws socket ({IDLE_SOCKETS})"),
        (after.saturating_sub(before)) as f64 / IDLE_SOCKETS as f64,
        before,
        after
    );
    drop(idle);
}
