//! bcrypt hashing on the blocking pool, so a login never stalls the async workers.

use crate::domain::Password;
use crate::error::ApiError;
use secrecy::{ExposeSecret, SecretString};

/// Hashes a password with the configured cost, off the async executor.
pub async fn hash(password: &Password, cost: u32) -> Result<String, ApiError> {
    let secret = SecretString::from(password.expose().to_owned());
    actix_web::web::block(move || bcrypt::hash(secret.expose_secret(), cost))
        .await
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("blocking pool: {error}")))?
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("bcrypt hash: {error}")))
}

/// Verifies a password against a stored hash, off the async executor. Without a stored hash it
/// verifies against `dummy_hash` (made at start-up with the configured cost), so unknown and known
/// e-mails take the same time.
pub async fn verify(
    candidate: SecretString,
    stored_hash: Option<String>,
    dummy_hash: &str,
) -> Result<bool, ApiError> {
    let known = stored_hash.is_some();
    let hash = stored_hash.unwrap_or_else(|| dummy_hash.to_owned());
    let matched = actix_web::web::block(move || bcrypt::verify(candidate.expose_secret(), &hash))
        .await
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("blocking pool: {error}")))?
        .unwrap_or(false);
    Ok(known && matched)
}

/// A hash of a random throwaway password at `cost`, for [`verify`] on unknown accounts.
pub fn dummy_hash(cost: u32) -> Result<String, bcrypt::BcryptError> {
    bcrypt::hash(crate::auth::refresh::generate(), cost)
}
