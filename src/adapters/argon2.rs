//! Password hashing with argon2id at the OWASP parameters (m = 19456 KiB, t = 2, p = 1). Each
//! hash costs tens of milliseconds of CPU and 19 MiB of memory, so it runs on tokio's blocking
//! pool, never on the async executor, and no more run at once than there are cores: a burst of
//! logins queues instead of spawning hundreds of threads holding 19 MiB each.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::domain::Password;
use crate::domain::error::{Error, Result};
use crate::ports::PasswordHasher;

/// The argon2id hasher.
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Params,
    permits: Arc<Semaphore>,
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self::owasp()
    }
}

impl Argon2Hasher {
    /// OWASP's recommended argon2id parameters.
    pub fn owasp() -> Self {
        Self::with_params(19_456, 2, 1)
    }

    /// Custom cost, for tests that hash a lot. Production uses [`Argon2Hasher::owasp`].
    ///
    /// # Panics
    /// When the parameters are outside argon2's valid ranges.
    pub fn with_params(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Self {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None).expect("valid argon2 params");
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            params,
            permits: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Runs one hashing job on the blocking pool once a core is free for it.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(Error::unexpected)?;
        let argon2 = self.argon2();
        tokio::task::spawn_blocking(move || job(argon2))
            .await
            .map_err(Error::unexpected)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<String> {
        let password = password.clone();
        self.run(move |argon2| {
            argon2
                .hash_password(password.expose().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| Error::unexpected(anyhow::anyhow!("argon2 hash: {e}")))
        })
        .await?
    }

    async fn verify(&self, password: &Password, hash: &str) -> Result<bool> {
        let password = password.clone();
        let hash = hash.to_owned();
        self.run(move |argon2| {
            argon2
                .verify_password(password.expose().as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = Argon2Hasher::with_params(1024, 1, 1);
        let pw = Password::for_login("correct horse");
        let hash = h.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(h.verify(&pw, &hash).await.unwrap());
        assert!(
            !h.verify(&Password::for_login("wrong horse"), &hash)
                .await
                .unwrap()
        );
        assert!(!h.verify(&pw, "not a phc string").await.unwrap());
    }

    #[tokio::test]
    async fn the_default_uses_owasp_parameters() {
        let hash = Argon2Hasher::default()
            .hash(&Password::for_login("correct horse"))
            .await
            .unwrap();
        assert!(hash.contains("m=19456,t=2,p=1"), "{hash}");
    }

    #[tokio::test]
    async fn the_login_decoy_is_a_well_formed_owasp_hash_that_matches_nothing() {
        // Well-formed, so verifying against it costs a full hash like a real user's would.
        let decoy = crate::services::DECOY_HASH;
        let parsed = argon2::password_hash::phc::PasswordHash::new(decoy).expect("decoy parses");
        let params = Params::try_from(&parsed).unwrap();
        let owasp = Params::new(19_456, 2, 1, None).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (owasp.m_cost(), owasp.t_cost(), owasp.p_cost())
        );
        let h = Argon2Hasher::default();
        assert!(
            !h.verify(&Password::for_login("password123"), decoy)
                .await
                .unwrap()
        );
    }
}
