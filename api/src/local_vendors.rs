//! Keyless local mode: with no vendor keys configured, the server starts the fake vendors in
//! process (on loopback) and interviews run against them, so a newcomer can hold a whole
//! interview with no account anywhere. The start-up log, `GET /health` and the page say so.

use std::time::Duration;

use engine::engine::VendorEndpoints;
use fakes::{FakeVendors, FakeVendorsConfig};

use crate::configuration::Settings;

/// Whether any vendor lacks a platform key (and so needs the local fakes).
pub fn needs_fakes(settings: &Settings) -> bool {
    settings.anthropic_api_key.is_none()
        || settings.deepgram_api_key.is_none()
        || settings.elevenlabs_api_key.is_none()
}

/// What the local stand-in interviewer says, in turn.
const LOCAL_REPLIES: &[&str] = &[
    "Hello, and welcome to your practice interview. To start, tell me about a project you are proud of.",
    "Thanks. What was the hardest problem in it, and how did you solve it?",
    "Interesting. How did you know your solution worked?",
    "If you did it again, what would you change?",
    "Thank you, that was a good conversation. That is all for today. [END]",
];

/// Starts the fakes on loopback with local-mode pacing (real time, realistic latencies).
pub async fn start(settings: &Settings) -> std::io::Result<FakeVendors> {
    let _ = settings;
    let mut config = FakeVendorsConfig::default();
    config.anthropic.replies = LOCAL_REPLIES.iter().map(|s| (*s).to_owned()).collect();
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
