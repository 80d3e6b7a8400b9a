//! Short-lived access tokens: HS256 JWTs bound to our issuer and audience.
//!
//! Only HS256 is accepted, so `alg: none` or an algorithm switch fails verification.

use chrono::Utc;
use engine::AccountId;
use entities::accounts::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ISSUER: &str = "interviewcraft";
pub const AUDIENCE: &str = "interviewcraft-api";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: AccountId,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// The account's password version (its last change, in milliseconds) when the token was
    /// issued: a password change invalidates every earlier access token at once.
    #[serde(default)]
    pub pwv: i64,
}

/// Keys derived once from `JWT_SECRET`.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
    /// Derives refresh-token successors ([`super::refresh::successor`]).
    successor_key: [u8; 32],
}

impl JwtKeys {
    pub fn new(secret: &SecretString, ttl_secs: u64) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            ttl_secs,
            successor_key: super::refresh::successor_key(bytes),
        }
    }

    /// The key refresh-token successors are derived with.
    pub fn successor_key(&self) -> &[u8; 32] {
        &self.successor_key
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Issues an access token for an account.
    pub fn issue(
        &self,
        account_id: AccountId,
        role: Role,
        password_version: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: account_id,
            role,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + i64::try_from(self.ttl_secs).unwrap_or(i64::MAX / 2),
            jti: Uuid::new_v4(),
            pwv: password_version,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Verifies signature, algorithm, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn keys() -> JwtKeys {
        JwtKeys::new(&SecretString::from("k".repeat(48)), 900)
    }

    #[test]
    fn issued_tokens_verify() {
        let id = AccountId::now_v7();
        let token = keys().issue(id, Role::User, 0).expect("issue");
        let claims = keys().verify(&token).expect("verify");
        assert_eq!(claims.sub, id);
        // On the wire the subject is the account's bare UUID string.
        let payload = token.split('.').nth(1).expect("three parts");
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64"))
                .expect("json");
        assert_eq!(payload["sub"], serde_json::json!(id.as_uuid().to_string()));
        assert_eq!(claims.role, Role::User);
    }

    #[test]
    fn alg_none_is_rejected() {
        let token = keys()
            .issue(AccountId::now_v7(), Role::Admin, 0)
            .expect("issue");
        let payload = token.split('.').nth(1).expect("three parts");
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(keys().verify(&format!("{header}.{payload}.")).is_err());
    }

    #[test]
    fn other_secret_or_audience_is_rejected() {
        let other = JwtKeys::new(&SecretString::from("z".repeat(48)), 900);
        let token = other
            .issue(AccountId::now_v7(), Role::User, 0)
            .expect("issue");
        assert!(keys().verify(&token).is_err());

        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: AccountId::now_v7(),
            role: Role::User,
            iss: ISSUER.into(),
            aud: "someone-else".into(),
            iat: now,
            exp: now + 60,
            jti: Uuid::new_v4(),
            pwv: 0,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret("k".repeat(48).as_bytes()),
        )
        .expect("encode");
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let expired = JwtKeys::new(&SecretString::from("k".repeat(48)), 900);
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: AccountId::now_v7(),
            role: Role::User,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now - 1000,
            exp: now - 100,
            jti: Uuid::new_v4(),
            pwv: 0,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &expired.encoding)
                .expect("encode");
        assert!(keys().verify(&token).is_err());
    }
}
