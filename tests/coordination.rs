//! The contract of what ties instances together: presence (`PresenceTracker`), failed logins
//! (`LoginFailures`) and the windows of rate limits (`RateWindows`), as their `///` docs in
//! `src/ports` promise, written once and run against every adapter that keeps them: in this
//! process, in PostgreSQL (a fresh database per test) and in Redis (a server per test).
//! Presence cases that need two instances run where two instances can share a tracker.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone, Utc};
use parley::adapters::postgres::{PgLoginFailures, PgPresence, PgRateWindows, PgStore};
use parley::adapters::presence::LocalPresence;
use parley::adapters::redis::{Redis, RedisLoginFailures, RedisPresence, RedisWindows};
use parley::adapters::throttle::LocalLoginFailures;
use parley::domain::UserId;
use parley::ports::{Account, FailureKey, Failures, LoginFailures, PresenceTracker, RateWindows};
use support::redis::TestRedis;

/// A backend the counters live in, with what keeps it alive for the test.
enum Backend {
    Local,
    Postgres(PgStore),
    /// The server lives as long as the backend.
    Redis(Redis, #[allow(dead_code)] Box<TestRedis>),
}

impl Backend {
    async fn postgres() -> Self {
        let url = support::postgres::fresh_database_url().await;
        Self::Postgres(PgStore::connect(&url, 8).await.expect("open PostgreSQL"))
    }

    async fn redis() -> Self {
        let server = TestRedis::start().await;
        let redis = Redis::connect(&server.url, &server.prefix)
            .await
            .expect("connect to Redis");
        Self::Redis(redis, Box::new(server))
    }

    fn login_failures(&self) -> Arc<dyn LoginFailures> {
        match self {
            Self::Local => Arc::new(LocalLoginFailures::new()),
            Self::Postgres(store) => Arc::new(PgLoginFailures::new(store.pool().clone())),
            Self::Redis(redis, _) => Arc::new(RedisLoginFailures::new(redis)),
        }
    }

    fn rate_windows(&self) -> Arc<dyn RateWindows> {
        match self {
            Self::Local => unreachable!("windows are counted in salvo's own store in-process"),
            Self::Postgres(store) => Arc::new(PgRateWindows::new(store.pool().clone())),
            Self::Redis(redis, _) => Arc::new(RedisWindows::new(redis)),
        }
    }

    /// Forgets every instance's presence, as a Redis that restarted empty would (or, on
    /// PostgreSQL, someone emptying the tables).
    async fn forget_presence(&self) {
        match self {
            Self::Local => unreachable!("nothing shared to forget"),
            Self::Postgres(store) => {
                sqlx::raw_sql("DELETE FROM presence; DELETE FROM presence_instances")
                    .execute(store.pool())
                    .await
                    .expect("empty the presence tables");
            }
            Self::Redis(_, server) => {
                let mut conn = server.connection().await.expect("connect to Redis");
                let keys: Vec<String> = ::redis::cmd("KEYS")
                    .arg(format!("{}:presence:*", server.prefix))
                    .query_async(&mut conn)
                    .await
                    .expect("KEYS");
                if !keys.is_empty() {
                    ::redis::cmd("DEL")
                        .arg(keys)
                        .query_async::<i64>(&mut conn)
                        .await
                        .expect("DEL");
                }
            }
        }
    }

    /// One instance's tracker, with a lease of `lease`; each call is another instance.
    async fn presence(&self, lease: StdDuration) -> Arc<dyn PresenceTracker> {
        match self {
            Self::Local => Arc::new(LocalPresence::new()),
            Self::Postgres(store) => PgPresence::start(store.pool().clone(), lease)
                .await
                .expect("take a lease"),
            Self::Redis(redis, _) => RedisPresence::start(redis, lease)
                .await
                .expect("take a lease"),
        }
    }
}

/// Runs each listed `async fn case(backend: Backend)` once on each named backend.
macro_rules! contract {
    ($($backend:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $backend {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        super::$case(super::backend(stringify!($backend)).await).await;
                    }
                )*
            }
        )*
    };
}

async fn backend(name: &str) -> Backend {
    match name {
        "local" => Backend::Local,
        "postgres" => Backend::postgres().await,
        "redis" => Backend::redis().await,
        other => unreachable!("{other}"),
    }
}

contract!(
    local: [
        failures_count_within_their_window_and_are_forgotten_after_it,
        a_users_first_socket_and_last_socket_are_told,
    ],
    postgres: [
        failures_count_within_their_window_and_are_forgotten_after_it,
        windows_add_counts_per_limit_and_key_and_start_again_once_closed,
        a_users_first_socket_and_last_socket_are_told,
        sockets_on_two_instances_make_one_presence,
        an_instance_whose_lease_runs_out_takes_its_users_offline_once,
        an_instance_counts_its_sockets_again_once_its_lease_was_lost,
    ],
    redis: [
        failures_count_within_their_window_and_are_forgotten_after_it,
        windows_add_counts_per_limit_and_key_and_start_again_once_closed,
        a_users_first_socket_and_last_socket_are_told,
        sockets_on_two_instances_make_one_presence,
        an_instance_whose_lease_runs_out_takes_its_users_offline_once,
        an_instance_counts_its_sockets_again_once_its_lease_was_lost,
    ],
);

const LEASE: StdDuration = StdDuration::from_secs(30);

fn ann_from(last: u8) -> FailureKey {
    FailureKey::Attempt {
        address: std::net::IpAddr::from([127, 0, 0, last]),
        account: Account::Unknown("ann".into()),
    }
}

async fn failures_count_within_their_window_and_are_forgotten_after_it(backend: Backend) {
    let f = backend.login_failures();
    // Stored times keep milliseconds; a whole-second start keeps the comparisons exact.
    let start = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    let window = Duration::minutes(15);
    let ann = ann_from(2);
    assert_eq!(f.get(&ann, start).await.unwrap(), None);
    f.add(&ann, start, window).await.unwrap();
    let second = start + Duration::minutes(5);
    f.add(&ann, second, window).await.unwrap();
    let until = start + window;
    assert_eq!(
        f.get(&ann, start + Duration::minutes(6)).await.unwrap(),
        Some(Failures {
            count: 2,
            last: second,
            until
        }),
        "the window opens at the first failure"
    );
    assert_eq!(f.get(&ann_from(3), start).await.unwrap(), None, "per key");
    let user = FailureKey::Attempt {
        address: std::net::IpAddr::from([127, 0, 0, 2]),
        account: Account::User(UserId(7)),
    };
    assert_eq!(f.get(&user, start).await.unwrap(), None, "per account");
    let address = FailureKey::Address(std::net::IpAddr::from([127, 0, 0, 2]));
    assert_eq!(f.get(&address, start).await.unwrap(), None, "per key");
    assert_eq!(f.get(&ann, until).await.unwrap(), None, "closed");
    f.add(&ann, until, window).await.unwrap();
    assert_eq!(
        f.get(&ann, until).await.unwrap(),
        Some(Failures {
            count: 1,
            last: until,
            until: until + window
        }),
        "a new window after the last one closed"
    );
    f.clear(&ann).await.unwrap();
    assert_eq!(f.get(&ann, until).await.unwrap(), None);
}

async fn windows_add_counts_per_limit_and_key_and_start_again_once_closed(backend: Backend) {
    let w = backend.rate_windows();
    let period = StdDuration::from_millis(1500);
    let before = Utc::now().timestamp();
    let first = w.add("user", "7", 1, period).await.unwrap();
    let latest = (Utc::now().timestamp_millis() + 1500 + 999) / 1000;
    assert_eq!(first.count, 1);
    assert!(
        (before..=latest).contains(&first.reset),
        "closes within the period: {} not in {before}..={latest}",
        first.reset
    );
    assert_eq!(w.add("user", "7", 1, period).await.unwrap().count, 2);
    assert_eq!(
        w.add("user", "8", 1, period).await.unwrap().count,
        1,
        "per key"
    );
    assert_eq!(
        w.add("address", "7", 1, period).await.unwrap().count,
        1,
        "per limit"
    );
    let more = w.add("user", "7", 5, period).await.unwrap();
    assert_eq!(
        (more.count, more.reset),
        (7, first.reset),
        "same window, five more"
    );
    tokio::time::sleep(period + StdDuration::from_millis(200)).await;
    assert_eq!(
        w.add("user", "7", 1, period).await.unwrap().count,
        1,
        "a new window"
    );
}

async fn a_users_first_socket_and_last_socket_are_told(backend: Backend) {
    let p = backend.presence(LEASE).await;
    let (ann, bob) = (UserId(1), UserId(2));
    assert!(!p.disconnect(ann).await.unwrap(), "a close without an open");
    assert!(p.connect(ann).await.unwrap(), "first");
    assert!(!p.connect(ann).await.unwrap(), "second tab");
    assert!(p.connect(bob).await.unwrap(), "per user");
    assert_eq!(
        p.online_among(&[ann, bob, UserId(3)]).await.unwrap(),
        HashSet::from([ann, bob])
    );
    assert!(!p.disconnect(ann).await.unwrap(), "one tab left");
    assert!(p.disconnect(ann).await.unwrap(), "last");
    assert_eq!(
        p.online_among(&[ann, bob]).await.unwrap(),
        HashSet::from([bob])
    );
    assert!(
        p.expire_dead().await.unwrap().is_empty(),
        "nobody's lease ran out"
    );
}

async fn sockets_on_two_instances_make_one_presence(backend: Backend) {
    let (one, two) = (backend.presence(LEASE).await, backend.presence(LEASE).await);
    let ann = UserId(1);
    assert!(one.connect(ann).await.unwrap(), "first in the cluster");
    assert!(
        !two.connect(ann).await.unwrap(),
        "not first: a socket on the other"
    );
    assert_eq!(
        two.online_among(&[ann]).await.unwrap(),
        HashSet::from([ann]),
        "seen from either"
    );
    assert!(!one.disconnect(ann).await.unwrap(), "one left on the other");
    assert!(!one.disconnect(ann).await.unwrap(), "none counted here");
    assert!(two.disconnect(ann).await.unwrap(), "last in the cluster");
    assert!(one.online_among(&[ann]).await.unwrap().is_empty());
}

async fn an_instance_whose_lease_runs_out_takes_its_users_offline_once(backend: Backend) {
    let short = StdDuration::from_secs(1);
    let one = backend.presence(short).await;
    let two = backend.presence(short).await;
    let (ann, bob) = (UserId(1), UserId(2));
    one.connect(ann).await.unwrap();
    two.connect(ann).await.unwrap();
    two.connect(bob).await.unwrap();
    // Two stops renewing, as a killed instance would.
    drop(two);
    tokio::time::sleep(short * 2).await;
    let offline = one.expire_dead().await.unwrap();
    assert_eq!(offline, vec![bob], "ann keeps her socket on one");
    assert!(one.expire_dead().await.unwrap().is_empty(), "once");
    assert_eq!(
        one.online_among(&[ann, bob]).await.unwrap(),
        HashSet::from([ann])
    );
}

async fn an_instance_counts_its_sockets_again_once_its_lease_was_lost(backend: Backend) {
    let short = StdDuration::from_millis(600);
    let one = backend.presence(short).await;
    let two = backend.presence(short).await;
    let ann = UserId(1);
    one.connect(ann).await.unwrap();
    backend.forget_presence().await;
    assert!(
        two.online_among(&[ann]).await.unwrap().is_empty(),
        "forgotten"
    );
    // One renews its lease a few times per lease, and finds it gone.
    tokio::time::sleep(short).await;
    assert_eq!(
        two.online_among(&[ann]).await.unwrap(),
        HashSet::from([ann]),
        "counted again"
    );
    assert!(!two.connect(ann).await.unwrap(), "not ann's first socket");
}
