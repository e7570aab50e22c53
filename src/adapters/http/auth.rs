//! Who is calling: the token from the `Authorization: Bearer` header, the `access_token`
//! cookie, or (sockets only) `?token=`; where a login comes from; and the Origin check that
//! keeps other sites from riding on the cookie.

use std::net::{IpAddr, Ipv4Addr};

use salvo::http::header::{AUTHORIZATION, ORIGIN, REFERER, USER_AGENT};
use salvo::http::{Method, StatusCode};
use salvo::prelude::*;

use super::HttpState;
use super::error::ApiError;
use crate::domain::{AuthUser, Client};

/// The name of the session cookie.
pub const COOKIE: &str = "access_token";

/// The name of the cookie holding the refresh token, sent to `/auth` paths only.
pub const REFRESH_COOKIE: &str = "refresh_token";

/// The longest user agent kept with a session, in characters.
const MAX_USER_AGENT_CHARS: usize = 256;

/// Where a request comes from and what it says it is: the peer's address and its
/// `User-Agent` (control characters dropped, cut to a sane length). `state` holds the
/// server's policy on whom to believe about addresses.
pub fn client(state: &HttpState, req: &Request) -> Client {
    let _ = state;
    let address = req
        .remote_addr()
        .ip()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ip| ip.to_canonical());
    let user_agent = req
        .headers()
        .get(USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .map(|ua| {
            ua.chars()
                .filter(|c| !c.is_control())
                .take(MAX_USER_AGENT_CHARS)
                .collect::<String>()
        })
        .filter(|ua| !ua.trim().is_empty());
    Client {
        address,
        user_agent,
    }
}

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    Cookie,
    Query,
}

/// The token a request carries and where it came from. A present but malformed
/// `Authorization` header counts as a bad token rather than falling back to the cookie.
pub fn token(req: &Request, allow_query: bool) -> Option<(String, Source)> {
    if let Some(value) = req.headers().get(AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default();
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned())
            .unwrap_or_default();
        return Some((token, Source::Header));
    }
    if allow_query && let Some(t) = req.query::<String>("token") {
        return Some((t, Source::Query));
    }
    req.cookie(COOKIE)
        .map(|c| (c.value().to_owned(), Source::Cookie))
}

/// Authenticates an HTTP request.
///
/// # Errors
/// 401 without a valid token; 403 for a state-changing request that relies on the cookie alone
/// and does not come from an allowed origin.
pub async fn authenticate(state: &HttpState, req: &Request) -> Result<AuthUser, ApiError> {
    let Some((token, source)) = token(req, false) else {
        return Err(crate::domain::Error::Unauthenticated.into());
    };
    if source == Source::Cookie && !is_safe(req.method()) {
        check_origin(state, req, true)?;
    }
    Ok(state.auth.authenticate(&token).await?)
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Checks the request's `Origin` (or, lacking one, `Referer`) against the allowed origins.
/// With `required`, a request carrying neither is refused too.
///
/// # Errors
/// 403 `origin_not_allowed`.
pub fn check_origin(state: &HttpState, req: &Request, required: bool) -> Result<(), ApiError> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let origin = header(ORIGIN).or_else(|| header(REFERER).map(|r| origin_of(&r)));
    let allowed = match origin {
        Some(o) => state.allows_origin(&o),
        None => !required,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "This request must come from an allowed origin.",
        ))
    }
}

/// `scheme://host[:port]` of a URL.
pub fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origin_of_keeps_scheme_host_and_port_only() {
        assert_eq!(
            origin_of("http://Chat.Example.com:8000/x?y#z"),
            "http://chat.example.com:8000"
        );
        assert_eq!(origin_of("https://a.b"), "https://a.b");
        assert_eq!(origin_of("garbage"), "");
    }
}
