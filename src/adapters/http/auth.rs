//! Who is calling: the token from the `Authorization: Bearer` header, the `access_token`
//! cookie, or (sockets only) `?token=`; the address and program the request comes from; and
//! the Origin check that keeps other sites from riding on the cookie.

use std::net::{IpAddr, SocketAddr};

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

/// Where a request comes from. The address is the peer's, unless the server is configured to
/// sit behind a proxy and names the header the proxy puts the client's address in: then it is
/// the last address in the last such header, the one the proxy itself appended (earlier ones
/// were sent by the client and prove nothing). Without a readable address there, the peer's.
pub fn client(state: &HttpState, req: &Request) -> Client {
    let peer = req
        .remote_addr()
        .ip()
        .map_or(IpAddr::from([127, 0, 0, 1]), |ip| ip.to_canonical());
    let forwarded = state.client_address_header.as_ref().and_then(|name| {
        let last = req.headers().get_all(name).iter().next_back()?;
        parse_address(last.to_str().ok()?.rsplit(',').next()?)
    });
    Client {
        address: forwarded.unwrap_or(peer),
        // Control characters dropped, cut to a sane length: it is shown in session lists.
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty()),
    }
}

/// An address as proxies write it: `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or
/// `203.0.113.7:5000`.
fn parse_address(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
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
    use super::{origin_of, parse_address};

    #[test]
    fn proxy_addresses_parse_with_or_without_a_port() {
        assert_eq!(parse_address(" 203.0.113.7"), Some([203, 0, 113, 7].into()));
        assert_eq!(
            parse_address("203.0.113.7:5000"),
            Some([203, 0, 113, 7].into())
        );
        assert_eq!(
            parse_address("[2001:db8::1]:443"),
            "2001:db8::1".parse().ok()
        );
        assert_eq!(parse_address("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_address("unknown"), None);
    }

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
