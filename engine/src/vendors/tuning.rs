//! How the vendor clients are watched and driven, as one configuration: the stall watchdogs of
//! the Deepgram and ElevenLabs sockets and of Claude's stream, and whether a finished sentence
//! is flushed to the synthesizer. `[vendors]` in the server's settings file, `VENDORS__…` in
//! its environment; durations in milliseconds.

use std::time::Duration;

/// The vendors' watchdogs and the TTS sentence flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VendorTuning {
    /// Speech sent to a Deepgram socket without any answer before it is replaced
    /// ([`super::deepgram::DeepgramConfig::stall_timeout`]). The service answers about once a
    /// second, so much below that replaces healthy sockets.
    pub deepgram_stall_ms: u64,
    /// Silence of an ElevenLabs socket after text was flushed before the HTTP stream takes over
    /// ([`super::elevenlabs::ElevenLabsConfig::stall_timeout`]).
    pub elevenlabs_stall_ms: u64,
    /// Claude: the longest wait from the response headers to the first token
    /// ([`super::anthropic::AnthropicConfig::first_token_timeout`]).
    pub anthropic_first_token_ms: u64,
    /// Claude: the longest wait between tokens
    /// ([`super::anthropic::AnthropicConfig::inter_token_timeout`]).
    pub anthropic_inter_token_ms: u64,
    /// Whether playback flushes the synthesizer at each finished sentence, so the first
    /// sentence is spoken while the model still writes. Off, the synthesizer holds text until
    /// its own buffer fills or the reply ends (the load harness compares the two).
    pub tts_flush: bool,
}

impl Default for VendorTuning {
    fn default() -> Self {
        Self {
            deepgram_stall_ms: 2000,
            elevenlabs_stall_ms: 1500,
            anthropic_first_token_ms: 2000,
            anthropic_inter_token_ms: 1500,
            tts_flush: true,
        }
    }
}

/// The longest socket watchdog accepted: beyond it a stalled socket is a silence the
/// candidate notices long before it is replaced.
const MAX_SOCKET_STALL_MS: u64 = 60_000;

/// The longest Claude watchdog accepted: the stream's own idle timeout (30 s) is the backstop.
const MAX_TOKEN_WAIT_MS: u64 = 30_000;

impl VendorTuning {
    pub fn deepgram_stall(&self) -> Duration {
        Duration::from_millis(self.deepgram_stall_ms)
    }

    pub fn elevenlabs_stall(&self) -> Duration {
        Duration::from_millis(self.elevenlabs_stall_ms)
    }

    pub fn anthropic_first_token(&self) -> Duration {
        Duration::from_millis(self.anthropic_first_token_ms)
    }

    pub fn anthropic_inter_token(&self) -> Duration {
        Duration::from_millis(self.anthropic_inter_token_ms)
    }

    /// Every duration is positive and below its bound; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value, max) in [
            (
                "deepgram_stall_ms",
                self.deepgram_stall_ms,
                MAX_SOCKET_STALL_MS,
            ),
            (
                "elevenlabs_stall_ms",
                self.elevenlabs_stall_ms,
                MAX_SOCKET_STALL_MS,
            ),
            (
                "anthropic_first_token_ms",
                self.anthropic_first_token_ms,
                MAX_TOKEN_WAIT_MS,
            ),
            (
                "anthropic_inter_token_ms",
                self.anthropic_inter_token_ms,
                MAX_TOKEN_WAIT_MS,
            ),
        ] {
            if !(1..=max).contains(&value) {
                return Err(format!(
                    "vendors.{name} must be between 1 and {max} (milliseconds), not {value}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_zero_or_too_long_is_refused() {
        assert_eq!(VendorTuning::default().validate(), Ok(()));
        let zero = VendorTuning {
            deepgram_stall_ms: 0,
            ..VendorTuning::default()
        };
        assert!(
            zero.validate()
                .is_err_and(|e| e.contains("deepgram_stall_ms"))
        );
        let long = VendorTuning {
            anthropic_inter_token_ms: 30_001,
            ..VendorTuning::default()
        };
        assert!(
            long.validate()
                .is_err_and(|e| e.contains("anthropic_inter_token_ms"))
        );
    }
}
