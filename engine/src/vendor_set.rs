//! The vendor clients of one interview: built per interview, because the keys are the user's
//! own (BYOK) when they have them, and dropped with the interview (which zeroizes the keys).

use std::sync::Arc;

use crate::metering::KeySource;
use crate::vendors::{LanguageModel, SpeechToText, TextToSpeech};

/// Provider names as recorded in the usage log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorNames {
    pub stt: &'static str,
    pub llm: &'static str,
    pub tts: &'static str,
}

/// Whose key pays for each vendor kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySources {
    pub stt: KeySource,
    pub llm: KeySource,
    pub tts: KeySource,
}

/// The clients an interview talks to.
#[derive(Clone)]
pub struct VendorSet {
    pub stt: Arc<dyn SpeechToText>,
    pub llm: Arc<dyn LanguageModel>,
    /// Tried once when the primary model is overloaded or rate-limited.
    pub llm_fallback: Option<Arc<dyn LanguageModel>>,
    pub tts: Arc<dyn TextToSpeech>,
    pub names: VendorNames,
    pub key_sources: KeySources,
    /// The STT model (for per-minute usage rows).
    pub stt_model: String,
}

impl std::fmt::Debug for VendorSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorSet")
            .field("names", &self.names)
            .field("key_sources", &self.key_sources)
            .finish_non_exhaustive()
    }
}
