//! Validated domain types: a value of one of these types has passed its rules, so code that takes
//! one never re-checks it. Parsers here take outside input and never panic.

mod email;
mod password;
mod provider;

pub use email::Email;
pub use password::Password;
pub use provider::{ApiKey, Vendor, parse_provider};

/// Why an outside value was rejected; the message is safe to show and to log (no input echoed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: &'static str,
}

impl ValidationError {
    pub const fn new(field: &'static str, message: &'static str) -> Self {
        Self { field, message }
    }
}
