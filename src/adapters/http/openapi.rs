//! The API description served at `/openapi.json`: the operations salvo-oapi reads from the
//! endpoints, and the rules of the domain values written as JSON Schema, so that a request
//! valid by the description is one the server accepts and one invalid by it is refused.
//!
//! The rules are built here from the domain's own constants; what JSON Schema cannot say (a
//! confirmation equal to its password, an email's length in bytes) is said in words.
//!
//! Patterns are anchored and use only `\uXXXX` escapes, which ECMA, Python and Rust regexes
//! read alike. Characters above U+FFFF that show nothing (a few tags and format characters)
//! count as visible here, since a regex without the `u` flag cannot name them.

use salvo::Router;
use salvo::oapi::schema::AnyOf;
use salvo::oapi::security::{Http, HttpAuthScheme, SecurityScheme};
use salvo::oapi::{BasicType, Object, OpenApi, PathItemType, RefOr, Schema};

use crate::domain::{ChatName, ClientId, Email, Emoji, HistoryPage, Password, Username};
use crate::services::Limits;

/// The name of the bearer token scheme in the description.
pub const BEARER: &str = "bearer";

/// Control characters no text takes: every one but tab and newline.
const CONTROL: &str = r"\u0000-\u0008\u000B-\u001F\u007F-\u009F";
/// What `str::trim` removes, control characters aside: tab, newline and Unicode white space.
const SPACE: &str = r"\u0009\u000A\u0020\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// Characters that show nothing on their own, white space aside (see `domain::values`).
const INVISIBLE: &str = r"\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0";
/// Bidirectional overrides and isolates, which names refuse.
const BIDI: &str = r"\u202A-\u202E\u2066-\u2069";

fn string() -> Object {
    Object::with_type(BasicType::String)
}

/// `username` at registration: 3 to 32 of ASCII letters, digits, `_ . -`, surrounding white
/// space ignored.
pub fn username() -> Object {
    string()
        .pattern(format!(
            "^[{SPACE}]*[A-Za-z0-9_.-]{{{},{}}}[{SPACE}]*$",
            Username::MIN,
            Username::MAX
        ))
        .description(format!(
            "{} to {} ASCII letters, digits, `_`, `.` or `-`; unique regardless of case. \
             Surrounding white space is ignored.",
            Username::MIN,
            Username::MAX
        ))
}

/// `email`: one `@`, a local part without spaces or specials, a dotted domain. Written for
/// ASCII addresses with a local part of at most 63 characters and short labels (which keeps
/// within the limits in bytes); the server takes some longer and non-ASCII ones too.
pub fn email() -> Object {
    let atom = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
    let label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,20}[A-Za-z0-9])?";
    string()
        .pattern(format!(
            r"^[{SPACE}]*{atom}(?:\.?{atom}){{0,31}}@{label}(?:\.{label}){{1,3}}[{SPACE}]*$"
        ))
        .description(format!(
            "An address, at most {} bytes (its local part at most 64); unique regardless of \
             case. Surrounding white space is ignored.",
            Email::MAX
        ))
}

/// A new password: 8 to 128 characters, tab and newline the only control characters.
pub fn new_password() -> Object {
    string()
        .pattern(format!("^[^{CONTROL}]*$"))
        .min_length(Password::MIN)
        .max_length(Password::MAX)
        .description(format!(
            "{} to {} characters, no control character but tab and newline.",
            Password::MIN,
            Password::MAX
        ))
}

/// `password_confirm`: the password again.
pub fn password_confirm() -> Object {
    string().description("The same as `password`, else 422 on `password_confirm`.")
}

/// What a person types to log in: a username or an email, no control character but tab and
/// newline; any such name is taken (and answered 401 when it names nobody).
pub fn login_name() -> Object {
    string()
        .pattern(format!("^[^{CONTROL}]*$"))
        .description("A username or an email; no control character but tab and newline.")
}

/// Text of 1 to `max` characters once surrounding white space is trimmed, whose first character
/// is visible, of the characters `inner` allows; white space around it is ignored.
fn trimmed_text(max: usize, inner: &str) -> String {
    let first = format!("[^{CONTROL}{SPACE}{INVISIBLE}{inner}]");
    let last = format!("[^{CONTROL}{SPACE}{inner}]");
    let rest = match max {
        0 | 1 => String::new(),
        _ => format!("(?:[^{CONTROL}{inner}]{{0,{}}}{last})?", max - 2),
    };
    format!("^[{SPACE}]*{first}{rest}[{SPACE}]*$")
}

/// A message's text: at most `max` characters after surrounding white space is trimmed, tab and
/// newline the only control characters. The description asks its first character to be
/// visible; the server asks only for one visible character somewhere.
pub fn message(max: usize) -> Object {
    string().pattern(trimmed_text(max, "")).description(format!(
        "1 to {max} characters after surrounding white space is trimmed, at least one of \
             them visible; no control character but tab and newline."
    ))
}

/// The message text of the default configuration, for the schema of the bodies; the served
/// description has the configured limit (see [`document`]).
pub fn default_message() -> Object {
    message(Limits::default().max_message_chars)
}

/// A group's name: one line of 1 to 64 characters with something visible, no bidirectional
/// override or isolate, surrounding white space trimmed (as for [`message`], the description
/// asks the first character to be visible).
pub fn group_name() -> Object {
    string()
        .pattern(trimmed_text(
            ChatName::MAX,
            &format!("\\u0009\\u000A{BIDI}"),
        ))
        .description(format!(
            "1 to {} characters after surrounding white space is trimmed, at least one of them \
             visible; no control character and no bidirectional override or isolate.",
            ChatName::MAX
        ))
}

/// `visibility`: `private` or `public`.
pub fn visibility() -> RefOr<Schema> {
    AnyOf::new()
        .item(string().enum_values(["private", "public"]))
        .item(Object::with_type(BasicType::Null))
        .description(
            "`private` (the default, also when null) or `public`: anyone may join a public group.",
        )
        .into()
}

/// `client_id`: 1 to 64 characters, none of them a control character.
pub fn client_id() -> RefOr<Schema> {
    let id = string()
        .pattern("^[^\\u0000-\\u001F\\u007F-\\u009F]*$")
        .min_length(1)
        .max_length(ClientId::MAX);
    AnyOf::new()
        .item(id)
        .item(Object::with_type(BasicType::Null))
        .description(format!(
            "The client's own name for the message, 1 to {} characters, no control character: \
             sent again with the same `client_id`, the message is stored once.",
            ClientId::MAX
        ))
        .into()
}

/// A reaction in a path: 1 to 32 bytes, no white space or control character, something
/// visible.
pub fn emoji() -> Object {
    string()
        .pattern(format!(
            "^[^{CONTROL}{SPACE}]*[^{CONTROL}{SPACE}{INVISIBLE}][^{CONTROL}{SPACE}]*$"
        ))
        .min_length(1)
        .max_length(Emoji::MAX_BYTES)
        .description(format!(
            "An emoji, 1 to {} bytes in UTF-8, without white space or control characters, \
             something visible; compared exactly as sent.",
            Emoji::MAX_BYTES
        ))
}

/// The page size of a history read.
pub fn page_limit() -> Object {
    Object::with_type(BasicType::Integer)
        .minimum(1)
        .maximum(HistoryPage::MAX_LIMIT)
        .default_value(HistoryPage::DEFAULT_LIMIT.into())
        .description(format!(
            "How many messages, 1 to {} (default {}).",
            HistoryPage::MAX_LIMIT,
            HistoryPage::DEFAULT_LIMIT
        ))
}

/// A change number to read after: not negative.
pub fn change_seq() -> Object {
    Object::with_type(BasicType::Integer)
        .format(salvo::oapi::SchemaFormat::KnownFormat(
            salvo::oapi::KnownFormat::Int64,
        ))
        .minimum(0)
}

/// A member to remove: a user id, or `me` to leave.
pub fn member() -> RefOr<Schema> {
    AnyOf::new()
        .item(
            Object::with_type(BasicType::Integer).format(salvo::oapi::SchemaFormat::KnownFormat(
                salvo::oapi::KnownFormat::Int64,
            )),
        )
        .item(string().enum_values(["me"]))
        .description("A user id, or `me` to leave the group.")
        .into()
}

/// The description of the routes of `api`, with the message length of `limits`.
pub fn document(api: &Router, limits: &Limits) -> OpenApi {
    let mut doc = OpenApi::new("Parley", env!("CARGO_PKG_VERSION")).merge_router(api);
    doc.components.security_schemes.insert(
        BEARER.to_owned(),
        RefOr::Type(SecurityScheme::Http(
            Http::new(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(
                    "The `access_token` of `POST /auth/login`. A browser may send the \
                     `access_token` cookie instead.",
                ),
        )),
    );
    // Components are named by their Rust path, `parley.adapters.http.dto.PostMessageBody`.
    for (name, schema) in doc.components.schemas.iter_mut() {
        let body = name.rsplit('.').next().unwrap_or_default();
        if !matches!(body, "PostMessageBody" | "EditMessageBody") {
            continue;
        }
        if let RefOr::Type(Schema::Object(object)) = schema {
            object.properties.insert(
                "message".to_owned(),
                message(limits.max_message_chars).into(),
            );
        }
    }
    // A login may come as a form, as OAuth2 password clients send it; salvo-oapi names one
    // content type per body.
    let login = doc
        .paths
        .get_mut("/auth/login")
        .and_then(|p| p.operations.get_mut(&PathItemType::Post))
        .and_then(|op| op.request_body.as_mut());
    if let Some(body) = login
        && let Some(json) = body.contents.get("application/json").cloned()
    {
        body.contents
            .insert("application/x-www-form-urlencoded".to_owned(), json);
    }
    doc
}
