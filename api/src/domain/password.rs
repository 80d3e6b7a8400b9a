//! Passwords as typed, redacted values: they can be hashed, never printed.

use secrecy::{ExposeSecret, SecretString};

use super::{Email, ValidationError};

/// A candidate password that satisfies the rules: at least 10 characters, at most 72 bytes (the
/// bcrypt limit, so no part of a password is silently ignored), not the account's e-mail.
pub struct Password(SecretString);

const MIN_CHARS: usize = 10;
const MAX_BYTES: usize = 72;

impl Password {
    pub fn parse(raw: String, email: &Email) -> Result<Self, ValidationError> {
        const FIELD: &str = "password";
        let secret = SecretString::from(raw);
        let value = secret.expose_secret();
        if value.chars().count() < MIN_CHARS {
            return Err(ValidationError::new(
                FIELD,
                "must be at least 10 characters",
            ));
        }
        if value.len() > MAX_BYTES {
            return Err(ValidationError::new(FIELD, "must be at most 72 bytes"));
        }
        if value.trim().to_lowercase() == email.as_str()
            || value.to_lowercase().contains(email.as_str())
        {
            return Err(ValidationError::new(
                FIELD,
                "must not be your email address",
            ));
        }
        Ok(Self(secret))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn email() -> Email {
        Email::parse("someone@example.com").expect("valid")
    }

    #[test]
    fn enforces_length_and_email_rules() {
        assert!(Password::parse("short".into(), &email()).is_err());
        assert!(Password::parse("someone@example.com".into(), &email()).is_err());
        assert!(Password::parse("SOMEONE@EXAMPLE.COM".into(), &email()).is_err());
        assert!(Password::parse("x".repeat(73), &email()).is_err());
        assert!(Password::parse("correct horse battery".into(), &email()).is_ok());
    }

    #[test]
    fn debug_is_redacted() {
        let password = Password::parse("correct horse battery".into(), &email()).expect("valid");
        assert!(!format!("{password:?}").contains("horse"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in "\\PC{0,100}") {
            let _ = Password::parse(raw, &email());
        }
    }
}
