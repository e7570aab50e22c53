//! The shapes of the API: request bodies (with their one step into domain values) and
//! response bodies. Field names are a contract with existing clients; fields are only added.

use chrono::{DateTime, SecondsFormat, Utc};
use salvo::oapi::{ToParameters, ToSchema};
use serde::{Deserialize, Serialize};

use super::openapi;
use crate::domain::{
    ChatName, ChatSummary, Email, Member, Message, Password, Quote, Reaction, RoomSummary, Session,
    SessionId, Tokens, User, Username, ValidationError, Visibility,
};

/// `POST /auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterBody {
    #[salvo(schema(schema_with = openapi::username))]
    pub username: String,
    #[salvo(schema(schema_with = openapi::email))]
    pub email: String,
    #[salvo(schema(schema_with = openapi::new_password))]
    pub password: String,
    #[salvo(schema(schema_with = openapi::password_confirm))]
    pub password_confirm: String,
}

impl RegisterBody {
    pub fn try_into_domain(self) -> Result<(Username, Email, Password), ValidationError> {
        Ok((
            Username::parse(&self.username)?,
            Email::parse(&self.email)?,
            Password::parse_new(&self.password, &self.password_confirm)?,
        ))
    }
}

/// `POST /auth/login`, as a form or JSON. `username` may be an email.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    #[salvo(schema(schema_with = openapi::login_name))]
    pub username: String,
    /// Any text: a wrong password is 401 like an unknown name.
    pub password: String,
}

/// A user's own account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub username: String,
    pub email: String,
}

/// Whether a request is signed in, and as whom.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    pub authenticated: bool,
    /// The account, when signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserOut>,
    /// When signed in: when the access token stops working, RFC 3339 (renew before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// `true` when not signed in but carrying a refresh token, so that `POST /auth/refresh`
    /// may sign the request in again; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_refresh: Option<bool>,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        Self {
            id: u.id.0,
            username: u.username.to_string(),
            email: u.email.to_string(),
        }
    }
}

/// A successful login or refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// When the token stops working, RFC 3339.
    pub expires_at: String,
    /// The token that renews the session at `POST /auth/refresh`, once. Absent from a refresh
    /// that raced another one of the same session: the token that one got stays current.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the session ends if it is not used again before, RFC 3339.
    pub session_expires_at: String,
}

impl From<Tokens> for TokenOut {
    fn from(t: Tokens) -> Self {
        Self {
            access_token: t.access.token,
            token_type: "bearer",
            expires_at: rfc3339(t.access.expires_at),
            refresh_token: t.refresh,
            session_expires_at: rfc3339(t.session_expires_at),
        }
    }
}

/// `POST /auth/refresh`: the refresh token, unless it comes in the `refresh_token` cookie.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RefreshBody {
    pub refresh_token: Option<String>,
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionItemOut {
    pub id: String,
    /// RFC 3339, like the other times.
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub address: String,
    /// Whether this is the session of the request that asks.
    pub current: bool,
}

impl SessionItemOut {
    pub fn new(s: &Session, current: &SessionId) -> Self {
        Self {
            id: s.id.0.clone(),
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            expires_at: rfc3339(s.expires_at),
            user_agent: s.client.user_agent.clone(),
            address: s.client.address.to_string(),
            current: &s.id == current,
        }
    }
}

/// What `POST /auth/logout-all` ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndedOut {
    /// How many other sessions were ended.
    pub ended: usize,
}

/// `POST /auth/password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordBody {
    /// As typed; a wrong one is 403 `wrong_password`.
    pub current_password: String,
    #[salvo(schema(schema_with = openapi::new_password))]
    pub new_password: String,
}

impl PasswordBody {
    /// The current password as typed, and the new one checked as registration checks one.
    pub fn try_into_domain(self) -> Result<(Password, Password), ValidationError> {
        let new = Password::parse_new(&self.new_password, &self.new_password).map_err(|e| {
            ValidationError::new(
                "new_password",
                e.message.replace("Password", "New password"),
            )
        })?;
        Ok((Password::for_login(&self.current_password), new))
    }
}

/// Another user, as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserStatusOut {
    pub id: i64,
    pub username: String,
    pub is_online: bool,
    /// RFC 3339, or null if never seen.
    pub last_seen: Option<String>,
}

/// `POST /chats/{chat_id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PostMessageBody {
    #[salvo(schema(schema_with = openapi::default_message))]
    pub message: String,
    /// The client's own name for the message, 1 to 64 printable characters: sent again
    /// with the same `client_id`, the message is stored once.
    #[serde(default)]
    #[salvo(schema(schema_with = openapi::client_id))]
    pub client_id: Option<String>,
    /// The id of the message of this chat that this one answers.
    #[serde(default)]
    pub reply_to: Option<i64>,
}

/// `PATCH /chats/{chat_id}/messages/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EditMessageBody {
    /// The new text, under the same rules as a new message's.
    #[salvo(schema(schema_with = openapi::default_message))]
    pub message: String,
}

/// One message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub id: i64,
    pub chat_id: i64,
    /// The message's position in its chat: 1, 2, 3, ... without a gap.
    pub seq: i64,
    pub user_id: i64,
    pub username: String,
    pub message: String,
    /// `HH:MM`, UTC.
    pub time: String,
    /// RFC 3339.
    pub created_at: String,
    /// The sender's `client_id` for the message; absent when it was sent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// When the sender last changed the text, RFC 3339; absent if never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// True for a deleted message, whose `message` is then empty.
    pub deleted: bool,
    /// The message this one answers; absent when it answers none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<QuoteOut>,
    /// One entry per emoji, in the order each was first given.
    pub reactions: Vec<ReactionOut>,
    /// The chat's change number of the latest edit, delete or reaction of this message; absent
    /// if it was never changed. See `changed_after` on the history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_seq: Option<i64>,
}

/// The message a reply answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteOut {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    /// The start of its text (at most 100 characters, `…` when cut); empty when deleted.
    pub message: String,
    pub deleted: bool,
}

impl From<&Quote> for QuoteOut {
    fn from(q: &Quote) -> Self {
        Self {
            id: q.id.0,
            user_id: q.sender_id.0,
            username: q.sender_username.to_string(),
            message: q.text.clone(),
            deleted: q.deleted,
        }
    }
}

/// One emoji given to a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionOut {
    pub emoji: String,
    pub count: usize,
    /// Who gave it, in the order they did.
    pub user_ids: Vec<i64>,
}

impl From<&Reaction> for ReactionOut {
    fn from(r: &Reaction) -> Self {
        Self {
            emoji: r.emoji.to_string(),
            count: r.user_ids.len(),
            user_ids: r.user_ids.iter().map(|u| u.0).collect(),
        }
    }
}

impl From<&Message> for MessageOut {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.0,
            chat_id: m.chat_id.0,
            seq: m.seq.0,
            user_id: m.sender_id.0,
            username: m.sender_username.to_string(),
            message: m.body.to_string(),
            time: m.created_at.format("%H:%M").to_string(),
            created_at: rfc3339(m.created_at),
            client_id: m.client_id.as_ref().map(|c| c.as_str().to_owned()),
            edited_at: m.edited_at.map(rfc3339),
            deleted: m.deleted,
            reply_to: m.reply_to.as_ref().map(QuoteOut::from),
            reactions: m.reactions.iter().map(ReactionOut::from).collect(),
            change_seq: m.change_seq.map(|c| c.0),
        }
    }
}

/// A chat in the caller's list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatListItem {
    pub chat_id: i64,
    /// `direct` or `group`.
    pub kind: &'static str,
    /// The display title: the other member of a direct chat, the name of a group.
    pub username: String,
    /// The group's name; null for direct chats.
    pub name: Option<String>,
    pub visibility: &'static str,
    /// Messages from others after the caller's read marker.
    pub unread: i64,
    pub last_message: Option<MessageOut>,
    /// For a direct chat, the other member.
    pub peer: Option<UserStatusOut>,
}

impl ChatListItem {
    pub fn new(s: &ChatSummary, is_online: impl Fn(crate::domain::UserId) -> bool) -> Self {
        let peer = s.peer.as_ref().map(|p| UserStatusOut {
            id: p.id.0,
            username: p.username.to_string(),
            is_online: is_online(p.id),
            last_seen: p.last_seen.map(rfc3339),
        });
        let name = s.chat.name.as_ref().map(ToString::to_string);
        Self {
            chat_id: s.chat.id.0,
            kind: s.chat.kind.as_str(),
            username: name
                .clone()
                .or_else(|| peer.as_ref().map(|p| p.username.clone()))
                .unwrap_or_default(),
            name,
            visibility: s.chat.visibility.as_str(),
            unread: s.unread,
            last_message: s.last_message.as_ref().map(MessageOut::from),
            peer,
        }
    }
}

/// `{chat_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatIdOut {
    pub chat_id: i64,
}

/// `POST /chats`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewGroupBody {
    #[salvo(schema(schema_with = openapi::group_name))]
    pub name: String,
    /// The other first members (the caller is the owner): at most 999 different users.
    #[serde(default)]
    pub member_ids: Vec<i64>,
    /// `private` (default) or `public`.
    #[serde(default)]
    #[salvo(schema(schema_with = openapi::visibility))]
    pub visibility: Option<String>,
}

impl NewGroupBody {
    pub fn try_into_domain(
        self,
    ) -> Result<(ChatName, Visibility, Vec<crate::domain::UserId>), ValidationError> {
        let visibility = match self.visibility.as_deref() {
            None => Visibility::Private,
            Some(v) => Visibility::parse(v).ok_or_else(|| {
                ValidationError::new(
                    "visibility",
                    "Visibility must be \"private\" or \"public\".",
                )
            })?,
        };
        Ok((
            ChatName::parse(&self.name)?,
            visibility,
            self.member_ids
                .into_iter()
                .map(crate::domain::UserId)
                .collect(),
        ))
    }
}

/// A member of a chat.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub id: i64,
    pub username: String,
    pub is_online: bool,
    pub last_seen: Option<String>,
    /// `owner` or `member`.
    pub role: &'static str,
    /// The newest message this member has read.
    pub last_read_message_id: Option<i64>,
}

impl MemberOut {
    pub fn new(m: &Member, is_online: bool) -> Self {
        Self {
            id: m.user_id.0,
            username: m.username.to_string(),
            is_online,
            last_seen: m.last_seen.map(rfc3339),
            role: m.role.as_str(),
            last_read_message_id: m.last_read.map(|id| id.0),
        }
    }
}

/// `GET /chats/{chat_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatDetailsOut {
    pub chat_id: i64,
    pub kind: &'static str,
    pub name: Option<String>,
    pub visibility: &'static str,
    pub members: Vec<MemberOut>,
}

/// `POST /chats/{chat_id}/members`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddMemberBody {
    pub user_id: i64,
}

/// `POST /chats/{chat_id}/read`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadBody {
    pub message_id: i64,
}

/// A public room.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomOut {
    pub chat_id: i64,
    pub name: String,
    pub members_count: i64,
    pub is_member: bool,
}

impl From<&RoomSummary> for RoomOut {
    fn from(r: &RoomSummary) -> Self {
        Self {
            chat_id: r.chat_id.0,
            name: r.name.to_string(),
            members_count: r.members_count,
            is_member: r.is_member,
        }
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The path of a message's reaction.
#[derive(Debug, Deserialize, ToParameters)]
#[salvo(parameters(default_parameter_in = Path))]
pub struct ReactionPath {
    pub chat_id: i64,
    /// The message.
    pub id: i64,
    /// The emoji, URL-encoded.
    #[salvo(parameter(schema_with = openapi::emoji))]
    pub emoji: String,
}

/// The path of a member of a group.
#[derive(Debug, Deserialize, ToParameters)]
#[salvo(parameters(default_parameter_in = Path))]
pub struct MemberPath {
    pub chat_id: i64,
    #[salvo(parameter(schema_with = openapi::member))]
    pub user_id: String,
}

/// The bounds of a history read; every bound given applies.
#[derive(Debug, Deserialize, ToParameters)]
#[salvo(parameters(default_parameter_in = Query))]
pub struct HistoryQuery {
    /// Messages before this id.
    pub before: Option<i64>,
    /// Messages after this id.
    pub after: Option<i64>,
    /// Messages before this position in the chat.
    pub before_seq: Option<i64>,
    /// Messages after this position in the chat.
    pub after_seq: Option<i64>,
    /// Instead, the messages changed after this change, in the order of their latest change;
    /// with no other bound than `limit` (else 422).
    #[salvo(parameter(schema_with = openapi::change_seq))]
    pub changed_after: Option<i64>,
    #[salvo(parameter(schema_with = openapi::page_limit))]
    pub limit: Option<u32>,
}
