//! Deepgram's server messages (Results, Metadata, SpeechStarted, UtteranceEnd, errors): parsed
//! or refused, never a panic, and a parsed Results always converts to a transcript.
#![no_main]

use engine::vendors::deepgram::{self, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(ServerMessage::Results(results)) = deepgram::parse_server_message(&text) {
        for offset in [0.0, 1.5, -1.0, f64::MAX] {
            let _ = results.to_transcript(offset);
        }
    }
    let _ = deepgram::http_error(400, &reqwest::header::HeaderMap::new(), data);
});
