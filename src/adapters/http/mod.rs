//! The salvo adapter: HTTP routes, WebSocket sessions, the embedded web client, and the
//! response headers that keep browsers safe. It turns requests into calls on the domain
//! services and domain errors into `{"detail", "code"}` responses.

pub mod access_log;
mod assets;
pub mod auth;
mod delivered;
pub mod dto;
pub mod error;
pub mod limits;
pub mod openapi;
pub mod protocol;
pub mod registry;
pub mod request_id;
pub mod routes;
pub mod ws;

use std::collections::HashSet;
use std::sync::Arc;

use salvo::affix_state;
use salvo::catch_panic::CatchPanic;
use salvo::catcher::Catcher;
use salvo::http::Method;
use salvo::http::header::HeaderName;
use salvo::oapi::swagger_ui::SwaggerUi;
use salvo::prelude::*;
use salvo::routing::{FilterInfo, filters};
use tokio::sync::watch;

use crate::services::{
    AuthService, ChatService, MembershipService, MessageService, PresenceService, Readiness,
    UserDirectory,
};
use limits::{HttpLimits, SendBudget};
use registry::Registry;

/// What every handler can reach.
pub struct HttpState {
    pub auth: AuthService,
    pub users: UserDirectory,
    pub chats: ChatService,
    pub members: MembershipService,
    pub messages: MessageService,
    pub presence: PresenceService,
    pub readiness: Readiness,
    /// Flips to true on a stop signal, before the drain time; `/ready` answers 503 from then.
    pub draining: watch::Receiver<bool>,
    pub registry: Arc<Registry>,
    /// Origins allowed to use the cookie, lower-case `scheme://host[:port]`.
    pub origins: HashSet<String>,
    pub cookie_secure: bool,
    /// Flips to true when the server stops; sockets close with 1001.
    pub shutdown: watch::Receiver<bool>,
    /// The rate limits on requests, registrations and what users send.
    pub limits: HttpLimits,
    /// What each user may still send, over all their sockets and HTTP together.
    pub budget: SendBudget,
    /// Where the windows of the rate limits are counted when every instance counts them
    /// together; `None` counts them in this process.
    pub shared_windows: Option<Arc<limits::SyncedWindows>>,
    /// The storage, asked how busy its connections are when metrics are scraped.
    pub storage_probe: Arc<dyn crate::ports::StorageProbe>,
    /// The header a trusted proxy puts the client's address in, when the server is behind one.
    pub client_address_header: Option<HeaderName>,
    /// The most messages a resume replays; further back gets `resync`.
    pub resume_max_messages: u32,
    /// The most sockets one user may hold open in this process; 0 for no limit.
    pub max_sockets_per_user: usize,
    /// Whether `GET /metrics` is served here (not when it has an address of its own).
    pub serve_metrics: bool,
}

impl HttpState {
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins
            .contains(origin.trim_end_matches('/').to_ascii_lowercase().as_str())
    }
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; \
    object-src 'none'";
/// The API explorer needs inline styles and scripts of its own; it gets them, nothing else does.
const DOCS_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

#[handler]
async fn security_headers(req: &mut Request, res: &mut Response) {
    let csp = if req.uri().path().starts_with("/docs") {
        DOCS_CSP
    } else {
        CSP
    };
    let headers = res.headers_mut();
    for (name, value) in [
        ("content-security-policy", csp),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ] {
        headers.insert(name, salvo::http::HeaderValue::from_static(value));
    }
}

/// Lets every route that answers `GET` answer `HEAD` with the same handler; salvo sends a
/// `HEAD` answer without its body.
fn answer_head_like_get(router: &mut Router) {
    for child in &mut router.routers {
        answer_head_like_get(child);
    }
    let heads: Vec<Router> = router
        .routers
        .iter()
        .filter(|r| is_get_route(r))
        .map(|get| {
            let mut head = Router::with_filter(filters::head());
            head.hoops.clone_from(&get.hoops);
            head.goal.clone_from(&get.goal);
            head
        })
        .collect();
    router.routers.extend(heads);
}

/// A route of the kind `Router::get` adds: a `GET` filter and a handler, nothing else.
fn is_get_route(r: &Router) -> bool {
    r.goal.is_some()
        && r.routers.is_empty()
        && matches!(r.filters.as_slice(), [f] if matches!(f.info(), FilterInfo::Method(m) if m == Method::GET))
}

/// The whole HTTP surface over `state`, served with its access log and error pages.
pub fn service(state: Arc<HttpState>) -> Service {
    Service::new(router(state))
        .hoop(request_id::assign)
        .hoop(access_log::log_request)
        .catcher(
            Catcher::default()
                .hoop(security_headers)
                .hoop(error::catch_status),
        )
}

/// The routes of the HTTP surface over `state`: the API, the sockets, the API description and
/// the web client.
pub fn router(state: Arc<HttpState>) -> Router {
    let serve_metrics = state.serve_metrics;
    let storage_probe = state.storage_probe.clone();
    let mut register = Router::with_path("auth/register").post(routes::register);
    if let Some(limiter) = limits::registration_limiter(&state) {
        register.hoops.push(limiter);
    }
    let api = Router::new()
        .push(register)
        .push(Router::with_path("auth/login").post(routes::login))
        .push(Router::with_path("auth/me").get(routes::current_user))
        .push(Router::with_path("auth/session").get(routes::session))
        .push(Router::with_path("auth/logout").post(routes::logout))
        .push(Router::with_path("auth/refresh").post(routes::refresh))
        .push(Router::with_path("auth/logout-all").post(routes::logout_all))
        .push(Router::with_path("auth/password").post(routes::change_password))
        .push(Router::with_path("auth/sessions").get(routes::list_sessions))
        .push(Router::with_path("auth/sessions/{session_id}").delete(routes::end_session))
        .push(Router::with_path("users").get(routes::list_users))
        .push(Router::with_path("rooms").get(routes::list_rooms))
        .push(Router::with_path("health").get(routes::health))
        .push(Router::with_path("ready").get(routes::ready))
        .push(
            Router::with_path("chats")
                .get(routes::list_chats)
                .post(routes::create_group)
                .push(
                    Router::with_path("{chat_id}/messages")
                        .get(routes::history)
                        .post(routes::post_message),
                )
                .push(
                    Router::with_path("{chat_id}/messages/{id}")
                        .patch(routes::edit_message)
                        .delete(routes::delete_message),
                )
                .push(
                    Router::with_path("{chat_id}/messages/{id}/reactions/{emoji}")
                        .put(routes::add_reaction)
                        .delete(routes::remove_reaction),
                )
                .push(Router::with_path("{chat_id}/members").post(routes::add_member))
                .push(
                    Router::with_path("{chat_id}/members/{user_id}").delete(routes::remove_member),
                )
                .push(Router::with_path("{chat_id}/join").post(routes::join))
                .push(Router::with_path("{chat_id}/read").post(routes::mark_read))
                // `POST /chats/{id}` opens a direct chat with user `id`; `GET` reads chat `id`.
                .push(
                    Router::with_path("{id}")
                        .get(routes::chat_details)
                        .post(routes::open_direct),
                ),
        );
    let doc = openapi::document(&api, &state.messages.limits());
    let request_limiters = limits::request_limiters(&state);
    let mut router = Router::new()
        // A bug in one handler answers that request with a 500, not a dropped connection.
        .hoop(CatchPanic::new())
        .hoop(affix_state::inject(state))
        .hoop(security_headers);
    // Before any handler reads a body, checks a password or opens a socket.
    router.hoops.extend(request_limiters);
    let mut router = router
        .push(api)
        .push(Router::with_path("ws").goal(ws::user_socket))
        .push(Router::with_path("ws/{chat_id}").goal(ws::chat_socket))
        .push(if serve_metrics {
            Router::with_path("metrics").get(crate::adapters::metrics::Endpoint {
                storage: storage_probe,
            })
        } else {
            Router::new()
        })
        .push(doc.into_router("/openapi.json"))
        .push(SwaggerUi::new("/openapi.json").into_router("/docs"))
        .push(
            Router::with_path("{**path}")
                .filter_fn(|req, _| assets::is_asset(req))
                .get(assets::serve),
        );
    // After the API description is drawn, so that it lists each route once.
    answer_head_like_get(&mut router);
    router
}
