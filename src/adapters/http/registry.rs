//! The sockets open in this process and which chats each one hears. One task moves events
//! from the bus into per-socket queues: each event is serialized once and the bytes shared by
//! every recipient. A socket whose queue is full (its client stopped reading) is dropped from
//! the registry, and its session is told at once, so it closes the connection whatever is
//! still unsent; the client reconnects and catches up.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::protocol::{Protocol, ServerEvent};
use crate::domain::{Audience, ChatId, Event, SessionId, UserId};
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
    Frame(Frame),
    /// Close with this code and reason.
    Close(u16, &'static str),
}

/// An event's bytes, with what a session needs to know of it without parsing them.
#[derive(Debug, Clone)]
pub struct Frame {
    pub bytes: Utf8Bytes,
    /// The chat it is about.
    pub chat: Option<ChatId>,
    /// Its `seq`, when it is a message.
    pub seq: Option<i64>,
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
    /// Dropped with the connection: its session hears at once that it was dropped.
    _dropped: oneshot::Sender<()>,
    user: UserId,
    session: SessionId,
    scope: Scope,
    protocol: Protocol,
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
        metrics::gauge!("parley_sockets_open", "kind" => kind(conn.scope, conn.protocol))
            .decrement(1);
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
            metrics::counter!("parley_slow_sockets_dropped_total").increment(1);
            self.remove(id);
        }
    }

    /// Queues `event` on the sockets of `chat` that speak it, but not those of `except`; it is
    /// serialized once, and only if someone is to receive it.
    fn broadcast(&mut self, chat: ChatId, except: Option<UserId>, event: &ServerEvent) {
        let ids: Vec<ConnId> = self
            .chat_conns(chat, except)
            .into_iter()
            .filter(|id| self.conns.get(id).is_some_and(|c| event.speaks(c.protocol)))
            .collect();
        if !ids.is_empty() {
            metrics::counter!("parley_events_fanned_out_total").increment(ids.len() as u64);
            let frame = Frame {
                bytes: Utf8Bytes::from(event.to_json()),
                chat: event.chat_id(),
                seq: event.seq(),
            };
            self.send(ids, &Outbound::Frame(frame));
        }
    }

    /// Closes the sockets opened with `session` with 4401, following nothing from now on.
    fn end_session(&mut self, session: &SessionId) {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| &c.session == session)
            .map(|(id, _)| *id)
            .collect();
        self.close_with_4401(ids, "session ended");
    }

    /// Closes every socket of `user` with 4401: their account was disabled.
    fn end_user(&mut self, user: UserId) {
        let ids = self.user_conns(user);
        self.close_with_4401(ids, "account disabled");
    }

    /// Closes `ids` with 4401, following nothing from now on.
    fn close_with_4401(&mut self, ids: Vec<ConnId>, reason: &'static str) {
        for id in &ids {
            let chats: Vec<ChatId> = self.conns[id].chats.iter().copied().collect();
            for chat in chats {
                self.unsubscribe(*id, chat);
            }
        }
        self.send(ids, &Outbound::Close(4401, reason));
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

    /// Registers a socket following `chats`; returns its id, the queue to drain, and a
    /// receiver that resolves when the registry drops the socket for not keeping up.
    pub fn register(
        &self,
        user: UserId,
        session: SessionId,
        scope: Scope,
        protocol: Protocol,
        chats: impl IntoIterator<Item = ChatId>,
    ) -> (ConnId, mpsc::Receiver<Outbound>, oneshot::Receiver<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (dropped, on_drop) = oneshot::channel();
        metrics::gauge!("parley_sockets_open", "kind" => kind(scope, protocol)).increment(1);
        let mut inner = self.lock();
        inner.conns.insert(
            id,
            Conn {
                _dropped: dropped,
                user,
                session,
                scope,
                protocol,
                chats: HashSet::new(),
                tx,
            },
        );
        inner.by_user.entry(user).or_default().insert(id);
        for chat in chats {
            inner.subscribe(id, chat);
        }
        (id, rx, on_drop)
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

    /// How many sockets `user` has open in this process.
    pub fn sockets_of(&self, user: UserId) -> usize {
        self.lock().by_user.get(&user).map_or(0, HashSet::len)
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

    /// Routes one event to the sockets of its audience, in the protocol each speaks, after
    /// applying what it changes about who follows what.
    pub fn deliver(&self, event: &Event) {
        let mut inner = self.lock();
        match event {
            Event::ChatCreated {
                chat_id, members, ..
            } => {
                for user in members {
                    inner.follow_everywhere(*user, *chat_id);
                }
            }
            Event::MemberJoined {
                chat_id, user_id, ..
            } => inner.follow_everywhere(*user_id, *chat_id),
            _ => {}
        }
        let except = match event.audience() {
            Audience::Chat { except, .. } => except,
            Audience::Chats(_) => None,
            Audience::Session(session) => {
                inner.end_session(&session);
                return;
            }
            Audience::User(user) => {
                inner.end_user(user);
                return;
            }
        };
        for (chat_id, wire) in ServerEvent::from_domain(event) {
            inner.broadcast(chat_id, except, &wire);
        }
        if let Event::MessagePosted(m) = event {
            metrics::histogram!("parley_delivery_seconds")
                .record(crate::adapters::metrics::seconds_since(m.created_at));
        }
        if let Event::MemberLeft {
            chat_id, user_id, ..
        } = event
        {
            // The leaver heard it; now nothing more of the chat, and its own socket closes.
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
    }
}

/// The `kind` label of a socket in `parley_sockets_open`.
fn kind(scope: Scope, protocol: Protocol) -> &'static str {
    match (scope, protocol) {
        (Scope::All, _) => "user",
        (Scope::Chat(_), Protocol::Original) => "chat",
        (Scope::Chat(_), Protocol::V2) => "chat_v2",
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{Message, MessageBody, MessageId, Seq, Username};

    fn posted(chat: i64, id: i64) -> Event {
        Event::MessagePosted(Message {
            id: MessageId(id),
            seq: Seq(id),
            client_id: None,
            chat_id: ChatId(chat),
            sender_id: UserId(1),
            sender_username: Username::parse("ann").unwrap(),
            body: MessageBody::parse("hi", 10).unwrap(),
            created_at: Utc::now(),
            edited_at: None,
            deleted: false,
            reply_to: None,
            reactions: Vec::new(),
            change_seq: None,
        })
    }

    #[tokio::test]
    async fn a_socket_that_stops_reading_is_dropped_not_waited_for() {
        let registry = Registry::new();
        let (_, mut slow, dropped) = registry.register(
            UserId(2),
            SessionId("a".into()),
            Scope::All,
            Protocol::V2,
            [ChatId(1)],
        );
        let (_, mut quick, _) = registry.register(
            UserId(3),
            SessionId("b".into()),
            Scope::All,
            Protocol::V2,
            [ChatId(1)],
        );
        for id in 0..=QUEUE_DEPTH as i64 {
            registry.deliver(&posted(1, id));
            if let Ok(Outbound::Frame(_)) = quick.try_recv() {
            } else {
                panic!("the reading socket gets every event");
            }
        }
        assert_eq!(registry.len(), 1, "only the reading socket remains");
        assert!(dropped.await.is_err(), "its session is told at once");
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
        let (_, mut a, _) = registry.register(
            UserId(2),
            SessionId("a".into()),
            Scope::Chat(ChatId(1)),
            Protocol::V2,
            [ChatId(1)],
        );
        let (_, mut b, _) = registry.register(
            UserId(3),
            SessionId("b".into()),
            Scope::All,
            Protocol::V2,
            [ChatId(1)],
        );
        registry.deliver(&posted(1, 7));
        let (Some(Outbound::Frame(x)), Some(Outbound::Frame(y))) = (a.recv().await, b.recv().await)
        else {
            panic!("both sockets get the message");
        };
        assert_eq!(
            x.bytes.as_str().as_ptr(),
            y.bytes.as_str().as_ptr(),
            "the same bytes, not copies"
        );
    }

    #[tokio::test]
    async fn leaving_unfollows_every_socket_and_closes_the_chats_own() {
        let registry = Registry::new();
        let (all, mut on_all, _) = registry.register(
            UserId(2),
            SessionId("a".into()),
            Scope::All,
            Protocol::V2,
            [ChatId(1)],
        );
        let (_, mut on_chat, _) = registry.register(
            UserId(2),
            SessionId("a".into()),
            Scope::Chat(ChatId(1)),
            Protocol::V2,
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

    #[tokio::test]
    async fn a_disabled_user_has_every_socket_closed_with_4401_and_others_keep_theirs() {
        let registry = Registry::new();
        let mut of_ann = Vec::new();
        for (session, scope) in [("a", Scope::All), ("b", Scope::Chat(ChatId(1)))] {
            let (_, rx, _) = registry.register(
                UserId(2),
                SessionId(session.into()),
                scope,
                Protocol::V2,
                [ChatId(1)],
            );
            of_ann.push(rx);
        }
        let (bob, mut of_bob, _) = registry.register(
            UserId(3),
            SessionId("c".into()),
            Scope::All,
            Protocol::V2,
            [ChatId(1)],
        );

        registry.deliver(&Event::UserDisabled(UserId(2)));

        for rx in &mut of_ann {
            assert!(matches!(rx.recv().await, Some(Outbound::Close(4401, _))));
        }
        assert!(of_bob.try_recv().is_err(), "nothing for the others");
        assert!(registry.follows(bob, ChatId(1)));
        registry.deliver(&posted(1, 9));
        for rx in &mut of_ann {
            assert!(
                rx.try_recv().is_err(),
                "the disabled user hears nothing more"
            );
        }
        assert!(matches!(of_bob.recv().await, Some(Outbound::Frame(_))));
    }
}
