//! Access tokens as HS256 JSON Web Tokens: `sub` is the user id, `jti` the session id, `exp`
//! always checked, and the algorithm pinned so a token cannot choose how it is verified.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::error::{Error, Result};
use crate::domain::{AccessToken, Claims, SessionId, UserId};
use crate::ports::TokenService;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
struct JwtClaims {
    sub: String,
    jti: String,
    iat: i64,
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

    fn issue_at(&self, user: UserId, now: DateTime<Utc>) -> Result<AccessToken> {
        let expires_at = now + self.lifetime;
        let claims = JwtClaims {
            sub: user.0.to_string(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::unexpected)?;
        Ok(AccessToken { token, expires_at })
    }
}

impl TokenService for JwtTokens {
    fn issue(&self, user: UserId) -> Result<AccessToken> {
        self.issue_at(user, Utc::now())
    }

    fn verify(&self, token: &str) -> Result<Claims> {
        let data = jsonwebtoken::decode::<JwtClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Error::TokenExpired,
                _ => Error::Unauthenticated,
            })?;
        let c = data.claims;
        let user_id = c
            .sub
            .parse()
            .map(UserId)
            .map_err(|_| Error::Unauthenticated)?;
        let expires_at = DateTime::from_timestamp(c.exp, 0).ok_or(Error::Unauthenticated)?;
        Ok(Claims {
            user_id,
            session: SessionId(c.jti),
            expires_at,
        })
    }
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
        let token = t.issue(UserId(42)).unwrap();
        let claims = t.verify(&token.token).unwrap();
        assert_eq!(claims.user_id, UserId(42));
        assert_eq!(claims.expires_at.timestamp(), token.expires_at.timestamp());
    }

    #[test]
    fn each_token_is_its_own_session() {
        let t = tokens();
        let a = t.verify(&t.issue(UserId(1)).unwrap().token).unwrap();
        let b = t.verify(&t.issue(UserId(1)).unwrap().token).unwrap();
        assert_ne!(a.session, b.session);
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let t = tokens();
        let old = t
            .issue_at(UserId(1), Utc::now() - Duration::minutes(31))
            .unwrap();
        assert!(matches!(t.verify(&old.token), Err(Error::TokenExpired)));
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other =
            JwtTokens::new(b"another-secret-another-secret-xx", Duration::minutes(5)).unwrap();
        let forged = other.issue(UserId(1)).unwrap();
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
