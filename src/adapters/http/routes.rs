//! The HTTP endpoints. Each one reads the request into domain values, calls one use case and
//! writes the answer; policy stays in the domain.

use std::sync::Arc;

use salvo::http::StatusCode;
use salvo::http::cookie::{Cookie, SameSite};
use salvo::oapi::endpoint;
use salvo::prelude::*;
use serde::de::DeserializeOwned;

use super::HttpState;
use super::access_log;
use super::auth::{COOKIE, REFRESH_COOKIE, authenticate, check_origin, client};
use super::dto::*;
use super::error::ApiError;
use crate::domain::{
    AuthUser, ChatId, MessageId, PageRequest, Password, SessionId, Tokens, UserId,
};
use crate::services::NotReady;

/// The largest request body accepted, in bytes.
const MAX_BODY: usize = 64 * 1024;

pub(super) fn state(depot: &Depot) -> Arc<HttpState> {
    depot
        .get_typed::<Arc<HttpState>>()
        .cloned()
        .expect("HttpState is injected by the router")
}

async fn caller(depot: &mut Depot, req: &Request) -> Result<(Arc<HttpState>, AuthUser), ApiError> {
    let state = state(depot);
    let me = authenticate(&state, req).await?;
    access_log::note_caller(depot, me.id);
    Ok((state, me))
}

/// Reads a JSON body; a syntax error is 400, a wrong or missing field 422 naming it.
async fn json_body<T: DeserializeOwned>(req: &mut Request) -> Result<T, ApiError> {
    let bytes = read_body(req).await?;
    parse_json(bytes)
}

async fn read_body(req: &mut Request) -> Result<&[u8], ApiError> {
    req.payload_with_max_size(MAX_BODY)
        .await
        .map(|b| b.as_ref())
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The request body must be at most {MAX_BODY} bytes."),
            )
        })
}

/// Parses JSON into `T`, naming the offending field on a 422.
pub(super) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return ApiError::malformed(format!("The request body is not valid JSON: {inner}."));
        }
        let msg = inner.to_string();
        let field = if path == "." {
            msg.split('`').nth(1).unwrap_or("body").to_owned()
        } else {
            path
        };
        let detail = match msg.split(" at line").next() {
            Some(m) if m.starts_with("missing field") => format!("Field '{field}' is required."),
            Some(m) => format!("Field '{field}' is invalid: {m}."),
            None => format!("Field '{field}' is invalid."),
        };
        ApiError::invalid(field, detail)
    })
}

fn path_id(req: &Request, name: &'static str) -> Result<i64, ApiError> {
    path_id_as(req, name, name)
}

/// The path parameter `param`, refused as the field `field`: `/chats/{id}` is one path for
/// two operations, and each names its id as its clients know it.
fn path_id_as(req: &Request, param: &str, field: &'static str) -> Result<i64, ApiError> {
    req.param::<i64>(param)
        .ok_or_else(|| ApiError::invalid(field, format!("'{field}' must be an integer.")))
}

fn query_id(req: &Request, name: &'static str) -> Result<Option<i64>, ApiError> {
    match req.query::<String>(name) {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid(name, format!("'{name}' must be an integer."))),
    }
}

/// Register a new account.
///
/// From a browser, only from an allowed origin: a page elsewhere gets 403, whatever the
/// content type it sends. 429 past the registrations allowed per address per hour, or while
/// this address already has passwords being hashed.
#[endpoint(tags("auth"), request_body = RegisterBody, responses((status_code = 201, description = "The account", body = UserOut)), status_codes(201, 400, 403, 409, 413, 422, 429, 500))]
pub async fn register(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<Json<UserOut>, ApiError> {
    let state = state(depot);
    check_origin(&state, req, false)?;
    let body: RegisterBody = json_body(req).await?;
    let (username, email, password) = body.try_into_domain().map_err(crate::domain::Error::from)?;
    let user = state
        .auth
        .register(username, email, password, &client(&state, req))
        .await?;
    res.status_code(StatusCode::CREATED);
    Ok(Json(user.into()))
}

/// Log in with a username or email and a password.
///
/// Accepts `application/x-www-form-urlencoded` (as OAuth2 password clients send) or JSON. Also
/// sets the token in an HttpOnly `access_token` cookie. From a browser, only from an allowed
/// origin, so that no other site can sign a visitor into an account of its choosing. 429 with
/// `Retry-After` while this address must wait after failed logins, or while it already has
/// passwords being hashed.
#[endpoint(tags("auth"), request_body = LoginBody, status_codes(200, 400, 401, 403, 413, 422, 429, 500))]
pub async fn login(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<Json<TokenOut>, ApiError> {
    let state = state(depot);
    // Refused before the body is read or a password hashed.
    check_origin(&state, req, false)?;
    let is_form = req
        .content_type()
        .is_some_and(|m| m.subtype() == "x-www-form-urlencoded");
    let bytes = read_body(req).await?;
    let body: LoginBody = if is_form {
        serde_urlencoded::from_bytes(bytes).map_err(|e| {
            let msg = e.to_string();
            let field = msg.split('`').nth(1).unwrap_or("username").to_owned();
            ApiError::invalid(field.clone(), format!("Field '{field}' is required."))
        })?
    } else {
        parse_json(bytes)?
    };
    let tokens = state
        .auth
        .login(
            &body.username,
            &Password::for_login(&body.password),
            &client(&state, req),
        )
        .await;
    count_login(&tokens);
    let tokens = tokens?;
    set_session_cookies(res, &state, &tokens);
    Ok(Json(tokens.into()))
}

/// A cookie of the session with these attributes; an empty value and no lifetime clear it.
fn session_cookie(
    state: &HttpState,
    name: &'static str,
    value: String,
    path: &'static str,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> Cookie<'static> {
    let seconds = until.map_or(0, |t| (t - chrono::Utc::now()).num_seconds().max(0));
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path(path)
        .secure(state.cookie_secure)
        .max_age(salvo::http::cookie::time::Duration::seconds(seconds))
        .build()
}

/// Sets the access token cookie (for every path) and, when there is a new one, the refresh
/// token cookie (for `/auth` only, so that no other request carries it).
fn set_session_cookies(res: &mut Response, state: &HttpState, tokens: &Tokens) {
    res.add_cookie(session_cookie(
        state,
        COOKIE,
        tokens.access.token.clone(),
        "/",
        Some(tokens.access.expires_at),
    ));
    if let Some(next) = &tokens.refresh {
        res.add_cookie(session_cookie(
            state,
            REFRESH_COOKIE,
            next.clone(),
            "/auth",
            Some(tokens.session_expires_at),
        ));
    }
}

fn clear_session_cookies(res: &mut Response, state: &HttpState) {
    res.add_cookie(session_cookie(state, COOKIE, String::new(), "/", None));
    res.add_cookie(session_cookie(
        state,
        REFRESH_COOKIE,
        String::new(),
        "/auth",
        None,
    ));
}

/// Renew the session: a new access token and the next refresh token.
///
/// The refresh token comes in the body (`{"refresh_token": "..."}`) or, from the web client,
/// in the `refresh_token` cookie; with the cookie the request must come from an allowed
/// origin. Each refresh token works once: the answer carries the next one (and sets both
/// cookies). Presenting one that was already exchanged ends the session (401
/// `refresh_token_reused`), since someone else holds a copy; one exchanged only seconds
/// before, as when two tabs refresh at once, gets an access token without a new refresh
/// token.
#[endpoint(tags("auth"), request_body = RefreshBody, status_codes(200, 400, 401, 403, 413, 422, 429, 500))]
pub async fn refresh(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<Json<TokenOut>, ApiError> {
    let state = state(depot);
    let bytes = read_body(req).await?;
    let body: RefreshBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        RefreshBody::default()
    } else {
        parse_json(bytes)?
    };
    let token = match body.refresh_token {
        Some(token) => token,
        None => {
            let cookie = req.cookie(REFRESH_COOKIE).map(|c| c.value().to_owned());
            let token = cookie.ok_or(crate::domain::Error::Unauthenticated)?;
            check_origin(&state, req, true)?;
            token
        }
    };
    match state.auth.refresh(&token).await {
        Ok(tokens) => {
            set_session_cookies(res, &state, &tokens);
            Ok(Json(tokens.into()))
        }
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::UNAUTHORIZED {
                clear_session_cookies(res, &state);
            }
            Err(e)
        }
    }
}

/// The caller's account.
#[endpoint(security(("bearer" = [])), tags("auth"), status_codes(200, 401, 429, 500))]
pub async fn current_user(req: &mut Request, depot: &mut Depot) -> Result<Json<UserOut>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    Ok(Json(state.auth.me(&me).await?.into()))
}

/// Whether the request carries a valid session, and whose. Always 200, so that a page can ask
/// on its first visit without a failed request in its console.
#[endpoint(tags("auth"), status_codes(200, 429, 500))]
pub async fn session(req: &mut Request, depot: &mut Depot) -> Result<Json<SessionOut>, ApiError> {
    match caller(depot, req).await {
        Ok((state, me)) => Ok(Json(SessionOut {
            authenticated: true,
            user: Some(state.auth.me(&me).await?.into()),
            expires_at: Some(rfc3339(me.session_expires_at)),
            can_refresh: None,
        })),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Ok(Json(SessionOut {
            authenticated: false,
            user: None,
            expires_at: None,
            can_refresh: req.cookie(REFRESH_COOKIE).map(|_| true),
        })),
        Err(e) => Err(e),
    }
}

/// End the session: the token stops working everywhere and its sockets close.
#[endpoint(security(("bearer" = [])), tags("auth"), status_codes(204, 401, 403, 429, 500))]
pub async fn logout(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<StatusCode, ApiError> {
    let (state, me) = caller(depot, req).await?;
    state.auth.logout(&me).await?;
    clear_session_cookies(res, &state);
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's sessions, most recently used first; `current` marks the one asking.
#[endpoint(security(("bearer" = [])), tags("auth"), status_codes(200, 401, 429, 500))]
pub async fn list_sessions(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<Vec<SessionItemOut>>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let sessions = state.auth.sessions(&me).await?;
    Ok(Json(
        sessions
            .iter()
            .map(|s| SessionItemOut::new(s, &me.session))
            .collect(),
    ))
}

/// End one of the caller's sessions: its tokens stop working and its sockets close (4401).
/// Ending the current one is logging out.
#[endpoint(security(("bearer" = [])), tags("auth"), parameters(("session_id" = String, Path)), status_codes(204, 401, 403, 404, 429, 500))]
pub async fn end_session(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<StatusCode, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let id = SessionId(req.param::<String>("session_id").unwrap_or_default());
    let current = id == me.session;
    state.auth.end_session(&me, id).await?;
    if current {
        clear_session_cookies(res, &state);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of the caller but this one.
#[endpoint(security(("bearer" = [])), tags("auth"), status_codes(200, 401, 403, 429, 500))]
pub async fn logout_all(req: &mut Request, depot: &mut Depot) -> Result<Json<EndedOut>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let ended = state.auth.end_other_sessions(&me).await?;
    Ok(Json(EndedOut { ended }))
}

/// Change the caller's password: the current one must be right (else 403 `wrong_password`),
/// the new one follows the rules of registration (else 422 on `new_password`). Every other
/// session of the caller ends; this one goes on.
#[endpoint(security(("bearer" = [])), tags("auth"), request_body = PasswordBody, status_codes(204, 400, 401, 403, 413, 422, 429, 500))]
pub async fn change_password(req: &mut Request, depot: &mut Depot) -> Result<StatusCode, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let body: PasswordBody = json_body(req).await?;
    let (current, new) = body.try_into_domain().map_err(crate::domain::Error::from)?;
    state.auth.change_password(&me, &current, &new).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everyone but the caller, by username, with online status.
#[endpoint(security(("bearer" = [])), tags("users"), status_codes(200, 401, 429, 500))]
pub async fn list_users(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<Vec<UserStatusOut>>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let users = state.users.list_users(&me).await?;
    let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
    let online = state.presence.online_among(&ids).await?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserStatusOut {
                id: u.id.0,
                is_online: online.contains(&u.id),
                username: u.username.to_string(),
                last_seen: u.last_seen.map(rfc3339),
            })
            .collect(),
    ))
}

/// The caller's chats, most recent first.
#[endpoint(security(("bearer" = [])), tags("chats"), status_codes(200, 401, 429, 500))]
pub async fn list_chats(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<Vec<ChatListItem>>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let chats = state.chats.list_chats(&me).await?;
    let peers: Vec<UserId> = chats
        .iter()
        .filter_map(|c| c.peer.as_ref().map(|p| p.id))
        .collect();
    let online = state.presence.online_among(&peers).await?;
    Ok(Json(
        chats
            .iter()
            .map(|c| ChatListItem::new(c, |u| online.contains(&u)))
            .collect(),
    ))
}

/// Open the direct chat with a user: 201 when created, 200 when it existed.
#[endpoint(security(("bearer" = [])), tags("chats"), parameters(("id" = i64, Path, description = "The other user")), responses((status_code = 201, description = "A new chat", body = ChatIdOut)), status_codes(200, 201, 400, 401, 403, 404, 422, 429, 500))]
pub async fn open_direct(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<Json<ChatIdOut>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let other = UserId(path_id_as(req, "id", "user_id")?);
    let (chat, created) = state.chats.open_direct(&me, other).await?;
    if created {
        res.status_code(StatusCode::CREATED);
    }
    Ok(Json(ChatIdOut { chat_id: chat.id.0 }))
}

/// Create a group owned by the caller.
#[endpoint(security(("bearer" = [])), tags("chats"), request_body = NewGroupBody, responses((status_code = 201, description = "The new group", body = ChatIdOut)), status_codes(201, 400, 401, 403, 404, 413, 422, 429, 500))]
pub async fn create_group(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<Json<ChatIdOut>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let body: NewGroupBody = json_body(req).await?;
    let (name, visibility, members) = body.try_into_domain().map_err(crate::domain::Error::from)?;
    let chat = state
        .chats
        .create_group(&me, name, visibility, members)
        .await?;
    res.status_code(StatusCode::CREATED);
    Ok(Json(ChatIdOut { chat_id: chat.id.0 }))
}

/// A chat and its members, for members.
#[endpoint(security(("bearer" = [])), tags("chats"), parameters(("id" = i64, Path, description = "The chat")), status_codes(200, 401, 403, 404, 422, 429, 500))]
pub async fn chat_details(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<ChatDetailsOut>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let chat_id = ChatId(path_id_as(req, "id", "chat_id")?);
    let (chat, members) = state.chats.chat_details(&me, chat_id).await?;
    let ids: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
    let online = state.presence.online_among(&ids).await?;
    Ok(Json(ChatDetailsOut {
        chat_id: chat.id.0,
        kind: chat.kind.as_str(),
        name: chat.name.map(|n| n.to_string()),
        visibility: chat.visibility.as_str(),
        members: members
            .iter()
            .map(|m| MemberOut::new(m, online.contains(&m.user_id)))
            .collect(),
    }))
}

/// A member adds someone to a group.
#[endpoint(security(("bearer" = [])), tags("chats"), request_body = AddMemberBody, parameters(("chat_id" = i64, Path)), status_codes(204, 400, 401, 403, 404, 413, 422, 429, 500))]
pub async fn add_member(req: &mut Request, depot: &mut Depot) -> Result<StatusCode, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let chat_id = ChatId(path_id(req, "chat_id")?);
    let body: AddMemberBody = json_body(req).await?;
    state
        .members
        .add_member(&me, chat_id, UserId(body.user_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Leave a group (`me`), or as its owner remove a member.
#[endpoint(security(("bearer" = [])), tags("chats"), parameters(MemberPath), status_codes(204, 401, 403, 404, 422, 429, 500))]
pub async fn remove_member(req: &mut Request, depot: &mut Depot) -> Result<StatusCode, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let chat_id = ChatId(path_id(req, "chat_id")?);
    if req.param::<String>("user_id").as_deref() == Some("me") {
        state.members.leave(&me, chat_id).await?;
    } else {
        let user = UserId(path_id(req, "user_id")?);
        state.members.remove_member(&me, chat_id, user).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Public groups anyone may join.
#[endpoint(security(("bearer" = [])), tags("chats"), status_codes(200, 401, 429, 500))]
pub async fn list_rooms(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<Vec<RoomOut>>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let rooms = state.chats.list_rooms(&me).await?;
    Ok(Json(rooms.iter().map(RoomOut::from).collect()))
}

/// Join a public group.
#[endpoint(security(("bearer" = [])), tags("chats"), parameters(("chat_id" = i64, Path)), status_codes(200, 401, 403, 404, 422, 429, 500))]
pub async fn join(req: &mut Request, depot: &mut Depot) -> Result<Json<ChatIdOut>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let chat_id = ChatId(path_id(req, "chat_id")?);
    let chat = state.members.join(&me, chat_id).await?;
    Ok(Json(ChatIdOut { chat_id: chat.id.0 }))
}

/// A page of a chat's history, oldest first.
///
/// The latest `limit` (default 50, at most 200) messages; `before=<id>` pages back,
/// `after=<id>` catches up after a reconnect. `before_seq` and `after_seq` do the same by
/// position in the chat, and every bound given applies.
///
/// `changed_after=<change_seq>` instead answers the messages changed (edited, deleted,
/// reacted to) after that change, in the order of their latest change, so a client that was
/// away learns what it missed of the messages it holds; it takes no other bound but `limit`.
#[endpoint(security(("bearer" = [])), tags("chats"), parameters(("chat_id" = i64, Path), HistoryQuery), status_codes(200, 401, 403, 404, 422, 429, 500))]
pub async fn history(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<Vec<MessageOut>>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let chat_id = ChatId(path_id(req, "chat_id")?);
    if let Some(after) = query_id(req, "changed_after")? {
        let bounds = ["before", "after", "before_seq", "after_seq"];
        if bounds.iter().any(|b| req.query::<String>(b).is_some()) {
            return Err(ApiError::invalid(
                "changed_after",
                "'changed_after' takes no other bound than 'limit'.",
            ));
        }
        let limit = query_id(req, "limit")?;
        let changed = state.messages.changes(&me, chat_id, after, limit).await?;
        return Ok(Json(changed.iter().map(MessageOut::from).collect()));
    }
    let request = PageRequest {
        before: query_id(req, "before")?,
        after: query_id(req, "after")?,
        before_seq: query_id(req, "before_seq")?,
        after_seq: query_id(req, "after_seq")?,
        limit: query_id(req, "limit")?,
    };
    let messages = state.messages.history(&me, chat_id, request).await?;
    Ok(Json(messages.iter().map(MessageOut::from).collect()))
}

/// Post a message over HTTP (the socket is the usual way); it is delivered like any other.
///
/// With a `client_id`, sending again stores nothing: 201 answers the message stored now, 200
/// the same message stored by an earlier send. Each post takes from the same per-user budget
/// as socket frames: past it, 429 `rate_limited` with `Retry-After`.
#[endpoint(security(("bearer" = [])), tags("chats"), request_body = PostMessageBody, parameters(("chat_id" = i64, Path)), responses((status_code = 201, description = "The message, stored now", body = MessageOut)), status_codes(200, 201, 400, 401, 403, 404, 409, 413, 422, 429, 500))]
pub async fn post_message(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<Json<MessageOut>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    state
        .budget
        .take(me.id)
        .await
        .map_err(ApiError::rate_limited)?;
    let chat_id = ChatId(path_id(req, "chat_id")?);
    let body: PostMessageBody = json_body(req).await?;
    let posted = state
        .messages
        .post_reply(
            &me,
            chat_id,
            &body.message,
            body.client_id.as_deref(),
            body.reply_to.map(MessageId),
        )
        .await?;
    if posted.created {
        res.status_code(StatusCode::CREATED);
    }
    Ok(Json(MessageOut::from(&posted.message)))
}

/// Change the text of one's own message (within the edit window, if one is set).
#[endpoint(security(("bearer" = [])), tags("chats"), request_body = EditMessageBody, parameters(("chat_id" = i64, Path), ("id" = i64, Path)), status_codes(200, 400, 401, 403, 404, 409, 413, 422, 429, 500))]
pub async fn edit_message(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<MessageOut>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let chat_id = ChatId(path_id(req, "chat_id")?);
    let id = MessageId(path_id(req, "id")?);
    let body: EditMessageBody = json_body(req).await?;
    let edited = state
        .messages
        .edit_message(&me, chat_id, id, &body.message)
        .await?;
    Ok(Json(MessageOut::from(&edited)))
}

/// Delete one's own message, or as a group's owner anyone's: it stays as a tombstone.
#[endpoint(security(("bearer" = [])), tags("chats"), parameters(("chat_id" = i64, Path), ("id" = i64, Path)), status_codes(204, 401, 403, 404, 422, 429, 500))]
pub async fn delete_message(req: &mut Request, depot: &mut Depot) -> Result<StatusCode, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let chat_id = ChatId(path_id(req, "chat_id")?);
    let id = MessageId(path_id(req, "id")?);
    state.messages.delete_message(&me, chat_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give (`PUT`) or take back (`DELETE`) the caller's reaction; answers the message.
async fn react(
    req: &mut Request,
    depot: &mut Depot,
    on: bool,
) -> Result<Json<MessageOut>, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let chat_id = ChatId(path_id(req, "chat_id")?);
    let id = MessageId(path_id(req, "id")?);
    let emoji = req.param::<String>("emoji").unwrap_or_default();
    let message = state.messages.react(&me, chat_id, id, &emoji, on).await?;
    Ok(Json(MessageOut::from(&message)))
}

/// React to a message with an emoji (URL-encoded in the path); giving it twice changes nothing.
#[endpoint(security(("bearer" = [])), tags("chats"), parameters(ReactionPath), status_codes(200, 401, 403, 404, 409, 422, 429, 500))]
pub async fn add_reaction(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<MessageOut>, ApiError> {
    react(req, depot, true).await
}

/// Take back one's reaction; taking back one not given changes nothing.
#[endpoint(security(("bearer" = [])), tags("chats"), parameters(ReactionPath), status_codes(200, 401, 403, 404, 409, 422, 429, 500))]
pub async fn remove_reaction(
    req: &mut Request,
    depot: &mut Depot,
) -> Result<Json<MessageOut>, ApiError> {
    react(req, depot, false).await
}

/// Move the caller's read marker forward.
#[endpoint(security(("bearer" = [])), tags("chats"), request_body = ReadBody, parameters(("chat_id" = i64, Path)), status_codes(204, 400, 401, 403, 404, 413, 422, 429, 500))]
pub async fn mark_read(req: &mut Request, depot: &mut Depot) -> Result<StatusCode, ApiError> {
    let (state, me) = caller(depot, req).await?;
    let chat_id = ChatId(path_id(req, "chat_id")?);
    let body: ReadBody = json_body(req).await?;
    state
        .messages
        .mark_read(&me, chat_id, MessageId(body.message_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Liveness: answers `ok` while the server accepts requests.
#[endpoint(tags("ops"), status_codes(200))]
pub async fn health() -> &'static str {
    "ok"
}

/// Counts a login by its outcome, for `parley_logins_total`.
fn count_login<T>(outcome: &crate::domain::error::Result<T>) {
    use crate::domain::Error;
    let outcome = match outcome {
        Ok(_) => "ok",
        Err(Error::InvalidCredentials) => "invalid",
        Err(Error::TooManyAttempts { .. } | Error::RateLimited { .. }) => "throttled",
        Err(_) => "refused",
    };
    metrics::counter!("parley_logins_total", "outcome" => outcome).increment(1);
}

/// Readiness: `ready` while the storage answers and the event bus is connected; 503
/// `not_ready` while either is down or the server is draining after a stop signal.
#[endpoint(tags("ops"), status_codes(200, 429, 500, 503))]
pub async fn ready(depot: &mut Depot) -> Result<&'static str, ApiError> {
    let state = state(depot);
    let refuse = |detail: &'static str| {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            detail,
        ))
    };
    if *state.draining.borrow() {
        return refuse("The server is shutting down.");
    }
    match state.readiness.check().await {
        Ok(()) => Ok("ready"),
        Err(NotReady::Storage) => refuse("The database does not answer."),
        Err(NotReady::Bus) => refuse("The event bus is disconnected."),
    }
}
