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
use crate::domain::{ChatId, Event, EventKind, SessionId, UserId, Username};
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

    /// Serializes `body` once and queues it on the sockets of `chat`, but not those of `except`.
    fn broadcast(&mut self, chat: ChatId, except: Option<UserId>, body: &impl serde::Serialize) {
        let ids = self.chat_conns(chat, except);
        if !ids.is_empty() {
            self.send(ids, &frame(body));
        }
    }

    /// Makes every `/ws` socket of `user` follow `chat`.
    fn follow_everywhere(&mut self, user: UserId, chat: ChatId) {
        for id in self.user_conns(user) {
            if self.conns.get(&id).is_some_and(|c| c.scope == Scope::All) {
                self.subscribe(id, chat);
            }
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
    #[cfg(test)]
    fn follows(&self, id: ConnId, chat: ChatId) -> bool {
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
                inner.broadcast(m.chat_id, None, &MessageOut::from(m));
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
                let body = about(action, *chat_id, *user_id, username);
                inner.broadcast(*chat_id, Some(*user_id), &body);
            }
            Event::UserStatus {
                chat_ids,
                user_id,
                username,
                is_online,
                last_seen,
            } => {
                for chat_id in chat_ids {
                    let mut body = about("user_status", *chat_id, *user_id, username);
                    body["is_online"] = json!(is_online);
                    body["last_seen"] = json!(last_seen.map(rfc3339));
                    inner.broadcast(*chat_id, None, &body);
                }
            }
            Event::ChatCreated {
                chat_id,
                kind,
                members,
            } => {
                for user in members {
                    inner.follow_everywhere(*user, *chat_id);
                }
                let body =
                    json!({"action": "chat_created", "chat_id": chat_id, "kind": kind.as_str()});
                inner.broadcast(*chat_id, None, &body);
            }
            Event::MemberJoined {
                chat_id,
                user_id,
                username,
            } => {
                inner.follow_everywhere(*user_id, *chat_id);
                inner.broadcast(
                    *chat_id,
                    None,
                    &about("member_joined", *chat_id, *user_id, username),
                );
            }
            Event::MemberLeft {
                chat_id,
                user_id,
                username,
            } => {
                // The leaver hears it too, then nothing more of the chat.
                inner.broadcast(
                    *chat_id,
                    None,
                    &about("member_left", *chat_id, *user_id, username),
                );
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
                let mut body = about("read", *chat_id, *user_id, username);
                body["message_id"] = json!(message_id);
                inner.broadcast(*chat_id, Some(*user_id), &body);
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

/// The fields every event about a user in a chat carries.
fn about(action: &str, chat_id: ChatId, user_id: UserId, username: &Username) -> serde_json::Value {
    json!({"action": action, "chat_id": chat_id, "user_id": user_id, "username": username.as_str()})
}

fn frame(value: &impl serde::Serialize) -> Outbound {
    let text = serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "event did not serialize");
        String::from("{}")
    });
    Outbound::Frame(Utf8Bytes::from(text))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{Message, MessageBody, MessageId};

    fn posted(chat: i64, id: i64) -> Event {
        Event::MessagePosted(Message {
            id: MessageId(id),
            chat_id: ChatId(chat),
            sender_id: UserId(1),
            sender_username: Username::parse("ann").unwrap(),
            body: MessageBody::parse("hi", 10).unwrap(),
            created_at: Utc::now(),
        })
    }

    #[tokio::test]
    async fn a_socket_that_stops_reading_is_dropped_not_waited_for() {
        let registry = Registry::new();
        let (_, mut slow) =
            registry.register(UserId(2), SessionId("a".into()), Scope::All, [ChatId(1)]);
        let (_, mut quick) =
            registry.register(UserId(3), SessionId("b".into()), Scope::All, [ChatId(1)]);
        for id in 0..=QUEUE_DEPTH as i64 {
            registry.deliver(&posted(1, id));
            if let Ok(Outbound::Frame(_)) = quick.try_recv() {
            } else {
                panic!("the reading socket gets every event");
            }
        }
        assert_eq!(registry.len(), 1, "only the reading socket remains");
        let mut queued = 0;
        while let Some(Outbound::Frame(_)) = slow.recv().await {
            queued += 1;
        }
        assert_eq!(
            queued, QUEUE_DEPTH,
            "the slow socket's queue ends, so its session closes"
        );
    }

    #[tokio::test]
    async fn one_event_is_serialized_once_and_shared() {
        let registry = Registry::new();
        let (_, mut a) = registry.register(
            UserId(2),
            SessionId("a".into()),
            Scope::Chat(ChatId(1)),
            [ChatId(1)],
        );
        let (_, mut b) =
            registry.register(UserId(3), SessionId("b".into()), Scope::All, [ChatId(1)]);
        registry.deliver(&posted(1, 7));
        let (Some(Outbound::Frame(x)), Some(Outbound::Frame(y))) = (a.recv().await, b.recv().await)
        else {
            panic!("both sockets get the message");
        };
        assert_eq!(
            x.as_str().as_ptr(),
            y.as_str().as_ptr(),
            "the same bytes, not copies"
        );
    }

    #[tokio::test]
    async fn leaving_unfollows_every_socket_and_closes_the_chats_own() {
        let registry = Registry::new();
        let (all, mut on_all) =
            registry.register(UserId(2), SessionId("a".into()), Scope::All, [ChatId(1)]);
        let (_, mut on_chat) = registry.register(
            UserId(2),
            SessionId("a".into()),
            Scope::Chat(ChatId(1)),
            [ChatId(1)],
        );
        registry.deliver(&Event::MemberLeft {
            chat_id: ChatId(1),
            user_id: UserId(2),
            username: Username::parse("bob").unwrap(),
        });
        assert!(!registry.follows(all, ChatId(1)));
        assert!(
            matches!(on_all.recv().await, Some(Outbound::Frame(_))),
            "told it left"
        );
        assert!(matches!(on_chat.recv().await, Some(Outbound::Frame(_))));
        assert!(matches!(
            on_chat.recv().await,
            Some(Outbound::Close(4403, _))
        ));
        registry.deliver(&posted(1, 9));
        assert!(on_all.try_recv().is_err(), "nothing more of that chat");
    }
}
