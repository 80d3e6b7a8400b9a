//! E-mail addresses: normalized for uniqueness, canonicalized for abuse checks, redacted in logs.

use super::ValidationError;

/// A syntactically valid, normalized (trimmed, lower-cased) e-mail address.
///
/// `Debug` prints a redacted form, so an address cannot reach a log through `{:?}`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        const FIELD: &str = "email";
        let normalized = raw.trim().to_lowercase();
        if normalized.is_empty() {
            return Err(ValidationError::new(FIELD, "must not be empty"));
        }
        if normalized.len() > MAX_LEN {
            return Err(ValidationError::new(
                FIELD,
                "must be at most 254 characters",
            ));
        }
        if normalized.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',' | ';')
        }) {
            return Err(ValidationError::new(
                FIELD,
                "contains characters not allowed in an address",
            ));
        }
        let Some((local, domain)) = normalized.rsplit_once('@') else {
            return Err(ValidationError::new(FIELD, "must contain @"));
        };
        if local.is_empty() || local.len() > MAX_LOCAL_LEN || local.contains('@') {
            return Err(ValidationError::new(FIELD, "has an invalid local part"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(ValidationError::new(FIELD, "has an invalid local part"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let valid_domain = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !valid_domain {
            return Err(ValidationError::new(FIELD, "has an invalid domain"));
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain (after the last `@`).
    pub fn domain(&self) -> &str {
        self.0
            .rsplit_once('@')
            .map(|(_, domain)| domain)
            .expect("invariant: a parsed Email contains @")
    }

    /// The address with `+tags` removed, and for Gmail the dots of the local part too: two
    /// accounts with one canonical address are one person claiming free interviews twice.
    pub fn canonical(&self) -> String {
        let (local, domain) = self
            .0
            .rsplit_once('@')
            .expect("invariant: a parsed Email contains @");
        let local = local.split('+').next().unwrap_or(local);
        let domain = if domain == "googlemail.com" {
            "gmail.com"
        } else {
            domain
        };
        let local = if domain == "gmail.com" {
            local.replace('.', "")
        } else {
            local.to_owned()
        };
        format!("{local}@{domain}")
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Email([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_case_and_whitespace() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").expect("valid");
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for raw in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a@-example.com",
            "a..b@example.com",
            ".a@example.com",
            "a@example..com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn canonical_strips_tags_and_gmail_dots() {
        let canonical = |raw| Email::parse(raw).expect("valid").canonical();
        assert_eq!(canonical("A.b.C+promo@gmail.com"), "abc@gmail.com");
        assert_eq!(canonical("abc@googlemail.com"), "abc@gmail.com");
        assert_eq!(
            canonical("first.last+x@example.org"),
            "first.last@example.org"
        );
    }

    #[test]
    fn debug_never_shows_the_address() {
        let email = Email::parse("secret.person@example.com").expect("valid");
        assert!(!format!("{email:?}").contains("secret"));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepted_values_are_normalized(raw in "\\PC{0,300}") {
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(email.as_str(), email.as_str().trim().to_lowercase());
                prop_assert!(email.as_str().len() <= MAX_LEN);
                let _ = email.canonical();
            }
        }
    }
}
