//! WebSocket sessions: `/ws/{chat_id}` follows one chat (the original API), `/ws` follows all
//! of the caller's chats. Authentication and authorization happen before the upgrade. Each
//! session is one task reading client frames beside a writer that `select!`s over queued
//! events, replies, a heartbeat and server shutdown; it unregisters on every way out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use salvo::http::StatusCode;
use salvo::prelude::*;
use salvo::websocket::{Message, WebSocket, WebSocketUpgrade};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::HttpState;
use super::auth::{Source, check_origin, token};
use super::delivered::SeqSet;
use super::dto::MessageOut;
use super::error::ApiError;
use super::protocol::{Action, ClientFrame, Limits, Protocol, ServerEvent};
use super::registry::{Frame, Outbound, Scope};
use super::routes::state;
use crate::domain::{AuthUser, ChatId, ChatName, Error, EventKind, HistoryPage, MessageId, Replay};
use crate::services::TYPING_EXPIRES_AFTER;

/// The largest frame or message a client may send; bigger ones close the socket (1009).
/// Anything below it is read, and a body over the message limit gets an `error` event.
const MAX_FRAME: usize = 64 * 1024;
/// What a refused socket is told to wait before trying again, in seconds.
const SOCKET_RETRY_AFTER_SECS: u64 = 5;
/// How often the server pings; a client that has not answered by the next ping is gone.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// The longest one frame may wait to be sent; a client that reads nothing for this long is
/// disconnected, whatever is still unsent.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The most frames written with one flush.
const MAX_WRITE_BATCH: usize = 64;

/// Small buffers: an idle socket should cost a few KiB, not tungstenite's 128 KiB defaults.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
}

/// Authenticates a socket before the upgrade: a token from the header, `?token=` or the
/// cookie; an `Origin`, when present, must be allowed.
async fn authenticate_socket(state: &HttpState, req: &Request) -> Result<AuthUser, ApiError> {
    let Some((token, source)) = token(req, true) else {
        return Err(Error::Unauthenticated.into());
    };
    // Browsers always send Origin on a WebSocket handshake; a cookie-only handshake without
    // one did not come from a page we can vouch for.
    check_origin(state, req, source == Source::Cookie)?;
    let me = state.auth.authenticate(&token).await?;
    let cap = state.max_sockets_per_user;
    if cap > 0 && state.registry.sockets_of(me.id) >= cap {
        return Err(ApiError {
            retry_after: Some(SOCKET_RETRY_AFTER_SECS),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sockets",
                format!("At most {cap} sockets per user; close one first."),
            )
        });
    }
    Ok(me)
}

/// `GET /ws/{chat_id}`: a socket for one chat.
#[handler]
pub async fn chat_socket(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let state = state(depot);
    let result = async {
        let me = authenticate_socket(&state, req).await?;
        let chat = req
            .param::<i64>("chat_id")
            .map(ChatId)
            .ok_or_else(|| ApiError::invalid("chat_id", "'chat_id' must be an integer."))?;
        state.chats.ensure_member(&me, chat).await?;
        Ok::<_, ApiError>((me, chat))
    }
    .await;
    // The original protocol unless the client opts in to everything newer.
    let protocol = match req.query::<String>("v").as_deref() {
        Some("2") => Protocol::V2,
        _ => Protocol::Original,
    };
    match result {
        Ok((me, chat)) => {
            upgrade(state, me, Scope::Chat(chat), protocol, vec![chat], req, res).await;
        }
        Err(e) => refuse(res, e),
    }
}

/// `GET /ws`: one socket for all of the caller's chats.
#[handler]
pub async fn user_socket(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let state = state(depot);
    let result = async {
        let me = authenticate_socket(&state, req).await?;
        let chats = state.chats.my_chat_ids(&me).await?;
        Ok::<_, ApiError>((me, chats))
    }
    .await;
    match result {
        Ok((me, chats)) => upgrade(state, me, Scope::All, Protocol::V2, chats, req, res).await,
        Err(e) => refuse(res, e),
    }
}

fn refuse(res: &mut Response, e: ApiError) {
    res.render(e);
}

async fn upgrade(
    state: Arc<HttpState>,
    me: AuthUser,
    scope: Scope,
    protocol: Protocol,
    chats: Vec<ChatId>,
    req: &mut Request,
    res: &mut Response,
) {
    let upgraded = WebSocketUpgrade::with_config(socket_config())
        .upgrade(req, res, move |ws| {
            Session::run(state, me, scope, protocol, chats, ws)
        })
        .await;
    if let Err(e) = upgraded {
        let status = e.code;
        let api = ApiError::new(
            if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            "not_a_websocket",
            "This endpoint expects a WebSocket upgrade.",
        );
        refuse(res, api);
    }
}

struct Session {
    state: Arc<HttpState>,
    me: AuthUser,
    scope: Scope,
    protocol: Protocol,
    /// When this socket last said its user is typing, per chat, until they stop.
    typing: Mutex<HashMap<ChatId, Instant>>,
    /// Wakes the typing expiry when the user starts typing.
    typing_started: Notify,
    streams: Mutex<Streams>,
}

/// Where each chat's stream of messages stands on this socket.
#[derive(Default)]
struct Streams {
    /// Chats being replayed: their live events wait here until the replay is sent.
    held: HashMap<ChatId, Vec<Frame>>,
    /// The `seq`s of each chat this socket has been sent (or, after a resume, already held).
    delivered: HashMap<ChatId, SeqSet>,
}

/// What the reader hands the writer to send.
enum Reply {
    /// An event for this socket only: an error, an ack.
    Event(String),
    /// The answer to a resume: what to replay, then the live events held meanwhile.
    Replay {
        chat: ChatId,
        after_seq: i64,
        replay: Replay,
    },
}

impl Session {
    async fn run(
        state: Arc<HttpState>,
        me: AuthUser,
        scope: Scope,
        protocol: Protocol,
        chats: Vec<ChatId>,
        ws: WebSocket,
    ) {
        // `/ws` greets with the chats it follows, so a client knows it is live, and with the
        // limits it enforces, so a client checks input against this server's configuration
        // instead of a copy; the original `/ws/{chat_id}` sends nothing its clients would not
        // expect.
        let ready = (scope == Scope::All).then(|| {
            ServerEvent::Action(Action::Ready {
                user_id: me.id,
                username: me.username.to_string(),
                chat_ids: chats.clone(),
                limits: Limits {
                    max_message_chars: state.messages.limits().max_message_chars,
                    max_group_name_chars: ChatName::MAX,
                    max_history_page: HistoryPage::MAX_LIMIT,
                },
            })
            .to_json()
        });
        let (conn, mut outbound, mut dropped) =
            state
                .registry
                .register(me.id, me.session.clone(), scope, protocol, chats);
        let session = Session {
            state,
            me,
            scope,
            protocol,
            typing: Mutex::new(HashMap::new()),
            typing_started: Notify::new(),
            streams: Mutex::new(Streams::default()),
        };
        let (mut sink, mut stream) = ws.split();
        if let Some(ready) = ready
            && sink.send(Message::text(ready)).await.is_err()
        {
            session.state.registry.unregister(conn);
            return;
        }
        if let Err(e) = session.state.presence.connect(&session.me).await {
            tracing::error!(error = ?e, "presence on connect failed");
        }
        let mut shutdown = session.state.shutdown.clone();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        let alive = AtomicBool::new(true);
        let (reply_tx, mut replies) = mpsc::channel::<Reply>(16);
        // Reading and writing run side by side, so that while a client's frame is being
        // stored, events keep flowing out to it instead of piling up in its queue.
        let reader = async {
            while let Some(frame) = stream.next().await {
                let Ok(msg) = frame else {
                    return Some((1009, "frame too large or malformed"));
                };
                alive.store(true, Ordering::Relaxed);
                if msg.is_close() {
                    return None;
                }
                if msg.is_ping() || msg.is_pong() {
                    continue;
                }
                // One budget per user over all their sockets and HTTP posts.
                let reply = if session.state.budget.take(session.me.id).await.is_ok() {
                    session.handle(&msg).await
                } else {
                    // The refusal names the message it refuses, so its sender can retry it.
                    let client_id = msg
                        .as_str()
                        .ok()
                        .and_then(|text| ClientFrame::parse(text).ok())
                        .and_then(|frame| frame.client_id().map(str::to_owned));
                    metrics::counter!("parley_refusals_total", "code" => "rate_limited")
                        .increment(1);
                    Some(Reply::Event(
                        ServerEvent::Action(Action::Error {
                            detail: "Too many frames; slow down. This one was not processed."
                                .into(),
                            code: "rate_limited",
                            client_id,
                        })
                        .to_json(),
                    ))
                };
                if let Some(reply) = reply
                    && reply_tx.send(reply).await.is_err()
                {
                    return None;
                }
            }
            None
        };
        // The socket lives as long as its token, or its session if that expires first; the
        // session ending sooner closes it through the registry.
        let expires = session.me.session_expires_at - chrono::Utc::now();
        let expiry = tokio::time::sleep(expires.to_std().unwrap_or_default());
        tokio::pin!(expiry);
        let writer = async {
            loop {
                let mut closing = None;
                let mut messages = tokio::select! {
                    biased;
                    _ = &mut dropped => return Some((1013, "too slow; reconnect and resume")),
                    _ = shutdown.changed() => return Some((1001, "server is shutting down")),
                    () = &mut expiry => return Some((4401, "session expired")),
                    out = outbound.recv() => match out {
                        Some(Outbound::Frame(frame)) => session.live(frame),
                        Some(Outbound::Close(code, reason)) => return Some((code, reason)),
                        None => return Some((1013, "too slow; reconnect and resume")),
                    },
                    Some(reply) = replies.recv() => session.reply(reply),
                    _ = heartbeat.tick() => {
                        if !alive.swap(false, Ordering::Relaxed) {
                            return None;
                        }
                        vec![Message::ping(Vec::new())]
                    }
                };
                // Frames queued meanwhile go out with these, in one write.
                while messages.len() < MAX_WRITE_BATCH {
                    match outbound.try_recv() {
                        Ok(Outbound::Frame(frame)) => messages.extend(session.live(frame)),
                        Ok(Outbound::Close(code, reason)) => {
                            closing = Some((code, reason));
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let write = async {
                    for message in messages {
                        sink.feed(message).await?;
                    }
                    sink.flush().await
                };
                // A client that stops reading fills its TCP buffers and then blocks the send:
                // it is cut off after SEND_TIMEOUT, or at once if the registry drops it.
                let sent = tokio::select! {
                    biased;
                    _ = &mut dropped => return Some((1013, "too slow; reconnect and resume")),
                    sent = tokio::time::timeout(SEND_TIMEOUT, write) => sent,
                };
                if !matches!(sent, Ok(Ok(()))) {
                    return None;
                }
                if closing.is_some() {
                    return closing;
                }
            }
        };
        // Sleeps until the user types, so an idle socket costs no timer wake-ups.
        let typing_expiry = async {
            loop {
                let empty = session
                    .typing
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_empty();
                if empty {
                    session.typing_started.notified().await;
                } else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    session.stop_typing(TYPING_EXPIRES_AFTER).await;
                }
            }
        };
        let close: Option<(u16, &str)> = tokio::select! {
            close = reader => close,
            close = writer => close,
            () = typing_expiry => None,
        };
        session.state.registry.unregister(conn);
        if let Some((code, reason)) = close {
            // The client may not be reading: a close frame gets a moment, not a wait.
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                sink.send(Message::close_with(code, reason)),
            )
            .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        // Dropping both halves ends the connection, whatever is still unsent.
        drop((sink, stream));
        session.stop_typing(Duration::ZERO).await;
        if let Err(e) = session.state.presence.disconnect(&session.me).await {
            tracing::error!(error = ?e, "presence on disconnect failed");
        }
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What to send for a live event: nothing while its chat is being replayed (it waits) or
    /// when it is a message this socket already has.
    fn live(&self, frame: Frame) -> Vec<Message> {
        let mut streams = self.streams();
        let Streams { held, delivered } = &mut *streams;
        if let Some(chat) = frame.chat
            && let Some(waiting) = held.get_mut(&chat)
        {
            waiting.push(frame);
            return Vec::new();
        }
        let fresh = match (frame.chat, frame.seq) {
            (Some(chat), Some(seq)) => delivered.entry(chat).or_default().insert(seq),
            _ => true,
        };
        if fresh {
            vec![Message::text(frame.bytes)]
        } else {
            Vec::new()
        }
    }

    /// What to send for a reply of the reader: an event of its own, or a replay followed by
    /// the live events held while it was read, each message once, in `seq` order.
    fn reply(&self, reply: Reply) -> Vec<Message> {
        let (chat, after_seq, replay) = match reply {
            Reply::Event(text) => return vec![Message::text(text)],
            Reply::Replay {
                chat,
                after_seq,
                replay,
            } => (chat, after_seq, replay),
        };
        let mut streams = self.streams();
        let Streams { held, delivered } = &mut *streams;
        let waiting = held.remove(&chat).unwrap_or_default();
        let sent = delivered.entry(chat).or_default();
        let mut out = Vec::new();
        match replay {
            Replay::Messages(messages) => {
                // The client holds everything up to after_seq.
                sent.insert_range(1, after_seq);
                for m in &messages {
                    if sent.insert(m.seq.0) {
                        let event = ServerEvent::Message(MessageOut::from(m));
                        out.push(Message::text(event.to_json()));
                    }
                }
            }
            Replay::TooFarBehind => {
                let event = ServerEvent::Action(Action::Resync { chat_id: chat });
                out.push(Message::text(event.to_json()));
            }
        }
        for frame in waiting {
            if frame.seq.is_none_or(|seq| sent.insert(seq)) {
                out.push(Message::text(frame.bytes));
            }
        }
        out
    }

    /// Tells the chats where this socket's user has typed for longer than `after` without a
    /// word that the indicator should stop.
    async fn stop_typing(&self, after: Duration) {
        let expired: Vec<ChatId> = {
            let mut typing = self.typing.lock().unwrap_or_else(|p| p.into_inner());
            let expired = typing
                .iter()
                .filter(|(_, since)| since.elapsed() >= after)
                .map(|(chat, _)| *chat)
                .collect();
            typing.retain(|_, since| since.elapsed() < after);
            expired
        };
        for chat in expired {
            let stopped = self
                .state
                .messages
                .typing(&self.me, chat, EventKind::StopTyping)
                .await;
            if let Err(e) = stopped {
                tracing::debug!(error = ?e, "typing did not stop");
            }
        }
    }

    /// Acts on one client frame; returns what to send back, if anything.
    async fn handle(&self, msg: &Message) -> Option<Reply> {
        let event = |e: ServerEvent| Some(Reply::Event(e.to_json()));
        let Ok(text) = msg.as_str() else {
            return event(ServerEvent::error(
                "Frames must be JSON text.",
                "malformed_frame",
            ));
        };
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(refusal) => return event(refusal.into()),
        };
        let chat = match (self.scope, frame.chat_id()) {
            (Scope::Chat(own), None) => own,
            (Scope::Chat(own), Some(id)) if id == own.0 => own,
            (Scope::Chat(_), Some(_)) => {
                return event(ServerEvent::error(
                    "This socket belongs to another chat.",
                    "wrong_chat",
                ));
            }
            (Scope::All, Some(id)) => ChatId(id),
            (Scope::All, None) => {
                return event(ServerEvent::error(
                    "Every frame must name its chat_id.",
                    "missing_chat_id",
                ));
            }
        };
        self.note_typing(&frame, chat);
        // Membership is the domain's question: each use case below checks it against storage,
        // which is current even before this socket has heard of a chat it was just added to.
        let messages = &self.state.messages;
        let refusal = |e: Error, client_id: Option<String>| {
            let api = ApiError::from(e);
            metrics::counter!("parley_refusals_total", "code" => api.code).increment(1);
            event(ServerEvent::Action(Action::Error {
                detail: api.detail.into_owned(),
                code: api.code,
                client_id,
            }))
        };
        match frame {
            ClientFrame::Send {
                message,
                client_id,
                reply_to,
                ..
            } => {
                let posted = messages
                    .post_reply(
                        &self.me,
                        chat,
                        &message,
                        client_id.as_deref(),
                        reply_to.map(MessageId),
                    )
                    .await;
                match (posted, client_id) {
                    (Err(e), client_id) => refusal(e, client_id),
                    // Acks are of the newer protocol.
                    (Ok(posted), Some(client_id)) if self.protocol == Protocol::V2 => {
                        event(ServerEvent::Action(Action::Ack {
                            chat_id: chat,
                            client_id,
                            id: posted.message.id,
                            seq: posted.message.seq.0,
                        }))
                    }
                    (Ok(_), _) => None,
                }
            }
            ClientFrame::Typing { kind, .. } => messages
                .typing(&self.me, chat, kind)
                .await
                .err()
                .and_then(|e| refusal(e, None)),
            ClientFrame::Read { message_id, .. } => messages
                .mark_read(&self.me, chat, MessageId(message_id))
                .await
                .err()
                .and_then(|e| refusal(e, None)),
            ClientFrame::Resume { .. } if self.protocol == Protocol::Original => {
                event(ServerEvent::error(
                    "Resume needs the newer protocol: open with ?v=2.",
                    "unknown_action",
                ))
            }
            ClientFrame::Edit { .. } | ClientFrame::Delete { .. } | ClientFrame::React { .. }
                if self.protocol == Protocol::Original =>
            {
                event(ServerEvent::error(
                    "Edits, deletes and reactions need the newer protocol: open with ?v=2.",
                    "unknown_action",
                ))
            }
            // Done, the chat hears of it, this socket included; refused, this socket alone.
            ClientFrame::Edit { id, message, .. } => messages
                .edit_message(&self.me, chat, MessageId(id), &message)
                .await
                .err()
                .and_then(|e| refusal(e, None)),
            ClientFrame::Delete { id, .. } => messages
                .delete_message(&self.me, chat, MessageId(id))
                .await
                .err()
                .and_then(|e| refusal(e, None)),
            ClientFrame::React { id, emoji, on, .. } => messages
                .react(&self.me, chat, MessageId(id), &emoji, on)
                .await
                .err()
                .and_then(|e| refusal(e, None)),
            ClientFrame::Resume { after_seq, .. } => {
                // Live events of the chat wait from now until the replay is sent, so that
                // nothing committed meanwhile slips between the two.
                self.streams().held.entry(chat).or_default();
                let bound = self.state.resume_max_messages;
                match messages.replay(&self.me, chat, after_seq, bound).await {
                    Ok(replay) => Some(Reply::Replay {
                        chat,
                        after_seq,
                        replay,
                    }),
                    Err(e) => {
                        let waiting = self.streams().held.remove(&chat).unwrap_or_default();
                        // Not a member: none of it was for this socket anyway.
                        drop(waiting);
                        refusal(e, None)
                    }
                }
            }
        }
    }

    /// Remembers when this socket's user started typing in `chat`, until they stop or send.
    fn note_typing(&self, frame: &ClientFrame, chat: ChatId) {
        let mut typing = self.typing.lock().unwrap_or_else(|p| p.into_inner());
        match frame {
            ClientFrame::Typing {
                kind: EventKind::Typing,
                ..
            } => {
                typing.insert(chat, Instant::now());
                self.typing_started.notify_one();
            }
            ClientFrame::Typing { .. } | ClientFrame::Send { .. } => {
                typing.remove(&chat);
            }
            ClientFrame::Read { .. }
            | ClientFrame::Resume { .. }
            | ClientFrame::Edit { .. }
            | ClientFrame::Delete { .. }
            | ClientFrame::React { .. } => {}
        }
    }
}
