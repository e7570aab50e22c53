//! Values that validate themselves: once you hold a [`Username`], an [`Email`], a [`Password`],
//! a [`MessageBody`], a [`ChatName`], a [`ClientId`] or a [`LoginName`], it obeys Parley's
//! rules, so nothing downstream checks again.
//!
//! The text rules are the same on every storage backend because they are decided here, before
//! storage sees the text: no field takes a control character other than newline and tab (a NUL
//! would be refused by PostgreSQL and kept by SQLite); messages and group names must show
//! something; usernames and group names take no bidirectional override or isolate, which could
//! make a name read as someone else's. Text is refused, never cleaned: what is accepted is
//! stored as it was sent, surrounding whitespace aside.

use std::fmt;

use super::error::ValidationError;

/// A control character no text field takes: every one but newline and tab.
fn is_refused_control(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// A character that shows nothing on its own: whitespace, the characters Unicode marks
/// default-ignorable (zero-width spaces and joiners, direction marks and overrides, word
/// joiners, variation selectors, U+FEFF, U+180E, fillers, tags), and the blank braille cell.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// A bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069): it reorders the text
/// around it, so `ann\u{202E}nib` reads as another name.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Refuses `raw` on `field` when it holds a control character other than newline and tab.
fn refuse_controls(
    raw: &str,
    field: &'static str,
    what: &'static str,
) -> Result<(), ValidationError> {
    if raw.chars().any(is_refused_control) {
        return Err(ValidationError::new(
            field,
            format!("{what} must not contain control characters other than newline and tab."),
        ));
    }
    Ok(())
}

/// A username: 3 to 32 ASCII letters, digits, `_`, `.` or `-`. Unique regardless of case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    /// Parses a username as typed, surrounding whitespace ignored.
    ///
    /// # Errors
    /// [`ValidationError`] on field `username` for a control character, a bidirectional
    /// override or isolate, a wrong length or a character outside the alphabet.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        refuse_controls(raw, "username", "Username")?;
        if raw.chars().any(is_bidi_control) {
            return Err(ValidationError::new(
                "username",
                "Username must not contain bidirectional override or isolate characters.",
            ));
        }
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
        refuse_controls(raw, "email", "Email")?;
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
    /// [`ValidationError`] on `password` for a bad length or a control character other than
    /// newline and tab, on `password_confirm` when the two differ.
    pub fn parse_new(password: &str, confirm: &str) -> Result<Self, ValidationError> {
        refuse_controls(password, "password", "Password")?;
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

/// The text of a message: trimmed, 1 to `max` characters, at least one of them visible, no
/// control character but newline and tab. Kept otherwise exactly as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    /// Parses a message body against the configured limit.
    ///
    /// # Errors
    /// [`ValidationError`] on field `message` when it holds a control character other than
    /// newline and tab, is blank, shows nothing (only invisible characters) or is longer than
    /// `max` characters.
    pub fn parse(raw: &str, max: usize) -> Result<Self, ValidationError> {
        refuse_controls(raw, "message", "Message")?;
        let s = raw.trim();
        if s.is_empty() {
            return Err(ValidationError::new(
                "message",
                "Message must not be empty.",
            ));
        }
        if s.chars().all(is_invisible) {
            return Err(ValidationError::new(
                "message",
                "Message must contain visible characters.",
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

    /// The body of a deleted message: empty, which [`MessageBody::parse`] never yields, since
    /// the text is gone.
    pub fn erased() -> Self {
        Self(String::new())
    }

    /// The first `max` characters, with an ellipsis when there were more: a quote of the text.
    pub fn shortened(&self, max: usize) -> String {
        match self.0.char_indices().nth(max) {
            None => self.0.clone(),
            Some((cut, _)) => format!("{}…", &self.0[..cut]),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a group chat: trimmed, 1 to 64 characters, at least one of them visible, no
/// control character and no bidirectional override or isolate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatName(String);

impl ChatName {
    pub const MAX: usize = 64;

    /// # Errors
    /// [`ValidationError`] on field `name` for a control character, a wrong length, a
    /// bidirectional override or isolate, or a name of invisible characters only.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        refuse_controls(raw, "name", "Name")?;
        let s = raw.trim();
        let len = s.chars().count();
        if len == 0 || len > Self::MAX {
            return Err(ValidationError::new(
                "name",
                format!("Name must be 1 to {} characters long.", Self::MAX),
            ));
        }
        // A name is one line: not even newline and tab.
        if s.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "Name must not contain control characters.",
            ));
        }
        if s.chars().any(is_bidi_control) {
            return Err(ValidationError::new(
                "name",
                "Name must not contain bidirectional override or isolate characters.",
            ));
        }
        if s.chars().all(is_invisible) {
            return Err(ValidationError::new(
                "name",
                "Name must contain visible characters.",
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

/// An emoji reaction as sent: 1 to [`Emoji::MAX_BYTES`] bytes, with no whitespace, no control
/// character and nothing invisible alone. Compared exactly as sent, so that the same emoji
/// from two members counts twice under one entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Emoji(String);

impl Emoji {
    /// The longest reaction, in bytes: room for a family of joined emoji, not for a sentence.
    pub const MAX_BYTES: usize = 32;

    /// Parses a reaction as sent; it is not trimmed.
    ///
    /// # Errors
    /// [`ValidationError`] on field `emoji` when it is empty, longer than
    /// [`Emoji::MAX_BYTES`] bytes, holds whitespace or a control character, or shows nothing.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() || raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::new(
                "emoji",
                format!("'emoji' must be 1 to {} bytes long.", Self::MAX_BYTES),
            ));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValidationError::new(
                "emoji",
                "'emoji' must not contain whitespace or control characters.",
            ));
        }
        if raw.chars().all(is_invisible) {
            return Err(ValidationError::new(
                "emoji",
                "'emoji' must contain a visible character.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a reaction read back from storage.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a person types to log in: a username or an email, trimmed, without control
/// characters. It is not checked against the username or email rules, so that a login name
/// which cannot exist is refused the same way as one that does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginName(String);

impl LoginName {
    /// # Errors
    /// [`ValidationError`] on field `username` (the login form's field) when it holds a
    /// control character other than newline and tab.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        refuse_controls(raw, "username", "Username")?;
        Ok(Self(raw.trim().to_owned()))
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

impl fmt::Display for Emoji {
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

    #[test]
    fn no_field_takes_a_control_character_but_newline_and_tab() {
        let refused = [
            "\u{0}",
            "\u{1b}[31m",
            "\r",
            "\u{7f}",
            "\u{85}",
            "\u{9b}",
            "\u{8}",
        ];
        for c in refused {
            let word = format!("ann{c}lee");
            let field = |r: Result<(), ValidationError>| r.unwrap_err().field;
            assert_eq!(field(Username::parse(&word).map(drop)), "username", "{c:?}");
            assert_eq!(
                field(Email::parse(&format!("{word}@example.com")).map(drop)),
                "email",
                "{c:?}"
            );
            let pw = format!("password{c}123");
            assert_eq!(field(Password::parse_new(&pw, &pw).map(drop)), "password");
            assert_eq!(field(MessageBody::parse(&word, 100).map(drop)), "message");
            assert_eq!(field(ChatName::parse(&word).map(drop)), "name");
            assert_eq!(field(ClientId::parse(&word).map(drop)), "client_id");
            assert_eq!(field(LoginName::parse(&word).map(drop)), "username");
        }
    }

    #[test]
    fn newline_and_tab_are_kept_where_text_runs_on() {
        let text = "first line\n\tsecond line";
        assert_eq!(MessageBody::parse(text, 100).unwrap().as_str(), text);
        let pw = "pass\tword\n123";
        assert_eq!(Password::parse_new(pw, pw).unwrap().expose(), pw);
        // A name is one line.
        assert!(ChatName::parse("two\nlines").is_err());
        assert!(ChatName::parse("tab\there").is_err());
    }

    #[test]
    fn a_message_is_stored_exactly_as_accepted() {
        for ok in [
            "family: \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
            "\u{05E9}\u{05DC}\u{05D5}\u{05DD} \u{202E}reversed\u{202C} \u{2067}isolated\u{2069}",
            "soft\u{AD}hyphen and zero\u{200B}width",
            "caf\u{65}\u{301} \u{2764}\u{FE0F}",
        ] {
            assert_eq!(MessageBody::parse(ok, 200).unwrap().as_str(), ok, "{ok:?}");
        }
    }

    #[test]
    fn text_of_invisible_characters_only_is_refused() {
        for blank in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}",
            "\u{200E}\u{200F}",
            "\u{2060}\u{2061}\u{2062}\u{2063}\u{2064}",
            "\u{FEFF}",
            "\u{180E}",
            " \u{200B} \u{3000} \u{A0}",
            "\u{2800}",
            "\u{3164}",
            "\u{202E}",
        ] {
            let err = MessageBody::parse(blank, 100).unwrap_err();
            assert_eq!(err.field, "message", "{blank:?}");
            let err = ChatName::parse(blank).unwrap_err();
            assert_eq!(err.field, "name", "{blank:?}");
        }
        assert!(MessageBody::parse("\u{200B}a", 100).is_ok());
        assert!(ChatName::parse("\u{200B}a").is_ok());
    }

    #[test]
    fn names_refuse_bidirectional_overrides_and_isolates() {
        for c in '\u{202A}'..='\u{202E}' {
            assert!(ChatName::parse(&format!("ann{c}lee")).is_err(), "{c:?}");
            assert!(Username::parse(&format!("ann{c}lee")).is_err(), "{c:?}");
        }
        for c in '\u{2066}'..='\u{2069}' {
            assert!(ChatName::parse(&format!("ann{c}lee")).is_err(), "{c:?}");
            assert!(Username::parse(&format!("ann{c}lee")).is_err(), "{c:?}");
        }
        // Right-to-left text and the marks that help it are names like any other.
        assert!(ChatName::parse("\u{05E9}\u{05DC}\u{05D5}\u{05DD} team").is_ok());
        assert!(ChatName::parse("\u{05E9}\u{200F} 2").is_ok());
    }

    #[test]
    fn a_login_name_is_trimmed_and_otherwise_free() {
        assert_eq!(LoginName::parse("  ann  ").unwrap().as_str(), "ann");
        assert_eq!(
            LoginName::parse("Ann@Example.com").unwrap().as_str(),
            "Ann@Example.com"
        );
        assert!(LoginName::parse("no such \u{fc}ser").is_ok());
        assert_eq!(LoginName::parse("a\u{0}").unwrap_err().field, "username");
    }

    #[test]
    fn emoji_takes_one_visible_word_of_at_most_32_bytes() {
        for good in ["👍", "❤️", "👨‍👩‍👧‍👦", "+1", "🎉🎉"] {
            assert_eq!(Emoji::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            " ",
            "👍 ",
            "a b",
            "\u{0}",
            "x\ny",
            "\u{200B}",
            &"👍".repeat(9),
        ] {
            let err = Emoji::parse(bad).unwrap_err();
            assert_eq!(err.field, "emoji", "{bad:?}");
        }
    }

    #[test]
    fn a_shortened_body_keeps_whole_characters() {
        let body = MessageBody::parse("héllo wörld", 100).unwrap();
        assert_eq!(body.shortened(5), "héllo…");
        assert_eq!(body.shortened(11), "héllo wörld");
        assert_eq!(MessageBody::erased().as_str(), "");
    }
}
