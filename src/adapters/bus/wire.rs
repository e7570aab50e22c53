//! Events as JSON, for buses that cross processes. The shape is private to Parley instances
//! of the same version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    ChangeSeq, ChatId, ChatKind, ClientId, Emoji, Event, EventKind, Message, MessageBody,
    MessageId, Quote, Reaction, Seq, SessionId, UserId, Username,
};

/// A message with everything a socket shows of it.
#[derive(Serialize, Deserialize)]
struct WireMessage {
    id: MessageId,
    chat_id: ChatId,
    seq: Seq,
    sender_id: UserId,
    sender: String,
    body: String,
    at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edited_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<WireQuote>,
    /// Each emoji with who gave it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    reactions: Vec<(String, Vec<UserId>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    change_seq: Option<ChangeSeq>,
}

#[derive(Serialize, Deserialize)]
struct WireQuote {
    id: MessageId,
    sender_id: UserId,
    sender: String,
    text: String,
    deleted: bool,
}

impl From<&Message> for WireMessage {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id,
            chat_id: m.chat_id,
            seq: m.seq,
            sender_id: m.sender_id,
            sender: m.sender_username.as_str().to_owned(),
            body: m.body.as_str().to_owned(),
            at: m.created_at,
            client_id: m.client_id.as_ref().map(|c| c.as_str().to_owned()),
            edited_at: m.edited_at,
            deleted: m.deleted,
            reply_to: m.reply_to.as_ref().map(|q| WireQuote {
                id: q.id,
                sender_id: q.sender_id,
                sender: q.sender_username.as_str().to_owned(),
                text: q.text.clone(),
                deleted: q.deleted,
            }),
            reactions: m
                .reactions
                .iter()
                .map(|r| (r.emoji.as_str().to_owned(), r.user_ids.clone()))
                .collect(),
            change_seq: m.change_seq,
        }
    }
}

impl From<WireMessage> for Message {
    fn from(w: WireMessage) -> Self {
        Self {
            id: w.id,
            chat_id: w.chat_id,
            seq: w.seq,
            sender_id: w.sender_id,
            sender_username: Username::from_trusted(w.sender),
            body: MessageBody::from_trusted(w.body),
            created_at: w.at,
            client_id: w.client_id.map(ClientId::from_trusted),
            edited_at: w.edited_at,
            deleted: w.deleted,
            reply_to: w.reply_to.map(|q| Quote {
                id: q.id,
                sender_id: q.sender_id,
                sender_username: Username::from_trusted(q.sender),
                text: q.text,
                deleted: q.deleted,
            }),
            reactions: w
                .reactions
                .into_iter()
                .map(|(emoji, user_ids)| Reaction {
                    emoji: Emoji::from_trusted(emoji),
                    user_ids,
                })
                .collect(),
            change_seq: w.change_seq,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Wire {
    Message(Box<WireMessage>),
    Edited(Box<WireMessage>),
    Deleted(Box<WireMessage>),
    Reaction {
        message: Box<WireMessage>,
        user_id: UserId,
        username: String,
        emoji: String,
        on: bool,
    },
    Typing {
        chat_id: ChatId,
        user_id: UserId,
        username: String,
        stop: bool,
    },
    Status {
        chat_ids: Vec<ChatId>,
        user_id: UserId,
        username: String,
        online: bool,
        last_seen: Option<DateTime<Utc>>,
    },
    Created {
        chat_id: ChatId,
        kind: ChatKind,
        members: Vec<UserId>,
    },
    Joined {
        chat_id: ChatId,
        user_id: UserId,
        username: String,
    },
    Left {
        chat_id: ChatId,
        user_id: UserId,
        username: String,
    },
    Read {
        chat_id: ChatId,
        user_id: UserId,
        username: String,
        message_id: MessageId,
    },
    Revoked {
        session: String,
    },
    Disabled {
        user_id: UserId,
    },
}

/// The JSON of an event.
pub fn encode(event: &Event) -> String {
    let name = |u: &Username| u.as_str().to_owned();
    let wire = match event {
        Event::MessagePosted(m) => Wire::Message(Box::new(m.into())),
        Event::MessageEdited(m) => Wire::Edited(Box::new(m.into())),
        Event::MessageDeleted(m) => Wire::Deleted(Box::new(m.into())),
        Event::Reaction {
            message,
            user_id,
            username,
            emoji,
            on,
        } => Wire::Reaction {
            message: Box::new(message.into()),
            user_id: *user_id,
            username: name(username),
            emoji: emoji.as_str().to_owned(),
            on: *on,
        },
        Event::Typing {
            chat_id,
            user_id,
            username,
            kind,
        } => Wire::Typing {
            chat_id: *chat_id,
            user_id: *user_id,
            username: name(username),
            stop: *kind == EventKind::StopTyping,
        },
        Event::UserStatus {
            chat_ids,
            user_id,
            username,
            is_online,
            last_seen,
        } => Wire::Status {
            chat_ids: chat_ids.clone(),
            user_id: *user_id,
            username: name(username),
            online: *is_online,
            last_seen: *last_seen,
        },
        Event::ChatCreated {
            chat_id,
            kind,
            members,
        } => Wire::Created {
            chat_id: *chat_id,
            kind: *kind,
            members: members.clone(),
        },
        Event::MemberJoined {
            chat_id,
            user_id,
            username,
        } => Wire::Joined {
            chat_id: *chat_id,
            user_id: *user_id,
            username: name(username),
        },
        Event::MemberLeft {
            chat_id,
            user_id,
            username,
        } => Wire::Left {
            chat_id: *chat_id,
            user_id: *user_id,
            username: name(username),
        },
        Event::Read {
            chat_id,
            user_id,
            username,
            message_id,
        } => Wire::Read {
            chat_id: *chat_id,
            user_id: *user_id,
            username: name(username),
            message_id: *message_id,
        },
        Event::SessionRevoked(s) => Wire::Revoked {
            session: s.0.clone(),
        },
        Event::UserDisabled(user_id) => Wire::Disabled { user_id: *user_id },
    };
    serde_json::to_string(&wire).expect("events serialize")
}

/// The event in `json`.
///
/// # Errors
/// When `json` is not an event of this version.
pub fn decode(json: &str) -> serde_json::Result<Event> {
    serde_json::from_str(json).map(from_wire)
}

/// The events in `json`: one event, or a JSON array of them (see [`encode_array`]).
///
/// # Errors
/// When `json` is not an event, or an array of events, of this version.
pub fn decode_all(json: &str) -> serde_json::Result<Vec<Event>> {
    if json.starts_with('[') {
        let all: Vec<Wire> = serde_json::from_str(json)?;
        Ok(all.into_iter().map(from_wire).collect())
    } else {
        decode(json).map(|event| vec![event])
    }
}

/// Events already encoded one by one (by [`encode`]) as one JSON array.
pub fn encode_array<'a>(encoded: impl IntoIterator<Item = &'a str>) -> String {
    let mut array = String::from("[");
    for (i, json) in encoded.into_iter().enumerate() {
        if i > 0 {
            array.push(',');
        }
        array.push_str(json);
    }
    array.push(']');
    array
}

fn from_wire(wire: Wire) -> Event {
    let name = Username::from_trusted;
    match wire {
        Wire::Message(m) => Event::MessagePosted((*m).into()),
        Wire::Edited(m) => Event::MessageEdited((*m).into()),
        Wire::Deleted(m) => Event::MessageDeleted((*m).into()),
        Wire::Reaction {
            message,
            user_id,
            username,
            emoji,
            on,
        } => Event::Reaction {
            message: (*message).into(),
            user_id,
            username: name(username),
            emoji: Emoji::from_trusted(emoji),
            on,
        },
        Wire::Typing {
            chat_id,
            user_id,
            username,
            stop,
        } => Event::Typing {
            chat_id,
            user_id,
            username: name(username),
            kind: if stop {
                EventKind::StopTyping
            } else {
                EventKind::Typing
            },
        },
        Wire::Status {
            chat_ids,
            user_id,
            username,
            online,
            last_seen,
        } => Event::UserStatus {
            chat_ids,
            user_id,
            username: name(username),
            is_online: online,
            last_seen,
        },
        Wire::Created {
            chat_id,
            kind,
            members,
        } => Event::ChatCreated {
            chat_id,
            kind,
            members,
        },
        Wire::Joined {
            chat_id,
            user_id,
            username,
        } => Event::MemberJoined {
            chat_id,
            user_id,
            username: name(username),
        },
        Wire::Left {
            chat_id,
            user_id,
            username,
        } => Event::MemberLeft {
            chat_id,
            user_id,
            username: name(username),
        },
        Wire::Read {
            chat_id,
            user_id,
            username,
            message_id,
        } => Event::Read {
            chat_id,
            user_id,
            username: name(username),
            message_id,
        },
        Wire::Revoked { session } => Event::SessionRevoked(SessionId(session)),
        Wire::Disabled { user_id } => Event::UserDisabled(user_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::NewMessage;

    /// A message of chat 2 by ann, as just posted.
    fn message(id: i64, seq: i64, text: &str, client_id: Option<&str>) -> Message {
        let new = NewMessage {
            chat_id: ChatId(2),
            sender_id: UserId(1),
            body: MessageBody::parse(text, 100).unwrap(),
            created_at: Utc::now(),
            client_id: client_id.map(|c| ClientId::parse(c).unwrap()),
            reply_to: None,
        };
        Message::posted(
            new,
            MessageId(id),
            Seq(seq),
            Username::parse("ann").unwrap(),
            None,
        )
    }

    #[test]
    fn every_event_survives_the_round_trip() {
        let ann = || Username::parse("ann").unwrap();
        let first = message(5, 3, "héllo \"there\"", None);
        let reply = Message {
            reply_to: Some(Quote::of(&first)),
            ..message(6, 4, "again", Some("c-1 \"ü\""))
        };
        let edited = Message {
            edited_at: Some(Utc::now()),
            change_seq: Some(ChangeSeq(7)),
            reactions: vec![Reaction {
                emoji: Emoji::parse("👍").unwrap(),
                user_ids: vec![UserId(1), UserId(4)],
            }],
            ..message(5, 3, "fixed", None)
        };
        let tombstone = Message {
            body: MessageBody::erased(),
            deleted: true,
            change_seq: Some(ChangeSeq(8)),
            ..message(6, 4, "x", None)
        };
        let events = vec![
            Event::MessagePosted(first.clone()),
            Event::MessagePosted(reply),
            Event::MessageEdited(edited.clone()),
            Event::MessageDeleted(tombstone),
            Event::Reaction {
                message: edited,
                user_id: UserId(4),
                username: ann(),
                emoji: Emoji::parse("👍").unwrap(),
                on: true,
            },
            Event::Typing {
                chat_id: ChatId(2),
                user_id: UserId(1),
                username: ann(),
                kind: EventKind::StopTyping,
            },
            Event::UserStatus {
                chat_ids: vec![ChatId(2), ChatId(3)],
                user_id: UserId(1),
                username: ann(),
                is_online: false,
                last_seen: Some(Utc::now()),
            },
            Event::ChatCreated {
                chat_id: ChatId(2),
                kind: ChatKind::Group,
                members: vec![UserId(1), UserId(4)],
            },
            Event::MemberJoined {
                chat_id: ChatId(2),
                user_id: UserId(1),
                username: ann(),
            },
            Event::MemberLeft {
                chat_id: ChatId(2),
                user_id: UserId(1),
                username: ann(),
            },
            Event::Read {
                chat_id: ChatId(2),
                user_id: UserId(1),
                username: ann(),
                message_id: MessageId(9),
            },
            Event::SessionRevoked(SessionId("abc".into())),
            Event::UserDisabled(UserId(4)),
        ];
        for event in &events {
            assert_eq!(&decode(&encode(event)).unwrap(), event);
            assert_eq!(
                &decode_all(&encode(event)).unwrap(),
                std::slice::from_ref(event)
            );
        }
        let encoded: Vec<String> = events.iter().map(encode).collect();
        let array = encode_array(encoded.iter().map(String::as_str));
        assert_eq!(decode_all(&array).unwrap(), events);
        assert!(decode("{\"t\":\"unknown\"}").is_err());
        assert!(decode_all("[{\"t\":\"unknown\"}]").is_err());
    }

    #[test]
    fn a_message_carries_its_seq_and_client_id() {
        let message = message(6, 41, "hi", Some("c1"));

        let json: serde_json::Value =
            serde_json::from_str(&encode(&Event::MessagePosted(message.clone()))).unwrap();
        let without_client_id = Message {
            client_id: None,
            ..message
        };
        let plain: serde_json::Value =
            serde_json::from_str(&encode(&Event::MessagePosted(without_client_id))).unwrap();

        assert_eq!(json["seq"], 41);
        assert_eq!(json["client_id"], "c1");
        assert_eq!(plain["seq"], 41);
        assert!(plain.get("client_id").is_none());
    }
}
