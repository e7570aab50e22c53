//! Values that validate themselves: once you hold a [`Username`], an [`Email`], a [`Password`],
//! a [`MessageBody`], a [`ChatName`] or a [`ClientId`], it obeys Parley's rules, so nothing
//! downstream checks again.

use std::fmt;

use super::error::ValidationError;

/// A username: 3 to 32 ASCII letters, digits, `_`, `.` or `-`. Unique regardless of case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    /// Parses a username as typed, surrounding whitespace ignored.
    ///
    /// # Errors
    /// [`ValidationError`] on field `username` when the length or a character is wrong.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        let len = s.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return Err(ValidationError::new(
                "username",
                format!(
                    "Username must be {} to {} characters long.",
                    Self::MIN,
                    Self::MAX
                ),
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(ValidationError::new(
                "username",
                "Username may contain only letters, digits, '_', '.' and '-'.",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Wraps a username read back from storage, where it was validated on the way in.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address of valid syntax, at most 254 characters. Unique regardless of case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX: usize = 254;

    /// Parses an email address: one `@`, a non-empty local part, a dotted domain, no spaces.
    ///
    /// # Errors
    /// [`ValidationError`] on field `email`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        let invalid = || ValidationError::new("email", "Email is not a valid address.");
        if s.is_empty()
            || s.len() > Self::MAX
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        let (local, domain) = s.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && !local.contains(['(', ')', '<', '>', ',', ';', ':', '\\', '"', '[', ']']);
        if !(local_ok && domain_ok) {
            return Err(invalid());
        }
        Ok(Self(s.to_owned()))
    }

    /// Wraps an address read back from storage.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password in clear, 8 to 128 characters, on its way to the hasher. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    /// Parses a new password and its confirmation.
    ///
    /// # Errors
    /// [`ValidationError`] on `password` for a bad length, on `password_confirm` when the two
    /// differ.
    pub fn parse_new(password: &str, confirm: &str) -> Result<Self, ValidationError> {
        let len = password.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return Err(ValidationError::new(
                "password",
                format!(
                    "Password must be {} to {} characters long.",
                    Self::MIN,
                    Self::MAX
                ),
            ));
        }
        if password != confirm {
            return Err(ValidationError::new(
                "password_confirm",
                "Passwords do not match.",
            ));
        }
        Ok(Self(password.to_owned()))
    }

    /// Wraps a password typed at login. Its length is not checked beyond a sanity cap, so a
    /// wrong guess costs the same as a right one.
    pub fn for_login(password: &str) -> Self {
        Self(password.chars().take(Self::MAX * 4).collect())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The text of a message: trimmed, 1 to `max` characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    /// Parses a message body against the configured limit.
    ///
    /// # Errors
    /// [`ValidationError`] on field `message` when it is blank or longer than `max` characters.
    pub fn parse(raw: &str, max: usize) -> Result<Self, ValidationError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ValidationError::new(
                "message",
                "Message must not be empty.",
            ));
        }
        if s.chars().count() > max {
            return Err(ValidationError::new(
                "message",
                format!("Message must be at most {max} characters long."),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Wraps a body read back from storage.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a group chat: trimmed, 1 to 64 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatName(String);

impl ChatName {
    pub const MAX: usize = 64;

    /// # Errors
    /// [`ValidationError`] on field `name`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        let len = s.chars().count();
        if len == 0 || len > Self::MAX {
            return Err(ValidationError::new(
                "name",
                format!("Name must be 1 to {} characters long.", Self::MAX),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "Name must not contain control characters.",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's own name for a message it sends, so that sending it again (after a lost answer or
/// a reconnect) stores it once: 1 to 64 printable characters, compared exactly as sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub const MAX: usize = 64;

    /// Parses a client id as sent; it is not trimmed, since it is an opaque name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `client_id` when it is empty, longer than
    /// [`ClientId::MAX`] characters or holds a control character.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let len = raw.chars().count();
        if len == 0 || len > Self::MAX {
            return Err(ValidationError::new(
                "client_id",
                format!("'client_id' must be 1 to {} characters long.", Self::MAX),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "client_id",
                "'client_id' must not contain control characters.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a client id read back from storage.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t where $t: Sized {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($t), self.0)
            }
        }
    )*};
}
display_as_str!(Username, Email);

impl fmt::Display for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ChatName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_accepts_the_allowed_alphabet() {
        for ok in ["ann", "Ann_B.c-d", "a23", &"x".repeat(32), "  bob  "] {
            assert!(Username::parse(ok).is_ok(), "{ok:?} should be valid");
        }
        assert_eq!(Username::parse("  bob ").unwrap().as_str(), "bob");
    }

    #[test]
    fn username_refuses_bad_length_and_characters() {
        for bad in [
            "",
            "ab",
            &"x".repeat(33),
            "ann b",
            "ann@b",
            "ünï",
            "a/b",
            "<script>",
        ] {
            let err = Username::parse(bad).unwrap_err();
            assert_eq!(err.field, "username", "{bad:?}");
        }
    }

    #[test]
    fn email_accepts_common_addresses() {
        for ok in ["a@b.co", "ann.lee+chat@mail.example.org", "X@Y.IO"] {
            assert!(Email::parse(ok).is_ok(), "{ok:?} should be valid");
        }
    }

    #[test]
    fn email_refuses_bad_syntax() {
        for bad in [
            "",
            "plain",
            "a@b",
            "@b.co",
            "a@.co",
            "a@b.",
            "a b@c.de",
            "a@b@c.de",
            "a..b@c.de",
            ".a@b.co",
            "a@-b.co",
            "a@b..co",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
    }

    #[test]
    fn password_checks_length_then_confirmation() {
        assert!(Password::parse_new("correct horse", "correct horse").is_ok());
        assert_eq!(
            Password::parse_new("short", "short").unwrap_err().field,
            "password"
        );
        let long = "p".repeat(129);
        assert_eq!(
            Password::parse_new(&long, &long).unwrap_err().field,
            "password"
        );
        assert_eq!(
            Password::parse_new("correct horse", "correct hors")
                .unwrap_err()
                .field,
            "password_confirm"
        );
        assert!(Password::parse_new(&"p".repeat(128), &"p".repeat(128)).is_ok());
    }

    #[test]
    fn password_is_never_printed() {
        let p = Password::parse_new("hunter2hunter2", "hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn message_body_is_trimmed_and_bounded() {
        assert_eq!(MessageBody::parse("  hi  ", 10).unwrap().as_str(), "hi");
        assert!(MessageBody::parse("   \n\t ", 10).is_err());
        assert!(MessageBody::parse(&"é".repeat(10), 10).is_ok());
        assert_eq!(
            MessageBody::parse(&"é".repeat(11), 10).unwrap_err().field,
            "message"
        );
    }

    #[test]
    fn chat_name_is_bounded() {
        assert!(ChatName::parse("Rustaceans").is_ok());
        assert!(ChatName::parse("  ").is_err());
        assert!(ChatName::parse(&"n".repeat(65)).is_err());
        assert!(ChatName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn client_id_accepts_printable_names_up_to_the_limit() {
        let longest = "é".repeat(ClientId::MAX);
        for ok in [
            "c1",
            "x",
            "550e8400-e29b-41d4-a716-446655440000",
            " spaced out ",
            "emoji-\u{1F600}",
            &longest,
        ] {
            let id = ClientId::parse(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
            assert_eq!(id.as_str(), ok, "kept exactly as sent");
        }
    }

    #[test]
    fn client_id_refuses_empty_long_and_control_characters() {
        let too_long = "x".repeat(ClientId::MAX + 1);
        for bad in [
            "",
            &too_long,
            "a\nb",
            "tab\there",
            "nul\u{0}",
            "\u{7f}",
            "\u{9b}x",
        ] {
            let err = ClientId::parse(bad).unwrap_err();
            assert_eq!(err.field, "client_id", "{bad:?}");
        }
    }
}
