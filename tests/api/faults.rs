//! Delivery under faults: members of one group send with `client_id` over `/ws`, drop their
//! sockets at random and resume, while the server is stopped and started in the middle.
//! Afterwards every member holds every message exactly once, in `seq` order, and the database
//! holds each exactly once.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::RwLock;
use tokio_tungstenite::tungstenite::Message;

use crate::support::app::{Backend, TestApp, TestUser};

const MEMBERS: usize = 20;
const PER_MEMBER: usize = 100;
const TOTAL: usize = MEMBERS * PER_MEMBER;
/// The whole run must finish within this.
const DEADLINE: Duration = Duration::from_secs(120);

on_every_backend_but_memory!(messages_survive_dropped_sockets_and_a_restart_exactly_once);

/// What one member's client holds: messages by `seq`, and which of its own sends are acked.
#[derive(Default)]
struct Held {
    by_seq: BTreeMap<i64, (i64, String)>,
    acked: HashSet<String>,
}

impl Held {
    /// The highest `seq` up to which nothing is missing.
    fn contiguous(&self) -> i64 {
        let mut last = 0;
        for seq in self.by_seq.keys() {
            if *seq != last + 1 {
                break;
            }
            last = *seq;
        }
        last
    }

    fn done(&self) -> bool {
        self.by_seq.len() >= TOTAL && self.acked.len() >= PER_MEMBER
    }

    /// Takes one event in; panics if a `seq` comes with another message than before.
    fn take(&mut self, v: &Value) {
        if let (Some(seq), Some(id)) = (v["seq"].as_i64(), v["id"].as_i64())
            && v.get("action").is_none()
        {
            let text = v["message"].as_str().unwrap_or_default().to_owned();
            let known = self.by_seq.insert(seq, (id, text.clone()));
            assert!(
                known.is_none_or(|k| k == (id, text)),
                "seq {seq} named two messages"
            );
        }
        if v["action"] == "ack" {
            self.acked
                .insert(v["client_id"].as_str().unwrap().to_owned());
        }
    }
}

/// One member's client: connects, resumes, sends what is not acked yet, drops the socket at
/// random, and starts over until it holds everything and all its sends are acked.
async fn member(
    n: usize,
    user: TestUser,
    chat: i64,
    addr: Arc<RwLock<String>>,
    acks: Arc<AtomicUsize>,
) -> Held {
    let mut rng = StdRng::seed_from_u64(n as u64);
    let mut held = Held::default();
    let started = Instant::now();
    let mine: Vec<String> = (0..PER_MEMBER).map(|i| format!("m{n}-{i}")).collect();
    while !held.done() {
        assert!(started.elapsed() < DEADLINE, "member {n} did not finish");
        let url = format!("ws://{}/ws?token={}", addr.read().await, user.token);
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue; // The server is restarting.
        };
        let resume = json!({"action": "resume", "chat_id": chat, "after_seq": held.contiguous()});
        if ws.send(Message::text(resume.to_string())).await.is_err() {
            continue;
        }
        // Send every unacked message again, paced under the socket's flood limit, reading
        // all the while; now and then drop the socket in the middle.
        let pending: Vec<String> = mine
            .iter()
            .filter(|c| !held.acked.contains(*c))
            .cloned()
            .collect();
        let mut pending = pending.into_iter();
        let drop_after = rng.random_range(5..60);
        let mut frames = 0;
        let mut next_send = Instant::now();
        let mut quiet_since = Instant::now();
        loop {
            let now = Instant::now();
            if frames >= drop_after && rng.random_bool(0.5) {
                break; // Drop without a goodbye.
            }
            if now >= next_send {
                if let Some(client_id) = pending.next() {
                    let frame =
                        json!({"chat_id": chat, "message": client_id, "client_id": client_id});
                    if ws.send(Message::text(frame.to_string())).await.is_err() {
                        break;
                    }
                    frames += 1;
                }
                next_send = now + Duration::from_millis(70);
            }
            match tokio::time::timeout(Duration::from_millis(50), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["action"] == "ack" {
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                    assert!(
                        v["action"] != "error" || v["code"] == "rate_limited",
                        "member {n}: {v}"
                    );
                    held.take(&v);
                    quiet_since = Instant::now();
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => break, // Closed: a restart.
                Err(_) => {
                    if held.done() {
                        return held;
                    }
                    // Nothing left to send and nothing arriving: resume again.
                    if pending.len() == 0 && quiet_since.elapsed() > Duration::from_secs(2) {
                        break;
                    }
                }
            }
        }
    }
    held
}

async fn messages_survive_dropped_sockets_and_a_restart_exactly_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.user("owner").await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        members.push(app.user(&format!("member{i}")).await);
    }
    let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    let (_, room) = owner
        .post("/chats", json!({"name": "faults", "member_ids": ids}))
        .await;
    let room = room["chat_id"].as_i64().unwrap();

    let addr = Arc::new(RwLock::new(app.addr.to_string()));
    let acks = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (n, user) in members.into_iter().enumerate() {
        let (addr, acks) = (addr.clone(), acks.clone());
        tasks.push(tokio::spawn(member(n, user, room, addr, acks)));
    }
    // Stop and start the server when about half the messages are acked.
    while acks.load(Ordering::Relaxed) < TOTAL / 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (db_url, bind) = (app.db_url.clone(), app.addr);
    let dir = app.stop().await;
    let app = TestApp::spawn_at(&db_url, bind, dir).await;

    let mut holdings = Vec::new();
    for t in tasks {
        holdings.push(t.await.unwrap());
    }
    let expected: HashSet<String> = (0..MEMBERS)
        .flat_map(|n| (0..PER_MEMBER).map(move |i| format!("m{n}-{i}")))
        .collect();
    let first = holdings[0].by_seq.clone();
    let seqs: Vec<i64> = (1..=TOTAL as i64).collect();
    for held in &holdings {
        assert_eq!(held.by_seq.keys().copied().collect::<Vec<_>>(), seqs);
        assert_eq!(held.by_seq, first, "every member holds the same stream");
        let texts: HashSet<String> = held.by_seq.values().map(|(_, t)| t.clone()).collect();
        assert_eq!(texts, expected, "each message exactly once");
    }
    // The database holds each once, in the same order.
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = owner
            .get(&format!(
                "/chats/{room}/messages?after_seq={after}&limit=200"
            ))
            .await;
        assert_eq!(status, 200);
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap()["seq"].as_i64().unwrap();
        stored.extend(page);
    }
    assert_eq!(stored.len(), TOTAL);
    for (i, m) in stored.iter().enumerate() {
        let seq = m["seq"].as_i64().unwrap();
        assert_eq!(seq, i as i64 + 1);
        let held = (
            m["id"].as_i64().unwrap(),
            m["message"].as_str().unwrap().to_owned(),
        );
        assert_eq!(first[&seq], held);
    }
    app.stop().await;
}
