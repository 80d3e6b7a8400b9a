//! What every vendor call reports for metering: usage (what we are billed for), timing (the
//! latencies in DESIGN.md §4) and an estimated cost from configured prices. No transcript or
//! reply text is ever part of a report.

use std::time::Duration;

/// Anthropic prices in USD per million tokens. Configuration, never constants.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TokenPrices {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub cache_write_5m_per_mtok: f64,
    pub cache_write_1h_per_mtok: f64,
    pub cache_read_per_mtok: f64,
}

impl TokenPrices {
    /// Prices derived from a base input price with the documented cache multipliers
    /// (5-minute write 1.25×, 1-hour write 2×, read 0.1×).
    pub fn from_base(input_per_mtok: f64, output_per_mtok: f64) -> Self {
        Self {
            input_per_mtok,
            output_per_mtok,
            cache_write_5m_per_mtok: input_per_mtok * 1.25,
            cache_write_1h_per_mtok: input_per_mtok * 2.0,
            cache_read_per_mtok: input_per_mtok * 0.1,
        }
    }
}

/// Token usage of one LLM call; `output_tokens` is the last cumulative value seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LlmUsage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    /// The cache-write split by TTL, when the vendor reports it.
    pub cache_creation_5m_tokens: u64,
    pub cache_creation_1h_tokens: u64,
}

impl LlmUsage {
    /// All input tokens: uncached + cache writes + cache reads.
    pub fn total_input_tokens(&self) -> u64 {
        self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens
    }

    /// The usage of two calls together (an abandoned attempt and the one that replaced it).
    pub fn plus(self, other: LlmUsage) -> LlmUsage {
        LlmUsage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            cache_read_input_tokens: self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_creation_input_tokens: self.cache_creation_input_tokens
                + other.cache_creation_input_tokens,
            cache_creation_5m_tokens: self.cache_creation_5m_tokens
                + other.cache_creation_5m_tokens,
            cache_creation_1h_tokens: self.cache_creation_1h_tokens
                + other.cache_creation_1h_tokens,
        }
    }

    /// Cost in USD at `prices`. Cache writes without a TTL split are priced as 5-minute writes.
    pub fn cost_usd(&self, prices: &TokenPrices) -> f64 {
        let split = self.cache_creation_5m_tokens + self.cache_creation_1h_tokens;
        let unsplit = self.cache_creation_input_tokens.saturating_sub(split);
        let per = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        per(self.input_tokens, prices.input_per_mtok)
            + per(self.output_tokens, prices.output_per_mtok)
            + per(self.cache_read_input_tokens, prices.cache_read_per_mtok)
            + per(
                self.cache_creation_5m_tokens + unsplit,
                prices.cache_write_5m_per_mtok,
            )
            + per(
                self.cache_creation_1h_tokens,
                prices.cache_write_1h_per_mtok,
            )
    }
}

/// Timing of one LLM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LlmTiming {
    /// From the call to the 200 response headers (includes retries and their waits).
    pub time_to_headers: Option<Duration>,
    /// From the call to the first spoken `text_delta` (TTFT as the listener feels it).
    pub time_to_first_text: Option<Duration>,
    /// From the call to the end of the stream (or the failure/cancel).
    pub total: Duration,
    /// Retries made before the stream started.
    pub retries: u32,
}

/// The metering record of one LLM call, successful or not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmReport {
    pub model: String,
    pub usage: LlmUsage,
    pub timing: LlmTiming,
    pub cost_usd: f64,
    pub request_id: Option<String>,
}

/// Audio usage of one STT session.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SttUsage {
    /// Distinct audio seconds the caller pushed.
    pub audio_seconds: f64,
    /// Audio seconds sent over the wire, including audio re-sent after a reconnect (billed).
    pub billed_audio_seconds: f64,
    /// Successful reconnects.
    pub reconnects: u32,
    /// Audio frames dropped because the outgoing queue was full.
    pub dropped_frames: u64,
}

/// Timing of one STT session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SttTiming {
    /// WebSocket handshake duration of the first connection.
    pub connect: Option<Duration>,
    /// From the first audio pushed to the first transcript (interim or final).
    pub first_result: Option<Duration>,
    /// Whole session.
    pub total: Duration,
}

/// The metering record of one STT session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SttReport {
    pub model: String,
    pub usage: SttUsage,
    pub timing: SttTiming,
    pub cost_usd: f64,
    pub request_id: Option<String>,
}

/// Character and audio usage of one TTS session.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TtsUsage {
    /// Characters sent for synthesis (what the vendor bills).
    pub characters: u64,
    /// Seconds of audio received.
    pub audio_seconds: f64,
    /// Audio chunks received.
    pub chunks: u64,
}

/// Timing of one TTS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TtsTiming {
    /// From the session start to the connection being ready.
    pub connect: Option<Duration>,
    /// From the first text pushed (or the first flush for the HTTP fallback) to the first audio.
    pub time_to_first_audio: Option<Duration>,
    pub total: Duration,
}

/// The metering record of one TTS session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TtsReport {
    pub model: String,
    pub usage: TtsUsage,
    pub timing: TtsTiming,
    pub cost_usd: f64,
    pub request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_prices_each_token_kind_separately() {
        let prices = TokenPrices::from_base(1.0, 5.0);
        let usage = LlmUsage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            cache_read_input_tokens: 1_000_000,
            cache_creation_input_tokens: 2_000_000,
            cache_creation_5m_tokens: 1_000_000,
            cache_creation_1h_tokens: 1_000_000,
        };
        let cost = usage.cost_usd(&prices);
        assert!(
            (cost - (1.0 + 5.0 + 0.1 + 1.25 + 2.0)).abs() < 1e-9,
            "{cost}"
        );
    }
}
