//! One access-log line per request, at info level on the `parley::access` target: the method,
//! the route template (`/chats/{chat_id}/messages`, never the ids), the status, the time taken
//! in milliseconds, and the user id once a handler has authenticated the caller. Nothing from
//! the query string, the headers or the body is written, so no token or cookie can reach the
//! log.

use std::time::Instant;

use salvo::http::StatusCode;
use salvo::prelude::*;

use crate::domain::UserId;

/// The user a request was authenticated as, left in the depot for the log line.
struct Caller(UserId);

/// Records who the request is from, for its log line.
pub fn note_caller(depot: &mut Depot, user: UserId) {
    depot.insert_typed(Caller(user));
}

/// Writes the line once the rest of the chain has answered. Mounted on the service, so that
/// requests no route matches (404, 405) are logged too.
#[handler]
pub async fn log_request(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let started = Instant::now();
    ctrl.call_next(req, depot, res).await;
    let ms = started.elapsed().as_micros() as f64 / 1000.0;
    let status = res.status_code.unwrap_or(StatusCode::OK).as_u16();
    let route = route_of(req.matched_path(), req.uri().path());
    let user_id = depot.get_typed::<Caller>().ok().map(|c| c.0.0);
    // Requests no route matched are counted together, so that made-up paths cannot grow the
    // number of series without bound.
    let series = if req.matched_path().is_empty() {
        "unmatched".to_owned()
    } else {
        route.clone()
    };
    metrics::counter!(
        "parley_http_requests_total",
        "method" => req.method().to_string(),
        "route" => series.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("parley_http_request_duration_seconds", "route" => series)
        .record(ms / 1000.0);
    tracing::info!(
        target: "parley::access",
        method = %req.method(),
        route = %route,
        status,
        ms,
        user_id,
        "request"
    );
}

/// The longest path written for a request no route matched.
const MAX_PATH_CHARS: usize = 128;

/// The matched route's template, or for a request no route matched its path with every
/// numeric segment written `{id}`, cut to [`MAX_PATH_CHARS`].
fn route_of(matched: &str, path: &str) -> String {
    if !matched.is_empty() {
        return format!("/{}", matched.trim_start_matches('/'));
    }
    let route = path
        .split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    match route.char_indices().nth(MAX_PATH_CHARS) {
        Some((cut, _)) => format!("{}...", &route[..cut]),
        None => route,
    }
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn a_matched_route_is_written_as_its_template() {
        assert_eq!(
            route_of("chats/{chat_id}/messages", "/chats/12/messages"),
            "/chats/{chat_id}/messages"
        );
        assert_eq!(route_of("health", "/health"), "/health");
    }

    #[test]
    fn an_unmatched_path_hides_its_ids() {
        assert_eq!(
            route_of("", "/chats/12/nothing/7"),
            "/chats/{id}/nothing/{id}"
        );
        assert_eq!(route_of("", "/"), "/");
        assert_eq!(route_of("", "/v2x/3a"), "/v2x/3a");
    }

    #[test]
    fn an_unmatched_path_is_cut_short() {
        let long = format!("/{}", "é".repeat(500));
        let route = route_of("", &long);
        assert_eq!(route.chars().count(), super::MAX_PATH_CHARS + 3);
        assert!(route.ends_with("..."));
    }
}
