//! Access tokens as HS256 JSON Web Tokens: `sub` is the user id, `sid` the server session,
//! `jti` the token's own id, `iat` and `nbf` the moment of issue, `exp` and `nbf` always
//! checked, and the algorithm pinned so a token cannot choose how it is verified.
//!
//! Refresh tokens are not JWTs: `<session id>.<64 hex digits of randomness>`, kept by the
//! server only as a SHA-256 digest, so a copy of the database renews nothing.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::error::{Error, Result};
use sha2::{Digest, Sha256};

use crate::domain::{AccessToken, Claims, RefreshToken, SessionId, UserId};
use crate::ports::TokenService;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// How far ahead of this server's clock a token's `nbf` may be: servers sharing the secret
/// have clocks that differ a little, and a token issued by one must work at once on another.
const CLOCK_SKEW_SECS: i64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct JwtClaims {
    sub: String,
    /// The server session; a token without one (issued before sessions were kept) is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    jti: String,
    iat: i64,
    /// Absent only from tokens issued before Parley set it; they were signed here all the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    exp: i64,
}

/// Signs and verifies tokens with one shared secret.
pub struct JwtTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

/// Why a secret was refused.
#[derive(Debug, thiserror::Error)]
#[error("the secret key must be at least {MIN_SECRET_LEN} bytes long (got {0})")]
pub struct WeakSecret(pub usize);

impl JwtTokens {
    /// # Errors
    /// [`WeakSecret`] when `secret` is shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: &[u8], lifetime: Duration) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(WeakSecret(secret.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.validate_exp = true;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        })
    }

    fn issue_at(
        &self,
        user: UserId,
        session: &SessionId,
        now: DateTime<Utc>,
    ) -> Result<AccessToken> {
        let expires_at = now + self.lifetime;
        let claims = JwtClaims {
            sub: user.0.to_string(),
            sid: Some(session.0.clone()),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            iat: now.timestamp(),
            nbf: Some(now.timestamp()),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::unexpected)?;
        Ok(AccessToken { token, expires_at })
    }
}

impl TokenService for JwtTokens {
    fn issue(&self, user: UserId, session: &SessionId) -> Result<AccessToken> {
        self.issue_at(user, session, Utc::now())
    }

    fn verify(&self, token: &str) -> Result<Claims> {
        let data = jsonwebtoken::decode::<JwtClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Error::TokenExpired,
                _ => Error::Unauthenticated,
            })?;
        let c = data.claims;
        // Checked here rather than by the library, whose leeway would loosen `exp` as well.
        if c.nbf
            .is_some_and(|nbf| nbf > Utc::now().timestamp() + CLOCK_SKEW_SECS)
        {
            return Err(Error::Unauthenticated);
        }
        let user_id = c
            .sub
            .parse()
            .map(UserId)
            .map_err(|_| Error::Unauthenticated)?;
        let expires_at = DateTime::from_timestamp(c.exp, 0).ok_or(Error::Unauthenticated)?;
        let session = c.sid.map(SessionId).ok_or(Error::Unauthenticated)?;
        Ok(Claims {
            user_id,
            session,
            expires_at,
        })
    }

    fn refresh_token(&self, session: &SessionId) -> RefreshToken {
        let secret: [u8; 32] = rand::random();
        let token = format!("{}.{}", session.0, hex(&secret));
        RefreshToken {
            digest: digest(&token),
            token,
        }
    }

    fn read_refresh(&self, token: &str) -> Option<(SessionId, String)> {
        let (session, secret) = token.split_once('.')?;
        let shaped = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        };
        (shaped(session, 32) && shaped(secret, 64))
            .then(|| (SessionId(session.to_owned()), digest(token)))
    }
}

/// The SHA-256 of a refresh token, in hex.
fn digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn tokens() -> JwtTokens {
        JwtTokens::new(SECRET, Duration::minutes(30)).unwrap()
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(JwtTokens::new(b"short", Duration::minutes(30)).is_err());
    }

    #[test]
    fn an_issued_token_verifies_to_its_user() {
        let t = tokens();
        let session = SessionId::random();
        let token = t.issue(UserId(42), &session).unwrap();
        let claims = t.verify(&token.token).unwrap();
        assert_eq!(claims.user_id, UserId(42));
        assert_eq!(claims.session, session);
        assert_eq!(claims.expires_at.timestamp(), token.expires_at.timestamp());
    }

    #[test]
    fn each_token_has_its_own_id_within_one_session() {
        let t = tokens();
        let session = SessionId::random();
        let a = claims_of(&t.issue(UserId(1), &session).unwrap().token);
        let b = claims_of(&t.issue(UserId(1), &session).unwrap().token);
        assert_ne!(a["jti"], b["jti"]);
        assert_eq!(a["sid"], b["sid"]);
        assert_eq!(a["sid"], session.0.as_str());
    }

    #[test]
    fn a_token_without_a_session_is_refused() {
        let mut claims = claims_at(Utc::now(), None);
        claims.sid = None;
        assert!(matches!(
            tokens().verify(&signed(&claims)),
            Err(Error::Unauthenticated)
        ));
    }

    #[test]
    fn a_refresh_token_names_its_session_and_reads_back_to_its_digest() {
        let t = tokens();
        let session = SessionId::random();
        let a = t.refresh_token(&session);
        let b = t.refresh_token(&session);
        assert_ne!(a.token, b.token);
        assert_ne!(a.digest, b.digest);
        assert!(
            !a.digest.contains(&a.token[33..]),
            "the digest is not the secret"
        );
        assert_eq!(t.read_refresh(&a.token), Some((session.clone(), a.digest)));
        assert_eq!(t.read_refresh(&b.token), Some((session, b.digest)));
    }

    #[test]
    fn a_refresh_token_of_the_wrong_shape_is_not_read() {
        let t = tokens();
        let good = t.refresh_token(&SessionId::random()).token;
        for bad in [
            "",
            "garbage",
            &good[..good.len() - 1],
            &good.replace('.', ""),
            &good.to_uppercase(),
            &format!("{good}.x"),
        ] {
            assert_eq!(t.read_refresh(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let t = tokens();
        let old = t
            .issue_at(
                UserId(1),
                &SessionId::random(),
                Utc::now() - Duration::minutes(31),
            )
            .unwrap();
        assert!(matches!(t.verify(&old.token), Err(Error::TokenExpired)));
    }

    /// The claims of a token signed with the test secret, as JSON.
    fn claims_of(token: &str) -> serde_json::Value {
        jsonwebtoken::decode::<serde_json::Value>(
            token,
            &DecodingKey::from_secret(SECRET),
            &Validation::new(Algorithm::HS256),
        )
        .unwrap()
        .claims
    }

    /// A token signed with the test secret over `claims`.
    fn signed(claims: &JwtClaims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn claims_at(now: DateTime<Utc>, nbf: Option<DateTime<Utc>>) -> JwtClaims {
        JwtClaims {
            sub: "1".into(),
            sid: Some("session".into()),
            jti: "token".into(),
            iat: now.timestamp(),
            nbf: nbf.map(|t| t.timestamp()),
            exp: (now + Duration::minutes(30)).timestamp(),
        }
    }

    #[test]
    fn a_token_carries_iat_and_nbf_at_its_issue() {
        let t = tokens();
        let before = Utc::now().timestamp();
        let token = t.issue(UserId(3), &SessionId::random()).unwrap();
        let claims = claims_of(&token.token);
        let iat = claims["iat"].as_i64().unwrap();
        assert!(iat >= before && iat <= Utc::now().timestamp(), "{claims}");
        assert_eq!(claims["nbf"], claims["iat"], "{claims}");
        assert_eq!(claims["exp"].as_i64().unwrap(), iat + 30 * 60);
    }

    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let now = Utc::now();
        let early = signed(&claims_at(now, Some(now + Duration::minutes(1))));
        assert!(matches!(
            tokens().verify(&early),
            Err(Error::Unauthenticated)
        ));
    }

    #[test]
    fn a_token_valid_from_now_or_a_little_ahead_is_accepted() {
        let now = Utc::now();
        for nbf in [now - Duration::minutes(1), now, now + Duration::seconds(2)] {
            let token = signed(&claims_at(now, Some(nbf)));
            assert!(tokens().verify(&token).is_ok(), "nbf {nbf}");
        }
    }

    #[test]
    fn a_token_from_before_nbf_was_set_still_verifies() {
        let token = signed(&claims_at(Utc::now(), None));
        assert_eq!(tokens().verify(&token).unwrap().user_id, UserId(1));
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other =
            JwtTokens::new(b"another-secret-another-secret-xx", Duration::minutes(5)).unwrap();
        let forged = other.issue(UserId(1), &SessionId::random()).unwrap();
        assert!(matches!(
            tokens().verify(&forged.token),
            Err(Error::Unauthenticated)
        ));
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        // {"alg":"none"} header with valid-looking claims and no signature.
        let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        let claims = "eyJzdWIiOiIxIiwianRpIjoieCIsImlhdCI6MSwiZXhwIjo0MTAyNDQ0ODAwfQ";
        let token = format!("{header}.{claims}.");
        assert!(matches!(
            tokens().verify(&token),
            Err(Error::Unauthenticated)
        ));
        assert!(matches!(
            tokens().verify("garbage"),
            Err(Error::Unauthenticated)
        ));
    }
}
