//! Anthropic's streamed reply: arbitrary bytes through the SSE decoder (in two chunks), each
//! event through the event parser and the reply assembler; never a panic.
#![no_main]

use engine::vendors::anthropic::{self, ReplyAssembler};
use engine::vendors::sse::SseDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(bytes.len());
    let mut decoder = SseDecoder::new();
    let mut events = decoder.push(&bytes[..cut]).unwrap_or_default();
    events.extend(decoder.push(&bytes[cut..]).unwrap_or_default());
    let mut assembler = ReplyAssembler::default();
    for event in events {
        if let Ok(parsed) = anthropic::parse_event(event.event.as_deref(), &event.data) {
            let _ = assembler.apply(parsed);
        }
    }
    let _ = anthropic::http_error(529, &reqwest::header::HeaderMap::new(), bytes);
});
