//! The sockets open in this process and which chats each one hears. One task moves events
//! from the bus into per-socket queues: each event is serialized once and the bytes shared by
//! every recipient. A socket whose queue is full (its client stopped reading) is dropped from
//! the registry, which closes it; the client reconnects and catches up from history.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::dto::{MessageOut, rfc3339};
use crate::domain::{ChatId, Event, EventKind, SessionId, UserId};
use crate::ports::EventStream;

/// How many events may wait for a slow socket before it is dropped. Slots hold shared bytes, so
/// a deep queue costs little until it is used; bursts in a busy room need the depth.
pub const QUEUE_DEPTH: usize = 4096;

/// Identifies one open socket.
pub type ConnId = u64;

/// What a socket's task is asked to send.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A JSON text frame, shared with the other recipients.
    Frame(Utf8Bytes),
    /// Close with this code and reason.
    Close(u16, &'static str),
}

/// Which chats a socket follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `/ws/{chat_id}`: one chat, closed when its user leaves it.
    Chat(ChatId),
    /// `/ws`: every chat of its user, following joins and leaves.
    All,
}

struct Conn {
    user: UserId,
    session: SessionId,
    scope: Scope,
    chats: HashSet<ChatId>,
    tx: mpsc::Sender<Outbound>,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<ConnId, Conn>,
    by_chat: HashMap<ChatId, HashSet<ConnId>>,
    by_user: HashMap<UserId, HashSet<ConnId>>,
}

/// The open sockets of this process.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    next: AtomicU64,
}

impl Inner {
    fn subscribe(&mut self, id: ConnId, chat: ChatId) {
        if let Some(c) = self.conns.get_mut(&id)
            && c.chats.insert(chat)
        {
            self.by_chat.entry(chat).or_default().insert(id);
        }
    }

    fn unsubscribe(&mut self, id: ConnId, chat: ChatId) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.chats.remove(&chat);
        }
        if let Some(set) = self.by_chat.get_mut(&chat) {
            set.remove(&id);
            if set.is_empty() {
                self.by_chat.remove(&chat);
            }
        }
    }

    fn remove(&mut self, id: ConnId) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        for chat in conn.chats {
            if let Some(set) = self.by_chat.get_mut(&chat) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_chat.remove(&chat);
                }
            }
        }
        if let Some(set) = self.by_user.get_mut(&conn.user) {
            set.remove(&id);
            if set.is_empty() {
                self.by_user.remove(&conn.user);
            }
        }
    }

    fn user_conns(&self, user: UserId) -> Vec<ConnId> {
        self.by_user
            .get(&user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Queues `out` on each socket; drops the sockets that cannot keep up.
    fn send(&mut self, ids: impl IntoIterator<Item = ConnId>, out: &Outbound) {
        let mut lagging = Vec::new();
        for id in ids {
            if let Some(conn) = self.conns.get(&id)
                && let Err(mpsc::error::TrySendError::Full(_)) = conn.tx.try_send(out.clone())
            {
                lagging.push(id);
            }
        }
        for id in lagging {
            tracing::warn!(conn = id, "socket is not reading; dropping it");
            self.remove(id);
        }
    }

    /// The sockets of `chat`, but not those of `except`.
    fn chat_conns(&self, chat: ChatId, except: Option<UserId>) -> Vec<ConnId> {
        self.by_chat
            .get(&chat)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| except.is_none_or(|u| self.conns.get(id).is_some_and(|c| c.user != u)))
            .collect()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a socket following `chats`; returns its id and the queue to drain.
    pub fn register(
        &self,
        user: UserId,
        session: SessionId,
        scope: Scope,
        chats: impl IntoIterator<Item = ChatId>,
    ) -> (ConnId, mpsc::Receiver<Outbound>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let mut inner = self.lock();
        inner.conns.insert(
            id,
            Conn {
                user,
                session,
                scope,
                chats: HashSet::new(),
                tx,
            },
        );
        inner.by_user.entry(user).or_default().insert(id);
        for chat in chats {
            inner.subscribe(id, chat);
        }
        (id, rx)
    }

    /// Forgets a socket; safe to call twice.
    pub fn unregister(&self, id: ConnId) {
        self.lock().remove(id);
    }

    /// Whether socket `id` currently follows `chat`.
    pub fn follows(&self, id: ConnId, chat: ChatId) -> bool {
        self.lock()
            .conns
            .get(&id)
            .is_some_and(|c| c.chats.contains(&chat))
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks every socket to close with `code` (1001 when the server stops).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        let mut inner = self.lock();
        let ids: Vec<ConnId> = inner.conns.keys().copied().collect();
        inner.send(ids, &Outbound::Close(code, reason));
    }

    /// Delivers events from `events` until the stream ends.
    pub async fn pump(&self, mut events: EventStream) {
        while let Some(event) = events.next().await {
            self.deliver(&event);
        }
    }

    /// Routes one event to the sockets that should hear it.
    pub fn deliver(&self, event: &Event) {
        let mut inner = self.lock();
        match event {
            Event::MessagePosted(m) => {
                let frame = frame(&MessageOut::from(m));
                let ids = inner.chat_conns(m.chat_id, None);
                inner.send(ids, &frame);
            }
            Event::Typing {
                chat_id,
                user_id,
                username,
                kind,
            } => {
                let action = match kind {
                    EventKind::Typing => "typing",
                    EventKind::StopTyping => "stop_typing",
                };
                let frame = frame(&json!({
                    "action": action, "chat_id": chat_id, "user_id": user_id, "username": username.as_str(),
                }));
                let ids = inner.chat_conns(*chat_id, Some(*user_id));
                inner.send(ids, &frame);
            }
            Event::UserStatus {
                chat_ids,
                user_id,
                username,
                is_online,
                last_seen,
            } => {
                for chat_id in chat_ids {
                    let frame = frame(&json!({
                        "action": "user_status", "chat_id": chat_id, "user_id": user_id,
                        "username": username.as_str(), "is_online": is_online,
                        "last_seen": last_seen.map(rfc3339),
                    }));
                    let ids = inner.chat_conns(*chat_id, None);
                    inner.send(ids, &frame);
                }
            }
            Event::ChatCreated {
                chat_id,
                kind,
                members,
            } => {
                let frame = frame(&json!({
                    "action": "chat_created", "chat_id": chat_id, "kind": kind.as_str(),
                }));
                for user in members {
                    let ids = inner.user_conns(*user);
                    for id in &ids {
                        if inner.conns.get(id).is_some_and(|c| c.scope == Scope::All) {
                            inner.subscribe(*id, *chat_id);
                        }
                    }
                }
                let ids = inner.chat_conns(*chat_id, None);
                inner.send(ids, &frame);
            }
            Event::MemberJoined {
                chat_id,
                user_id,
                username,
            } => {
                for id in inner.user_conns(*user_id) {
                    if inner.conns.get(&id).is_some_and(|c| c.scope == Scope::All) {
                        inner.subscribe(id, *chat_id);
                    }
                }
                let frame = frame(&json!({
                    "action": "member_joined", "chat_id": chat_id, "user_id": user_id,
                    "username": username.as_str(),
                }));
                let ids = inner.chat_conns(*chat_id, None);
                inner.send(ids, &frame);
            }
            Event::MemberLeft {
                chat_id,
                user_id,
                username,
            } => {
                let frame = frame(&json!({
                    "action": "member_left", "chat_id": chat_id, "user_id": user_id,
                    "username": username.as_str(),
                }));
                let ids = inner.chat_conns(*chat_id, None);
                inner.send(ids, &frame);
                for id in inner.user_conns(*user_id) {
                    let single = inner
                        .conns
                        .get(&id)
                        .is_some_and(|c| c.scope == Scope::Chat(*chat_id));
                    inner.unsubscribe(id, *chat_id);
                    if single {
                        inner.send(
                            [id],
                            &Outbound::Close(4403, "no longer a member of this chat"),
                        );
                    }
                }
            }
            Event::Read {
                chat_id,
                user_id,
                username,
                message_id,
            } => {
                let frame = frame(&json!({
                    "action": "read", "chat_id": chat_id, "user_id": user_id,
                    "username": username.as_str(), "message_id": message_id,
                }));
                let ids = inner.chat_conns(*chat_id, Some(*user_id));
                inner.send(ids, &frame);
            }
            Event::SessionRevoked(session) => {
                let ids: Vec<ConnId> = inner
                    .conns
                    .iter()
                    .filter(|(_, c)| &c.session == session)
                    .map(|(id, _)| *id)
                    .collect();
                for id in &ids {
                    let chats: Vec<ChatId> = inner.conns[id].chats.iter().copied().collect();
                    for chat in chats {
                        inner.unsubscribe(*id, chat);
                    }
                }
                inner.send(ids, &Outbound::Close(4401, "session ended"));
            }
        }
    }
}

fn frame(value: &impl serde::Serialize) -> Outbound {
    let text = serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "event did not serialize");
        String::from("{}")
    });
    Outbound::Frame(Utf8Bytes::from(text))
}
