//! Sign-in machinery: access tokens (JWT), password hashing, refresh tokens, brute-force limits,
//! and the extractor that authenticates a request.

pub mod attempts;
pub mod extractor;
pub mod jwt;
pub mod password_hash;
pub mod rate_limit;
pub mod refresh;

pub use attempts::FailedAttempts;
pub use extractor::{AdminAccount, AuthenticatedAccount};
pub use jwt::JwtKeys;
pub use rate_limit::RateLimiter;
