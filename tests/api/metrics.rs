//! `GET /metrics`: Prometheus text with what a person running Parley watches, served with the
//! API or on an address of its own.

use serde_json::json;

use crate::support::app::{Backend, TestApp, is_message};

/// The value of the first series of `metrics` whose line starts with `prefix`.
fn value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
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
        metrics
            .lines()
            .any(|l| l.starts_with("parley_http_requests_total")
                && l.contains("route=\"/chats/{chat_id}/messages\"")
                && l.contains("status=\"201\"")),
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
