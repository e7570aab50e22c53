//! In-memory storage: every repository port over one mutex-guarded state. It keeps nothing
//! across restarts; it serves `memory://`, unit tests and library users who want a fake that
//! behaves like the real thing (it passes the same contract suite as PostgreSQL and SQLite).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::error::{Error, Result};
use crate::domain::{
    ChangeSeq, Chat, ChatId, ChatKind, ChatSummary, Client, ClientId, Emoji, HistoryPage, Inserted,
    Member, Message, MessageBody, MessageId, NewGroup, NewMessage, NewSession, NewUser, Peer,
    Quote, RefreshState, Role, RoomSummary, Seq, Session, SessionId, User, UserId, Visibility,
    group_reactions,
};
use crate::ports::{ChatAccess, ChatRepo, MessageRepo, SessionRepo, StorageProbe, UserRepo};

#[derive(Default)]
struct State {
    users: BTreeMap<UserId, User>,
    chats: BTreeMap<ChatId, Chat>,
    /// Members of each chat in joining order, with role and read marker.
    members: BTreeMap<ChatId, Vec<Membership>>,
    /// The direct chat of each unordered pair.
    directs: HashMap<(UserId, UserId), ChatId>,
    messages: BTreeMap<MessageId, StoredMessage>,
    /// The seq of each chat's newest message; a chat without messages has none.
    last_seq: HashMap<ChatId, Seq>,
    /// The number of each chat's latest change to a message; a chat without one has none.
    last_change: HashMap<ChatId, ChangeSeq>,
    /// The message each sender stored under each client id, per chat.
    client_ids: HashMap<(ChatId, UserId, ClientId), MessageId>,
    /// Sessions without their owner's username, which is read from `users` when found.
    sessions: HashMap<SessionId, StoredSession>,
    next_id: i64,
}

struct StoredSession {
    user_id: UserId,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    client: Client,
    refresh: RefreshState,
}

struct Membership {
    user: UserId,
    role: Role,
    last_read: Option<MessageId>,
}

struct StoredMessage {
    chat_id: ChatId,
    seq: Seq,
    sender_id: UserId,
    body: MessageBody,
    created_at: DateTime<Utc>,
    client_id: Option<ClientId>,
    edited_at: Option<DateTime<Utc>>,
    deleted: bool,
    reply_to: Option<MessageId>,
    /// Who gave which emoji, in the order given.
    reactions: Vec<(Emoji, UserId)>,
    change_seq: Option<ChangeSeq>,
}

impl State {
    fn next(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn member_ids(&self, chat: ChatId) -> impl Iterator<Item = UserId> + '_ {
        self.members
            .get(&chat)
            .into_iter()
            .flatten()
            .map(|m| m.user)
    }

    fn is_member(&self, chat: ChatId, user: UserId) -> bool {
        self.member_ids(chat).any(|u| u == user)
    }

    fn message(&self, id: MessageId, m: &StoredMessage) -> Message {
        let reply_to = m.reply_to.and_then(|rid| {
            let r = self.messages.get(&rid)?;
            Some(Quote::new(
                rid,
                r.sender_id,
                self.users[&r.sender_id].username.clone(),
                &r.body,
                r.deleted,
            ))
        });
        Message {
            id,
            chat_id: m.chat_id,
            seq: m.seq,
            sender_id: m.sender_id,
            sender_username: self.users[&m.sender_id].username.clone(),
            body: m.body.clone(),
            created_at: m.created_at,
            client_id: m.client_id.clone(),
            edited_at: m.edited_at,
            deleted: m.deleted,
            reply_to,
            reactions: group_reactions(m.reactions.iter().cloned()),
            change_seq: m.change_seq,
        }
    }

    /// The chat's next change number, taken for a change to `message`.
    fn next_change(&mut self, message: MessageId) -> Result<ChangeSeq> {
        let chat = self
            .messages
            .get(&message)
            .ok_or(Error::MessageNotFound)?
            .chat_id;
        let next = ChangeSeq(self.last_change.get(&chat).map_or(0, |c| c.0) + 1);
        self.last_change.insert(chat, next);
        if let Some(m) = self.messages.get_mut(&message) {
            m.change_seq = Some(next);
        }
        Ok(next)
    }
}

/// Every storage port, in memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn pair(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b { (a, b) } else { (b, a) }
}

#[async_trait]
impl UserRepo for MemoryStore {
    async fn create(&self, new: &NewUser) -> Result<User> {
        let mut s = self.lock();
        let taken =
            |f: fn(&User) -> &str, v: &str| s.users.values().any(|u| f(u).eq_ignore_ascii_case(v));
        if taken(|u| u.username.as_str(), new.username.as_str()) {
            return Err(Error::UsernameTaken);
        }
        if taken(|u| u.email.as_str(), new.email.as_str()) {
            return Err(Error::EmailTaken);
        }
        let user = User {
            id: UserId(s.next()),
            username: new.username.clone(),
            email: new.email.clone(),
            password_hash: new.password_hash.clone(),
            created_at: new.created_at,
            last_seen: None,
            disabled: false,
        };
        s.users.insert(user.id, user.clone());
        Ok(user)
    }

    async fn find(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.lock().users.get(&id).cloned())
    }

    async fn find_by_login(&self, login: &str) -> Result<Option<User>> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|u| {
                u.username.as_str().eq_ignore_ascii_case(login)
                    || u.email.as_str().eq_ignore_ascii_case(login)
            })
            .cloned())
    }

    async fn list_except(&self, except: UserId) -> Result<Vec<User>> {
        let mut users: Vec<User> = self
            .lock()
            .users
            .values()
            .filter(|u| u.id != except)
            .cloned()
            .collect();
        users.sort_by_key(|u| (u.username.as_str().to_ascii_lowercase(), u.id));
        Ok(users)
    }

    async fn list_all(&self) -> Result<Vec<User>> {
        let mut users: Vec<User> = self.lock().users.values().cloned().collect();
        users.sort_by_key(|u| (u.username.as_str().to_ascii_lowercase(), u.id));
        Ok(users)
    }

    async fn touch_last_seen(&self, id: UserId, at: DateTime<Utc>) -> Result<()> {
        if let Some(u) = self.lock().users.get_mut(&id) {
            u.last_seen = Some(at);
        }
        Ok(())
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()> {
        let mut s = self.lock();
        let user = s.users.get_mut(&id).ok_or(Error::UserNotFound)?;
        password_hash.clone_into(&mut user.password_hash);
        Ok(())
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()> {
        let mut s = self.lock();
        s.users.get_mut(&id).ok_or(Error::UserNotFound)?.disabled = disabled;
        Ok(())
    }
}

#[async_trait]
impl StorageProbe for MemoryStore {
    /// Memory always answers.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl ChatRepo for MemoryStore {
    async fn get_or_create_direct(
        &self,
        a: UserId,
        b: UserId,
        at: DateTime<Utc>,
    ) -> Result<(Chat, bool)> {
        if a == b {
            // As the check constraint chats_direct_shape refuses it.
            return Err(Error::unexpected(anyhow::anyhow!(
                "a direct chat of user {a} with themself"
            )));
        }
        let mut s = self.lock();
        if !s.users.contains_key(&a) || !s.users.contains_key(&b) {
            return Err(Error::UserNotFound);
        }
        if let Some(id) = s.directs.get(&pair(a, b)) {
            return Ok((s.chats[id].clone(), false));
        }
        let chat = Chat {
            id: ChatId(s.next()),
            kind: ChatKind::Direct,
            name: None,
            visibility: Visibility::Private,
            created_at: at,
        };
        s.chats.insert(chat.id, chat.clone());
        s.directs.insert(pair(a, b), chat.id);
        let members = [a, b]
            .into_iter()
            .map(|user| Membership {
                user,
                role: Role::Member,
                last_read: None,
            })
            .collect();
        s.members.insert(chat.id, members);
        Ok((chat, true))
    }

    async fn create_group(&self, group: &NewGroup) -> Result<Chat> {
        let mut s = self.lock();
        let everyone: Vec<(UserId, Role)> = std::iter::once((group.owner, Role::Owner))
            .chain(group.members.iter().map(|m| (*m, Role::Member)))
            .collect();
        // Refused in the order the SQL adapters insert them, and for the same reasons.
        let mut seen = HashSet::new();
        for (user, _) in &everyone {
            if !s.users.contains_key(user) {
                return Err(Error::UserNotFound);
            }
            if !seen.insert(*user) {
                // As the key chat_members_pkey refuses it.
                return Err(Error::unexpected(anyhow::anyhow!(
                    "user {user} is in the new group twice"
                )));
            }
        }
        let chat = Chat {
            id: ChatId(s.next()),
            kind: ChatKind::Group,
            name: Some(group.name.clone()),
            visibility: group.visibility,
            created_at: group.created_at,
        };
        let members = everyone
            .into_iter()
            .map(|(user, role)| Membership {
                user,
                role,
                last_read: None,
            })
            .collect();
        s.chats.insert(chat.id, chat.clone());
        s.members.insert(chat.id, members);
        Ok(chat)
    }

    async fn access(&self, chat: ChatId, user: UserId) -> Result<ChatAccess> {
        let s = self.lock();
        let Some(c) = s.chats.get(&chat) else {
            return Ok(ChatAccess::NoSuchChat);
        };
        let role = s
            .members
            .get(&chat)
            .and_then(|ms| ms.iter().find(|m| m.user == user))
            .map(|m| m.role);
        Ok(match role {
            Some(role) => ChatAccess::Member(c.clone(), role),
            None => ChatAccess::Outsider(c.clone()),
        })
    }

    async fn members(&self, chat: ChatId) -> Result<Vec<Member>> {
        let s = self.lock();
        Ok(s.members
            .get(&chat)
            .into_iter()
            .flatten()
            .map(|m| {
                let u = &s.users[&m.user];
                Member {
                    user_id: u.id,
                    username: u.username.clone(),
                    last_seen: u.last_seen,
                    role: m.role,
                    last_read: m.last_read,
                }
            })
            .collect())
    }

    async fn list_for_user(&self, user: UserId) -> Result<Vec<ChatSummary>> {
        let s = self.lock();
        let mut out = Vec::new();
        for (chat_id, members) in &s.members {
            let Some(mine) = members.iter().find(|m| m.user == user) else {
                continue;
            };
            let chat = s.chats[chat_id].clone();
            let peer = (chat.kind == ChatKind::Direct)
                .then(|| members.iter().find(|m| m.user != user))
                .flatten()
                .map(|m| {
                    let u = &s.users[&m.user];
                    Peer {
                        id: u.id,
                        username: u.username.clone(),
                        last_seen: u.last_seen,
                    }
                });
            let mut in_chat = s.messages.iter().filter(|(_, m)| m.chat_id == *chat_id);
            let unread = in_chat
                .clone()
                .filter(|(id, m)| m.sender_id != user && Some(**id) > mine.last_read)
                .count();
            // As the SQL stores list it: without what it answers or its reactions.
            let last_message = in_chat.next_back().map(|(id, m)| Message {
                reply_to: None,
                reactions: Vec::new(),
                ..s.message(*id, m)
            });
            out.push(ChatSummary {
                chat,
                peer,
                unread: i64::try_from(unread).unwrap_or(i64::MAX),
                last_message,
            });
        }
        out.sort_by_key(|c| std::cmp::Reverse((c.last_message.as_ref().map(|m| m.id), c.chat.id)));
        Ok(out)
    }

    async fn chat_ids_of(&self, user: UserId) -> Result<Vec<ChatId>> {
        let s = self.lock();
        Ok(s.members
            .iter()
            .filter(|(_, ms)| ms.iter().any(|m| m.user == user))
            .map(|(id, _)| *id)
            .collect())
    }

    async fn list_public(&self, viewer: UserId) -> Result<Vec<RoomSummary>> {
        let s = self.lock();
        let mut rooms: Vec<RoomSummary> = s
            .chats
            .values()
            .filter(|c| c.kind == ChatKind::Group && c.visibility == Visibility::Public)
            .filter_map(|c| {
                Some(RoomSummary {
                    chat_id: c.id,
                    name: c.name.clone()?,
                    members_count: s.member_ids(c.id).count() as i64,
                    is_member: s.is_member(c.id, viewer),
                })
            })
            .collect();
        rooms.sort_by_key(|r| (r.name.as_str().to_lowercase(), r.chat_id));
        Ok(rooms)
    }

    async fn add_member(
        &self,
        chat: ChatId,
        user: UserId,
        role: Role,
        _at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut s = self.lock();
        if !s.chats.contains_key(&chat) {
            return Err(Error::ChatNotFound);
        }
        if !s.users.contains_key(&user) {
            return Err(Error::UserNotFound);
        }
        if s.is_member(chat, user) {
            return Ok(false);
        }
        s.members.entry(chat).or_default().push(Membership {
            user,
            role,
            last_read: None,
        });
        Ok(true)
    }

    async fn remove_member(&self, chat: ChatId, user: UserId) -> Result<bool> {
        let mut s = self.lock();
        let Some(ms) = s.members.get_mut(&chat) else {
            return Ok(false);
        };
        let before = ms.len();
        ms.retain(|m| m.user != user);
        Ok(ms.len() < before)
    }

    async fn set_role(&self, chat: ChatId, user: UserId, role: Role) -> Result<()> {
        let mut s = self.lock();
        let m = s
            .members
            .get_mut(&chat)
            .and_then(|ms| ms.iter_mut().find(|m| m.user == user))
            .ok_or(Error::NotAMember)?;
        m.role = role;
        Ok(())
    }

    async fn mark_read(&self, chat: ChatId, user: UserId, message: MessageId) -> Result<bool> {
        let mut s = self.lock();
        let m = s
            .members
            .get_mut(&chat)
            .and_then(|ms| ms.iter_mut().find(|m| m.user == user))
            .ok_or(Error::NotAMember)?;
        if m.last_read.is_some_and(|r| r >= message) {
            return Ok(false);
        }
        m.last_read = Some(message);
        Ok(true)
    }
}

#[async_trait]
impl MessageRepo for MemoryStore {
    /// Numbers and de-duplicates under the one lock, so concurrent inserts cannot interleave.
    async fn insert(&self, new: &NewMessage) -> Result<Inserted> {
        let mut s = self.lock();
        if let Some(client_id) = &new.client_id {
            let key = (new.chat_id, new.sender_id, client_id.clone());
            if let Some(id) = s.client_ids.get(&key) {
                return Ok(Inserted::Existing(s.message(*id, &s.messages[id])));
            }
        }
        if !s.chats.contains_key(&new.chat_id) {
            return Err(Error::ChatNotFound);
        }
        if !s.users.contains_key(&new.sender_id) {
            return Err(Error::UserNotFound);
        }
        let id = MessageId(s.next());
        let seq = Seq(s.last_seq.get(&new.chat_id).map_or(0, |s| s.0) + 1);
        s.last_seq.insert(new.chat_id, seq);
        if let Some(client_id) = &new.client_id {
            s.client_ids
                .insert((new.chat_id, new.sender_id, client_id.clone()), id);
        }
        s.messages.insert(
            id,
            StoredMessage {
                chat_id: new.chat_id,
                seq,
                sender_id: new.sender_id,
                body: new.body.clone(),
                created_at: new.created_at,
                client_id: new.client_id.clone(),
                edited_at: None,
                deleted: false,
                reply_to: new.reply_to,
                reactions: Vec::new(),
                change_seq: None,
            },
        );
        Ok(Inserted::New { id, seq })
    }

    async fn list(&self, chat: ChatId, page: HistoryPage) -> Result<Vec<Message>> {
        let s = self.lock();
        let limit = page.limit as usize;
        let lower = page
            .after
            .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let upper = page
            .before
            .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        // Within a chat ids grow with seqs, so id order is seq order here.
        let in_range = s.messages.range((lower, upper)).filter(|(_, m)| {
            m.chat_id == chat
                && page.after_seq.is_none_or(|after| m.seq > after)
                && page.before_seq.is_none_or(|before| m.seq < before)
        });
        let mut out: Vec<Message> = if page.oldest_first() {
            in_range
                .take(limit)
                .map(|(id, m)| s.message(*id, m))
                .collect()
        } else {
            let mut newest: Vec<Message> = in_range
                .rev()
                .take(limit)
                .map(|(id, m)| s.message(*id, m))
                .collect();
            newest.reverse();
            newest
        };
        out.sort_by_key(|m| m.seq);
        Ok(out)
    }

    async fn get(&self, message: MessageId) -> Result<Option<Message>> {
        let s = self.lock();
        Ok(s.messages.get(&message).map(|m| s.message(message, m)))
    }

    async fn changed_after(
        &self,
        chat: ChatId,
        after: ChangeSeq,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let s = self.lock();
        let mut changed: Vec<(&MessageId, &StoredMessage)> = s
            .messages
            .iter()
            .filter(|(_, m)| m.chat_id == chat && m.change_seq.is_some_and(|c| c > after))
            .collect();
        changed.sort_by_key(|(_, m)| m.change_seq);
        Ok(changed
            .into_iter()
            .take(limit as usize)
            .map(|(id, m)| s.message(*id, m))
            .collect())
    }

    async fn exists_in(&self, chat: ChatId, message: MessageId) -> Result<bool> {
        Ok(self
            .lock()
            .messages
            .get(&message)
            .is_some_and(|m| m.chat_id == chat))
    }

    async fn edit(
        &self,
        message: MessageId,
        body: &MessageBody,
        at: DateTime<Utc>,
    ) -> Result<Message> {
        let mut s = self.lock();
        match s.messages.get(&message) {
            None => return Err(Error::MessageNotFound),
            Some(m) if m.deleted => return Err(Error::MessageDeleted),
            Some(_) => {}
        }
        s.next_change(message)?;
        let m = s.messages.get_mut(&message).ok_or(Error::MessageNotFound)?;
        m.body = body.clone();
        m.edited_at = Some(at);
        Ok(s.message(message, &s.messages[&message]))
    }

    async fn delete(&self, message: MessageId, _at: DateTime<Utc>) -> Result<Option<Message>> {
        let mut s = self.lock();
        match s.messages.get(&message) {
            None => return Err(Error::MessageNotFound),
            Some(m) if m.deleted => return Ok(None),
            Some(_) => {}
        }
        s.next_change(message)?;
        let m = s.messages.get_mut(&message).ok_or(Error::MessageNotFound)?;
        m.body = MessageBody::erased();
        m.deleted = true;
        m.reactions.clear();
        Ok(Some(s.message(message, &s.messages[&message])))
    }

    async fn react(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &Emoji,
        on: bool,
        max_emojis: usize,
    ) -> Result<Option<Message>> {
        let mut s = self.lock();
        let m = s.messages.get_mut(&message).ok_or(Error::MessageNotFound)?;
        if m.deleted {
            return Err(Error::MessageDeleted);
        }
        let given = m
            .reactions
            .iter()
            .position(|(e, u)| e == emoji && *u == user);
        match (on, given) {
            (true, Some(_)) | (false, None) => return Ok(None),
            (true, None) => {
                let emojis: HashSet<&Emoji> = m.reactions.iter().map(|(e, _)| e).collect();
                if !emojis.contains(emoji) && emojis.len() >= max_emojis {
                    return Err(Error::TooManyReactions);
                }
                m.reactions.push((emoji.clone(), user));
            }
            (false, Some(i)) => {
                m.reactions.remove(i);
            }
        }
        s.next_change(message)?;
        Ok(Some(s.message(message, &s.messages[&message])))
    }
}

impl State {
    fn session(&self, id: &SessionId) -> Option<Session> {
        let stored = self.sessions.get(id)?;
        let user = self.users.get(&stored.user_id)?;
        Some(Session {
            id: id.clone(),
            user_id: stored.user_id,
            username: user.username.clone(),
            created_at: stored.created_at,
            last_used_at: stored.last_used_at,
            expires_at: stored.expires_at,
            client: stored.client.clone(),
            refresh: stored.refresh.clone(),
        })
    }
}

#[async_trait]
impl SessionRepo for MemoryStore {
    async fn create_session(&self, session: &NewSession) -> Result<()> {
        let mut s = self.lock();
        if !s.users.contains_key(&session.user_id) {
            return Err(Error::UserNotFound);
        }
        s.sessions
            .retain(|_, st| st.expires_at >= session.created_at);
        s.sessions.insert(
            session.id.clone(),
            StoredSession {
                user_id: session.user_id,
                created_at: session.created_at,
                last_used_at: session.created_at,
                expires_at: session.expires_at,
                client: session.client.clone(),
                refresh: RefreshState {
                    current: session.refresh_digest.clone(),
                    previous: None,
                    rotated_at: None,
                },
            },
        );
        Ok(())
    }

    async fn find_session(&self, id: &SessionId) -> Result<Option<Session>> {
        Ok(self.lock().session(id))
    }

    async fn touch_session(
        &self,
        id: &SessionId,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut s = self.lock();
        match s.sessions.get_mut(id) {
            Some(st) if st.expires_at > at => {
                st.last_used_at = at;
                st.expires_at = expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn rotate_refresh(
        &self,
        id: &SessionId,
        current: &str,
        next: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut s = self.lock();
        match s.sessions.get_mut(id) {
            Some(st) if st.refresh.current == current => {
                st.refresh = RefreshState {
                    current: next.to_owned(),
                    previous: Some(current.to_owned()),
                    rotated_at: Some(at),
                };
                st.last_used_at = at;
                st.expires_at = expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list_sessions(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>> {
        let s = self.lock();
        let mut out: Vec<Session> = s
            .sessions
            .iter()
            .filter(|(_, st)| st.user_id == user && st.expires_at > now)
            .filter_map(|(id, _)| s.session(id))
            .collect();
        out.sort_by(|a, b| {
            b.last_used_at
                .cmp(&a.last_used_at)
                .then_with(|| a.id.0.cmp(&b.id.0))
        });
        Ok(out)
    }

    async fn end_session(&self, user: UserId, id: &SessionId) -> Result<bool> {
        let mut s = self.lock();
        if s.sessions.get(id).is_some_and(|st| st.user_id == user) {
            s.sessions.remove(id);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    async fn end_sessions_except(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<Vec<SessionId>> {
        let mut s = self.lock();
        let ended: Vec<SessionId> = s
            .sessions
            .iter()
            .filter(|(id, st)| st.user_id == user && Some(*id) != keep.as_ref())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ended {
            s.sessions.remove(id);
        }
        Ok(ended)
    }
}
