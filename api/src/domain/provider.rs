//! The vendors whose API keys a user can bring.

use super::ValidationError;

/// A vendor a user can bring their own key for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Anthropic,
    Deepgram,
    Elevenlabs,
}

impl Provider {
    pub const ALL: [Provider; 3] = [
        Provider::Anthropic,
        Provider::Deepgram,
        Provider::Elevenlabs,
    ];

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "anthropic" => Ok(Provider::Anthropic),
            "deepgram" => Ok(Provider::Deepgram),
            "elevenlabs" => Ok(Provider::Elevenlabs),
            _ => Err(ValidationError::new(
                "provider",
                "must be one of anthropic, deepgram, elevenlabs",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::Deepgram => "deepgram",
            Provider::Elevenlabs => "elevenlabs",
        }
    }
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
        for provider in Provider::ALL {
            assert_eq!(Provider::parse(provider.as_str()), Ok(provider));
        }
        assert!(Provider::parse("openai").is_err());
        assert!(Provider::parse("Anthropic").is_err());
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
