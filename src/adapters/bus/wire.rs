//! Events as JSON, for buses that cross processes. The shape is private to Parley instances
//! of the same version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    ChatId, ChatKind, ClientId, Event, EventKind, Message, MessageBody, MessageId, Seq, SessionId,
    UserId, Username,
};

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Wire {
    Message {
        id: MessageId,
        chat_id: ChatId,
        seq: Seq,
        sender_id: UserId,
        sender: String,
        body: String,
        at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
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
        Event::MessagePosted(m) => Wire::Message {
            id: m.id,
            chat_id: m.chat_id,
            seq: m.seq,
            sender_id: m.sender_id,
            sender: name(&m.sender_username),
            body: m.body.as_str().to_owned(),
            at: m.created_at,
            client_id: m.client_id.as_ref().map(|c| c.as_str().to_owned()),
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
        Wire::Message {
            id,
            chat_id,
            seq,
            sender_id,
            sender,
            body,
            at,
            client_id,
        } => Event::MessagePosted(Message {
            id,
            chat_id,
            seq,
            sender_id,
            sender_username: name(sender),
            body: MessageBody::from_trusted(body),
            created_at: at,
            client_id: client_id.map(ClientId::from_trusted),
        }),
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

    #[test]
    fn every_event_survives_the_round_trip() {
        let ann = || Username::parse("ann").unwrap();
        let events = vec![
            Event::MessagePosted(Message {
                id: MessageId(5),
                chat_id: ChatId(2),
                seq: Seq(3),
                sender_id: UserId(1),
                sender_username: ann(),
                body: MessageBody::parse("héllo \"there\"", 100).unwrap(),
                created_at: Utc::now(),
                client_id: None,
            }),
            Event::MessagePosted(Message {
                id: MessageId(6),
                chat_id: ChatId(2),
                seq: Seq(4),
                sender_id: UserId(1),
                sender_username: ann(),
                body: MessageBody::parse("again", 100).unwrap(),
                created_at: Utc::now(),
                client_id: Some(ClientId::parse("c-1 \"ü\"").unwrap()),
            }),
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
        let message = Message {
            id: MessageId(6),
            chat_id: ChatId(2),
            seq: Seq(41),
            sender_id: UserId(1),
            sender_username: Username::parse("ann").unwrap(),
            body: MessageBody::parse("hi", 100).unwrap(),
            created_at: Utc::now(),
            client_id: Some(ClientId::parse("c1").unwrap()),
        };

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
