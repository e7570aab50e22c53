//! Every request gets an id: the client's `X-Request-Id` when it is a sane one (1 to 128 of
//! letters, digits and `-_.:`), else a new one. It is sent back in the `X-Request-Id` header,
//! every log line of the request carries it (they are written inside a `request` span with a
//! `request_id` field), and a 500's body names it, so a report from a user leads to the log.

use salvo::http::HeaderValue;
use salvo::prelude::*;
use tracing::Instrument as _;

/// The header that carries the id both ways.
pub const HEADER: &str = "x-request-id";
/// The longest id taken from a client.
const MAX_LEN: usize = 128;

/// Whether a client's id may be used as is: short, and nothing that could forge a log line or
/// a header.
fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The client's id when sane, else a new random one.
fn id_for(incoming: Option<&str>) -> String {
    match incoming {
        Some(id) if is_sane(id) => id.to_owned(),
        _ => uuid::Uuid::new_v4().simple().to_string(),
    }
}

/// The id of the request `res` answers, once [`assign`] has run.
pub fn of(res: &Response) -> Option<String> {
    res.headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Gives the request its id, puts it on the response first (so that error rendering and the
/// catcher can read it there), and runs the rest of the chain inside its span. Mounted first on
/// the service, so that every request has one, those no route matches included.
#[handler]
pub async fn assign(req: &mut Request, depot: &mut Depot, res: &mut Response, ctrl: &mut FlowCtrl) {
    let incoming = req.headers().get(HEADER).and_then(|v| v.to_str().ok());
    let id = id_for(incoming);
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    // At error level, so that the span is there whenever any line is written, whatever the
    // filter lets through.
    let span = tracing::error_span!("request", request_id = %id);
    ctrl.call_next(req, depot, res).instrument(span).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_incoming_id_is_kept() {
        assert_eq!(id_for(Some("abc-123_X.y:z")), "abc-123_X.y:z");
        let longest = "a".repeat(MAX_LEN);
        assert_eq!(id_for(Some(&longest)), longest);
    }

    #[test]
    fn a_missing_or_strange_id_is_replaced_by_a_new_one() {
        for bad in [
            None,
            Some(""),
            Some("has space"),
            Some("line\nbreak"),
            Some("quote\""),
            Some("é"),
        ] {
            let id = id_for(bad);
            assert_eq!(id.len(), 32, "{bad:?} -> {id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        let too_long = "a".repeat(MAX_LEN + 1);
        assert_ne!(id_for(Some(&too_long)), too_long);
    }

    #[test]
    fn two_new_ids_differ() {
        assert_ne!(id_for(None), id_for(None));
    }
}
