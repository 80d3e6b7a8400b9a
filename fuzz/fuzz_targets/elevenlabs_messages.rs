//! ElevenLabs' WebSocket messages (audio chunks with alignment, final, errors): parsed or
//! refused, never a panic.
#![no_main]

use engine::vendors::elevenlabs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = elevenlabs::parse_server_message(&text);
    let _ = elevenlabs::http_error(
        401,
        &tokio_tungstenite::tungstenite::http::HeaderMap::new(),
        data,
    );
});
