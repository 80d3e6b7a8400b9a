//! A live check of each configured vendor key: one minimal real call per vendor, reporting
//! latency or the categorized error. Backs `interviewcraft check-vendors`; it costs a few
//! tokens, one second of audio and a handful of characters.

use std::time::{Duration, Instant};

use super::anthropic::{AnthropicConfig, AnthropicLlm};
use super::deepgram::{DeepgramConfig, DeepgramStt};
use super::elevenlabs::{ElevenLabsConfig, ElevenLabsTts};
use super::error::{ErrorCategory, Vendor, VendorError};
use super::{
    ChatMessage, LanguageModel, LlmEvent, LlmRequest, SpeechToText, SttEvent, TextToSpeech,
    TtsEvent,
};

/// Which vendors to check, with what configuration (`None` skips a vendor).
#[derive(Debug, Clone)]
pub struct CheckConfig {
    pub deepgram: Option<DeepgramConfig>,
    pub anthropic: Option<AnthropicConfig>,
    pub elevenlabs: Option<ElevenLabsConfig>,
    /// Deadline per vendor.
    pub timeout: Duration,
}

/// Latencies measured by a successful check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckLatency {
    /// Handshake or time to response headers.
    pub connect: Option<Duration>,
    /// Time to first token / first audio; for STT the time to the closing Metadata.
    pub first_result: Option<Duration>,
    pub total: Duration,
    /// Model or voice checked.
    pub detail: String,
}

/// The outcome for one vendor.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorCheck {
    pub vendor: Vendor,
    pub outcome: Result<CheckLatency, VendorError>,
}

/// Outcomes for every configured vendor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckReport {
    pub results: Vec<VendorCheck>,
}

impl CheckReport {
    pub fn all_ok(&self) -> bool {
        self.results.iter().all(|r| r.outcome.is_ok())
    }
}

/// Checks every configured vendor, one after the other.
pub async fn check_all(config: &CheckConfig) -> CheckReport {
    let mut results = Vec::new();
    if let Some(c) = &config.deepgram {
        let outcome = with_deadline(Vendor::Deepgram, config.timeout, check_deepgram(c)).await;
        results.push(VendorCheck {
            vendor: Vendor::Deepgram,
            outcome,
        });
    }
    if let Some(c) = &config.anthropic {
        let outcome = with_deadline(Vendor::Anthropic, config.timeout, check_anthropic(c)).await;
        results.push(VendorCheck {
            vendor: Vendor::Anthropic,
            outcome,
        });
    }
    if let Some(c) = &config.elevenlabs {
        let outcome = with_deadline(Vendor::ElevenLabs, config.timeout, check_elevenlabs(c)).await;
        results.push(VendorCheck {
            vendor: Vendor::ElevenLabs,
            outcome,
        });
    }
    CheckReport { results }
}

async fn with_deadline(
    vendor: Vendor,
    timeout: Duration,
    f: impl std::future::Future<Output = Result<CheckLatency, VendorError>>,
) -> Result<CheckLatency, VendorError> {
    tokio::time::timeout(timeout, f).await.unwrap_or_else(|_| {
        Err(VendorError::new(
            vendor,
            ErrorCategory::Timeout,
            "the check did not finish in time",
        ))
    })
}

async fn check_anthropic(config: &AnthropicConfig) -> Result<CheckLatency, VendorError> {
    let mut config = config.clone();
    config.max_tokens = 16;
    config.cache_system_prompt = None;
    let llm = AnthropicLlm::new(config)?;
    let stream = llm
        .stream(LlmRequest {
            system: String::new(),
            messages: vec![ChatMessage::user("Reply with the single word: ready")],
            ..LlmRequest::default()
        })
        .await?;
    match stream.collect().await.1 {
        Some(LlmEvent::Finished { report, .. }) => Ok(CheckLatency {
            connect: report.timing.time_to_headers,
            first_result: report.timing.time_to_first_text,
            total: report.timing.total,
            detail: report.model,
        }),
        Some(LlmEvent::Failed { error, .. }) => Err(error),
        _ => Err(VendorError::new(
            Vendor::Anthropic,
            ErrorCategory::Protocol,
            "the stream ended without a result",
        )),
    }
}

async fn check_deepgram(config: &DeepgramConfig) -> Result<CheckLatency, VendorError> {
    let started = Instant::now();
    let stt = DeepgramStt::new(config.clone());
    let mut session = stt.start().await?;
    let connect = started.elapsed();
    let silence = vec![0i16; config.params.sample_rate as usize / 10];
    for _ in 0..10 {
        let _ = session.input.push_pcm(&silence);
    }
    session
        .input
        .close()
        .await
        .map_err(|e| VendorError::new(Vendor::Deepgram, ErrorCategory::Network, e.to_string()))?;
    while let Some(event) = session.events.recv().await {
        match event {
            SttEvent::Closed(report) => {
                return Ok(CheckLatency {
                    connect: Some(connect),
                    first_result: Some(started.elapsed()),
                    total: report.timing.total,
                    detail: report.model,
                });
            }
            SttEvent::Failed { error, .. } | SttEvent::Reconnecting { error, .. } => {
                return Err(error);
            }
            _ => {}
        }
    }
    Err(VendorError::new(
        Vendor::Deepgram,
        ErrorCategory::Protocol,
        "the session ended without closing",
    ))
}

async fn check_elevenlabs(config: &ElevenLabsConfig) -> Result<CheckLatency, VendorError> {
    let tts = ElevenLabsTts::new(config.clone());
    let mut session = tts.start().await?;
    let send = |r: Result<(), super::AudioRejected>| {
        r.map_err(|e| VendorError::new(Vendor::ElevenLabs, ErrorCategory::Network, e.to_string()))
    };
    send(session.input.push_text("Ready. ").await)?;
    send(session.input.finish().await)?;
    while let Some(event) = session.events.recv().await {
        match event {
            TtsEvent::Done(report) => {
                return Ok(CheckLatency {
                    connect: report.timing.connect,
                    first_result: report.timing.time_to_first_audio,
                    total: report.timing.total,
                    detail: format!("{} / {}", config.model_id, config.voice_id),
                });
            }
            TtsEvent::Failed { error, .. } => return Err(error),
            TtsEvent::Audio(_) => {}
        }
    }
    Err(VendorError::new(
        Vendor::ElevenLabs,
        ErrorCategory::Protocol,
        "the session ended without a final",
    ))
}
