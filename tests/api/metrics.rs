//! `GET /metrics`: Prometheus text with what a person running Parley watches, served with the
//! API or on an address of its own.

use serde_json::json;

use crate::support::app::{Backend, TestApp, is_message};

/// The value of the series `selector` (`name` or `name{label="value",...}`, the labels a
/// subset of the series') in `metrics`, read with a Prometheus text-format parser; for a
/// histogram `name_count`, its count.
fn value(metrics: &str, selector: &str) -> Option<f64> {
    use openmetrics_parser::PrometheusValue;
    let exposition =
        openmetrics_parser::prometheus::parse_prometheus(metrics).unwrap_or_else(|e| {
            panic!("the metrics do not parse as Prometheus text ({e:?}):\n{metrics}")
        });
    let (name, labels) = selector.split_once('{').unwrap_or((selector, ""));
    let wanted: Vec<(&str, &str)> = labels
        .strip_suffix('}')
        .unwrap_or(labels)
        .split("\",")
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("label=\"value\"");
            (k, v.trim_matches('"'))
        })
        .collect();
    let family = name
        .strip_suffix("_count")
        .and_then(|base| exposition.families.get(base))
        .or_else(|| exposition.families.get(name))?;
    family
        .iter_samples()
        .find(|sample| {
            let set = sample.get_labelset().expect("a sample of a family");
            wanted
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|sample| match &sample.value {
            PrometheusValue::Unknown(n) | PrometheusValue::Gauge(n) => n.as_f64(),
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(_) => f64::NAN,
        })
}

#[tokio::test]
async fn metrics_count_sockets_messages_requests_refusals_and_logins() {
    let app = TestApp::spawn(Backend::Memory).await;
    let [ann, bob] = app.users(["ann", "bob"]).await;
    let chat = ann.direct_with(&bob).await;
    let mut ws = bob.ws_all().await;
    ann.post_message(chat, "counted").await;
    ws.expect("the message", |v| is_message(v, "counted")).await;
    let (status, _) = ann.get("/chats/999999").await;
    assert_eq!(status, 404);
    let wrong = app
        .client()
        .post(app.url("/auth/login"))
        .form(&[("username", "ann"), ("password", "wrong-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let res = app.client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let metrics = res.text().await.unwrap();

    for (series, at_least) in [
        ("parley_sockets_open{kind=\"user\"}", 1.0),
        ("parley_messages_stored_total", 1.0),
        ("parley_events_fanned_out_total", 1.0),
        ("parley_delivery_seconds_count", 1.0),
        ("parley_commit_batch_size_count", 1.0),
        ("parley_refusals_total{code=\"chat_not_found\"}", 1.0),
        ("parley_logins_total{outcome=\"invalid\"}", 1.0),
        ("parley_logins_total{outcome=\"ok\"}", 2.0),
    ] {
        let got = value(&metrics, series).unwrap_or_else(|| panic!("{series} in:\n{metrics}"));
        assert!(got >= at_least, "{series} = {got}");
    }
    assert!(
        value(
            &metrics,
            "parley_http_requests_total{route=\"/chats/{chat_id}/messages\",status=\"201\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "requests by route template and status:\n{metrics}"
    );
    assert!(
        !metrics.contains("route=\"/chats/999999\""),
        "never an id in a label"
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_on_their_own_address_are_not_served_with_the_api() {
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = TestApp::spawn_configured("memory://", "127.0.0.1:0".parse().unwrap(), None, |c| {
        c.metrics_bind = Some(metrics_addr)
    })
    .await;
    let ann = app.user("ann").await;
    ann.post(
        "/chats",
        json!({"name": "Room", "visibility": "public", "member_ids": []}),
    )
    .await;

    let public = app.client().get(app.url("/metrics")).send().await.unwrap();
    let public_status = public.status();
    let public_body = public.text().await.unwrap();
    let private = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap();

    assert!(
        !public_body.contains("parley_http_requests_total"),
        "{public_status}: {public_body}"
    );
    assert_eq!(private.status(), 200);
    assert!(
        private
            .text()
            .await
            .unwrap()
            .contains("parley_http_requests_total")
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_show_how_busy_the_storage_pools_are() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let app = TestApp::spawn(backend).await;
        app.user("ann").await;
        let metrics = app
            .client()
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let pool = match backend {
            Backend::Postgres => "postgres",
            _ => "sqlite_write",
        };
        let series = |name: &str, state: Option<&str>| {
            let labels = match state {
                Some(state) => format!("{name}{{pool=\"{pool}\",state=\"{state}\"}}"),
                None => format!("{name}{{pool=\"{pool}\"}}"),
            };
            value(&metrics, &labels).unwrap_or_else(|| panic!("{labels} in:\n{metrics}"))
        };
        let max = series("parley_db_connections_max", None);
        let open = series("parley_db_connections", Some("in_use"))
            + series("parley_db_connections", Some("idle"));
        let expected_max = if pool == "postgres" { 10.0 } else { 1.0 };
        assert_eq!(max, expected_max, "{pool}");
        assert!((1.0..=max).contains(&open), "{pool}: {open} of {max} open");
        app.stop().await;
    }
}
