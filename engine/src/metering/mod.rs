//! Usage metering: what each vendor call cost, recorded without any text.
//!
//! [`UsageRecord`]s are built from the vendor clients' reports (tokens, audio seconds,
//! characters, latency, cost from the configured [`PriceTable`], by the model each call used);
//! [`UsageBatcher`] decides when
//! a batch is due, and [`store::insert_batch`] writes one. The `UsageMeter` actor ties them
//! together.

pub mod store;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::ids::{AccountId, InterviewId};

use crate::vendors::Vendor;
use crate::vendors::usage::{LlmReport, SttReport, TokenPrices, TtsReport};

/// Prices of every vendor, in US dollars, per model: the clients are configured from it (each
/// with its own model's prices, a fallback model with the fallback's) and per-minute STT rows
/// are priced by the model of the row. In the settings file it is the `[prices]` table:
///
/// ```toml
/// [prices.llm."claude-haiku-4-5"]   # per million tokens; cache prices follow from the input
/// input_per_mtok = 1.0              # price (5-minute write 1.25x, 1-hour write 2x, read 0.1x)
/// output_per_mtok = 5.0             # unless given
/// [prices.stt."nova-3"]
/// per_minute = 0.0077
/// [prices.tts."eleven_flash_v2_5"]
/// per_1k_chars = 0.05
/// ```
///
/// `Default` is empty: the shipped prices are the server's embedded settings file, and a start
/// checks ([`PriceTable::require`]) that every configured model has one.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriceTable {
    /// Anthropic models by id.
    pub llm: BTreeMap<String, LlmPrice>,
    /// Deepgram models by id.
    pub stt: BTreeMap<String, SttPrice>,
    /// ElevenLabs models by id.
    pub tts: BTreeMap<String, TtsPrice>,
}

/// A language model's prices per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmPrice {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_5m_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_per_mtok: Option<f64>,
}

impl LlmPrice {
    /// The client's prices: the cache prices given, else the documented multipliers.
    pub fn token_prices(&self) -> TokenPrices {
        let base = TokenPrices::from_base(self.input_per_mtok, self.output_per_mtok);
        TokenPrices {
            cache_write_5m_per_mtok: self
                .cache_write_5m_per_mtok
                .unwrap_or(base.cache_write_5m_per_mtok),
            cache_write_1h_per_mtok: self
                .cache_write_1h_per_mtok
                .unwrap_or(base.cache_write_1h_per_mtok),
            cache_read_per_mtok: self.cache_read_per_mtok.unwrap_or(base.cache_read_per_mtok),
            ..base
        }
    }
}

/// A speech-to-text model's streaming price.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SttPrice {
    pub per_minute: f64,
}

/// A text-to-speech model's price.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtsPrice {
    pub per_1k_chars: f64,
}

/// A model that must have a price, and what configured it (named in the start error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PricedModel<'a> {
    Llm { model: &'a str, setting: &'a str },
    Stt { model: &'a str, setting: &'a str },
    Tts { model: &'a str, setting: &'a str },
}

impl PriceTable {
    /// The prices of a Claude model.
    pub fn llm_prices(&self, model: &str) -> Option<TokenPrices> {
        self.llm.get(model).map(LlmPrice::token_prices)
    }

    /// The streaming price per minute of an STT model.
    pub fn stt_per_minute(&self, model: &str) -> Option<f64> {
        self.stt.get(model).map(|p| p.per_minute)
    }

    /// The price per thousand characters of a TTS model.
    pub fn tts_per_1k_chars(&self, model: &str) -> Option<f64> {
        self.tts.get(model).map(|p| p.per_1k_chars)
    }

    /// Every price is a finite number of dollars, zero or more.
    pub fn validate(&self) -> Result<(), String> {
        let mut prices: Vec<(String, f64)> = Vec::new();
        for (model, p) in &self.llm {
            let name = |field: &str| format!("prices.llm.\"{model}\".{field}");
            prices.push((name("input_per_mtok"), p.input_per_mtok));
            prices.push((name("output_per_mtok"), p.output_per_mtok));
            for (field, value) in [
                ("cache_write_5m_per_mtok", p.cache_write_5m_per_mtok),
                ("cache_write_1h_per_mtok", p.cache_write_1h_per_mtok),
                ("cache_read_per_mtok", p.cache_read_per_mtok),
            ] {
                if let Some(value) = value {
                    prices.push((name(field), value));
                }
            }
        }
        for (model, p) in &self.stt {
            prices.push((format!("prices.stt.\"{model}\".per_minute"), p.per_minute));
        }
        for (model, p) in &self.tts {
            prices.push((
                format!("prices.tts.\"{model}\".per_1k_chars"),
                p.per_1k_chars,
            ));
        }
        for (name, value) in prices {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("{name} must be a number of dollars, at least 0"));
            }
        }
        Ok(())
    }

    /// Every model in `needed` has a price; the first that has none is named, with the
    /// setting that chose it.
    pub fn require(&self, needed: &[PricedModel<'_>]) -> Result<(), String> {
        for need in needed {
            let (kind, model, setting, known) = match *need {
                PricedModel::Llm { model, setting } => {
                    ("llm", model, setting, self.llm.contains_key(model))
                }
                PricedModel::Stt { model, setting } => {
                    ("stt", model, setting, self.stt.contains_key(model))
                }
                PricedModel::Tts { model, setting } => {
                    ("tts", model, setting, self.tts.contains_key(model))
                }
            };
            if !known {
                return Err(format!(
                    "no price for the {kind} model \"{model}\" ({setting}): add \
                     [prices.{kind}.\"{model}\"] to the settings file"
                ));
            }
        }
        Ok(())
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
    pub account_id: Option<AccountId>,
    pub interview_id: Option<InterviewId>,
    pub provider: Vendor,
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
    pub account_id: Option<AccountId>,
    pub interview_id: Option<InterviewId>,
    pub key_source: KeySource,
}

impl UsageRecord {
    fn base(ctx: UsageContext, provider: Vendor, model: &str, operation: &'static str) -> Self {
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
    pub fn llm(ctx: UsageContext, provider: Vendor, report: &LlmReport) -> Self {
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
    pub fn tts(ctx: UsageContext, provider: Vendor, report: &TtsReport) -> Self {
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
        provider: Vendor,
        model: &str,
        audio_seconds: f64,
        prices: &PriceTable,
    ) -> Self {
        // A local recognizer costs nothing, whatever the vendor's price. Every configured model
        // has a price (checked at start); an unknown one is recorded at no cost.
        let per_minute = if ctx.key_source == KeySource::Local {
            0.0
        } else {
            prices.stt_per_minute(model).unwrap_or(0.0)
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
        provider: Vendor,
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

    fn table() -> PriceTable {
        PriceTable {
            llm: BTreeMap::from([
                (
                    "claude-haiku-4-5".to_owned(),
                    LlmPrice {
                        input_per_mtok: 1.0,
                        output_per_mtok: 5.0,
                        cache_write_5m_per_mtok: None,
                        cache_write_1h_per_mtok: None,
                        cache_read_per_mtok: Some(0.08),
                    },
                ),
                (
                    "claude-sonnet-4-5".to_owned(),
                    LlmPrice {
                        input_per_mtok: 3.0,
                        output_per_mtok: 15.0,
                        cache_write_5m_per_mtok: None,
                        cache_write_1h_per_mtok: None,
                        cache_read_per_mtok: None,
                    },
                ),
            ]),
            stt: BTreeMap::from([
                ("nova-3".to_owned(), SttPrice { per_minute: 0.0077 }),
                ("nova-2".to_owned(), SttPrice { per_minute: 0.0058 }),
            ]),
            tts: BTreeMap::from([(
                "eleven_flash_v2_5".to_owned(),
                TtsPrice { per_1k_chars: 0.05 },
            )]),
        }
    }

    #[test]
    fn each_model_has_its_own_prices_and_cache_prices_follow_the_input_unless_given() {
        let prices = table();
        let haiku = prices.llm_prices("claude-haiku-4-5").expect("priced");
        assert_eq!((haiku.input_per_mtok, haiku.output_per_mtok), (1.0, 5.0));
        assert_eq!(haiku.cache_read_per_mtok, 0.08, "given");
        assert_eq!(haiku.cache_write_5m_per_mtok, 1.25, "derived");
        let sonnet = prices.llm_prices("claude-sonnet-4-5").expect("priced");
        assert_eq!(sonnet.output_per_mtok, 15.0);
        assert!((sonnet.cache_read_per_mtok - 0.3).abs() < 1e-9);
        assert_eq!(prices.llm_prices("claude-unknown"), None);
        assert_eq!(prices.tts_per_1k_chars("eleven_flash_v2_5"), Some(0.05));
        assert_eq!(prices.stt_per_minute("nova-3"), Some(0.0077));
    }

    #[test]
    fn a_model_without_a_price_or_a_negative_price_is_named() {
        let prices = table();
        let need = |model| PricedModel::Llm {
            model,
            setting: "ANTHROPIC_FALLBACK_MODEL",
        };
        assert_eq!(prices.require(&[need("claude-haiku-4-5")]), Ok(()));
        let error = prices
            .require(&[
                PricedModel::Stt {
                    model: "nova-3",
                    setting: "DEEPGRAM_MODEL",
                },
                need("claude-opus-9"),
            ])
            .expect_err("unpriced");
        assert!(
            error.contains("\"claude-opus-9\"") && error.contains("ANTHROPIC_FALLBACK_MODEL"),
            "{error}"
        );
        assert!(!error.contains('\n'), "one line");
        let mut negative = table();
        negative
            .stt
            .insert("nova-2".into(), SttPrice { per_minute: -1.0 });
        let error = negative.validate().expect_err("negative");
        assert!(
            error.contains("prices.stt.\"nova-2\".per_minute"),
            "{error}"
        );
        let mut nan = table();
        if let Some(p) = nan.llm.get_mut("claude-haiku-4-5") {
            p.cache_read_per_mtok = Some(f64::NAN);
        }
        assert!(nan.validate().is_err());
        assert_eq!(table().validate(), Ok(()));
    }

    fn ctx() -> UsageContext {
        UsageContext {
            account_id: Some(AccountId::now_v7()),
            interview_id: Some(InterviewId::now_v7()),
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
        let record = UsageRecord::llm(ctx(), Vendor::Anthropic, &report);
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
        let record = UsageRecord::tts(ctx(), Vendor::ElevenLabs, &report);
        assert_eq!((record.characters, record.cost_micro_usd), (200, 10_000));
        let prices = table();
        let minute = UsageRecord::stt_minute(ctx(), Vendor::Deepgram, "nova-3", 60.0, &prices);
        assert_eq!(minute.cost_micro_usd, 7_700);
        assert_eq!(minute.audio_seconds, 60.0);
        let other = UsageRecord::stt_minute(ctx(), Vendor::Deepgram, "nova-2", 60.0, &prices);
        assert_eq!(other.cost_micro_usd, 5_800, "priced by the row's own model");
    }

    #[test]
    fn local_stt_minutes_are_recorded_free_with_their_audio() {
        let local = UsageContext {
            key_source: KeySource::Local,
            ..ctx()
        };
        let prices = table();
        let minute = UsageRecord::stt_minute(local, Vendor::Local, "nova-3", 60.0, &prices);
        assert_eq!(minute.cost_micro_usd, 0);
        assert_eq!(minute.audio_seconds, 60.0);
        assert_eq!(minute.key_source.as_str(), "local");
        assert_eq!(minute.provider, Vendor::Local);
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
            ..UsageRecord::base(ctx(), Vendor::Fake, "m", "op")
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
