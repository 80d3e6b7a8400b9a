//! The vendors whose API keys a user can bring.

use super::ValidationError;

pub use engine::vendors::Vendor;

/// The provider named in a request path.
pub fn parse_provider(raw: &str) -> Result<Vendor, ValidationError> {
    Vendor::parse_keyed(raw).ok_or_else(|| {
        ValidationError::new("provider", "must be one of anthropic, deepgram, elevenlabs")
    })
}

/// A plausible vendor API key: 20 to 512 printable ASCII characters without spaces. Kept secret
/// from the moment it is parsed.
pub struct ApiKey(secrecy::SecretString);

impl ApiKey {
    pub fn parse(raw: String) -> Result<Self, ValidationError> {
        let secret = secrecy::SecretString::from(raw);
        let value = secrecy::ExposeSecret::expose_secret(&secret).trim();
        if value.len() < 20 || value.len() > 512 {
            return Err(ValidationError::new(
                "api_key",
                "must be 20 to 512 characters",
            ));
        }
        if !value.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ValidationError::new(
                "api_key",
                "must be printable ASCII without spaces",
            ));
        }
        Ok(Self(secrecy::SecretString::from(value.to_owned())))
    }

    pub fn secret(&self) -> &secrecy::SecretString {
        &self.0
    }

    /// The last four characters, the only part ever shown again.
    pub fn last_four(&self) -> String {
        let value = secrecy::ExposeSecret::expose_secret(&self.0);
        value[value.len().saturating_sub(4)..].to_owned()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_known_providers_only() {
        for provider in Vendor::KEYED {
            assert_eq!(parse_provider(provider.as_str()), Ok(provider));
        }
        assert!(parse_provider("openai").is_err());
        assert!(parse_provider("Anthropic").is_err());
    }

    #[test]
    fn api_key_shows_only_its_last_four() {
        let key = ApiKey::parse("sk-ant-api03-abcdefghijklmnop-WXYZ".into()).expect("valid");
        assert_eq!(key.last_four(), "WXYZ");
        assert!(!format!("{key:?}").contains("abcdef"));
        assert!(ApiKey::parse("short".into()).is_err());
        assert!(ApiKey::parse("has spaces in the middle of it!!".into()).is_err());
    }

    proptest! {
        #[test]
        fn api_key_parse_never_panics(raw in "\\PC{0,600}") {
            if let Ok(key) = ApiKey::parse(raw) {
                prop_assert_eq!(key.last_four().len(), 4);
            }
        }
    }
}
