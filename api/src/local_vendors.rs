//! Keyless local mode: a vendor kind without a key is served on this machine. With
//! `LOCAL_VENDORS=local` (the default) that is an in-process local implementation where there
//! is one, and the protocol fakes (on loopback) for the rest; with `LOCAL_VENDORS=fakes` (tests)
//! it is the fakes only. The start-up log, `GET /health` and the page say which serves what,
//! and what to install when a local implementation is missing.

use std::sync::Arc;
use std::time::Duration;

use engine::engine::{LocalVendors, VendorEndpoints};
use engine::vendors::espeak::{EspeakConfig, EspeakTts};
use engine::vendors::local_interviewer::LocalInterviewer;
use engine::vendors::local_stt::{LocalStt, LocalSttConfig};
use fakes::{FakeVendors, FakeVendorsConfig};
use serde::Serialize;

use crate::configuration::{LocalVendorsMode, Settings};

/// Whether any vendor lacks a platform key (and so needs a local implementation or the fakes).
pub fn needs_fakes(settings: &Settings) -> bool {
    settings.anthropic_api_key.is_none()
        || settings.deepgram_api_key.is_none()
        || settings.elevenlabs_api_key.is_none()
}

/// A vendor kind whose local implementation is not available here, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalNote {
    /// `stt`, `llm` or `tts`.
    pub kind: &'static str,
    /// What the candidate gets instead, in plain words.
    pub message: String,
    /// The Debian package that provides it, when installing one fixes it.
    pub package: Option<&'static str>,
}

/// What keyless local mode runs: the local implementations, the fakes (when some kind falls
/// back to them), and the notes on what is missing.
pub struct LocalSetup {
    pub local: LocalVendors,
    pub fakes: Option<FakeVendors>,
    pub notes: Vec<LocalNote>,
}

/// What the fake interviewer says, in turn (only with `LOCAL_VENDORS=fakes`).
const FAKE_REPLIES: &[&str] = &[
    "Hello, and welcome to your practice interview. To start, tell me about a project you are proud of.",
    "Thanks. What was the hardest problem in it, and how did you solve it?",
    "Interesting. How did you know your solution worked?",
    "If you did it again, what would you change?",
    "Thank you, that was a good conversation. That is all for today. [END]",
];

/// Where the offline recognizer is prepared and run from: `LOCAL_SPEECH_DIR`, else
/// `DATA_DIR/local-speech`.
pub fn local_speech_config(settings: &Settings) -> LocalSttConfig {
    match &settings.local_speech_dir {
        Some(dir) => LocalSttConfig::new(dir.clone()),
        None => LocalSttConfig::in_data_dir(&settings.data_dir),
    }
}

/// Sets up keyless local mode for the kinds without a platform key.
pub async fn start(settings: &Settings) -> std::io::Result<LocalSetup> {
    let mut local = LocalVendors::default();
    let mut notes = Vec::new();
    if settings.local_vendors == LocalVendorsMode::Local {
        local.llm = Some(Arc::new(LocalInterviewer::default()));
        if settings.elevenlabs_api_key.is_none() {
            let espeak = EspeakTts::new(EspeakConfig {
                program: settings.espeak_ng_program.clone(),
                ..EspeakConfig::default()
            });
            match espeak.probe().await {
                Ok(()) => local.tts = Some(Arc::new(espeak)),
                Err(reason) => notes.push(LocalNote {
                    kind: "tts",
                    message: format!(
                        "the local voice (espeak-ng) is not available ({reason}); the voice is a \
                         synthetic tone"
                    ),
                    package: Some(engine::vendors::espeak::PACKAGE),
                }),
            }
        }
        if settings.deepgram_api_key.is_none() {
            match LocalStt::start(local_speech_config(settings)).await {
                Ok(stt) => local.stt = Some(stt),
                Err(unavailable) => notes.push(LocalNote {
                    kind: "stt",
                    message: format!("speech recognition is simulated: {unavailable}"),
                    package: Some("python3-venv"),
                }),
            }
        }
    }
    let fakes_needed = (settings.deepgram_api_key.is_none() && local.stt.is_none())
        || (settings.anthropic_api_key.is_none() && local.llm.is_none())
        || (settings.elevenlabs_api_key.is_none() && local.tts.is_none());
    let fakes = if fakes_needed {
        Some(start_fakes().await?)
    } else {
        None
    };
    Ok(LocalSetup {
        local,
        fakes,
        notes,
    })
}

/// Starts the fakes on loopback with local-mode pacing (real time, realistic latencies).
async fn start_fakes() -> std::io::Result<FakeVendors> {
    let mut config = FakeVendorsConfig::default();
    config.anthropic.replies = FAKE_REPLIES.iter().map(|s| (*s).to_owned()).collect();
    config.anthropic.time_to_message_start = Duration::from_millis(150);
    config.anthropic.time_to_first_text = Duration::from_millis(100);
    // Long enough (15+ words) for the feedback after the call to score it.
    config.deepgram.unscripted_text = "(local mode: speech recognition is simulated.) In my \
        last role we moved the billing jobs to a queue, and I wrote the retry logic, so failed \
        payments dropped by 30 percent."
        .to_owned();
    config.elevenlabs.chars_per_second = 16.0;
    FakeVendors::start_all(config).await
}

/// The fakes' endpoints, for the engine.
pub fn endpoints(fakes: &FakeVendors) -> VendorEndpoints {
    VendorEndpoints {
        deepgram_url: fakes.deepgram.base_url(),
        deepgram_model: "nova-3".into(),
        anthropic_url: fakes.anthropic.base_url(),
        anthropic_model: "claude-haiku-4-5".into(),
        anthropic_fallback_model: None,
        elevenlabs_ws_url: fakes.elevenlabs.ws_base_url(),
        elevenlabs_http_url: fakes.elevenlabs.base_url(),
        elevenlabs_voice: "local-voice".into(),
    }
}
