//! Usage metering: what each vendor call cost, recorded without any text.
//!
//! [`UsageRecord`]s are built from the vendor clients' reports (tokens, audio seconds,
//! characters, latency, cost from the configured [`PriceTable`]); [`UsageBatcher`] decides when
//! a batch is due, and [`store::insert_batch`] writes one. The `UsageMeter` actor ties them
//! together.

pub mod store;

use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::vendors::usage::{LlmReport, SttReport, TokenPrices, TtsReport};

/// Prices of every vendor, in US dollars, in one place: the clients are configured from it and
/// per-minute STT rows are priced with it. In the settings file it is the `[prices]` table of
/// [`PriceSettings`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(from = "PriceSettings", into = "PriceSettings")]
pub struct PriceTable {
    pub llm: TokenPrices,
    pub stt_per_minute: f64,
    pub tts_per_1k_chars: f64,
}

/// The price table as configured: the configured Claude model's list prices per million tokens
/// (cache writes and reads follow from the input price by the documented multipliers), the
/// Deepgram model's streaming price per minute and the ElevenLabs model's price per thousand
/// characters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriceSettings {
    pub llm_input_per_mtok: f64,
    pub llm_output_per_mtok: f64,
    pub stt_per_minute: f64,
    pub tts_per_1k_chars: f64,
}

impl Default for PriceSettings {
    fn default() -> Self {
        PriceTable::default().into()
    }
}

impl From<PriceSettings> for PriceTable {
    fn from(prices: PriceSettings) -> Self {
        Self {
            llm: TokenPrices::from_base(prices.llm_input_per_mtok, prices.llm_output_per_mtok),
            stt_per_minute: prices.stt_per_minute,
            tts_per_1k_chars: prices.tts_per_1k_chars,
        }
    }
}

impl From<PriceTable> for PriceSettings {
    fn from(table: PriceTable) -> Self {
        Self {
            llm_input_per_mtok: table.llm.input_per_mtok,
            llm_output_per_mtok: table.llm.output_per_mtok,
            stt_per_minute: table.stt_per_minute,
            tts_per_1k_chars: table.tts_per_1k_chars,
        }
    }
}

impl PriceTable {
    /// Every price is a finite number of dollars, zero or more.
    pub fn validate(&self) -> Result<(), String> {
        let prices = PriceSettings::from(self.clone());
        for (name, value) in [
            ("llm_input_per_mtok", prices.llm_input_per_mtok),
            ("llm_output_per_mtok", prices.llm_output_per_mtok),
            ("stt_per_minute", prices.stt_per_minute),
            ("tts_per_1k_chars", prices.tts_per_1k_chars),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!(
                    "prices.{name} must be a number of dollars, at least 0"
                ));
            }
        }
        Ok(())
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            // Claude Haiku 4.5 list prices; Deepgram Nova-3 streaming; ElevenLabs Flash.
            llm: TokenPrices::from_base(1.0, 5.0),
            stt_per_minute: 0.0077,
            tts_per_1k_chars: 0.05,
        }
    }
}

/// Dollars to whole micro-dollars, rounding up so that no cost is ever recorded as free.
pub fn micro_usd(usd: f64) -> i64 {
    if !usd.is_finite() || usd <= 0.0 {
        return 0;
    }
    (usd * 1_000_000.0).ceil().min(i64::MAX as f64) as i64
}

/// Whose key paid for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Platform,
    Byok,
    /// The in-process fake vendors (tests, load runs).
    Fake,
    /// Keyless local mode: an in-process local implementation; free.
    Local,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Platform => "platform",
            KeySource::Byok => "byok",
            KeySource::Fake => "fake",
            KeySource::Local => "local",
        }
    }
}

/// One usage row: one vendor call, or one minute of an STT stream. No text, by construction.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub account_id: Option<Uuid>,
    pub interview_id: Option<Uuid>,
    pub provider: &'static str,
    pub model: String,
    pub operation: &'static str,
    pub key_source: KeySource,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub audio_seconds: f64,
    pub characters: i64,
    pub latency_ms: f64,
    pub cost_micro_usd: i64,
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn ms(duration: Option<Duration>) -> f64 {
    duration.map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// The interview and account a record belongs to, and whose key paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageContext {
    pub account_id: Option<Uuid>,
    pub interview_id: Option<Uuid>,
    pub key_source: KeySource,
}

impl UsageRecord {
    fn base(
        ctx: UsageContext,
        provider: &'static str,
        model: &str,
        operation: &'static str,
    ) -> Self {
        Self {
            account_id: ctx.account_id,
            interview_id: ctx.interview_id,
            provider,
            model: model.chars().take(64).collect(),
            operation,
            key_source: ctx.key_source,
            input_tokens: 0,
            output_tokens: 0,
            cache_read_tokens: 0,
            cache_creation_tokens: 0,
            audio_seconds: 0.0,
            characters: 0,
            latency_ms: 0.0,
            cost_micro_usd: 0,
        }
    }

    /// One LLM call; latency is the time to the first text.
    pub fn llm(ctx: UsageContext, provider: &'static str, report: &LlmReport) -> Self {
        Self {
            input_tokens: count(report.usage.input_tokens),
            output_tokens: count(report.usage.output_tokens),
            cache_read_tokens: count(report.usage.cache_read_input_tokens),
            cache_creation_tokens: count(report.usage.cache_creation_input_tokens),
            latency_ms: ms(report.timing.time_to_first_text),
            cost_micro_usd: micro_usd(report.cost_usd),
            ..Self::base(ctx, provider, &report.model, "llm_stream")
        }
    }

    /// One TTS utterance; latency is the time to the first audio.
    pub fn tts(ctx: UsageContext, provider: &'static str, report: &TtsReport) -> Self {
        Self {
            characters: count(report.usage.characters),
            audio_seconds: report.usage.audio_seconds,
            latency_ms: ms(report.timing.time_to_first_audio),
            cost_micro_usd: micro_usd(report.cost_usd),
            ..Self::base(ctx, provider, &report.model, "tts_stream")
        }
    }

    /// One minute (or the final part of a minute) of an STT stream.
    pub fn stt_minute(
        ctx: UsageContext,
        provider: &'static str,
        model: &str,
        audio_seconds: f64,
        prices: &PriceTable,
    ) -> Self {
        // A local recognizer costs nothing, whatever the vendor's price.
        let per_minute = if ctx.key_source == KeySource::Local {
            0.0
        } else {
            prices.stt_per_minute
        };
        Self {
            audio_seconds,
            cost_micro_usd: micro_usd(audio_seconds / 60.0 * per_minute),
            ..Self::base(ctx, provider, model, "stt_stream")
        }
    }

    /// The remainder of an STT stream at its end, after `already_recorded` seconds of
    /// per-minute rows.
    pub fn stt_remainder(
        ctx: UsageContext,
        provider: &'static str,
        report: &SttReport,
        already_recorded: f64,
        prices: &PriceTable,
    ) -> Option<Self> {
        let rest = report
            .usage
            .billed_audio_seconds
            .max(report.usage.audio_seconds)
            - already_recorded;
        (rest > 0.000_5).then(|| {
            let mut record = Self::stt_minute(ctx, provider, &report.model, rest, prices);
            record.latency_ms = ms(report.timing.first_result);
            record
        })
    }
}

/// When a batch of usage records is due for writing.
#[derive(Debug)]
pub struct UsageBatcher {
    max_records: usize,
    max_age: Duration,
    pending: Vec<UsageRecord>,
    oldest: Option<Instant>,
}

impl UsageBatcher {
    pub fn new(max_records: usize, max_age: Duration) -> Self {
        Self {
            max_records: max_records.max(1),
            max_age,
            pending: Vec::new(),
            oldest: None,
        }
    }

    pub fn push(&mut self, now: Instant, record: UsageRecord) {
        if self.pending.is_empty() {
            self.oldest = Some(now);
        }
        self.pending.push(record);
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether a write is due at `now` (full, or the oldest record waited long enough).
    pub fn is_due(&self, now: Instant) -> bool {
        self.pending.len() >= self.max_records
            || self
                .oldest
                .is_some_and(|oldest| now.saturating_duration_since(oldest) >= self.max_age)
    }

    /// When the pending batch becomes due by age.
    pub fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|oldest| oldest + self.max_age)
    }

    /// Takes the pending batch.
    pub fn take(&mut self) -> Vec<UsageRecord> {
        self.oldest = None;
        std::mem::take(&mut self.pending)
    }

    /// Puts a batch back in front (its write failed); usage is never dropped.
    pub fn restore(&mut self, now: Instant, mut batch: Vec<UsageRecord>) {
        batch.append(&mut self.pending);
        self.pending = batch;
        self.oldest = Some(self.oldest.unwrap_or(now).min(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::usage::{LlmTiming, LlmUsage, TtsTiming, TtsUsage};

    fn ctx() -> UsageContext {
        UsageContext {
            account_id: Some(Uuid::new_v4()),
            interview_id: Some(Uuid::new_v4()),
            key_source: KeySource::Platform,
        }
    }

    #[test]
    fn llm_record_carries_tokens_latency_and_cost() {
        let report = LlmReport {
            model: "claude-haiku-4-5".into(),
            usage: LlmUsage {
                input_tokens: 1200,
                output_tokens: 80,
                cache_read_input_tokens: 3000,
                cache_creation_input_tokens: 0,
                ..LlmUsage::default()
            },
            timing: LlmTiming {
                time_to_first_text: Some(Duration::from_millis(412)),
                ..LlmTiming::default()
            },
            cost_usd: 0.001_900_4,
            request_id: None,
        };
        let record = UsageRecord::llm(ctx(), "anthropic", &report);
        assert_eq!(
            (
                record.input_tokens,
                record.output_tokens,
                record.cache_read_tokens
            ),
            (1200, 80, 3000)
        );
        assert_eq!(record.latency_ms, 412.0);
        assert_eq!(record.cost_micro_usd, 1901, "rounded up");
        assert_eq!(record.operation, "llm_stream");
    }

    #[test]
    fn tts_and_stt_records_price_characters_and_minutes() {
        let report = TtsReport {
            model: "eleven_flash_v2_5".into(),
            usage: TtsUsage {
                characters: 200,
                audio_seconds: 12.5,
                chunks: 4,
            },
            timing: TtsTiming {
                time_to_first_audio: Some(Duration::from_millis(150)),
                ..TtsTiming::default()
            },
            cost_usd: 0.01,
            request_id: None,
        };
        let record = UsageRecord::tts(ctx(), "elevenlabs", &report);
        assert_eq!((record.characters, record.cost_micro_usd), (200, 10_000));
        let prices = PriceTable::default();
        let minute = UsageRecord::stt_minute(ctx(), "deepgram", "nova-3", 60.0, &prices);
        assert_eq!(minute.cost_micro_usd, 7_700);
        assert_eq!(minute.audio_seconds, 60.0);
    }

    #[test]
    fn local_stt_minutes_are_recorded_free_with_their_audio() {
        let local = UsageContext {
            key_source: KeySource::Local,
            ..ctx()
        };
        let prices = PriceTable::default();
        let minute = UsageRecord::stt_minute(local, "local", "local", 60.0, &prices);
        assert_eq!(minute.cost_micro_usd, 0);
        assert_eq!(minute.audio_seconds, 60.0);
        assert_eq!(minute.key_source.as_str(), "local");
        assert_eq!(minute.provider, "local");
    }

    #[test]
    fn micro_usd_never_records_a_paid_call_as_free() {
        assert_eq!(micro_usd(0.000_000_1), 1);
        assert_eq!(micro_usd(0.0), 0);
        assert_eq!(micro_usd(f64::NAN), 0);
        assert_eq!(micro_usd(-1.0), 0);
        assert_eq!(micro_usd(1.5), 1_500_000);
    }

    #[test]
    fn batcher_is_due_when_full_or_old_and_restores_failed_batches_in_order() {
        let start = Instant::now();
        let mut batcher = UsageBatcher::new(3, Duration::from_secs(2));
        let record = |n: i64| UsageRecord {
            characters: n,
            ..UsageRecord::base(ctx(), "x", "m", "op")
        };
        batcher.push(start, record(1));
        batcher.push(start, record(2));
        assert!(!batcher.is_due(start + Duration::from_secs(1)));
        assert!(batcher.is_due(start + Duration::from_secs(2)), "aged");
        assert_eq!(batcher.deadline(), Some(start + Duration::from_secs(2)));
        batcher.push(start, record(3));
        assert!(batcher.is_due(start), "full");
        let batch = batcher.take();
        assert!(batcher.is_empty() && batcher.deadline().is_none());
        batcher.push(start + Duration::from_secs(5), record(4));
        batcher.restore(start + Duration::from_secs(5), batch);
        let order: Vec<i64> = batcher.take().iter().map(|r| r.characters).collect();
        assert_eq!(order, vec![1, 2, 3, 4]);
    }
}
