//! Prometheus metrics: the recorder every `metrics::counter!`, `gauge!` and `histogram!` of
//! Parley writes to, the names it records, and `GET /metrics`.
//!
//! | Metric | Kind | Labels | What |
//! |---|---|---|---|
//! | `parley_sockets_open` | gauge | `kind` (`chat`, `chat_v2`, `user`) | open WebSockets |
//! | `parley_messages_stored_total` | counter | | messages stored by this instance |
//! | `parley_commit_batch_size` | histogram | | messages per group commit |
//! | `parley_delivery_seconds` | histogram | | from a message's acceptance to its frames queued on every recipient socket of this instance |
//! | `parley_events_fanned_out_total` | counter | | frames queued on sockets |
//! | `parley_slow_sockets_dropped_total` | counter | | sockets dropped for not reading |
//! | `parley_http_requests_total` | counter | `method`, `route`, `status` | requests answered |
//! | `parley_http_request_duration_seconds` | histogram | `route` | time to answer |
//! | `parley_refusals_total` | counter | `code` | 4xx answers and socket `error` events, by code (`rate_limited`, `too_many_sockets`, ...) |
//! | `parley_logins_total` | counter | `outcome` | logins: `ok`, `invalid`, `throttled`, `refused` |
//! | `parley_bus_lag_seconds` | histogram | | from a message's acceptance to its arrival through the bus between instances (PostgreSQL or Redis) |
//! | `parley_db_connections` | gauge | `pool`, `state` (`in_use`, `idle`) | connections of each storage pool, read at each scrape |
//! | `parley_db_connections_max` | gauge | `pool` | the most connections each pool opens |

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use salvo::async_trait;
use salvo::prelude::*;

use crate::ports::StorageProbe;

/// Buckets for latencies, from 100 µs to 10 s.
const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Buckets for batch sizes.
const SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The process's metrics: one recorder for every `App` in it.
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// The process's metrics, installing the recorder the first time. When the host program
    /// installed a recorder of its own, Parley's metrics go there and this renders nothing.
    pub fn get() -> &'static Self {
        static METRICS: OnceLock<Metrics> = OnceLock::new();
        METRICS.get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "parley_commit_batch_size".into(),
                        ),
                        SIZES,
                    )
                })
                .expect("valid buckets");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder is already installed; /metrics will be empty");
            }
            describe();
            Metrics { handle }
        })
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("parley_sockets_open", "Open WebSockets, by kind.");
    describe_counter!("parley_messages_stored_total", "Messages stored.");
    describe_histogram!("parley_commit_batch_size", "Messages per group commit.");
    describe_histogram!(
        "parley_delivery_seconds",
        metrics::Unit::Seconds,
        "From a message's acceptance to its frames queued on this instance's sockets."
    );
    describe_counter!(
        "parley_events_fanned_out_total",
        "Frames queued on sockets."
    );
    describe_counter!(
        "parley_slow_sockets_dropped_total",
        "Sockets dropped for not reading."
    );
    describe_counter!("parley_http_requests_total", "HTTP requests answered.");
    describe_histogram!(
        "parley_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route template."
    );
    describe_counter!(
        "parley_refusals_total",
        "Refusals (4xx, socket errors), by code."
    );
    describe_counter!("parley_logins_total", "Logins, by outcome.");
    describe_gauge!(
        "parley_db_connections",
        "Connections of each storage pool at the last scrape, by state (in_use, idle)."
    );
    describe_gauge!(
        "parley_db_connections_max",
        "The most connections each storage pool opens."
    );
    describe_histogram!(
        "parley_bus_lag_seconds",
        metrics::Unit::Seconds,
        "From a message's acceptance to its arrival through the bus between instances."
    );
}

/// `GET /metrics`: every metric in Prometheus text format, the storage's connection pools
/// read at the moment of the scrape.
pub struct Endpoint {
    pub storage: Arc<dyn StorageProbe>,
}

#[async_trait]
impl Handler for Endpoint {
    async fn handle(&self, _: &mut Request, _: &mut Depot, res: &mut Response, _: &mut FlowCtrl) {
        for pool in self.storage.connections() {
            let gauge = |state: &'static str| metrics::gauge!("parley_db_connections", "pool" => pool.pool, "state" => state);
            gauge("in_use").set(f64::from(pool.in_use));
            gauge("idle").set(f64::from(pool.idle));
            metrics::gauge!("parley_db_connections_max", "pool" => pool.pool)
                .set(f64::from(pool.max));
        }
        res.add_header(
            "content-type",
            "text/plain; version=0.0.4; charset=utf-8",
            true,
        )
        .ok();
        res.render(Metrics::get().render());
    }
}

/// Seconds since `at`, never negative.
pub fn seconds_since(at: chrono::DateTime<chrono::Utc>) -> f64 {
    (chrono::Utc::now() - at)
        .to_std()
        .map_or(0.0, |d| d.as_secs_f64())
}
