//! The embedded database keeps its write-ahead log bounded under steady writes with readers
//! reading, folds it into the main file, and leaves none behind after a graceful shutdown.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use crate::support::app::{Backend, TestApp};

/// What the log may reach; a run without checkpoints passes it after about 5,000 messages.
const WAL_BOUND: u64 = 64 * 1024 * 1024;
const WRITERS: usize = 8;
const PER_WRITER: usize = 2_500;

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_stays_bounded_under_writes_with_readers_and_is_gone_after_shutdown() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let db = Path::new(app.db_url.trim_start_matches("sqlite://")).to_owned();
    let wal = db.with_extension("db-wal");
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let (ann, bob) = (Arc::new(ann), Arc::new(bob));

    // Readers read history the whole time, so that checkpoints always compete with them.
    let writing = Arc::new(AtomicBool::new(true));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (bob, writing) = (bob.clone(), writing.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0_u32;
            while writing.load(Ordering::Relaxed) {
                let (status, _) = bob.get(&format!("/chats/{chat}/messages")).await;
                assert_eq!(status, 200);
                reads += 1;
            }
            reads
        }));
    }
    let watcher = {
        let (wal, writing) = (wal.clone(), writing.clone());
        tokio::spawn(async move {
            let mut largest = 0;
            while writing.load(Ordering::Relaxed) {
                largest = largest.max(size(&wal));
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            largest
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let ann = ann.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..PER_WRITER {
                // Past the checkpoints' page granularity, so the log grows quickly without them.
                let text = format!("{w}:{n} {}", "x".repeat(200));
                let (status, body) = ann
                    .post(&format!("/chats/{chat}/messages"), json!({"message": text}))
                    .await;
                assert_eq!(status, 201, "{body}");
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    writing.store(false, Ordering::Relaxed);
    let largest = watcher.await.unwrap();
    for r in readers {
        assert!(r.await.unwrap() > 0, "readers read while writers wrote");
    }

    let total = WRITERS * PER_WRITER;
    assert!(
        largest < WAL_BOUND,
        "the log reached {largest} bytes for {total} messages"
    );
    let (_, chats) = bob.get("/chats").await;
    assert_eq!(chats[0]["unread"], total, "every message was stored");

    let dir = app.stop().await;
    assert!(!wal.exists(), "a graceful shutdown leaves no log behind");
    assert!(!db.with_extension("db-shm").exists(), "nor its index");
    // The main file holds the messages: more than their bodies alone.
    assert!(
        size(&db) > (total * 200) as u64,
        "main file is {} bytes",
        size(&db)
    );
    drop(dir);
}
