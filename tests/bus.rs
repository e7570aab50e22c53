//! The event buses between two instances, PostgreSQL's and Redis's: what one publishes, both
//! hear, in order, whether published alone or many at once, however large.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use parley::adapters::bus::PgBus;
use parley::adapters::postgres::PgStore;
use parley::adapters::redis::{Redis, RedisBus};
use parley::domain::{ChatId, Event, Message, MessageBody, MessageId, Seq, UserId, Username};
use parley::ports::{EventBus, EventStream};

/// One instance's bus: over PostgreSQL alone, or over the Redis at `redis` (URL, prefix).
async fn instance(url: &str, redis: Option<(&str, &str)>) -> Box<dyn EventBus> {
    let store = PgStore::connect(url, 4)
        .await
        .expect("open PostgreSQL store");
    store.migrate().await.expect("migrate");
    match redis {
        Some((url, prefix)) => {
            let redis = Redis::connect(url, prefix).await.expect("connect to Redis");
            Box::new(
                RedisBus::start(&redis, store.pool().clone())
                    .await
                    .expect("start the bus"),
            )
        }
        None => Box::new(
            PgBus::start(store.pool().clone())
                .await
                .expect("start the bus"),
        ),
    }
}

fn message(n: i64, text: &str) -> Event {
    Event::MessagePosted(Message {
        id: MessageId(n),
        chat_id: ChatId(1),
        seq: Seq(n),
        sender_id: UserId(1),
        sender_username: Username::parse("ann").unwrap(),
        body: MessageBody::from_trusted(text.to_owned()),
        created_at: Utc::now(),
        client_id: None,
        edited_at: None,
        deleted: false,
        reply_to: None,
        reactions: Vec::new(),
        change_seq: None,
    })
}

async fn next_ids(events: &mut EventStream, n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived: {ids:?}", ids.len()))
            .expect("bus open");
        match event {
            Event::MessagePosted(m) => ids.push(m.id.0),
            other => panic!("unexpected {other:?}"),
        }
    }
    ids
}

#[tokio::test]
async fn a_batch_reaches_every_instance_whole_and_in_order_over_postgres() {
    let url = support::postgres::fresh_database_url().await;
    a_batch_reaches_every_instance_whole_and_in_order(&url, None).await;
}

#[tokio::test]
async fn a_batch_reaches_every_instance_whole_and_in_order_over_redis() {
    let url = support::postgres::fresh_database_url().await;
    let redis = support::redis::TestRedis::start().await;
    a_batch_reaches_every_instance_whole_and_in_order(&url, Some((&redis.url, &redis.prefix)))
        .await;
}

async fn a_batch_reaches_every_instance_whole_and_in_order(url: &str, redis: Option<(&str, &str)>) {
    let (one, two) = (instance(url, redis).await, instance(url, redis).await);
    let (mut heard_by_one, mut heard_by_two) = (one.subscribe(), two.subscribe());

    // Enough to need several notifications, with one event too large for any of them.
    let mut batch: Vec<Event> = (1..=300).map(|n| message(n, "hello there")).collect();
    batch[150] = message(151, &"x".repeat(9000));
    one.publish_all(batch).await.expect("publish_all");
    one.publish(message(301, "alone")).await.expect("publish");

    let expected: Vec<i64> = (1..=301).collect();
    assert_eq!(next_ids(&mut heard_by_one, 301).await, expected);
    assert_eq!(next_ids(&mut heard_by_two, 301).await, expected);
}
