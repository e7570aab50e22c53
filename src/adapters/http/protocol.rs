//! The WebSocket protocol as types: every frame a client may send ([`ClientFrame`]) and every
//! event the server sends ([`ServerEvent`]), in one place, so that the wire format is read
//! here and nowhere else.
//!
//! Two versions are spoken. [`Protocol::Original`] is the protocol of the first API of
//! `/ws/{chat_id}`: messages, `typing`, `stop_typing`, `user_status` and `error`, nothing else,
//! because its clients draw any event they do not know as a chat bubble. [`Protocol::V2`]
//! (`/ws`, or `/ws/{chat_id}?v=2`) carries every event, and every event added later.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dto::{MessageOut, ReactionOut, rfc3339};
use crate::domain::{ChatId, Event, EventKind, Message, MessageId, UserId, Username};

/// Which protocol a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The original five kinds of event only.
    Original,
    /// Everything.
    V2,
}

/// An event as it goes out on a socket.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ServerEvent {
    /// A new message: the original protocol's only event without an `action`.
    Message(MessageOut),
    /// Everything else, told apart by `action`.
    Action(Action),
}

/// The events that carry an `action`.
#[derive(Debug, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// `/ws` greets with who the socket is, what it follows and the limits it enforces.
    Ready {
        user_id: UserId,
        username: String,
        chat_ids: Vec<ChatId>,
        limits: Limits,
    },
    Typing(About),
    StopTyping(About),
    UserStatus {
        #[serde(flatten)]
        about: About,
        is_online: bool,
        last_seen: Option<String>,
    },
    Read {
        #[serde(flatten)]
        about: About,
        message_id: MessageId,
    },
    MemberJoined(About),
    MemberLeft(About),
    ChatCreated {
        chat_id: ChatId,
        kind: &'static str,
    },
    /// A frame of this socket was refused; nothing it asked for happened.
    Error {
        detail: String,
        code: &'static str,
        /// The `client_id` of the refused message, when it had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    /// A message this socket sent is stored (or was already, under the same `client_id`).
    Ack {
        chat_id: ChatId,
        client_id: String,
        id: MessageId,
        seq: i64,
    },
    /// A resume reached back further than the server replays: page the history instead.
    Resync {
        chat_id: ChatId,
    },
    /// A message's text changed.
    MessageEdited {
        #[serde(flatten)]
        about: AboutMessage,
        message: String,
        edited_at: Option<String>,
    },
    /// A message was deleted; its text is gone.
    MessageDeleted {
        #[serde(flatten)]
        about: AboutMessage,
    },
    /// A member gave (`on`) or took back a reaction; `reactions` are all the message now has.
    Reaction {
        #[serde(flatten)]
        about: AboutMessage,
        emoji: String,
        user_id: UserId,
        username: String,
        on: bool,
        reactions: Vec<ReactionOut>,
    },
}

/// The fields of an event about a change to one message.
#[derive(Debug, Serialize)]
pub struct AboutMessage {
    pub chat_id: ChatId,
    pub id: MessageId,
    pub seq: i64,
    /// The chat's number of this change: a client keeps the highest it has seen, and ignores
    /// an event about a message whose `change_seq` it already holds higher.
    pub change_seq: Option<i64>,
}

impl AboutMessage {
    fn new(m: &Message) -> Self {
        Self {
            chat_id: m.chat_id,
            id: m.id,
            seq: m.seq.0,
            change_seq: m.change_seq.map(|c| c.0),
        }
    }
}

/// The fields of an event about one user in one chat.
#[derive(Debug, Serialize)]
pub struct About {
    pub chat_id: ChatId,
    pub user_id: UserId,
    pub username: String,
}

impl About {
    fn new(chat_id: ChatId, user_id: UserId, username: &Username) -> Self {
        Self {
            chat_id,
            user_id,
            username: username.to_string(),
        }
    }
}

/// What this server enforces, for clients to check input against.
#[derive(Debug, Serialize)]
pub struct Limits {
    pub max_message_chars: usize,
    pub max_group_name_chars: usize,
    pub max_history_page: u32,
}

impl ServerEvent {
    /// Whether a socket speaking `protocol` may receive this event.
    pub fn speaks(&self, protocol: Protocol) -> bool {
        protocol == Protocol::V2
            || matches!(
                self,
                Self::Message(_)
                    | Self::Action(
                        Action::Typing(_)
                            | Action::StopTyping(_)
                            | Action::UserStatus { .. }
                            | Action::Error { .. }
                    )
            )
    }

    /// An `error` event.
    pub fn error(detail: impl Into<String>, code: &'static str) -> Self {
        metrics::counter!("parley_refusals_total", "code" => code).increment(1);
        Self::Action(Action::Error {
            detail: detail.into(),
            code,
            client_id: None,
        })
    }

    /// The chat this event is about, if it is about one.
    pub fn chat_id(&self) -> Option<ChatId> {
        match self {
            Self::Message(m) => Some(ChatId(m.chat_id)),
            Self::Action(a) => match a {
                Action::Typing(about)
                | Action::StopTyping(about)
                | Action::MemberJoined(about)
                | Action::MemberLeft(about)
                | Action::UserStatus { about, .. }
                | Action::Read { about, .. } => Some(about.chat_id),
                Action::ChatCreated { chat_id, .. }
                | Action::Ack { chat_id, .. }
                | Action::Resync { chat_id } => Some(*chat_id),
                Action::MessageEdited { about, .. }
                | Action::MessageDeleted { about }
                | Action::Reaction { about, .. } => Some(about.chat_id),
                Action::Ready { .. } | Action::Error { .. } => None,
            },
        }
    }

    /// The `seq` of a message event.
    pub fn seq(&self) -> Option<i64> {
        match self {
            Self::Message(m) => Some(m.seq),
            Self::Action(_) => None,
        }
    }

    /// The event as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            tracing::error!(error = %e, "event did not serialize");
            String::from("{}")
        })
    }

    /// The events a domain event becomes on the wire, each with the chat it goes to (`None`
    /// for an event that is not about a chat's content, such as a session ending).
    pub fn from_domain(event: &Event) -> Vec<(ChatId, Self)> {
        let action = |chat_id: ChatId, a: Action| vec![(chat_id, Self::Action(a))];
        match event {
            Event::MessagePosted(m) => vec![(m.chat_id, Self::Message(MessageOut::from(m)))],
            Event::MessageEdited(m) => action(
                m.chat_id,
                Action::MessageEdited {
                    about: AboutMessage::new(m),
                    message: m.body.to_string(),
                    edited_at: m.edited_at.map(rfc3339),
                },
            ),
            Event::MessageDeleted(m) => action(
                m.chat_id,
                Action::MessageDeleted {
                    about: AboutMessage::new(m),
                },
            ),
            Event::Reaction {
                message,
                user_id,
                username,
                emoji,
                on,
            } => action(
                message.chat_id,
                Action::Reaction {
                    about: AboutMessage::new(message),
                    emoji: emoji.to_string(),
                    user_id: *user_id,
                    username: username.to_string(),
                    on: *on,
                    reactions: message.reactions.iter().map(ReactionOut::from).collect(),
                },
            ),
            Event::Typing {
                chat_id,
                user_id,
                username,
                kind,
            } => {
                let about = About::new(*chat_id, *user_id, username);
                action(
                    *chat_id,
                    match kind {
                        EventKind::Typing => Action::Typing(about),
                        EventKind::StopTyping => Action::StopTyping(about),
                    },
                )
            }
            Event::UserStatus {
                chat_ids,
                user_id,
                username,
                is_online,
                last_seen,
            } => chat_ids
                .iter()
                .map(|chat_id| {
                    let a = Action::UserStatus {
                        about: About::new(*chat_id, *user_id, username),
                        is_online: *is_online,
                        last_seen: last_seen.map(rfc3339),
                    };
                    (*chat_id, Self::Action(a))
                })
                .collect(),
            Event::ChatCreated { chat_id, kind, .. } => action(
                *chat_id,
                Action::ChatCreated {
                    chat_id: *chat_id,
                    kind: kind.as_str(),
                },
            ),
            Event::MemberJoined {
                chat_id,
                user_id,
                username,
            } => action(
                *chat_id,
                Action::MemberJoined(About::new(*chat_id, *user_id, username)),
            ),
            Event::MemberLeft {
                chat_id,
                user_id,
                username,
            } => action(
                *chat_id,
                Action::MemberLeft(About::new(*chat_id, *user_id, username)),
            ),
            Event::Read {
                chat_id,
                user_id,
                username,
                message_id,
            } => action(
                *chat_id,
                Action::Read {
                    about: About::new(*chat_id, *user_id, username),
                    message_id: *message_id,
                },
            ),
            Event::SessionRevoked(_) | Event::UserDisabled(_) => Vec::new(),
        }
    }
}

/// A frame from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientFrame {
    /// `{"message": "...", "client_id": "...", "reply_to": N}`: post a message, once per
    /// `client_id`, answering message N.
    Send {
        chat_id: Option<i64>,
        message: String,
        client_id: Option<String>,
        reply_to: Option<i64>,
    },
    /// `{"action": "edit", "id": N, "message": "..."}`: change the text of one's message.
    Edit {
        chat_id: Option<i64>,
        id: i64,
        message: String,
    },
    /// `{"action": "delete", "id": N}`: delete a message.
    Delete { chat_id: Option<i64>, id: i64 },
    /// `{"action": "react", "id": N, "emoji": "...", "on": true}`: give or take back a reaction.
    React {
        chat_id: Option<i64>,
        id: i64,
        emoji: String,
        on: bool,
    },
    /// `{"action": "typing"}` or `{"action": "stop_typing"}`.
    Typing {
        chat_id: Option<i64>,
        kind: EventKind,
    },
    /// `{"action": "read", "message_id": N}`: move the read marker.
    Read {
        chat_id: Option<i64>,
        message_id: i64,
    },
    /// `{"action": "resume", "after_seq": N}`: replay what came after `seq` N, then go live.
    Resume {
        chat_id: Option<i64>,
        after_seq: i64,
    },
}

/// Why a frame was refused before anything was done with it.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameError {
    pub detail: &'static str,
    pub code: &'static str,
}

impl From<FrameError> for ServerEvent {
    fn from(e: FrameError) -> Self {
        Self::error(e.detail, e.code)
    }
}

#[derive(Deserialize)]
struct SendFrame {
    #[serde(default)]
    chat_id: Option<i64>,
    message: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    reply_to: Option<i64>,
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum ActionFrame {
    Edit {
        #[serde(default)]
        chat_id: Option<i64>,
        id: Option<i64>,
        message: Option<String>,
    },
    Delete {
        #[serde(default)]
        chat_id: Option<i64>,
        id: Option<i64>,
    },
    React {
        #[serde(default)]
        chat_id: Option<i64>,
        id: Option<i64>,
        emoji: Option<String>,
        #[serde(default = "yes")]
        on: bool,
    },
    Typing {
        #[serde(default)]
        chat_id: Option<i64>,
    },
    StopTyping {
        #[serde(default)]
        chat_id: Option<i64>,
    },
    Read {
        #[serde(default)]
        chat_id: Option<i64>,
        message_id: Option<i64>,
    },
    Resume {
        #[serde(default)]
        chat_id: Option<i64>,
        after_seq: Option<i64>,
    },
}

fn yes() -> bool {
    true
}

const MALFORMED: FrameError = FrameError {
    detail: "Frames must be JSON like {\"message\": \"...\"} or {\"action\": \"typing\"}.",
    code: "malformed_frame",
};
const UNKNOWN: FrameError = FrameError {
    detail: "Unknown frame: send {\"message\"} or an action of typing, stop_typing, read, \
             resume, edit, delete or react.",
    code: "unknown_action",
};

impl ClientFrame {
    /// Reads a text frame.
    ///
    /// # Errors
    /// `malformed_frame` for anything but a JSON object of the right shape, `unknown_action`
    /// for an action this server does not know, `invalid_field` for a known one missing what
    /// it needs.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let value: Value = serde_json::from_str(text).map_err(|_| MALFORMED)?;
        let Some(action) = value.get("action") else {
            let f = SendFrame::deserialize(value).map_err(|_| MALFORMED)?;
            return Ok(Self::Send {
                chat_id: f.chat_id,
                message: f.message,
                client_id: f.client_id,
                reply_to: f.reply_to,
            });
        };
        if value.get("message").is_some() && action.as_str() != Some("edit") {
            return Err(UNKNOWN);
        }
        let known = [
            "typing",
            "stop_typing",
            "read",
            "resume",
            "edit",
            "delete",
            "react",
        ];
        if !action.as_str().is_some_and(|a| known.contains(&a)) {
            return Err(UNKNOWN);
        }
        Ok(
            match ActionFrame::deserialize(value).map_err(|_| MALFORMED)? {
                ActionFrame::Typing { chat_id } => Self::Typing {
                    chat_id,
                    kind: EventKind::Typing,
                },
                ActionFrame::StopTyping { chat_id } => Self::Typing {
                    chat_id,
                    kind: EventKind::StopTyping,
                },
                ActionFrame::Read {
                    chat_id,
                    message_id: Some(message_id),
                } => Self::Read {
                    chat_id,
                    message_id,
                },
                ActionFrame::Read {
                    message_id: None, ..
                } => {
                    return Err(FrameError {
                        detail: "A read receipt needs message_id.",
                        code: "invalid_field",
                    });
                }
                ActionFrame::Resume {
                    chat_id,
                    after_seq: Some(after_seq),
                } if after_seq >= 0 => Self::Resume { chat_id, after_seq },
                ActionFrame::Resume { .. } => {
                    return Err(FrameError {
                        detail: "A resume needs after_seq, the last seq you hold (0 for none).",
                        code: "invalid_field",
                    });
                }
                ActionFrame::Edit {
                    chat_id,
                    id: Some(id),
                    message: Some(message),
                } => Self::Edit {
                    chat_id,
                    id,
                    message,
                },
                ActionFrame::Edit { .. } => {
                    return Err(FrameError {
                        detail: "An edit needs the message's id and its new message.",
                        code: "invalid_field",
                    });
                }
                ActionFrame::Delete {
                    chat_id,
                    id: Some(id),
                } => Self::Delete { chat_id, id },
                ActionFrame::Delete { .. } => {
                    return Err(FrameError {
                        detail: "A delete needs the message's id.",
                        code: "invalid_field",
                    });
                }
                ActionFrame::React {
                    chat_id,
                    id: Some(id),
                    emoji: Some(emoji),
                    on,
                } => Self::React {
                    chat_id,
                    id,
                    emoji,
                    on,
                },
                ActionFrame::React { .. } => {
                    return Err(FrameError {
                        detail: "A reaction needs the message's id and an emoji.",
                        code: "invalid_field",
                    });
                }
            },
        )
    }

    /// The `client_id` of a message, if it has one.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::Send { client_id, .. } => client_id.as_deref(),
            _ => None,
        }
    }

    /// The chat the frame names, if it names one.
    pub fn chat_id(&self) -> Option<i64> {
        match self {
            Self::Send { chat_id, .. }
            | Self::Typing { chat_id, .. }
            | Self::Read { chat_id, .. }
            | Self::Resume { chat_id, .. }
            | Self::Edit { chat_id, .. }
            | Self::Delete { chat_id, .. }
            | Self::React { chat_id, .. } => *chat_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_into_their_kind() {
        assert_eq!(
            ClientFrame::parse(r#"{"message": "hi"}"#),
            Ok(ClientFrame::Send {
                chat_id: None,
                message: "hi".into(),
                client_id: None,
                reply_to: None,
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"chat_id": 3, "action": "stop_typing"}"#),
            Ok(ClientFrame::Typing {
                chat_id: Some(3),
                kind: EventKind::StopTyping
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"chat_id": 2, "message": "hi", "client_id": "c1"}"#),
            Ok(ClientFrame::Send {
                chat_id: Some(2),
                message: "hi".into(),
                client_id: Some("c1".into()),
                reply_to: None,
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"chat_id": 2, "message": "yes", "reply_to": 7}"#),
            Ok(ClientFrame::Send {
                chat_id: Some(2),
                message: "yes".into(),
                client_id: None,
                reply_to: Some(7),
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action": "edit", "chat_id": 2, "id": 7, "message": "fixed"}"#),
            Ok(ClientFrame::Edit {
                chat_id: Some(2),
                id: 7,
                message: "fixed".into(),
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action": "delete", "id": 7}"#),
            Ok(ClientFrame::Delete {
                chat_id: None,
                id: 7
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action": "react", "id": 7, "emoji": "👍", "on": false}"#),
            Ok(ClientFrame::React {
                chat_id: None,
                id: 7,
                emoji: "👍".into(),
                on: false,
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action": "react", "id": 7, "emoji": "👍"}"#),
            Ok(ClientFrame::React {
                chat_id: None,
                id: 7,
                emoji: "👍".into(),
                on: true,
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action": "resume", "chat_id": 2, "after_seq": 0}"#),
            Ok(ClientFrame::Resume {
                chat_id: Some(2),
                after_seq: 0
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action": "read", "message_id": 9}"#),
            Ok(ClientFrame::Read {
                chat_id: None,
                message_id: 9
            })
        );
    }

    #[test]
    fn bad_frames_are_refused_by_kind() {
        for (text, code) in [
            ("not json", "malformed_frame"),
            ("[1]", "malformed_frame"),
            (r#"{"message": 5}"#, "malformed_frame"),
            (r#"{"action": "dance"}"#, "unknown_action"),
            (r#"{"action": 5}"#, "unknown_action"),
            (r#"{"action": "typing", "message": "x"}"#, "unknown_action"),
            (r#"{"action": "read"}"#, "invalid_field"),
            (r#"{"action": "resume"}"#, "invalid_field"),
            (r#"{"action": "resume", "after_seq": -1}"#, "invalid_field"),
            (r#"{"action": "edit", "id": 3}"#, "invalid_field"),
            (r#"{"action": "edit", "message": "x"}"#, "invalid_field"),
            (r#"{"action": "delete"}"#, "invalid_field"),
            (r#"{"action": "react", "id": 3}"#, "invalid_field"),
            (
                r#"{"action": "react", "id": 3, "emoji": 5}"#,
                "malformed_frame",
            ),
            (
                r#"{"action": "delete", "id": 3, "message": "x"}"#,
                "unknown_action",
            ),
            (
                r#"{"action": "read", "message_id": "x"}"#,
                "malformed_frame",
            ),
        ] {
            assert_eq!(ClientFrame::parse(text).unwrap_err().code, code, "{text}");
        }
    }

    #[test]
    fn the_original_protocol_hears_only_its_five_kinds() {
        let about = || About {
            chat_id: ChatId(1),
            user_id: UserId(2),
            username: "ann".into(),
        };
        let original = [
            ServerEvent::Action(Action::Typing(about())),
            ServerEvent::Action(Action::StopTyping(about())),
            ServerEvent::error("no", "nope"),
        ];
        for e in &original {
            assert!(e.speaks(Protocol::Original), "{e:?}");
        }
        let newer = [
            ServerEvent::Action(Action::Read {
                about: about(),
                message_id: MessageId(3),
            }),
            ServerEvent::Action(Action::MemberJoined(about())),
            ServerEvent::Action(Action::MemberLeft(about())),
            ServerEvent::Action(Action::ChatCreated {
                chat_id: ChatId(1),
                kind: "group",
            }),
            ServerEvent::Action(Action::Ack {
                chat_id: ChatId(1),
                client_id: "c".into(),
                id: MessageId(4),
                seq: 2,
            }),
            ServerEvent::Action(Action::Resync { chat_id: ChatId(1) }),
            ServerEvent::Action(Action::MessageDeleted {
                about: AboutMessage {
                    chat_id: ChatId(1),
                    id: MessageId(4),
                    seq: 2,
                    change_seq: Some(1),
                },
            }),
            ServerEvent::Action(Action::MessageEdited {
                about: AboutMessage {
                    chat_id: ChatId(1),
                    id: MessageId(4),
                    seq: 2,
                    change_seq: Some(2),
                },
                message: "fixed".into(),
                edited_at: None,
            }),
            ServerEvent::Action(Action::Reaction {
                about: AboutMessage {
                    chat_id: ChatId(1),
                    id: MessageId(4),
                    seq: 2,
                    change_seq: Some(3),
                },
                emoji: "👍".into(),
                user_id: UserId(2),
                username: "ann".into(),
                on: true,
                reactions: Vec::new(),
            }),
        ];
        for e in &newer {
            assert!(!e.speaks(Protocol::Original), "{e:?}");
            assert!(e.speaks(Protocol::V2), "{e:?}");
        }
    }

    #[test]
    fn events_keep_their_wire_shape() {
        let e = ServerEvent::Action(Action::UserStatus {
            about: About {
                chat_id: ChatId(1),
                user_id: UserId(2),
                username: "ann".into(),
            },
            is_online: false,
            last_seen: Some("2026-01-01T00:00:00Z".into()),
        });
        assert_eq!(
            serde_json::from_str::<Value>(&e.to_json()).unwrap(),
            serde_json::json!({"action": "user_status", "chat_id": 1, "user_id": 2,
                "username": "ann", "is_online": false, "last_seen": "2026-01-01T00:00:00Z"})
        );
    }
}
