//! The vendor clients of one interview: built per interview, because the keys are the user's
//! own (BYOK) when they have them. The keys themselves stay in the key leaser's handles
//! ([`crate::vendors::key::KeyHandle`]), zeroized when the lease is released or revoked.

use std::sync::Arc;

use crate::metering::KeySource;
use crate::vendors::key::KeyHandle;
use crate::vendors::{LanguageModel, SpeechToText, TextToSpeech, Vendor};

/// Which vendor serves each kind, as recorded in the usage log (`local` and `fake` included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorNames {
    pub stt: Vendor,
    pub llm: Vendor,
    pub tts: Vendor,
}

/// Whose key pays for one vendor kind: fixed (local implementations, fakes) or read from the
/// client's key handle at each usage row (a revoked BYOK key fails over to the platform's).
#[derive(Debug, Clone)]
pub enum SourceOf {
    Fixed(KeySource),
    Handle(KeyHandle),
}

impl SourceOf {
    /// Whose key pays now.
    pub fn source(&self) -> KeySource {
        match self {
            SourceOf::Fixed(source) => *source,
            SourceOf::Handle(handle) => handle.source(),
        }
    }
}

/// Whose key pays for each vendor kind.
#[derive(Debug, Clone)]
pub struct KeySources {
    pub stt: SourceOf,
    pub llm: SourceOf,
    pub tts: SourceOf,
}

/// The clients an interview talks to.
#[derive(Clone)]
pub struct VendorSet {
    pub stt: Arc<dyn SpeechToText>,
    pub llm: Arc<dyn LanguageModel>,
    /// Tried once when the primary model is overloaded or rate-limited.
    pub llm_fallback: Option<Arc<dyn LanguageModel>>,
    pub tts: Arc<dyn TextToSpeech>,
    /// Whether playback flushes `tts` at each finished sentence (`[vendors] tts_flush`).
    pub tts_sentence_flush: bool,
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
