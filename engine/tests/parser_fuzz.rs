//! Protects every parser of vendor frames against panics: arbitrary text, arbitrary JSON and
//! arbitrary byte chunking never panic (they return errors or ignore what they do not know).

use engine::vendors::anthropic::{self, ReplyAssembler};
use engine::vendors::sse::SseDecoder;
use engine::vendors::{deepgram, elevenlabs};
use proptest::prelude::*;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// Arbitrary JSON, with a bias towards the vendors' own `type` names and field names.
fn arb_json() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "type",
        "Results",
        "Metadata",
        "SpeechStarted",
        "UtteranceEnd",
        "Error",
        "message_start",
        "content_block_start",
        "content_block_delta",
        "message_delta",
        "error",
        "text_delta",
        "index",
        "delta",
        "usage",
        "channel",
        "alternatives",
        "words",
        "start",
        "duration",
        "audio",
        "isFinal",
        "alignment",
        "normalizedAlignment",
        "chars",
        "charStartTimesMs",
        "charDurationsMs",
        "detail",
        "status",
        "message",
        "timestamp",
        "last_word_end",
        "text",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        names.clone().prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn deepgram_parser_never_panics(text in ".{0,200}", v in arb_json()) {
        let _ = deepgram::parse_server_message(&text);
        if let Ok(deepgram::ServerMessage::Results(r)) = deepgram::parse_server_message(&v.to_string()) {
            let _ = r.to_transcript(1.5);
        }
        let _ = deepgram::http_error(400, &HeaderMap::new(), v.to_string().as_bytes());
    }

    #[test]
    fn anthropic_event_parser_and_assembler_never_panic(name in prop::option::of("[a-z_]{0,20}"), v in arb_json(), text in ".{0,100}") {
        let mut a = ReplyAssembler::default();
        for data in [v.to_string(), text] {
            if let Ok(e) = anthropic::parse_event(name.as_deref(), &data) {
                let _ = a.apply(e);
            }
        }
        let _ = anthropic::http_error(500, &HeaderMap::new(), v.to_string().as_bytes());
    }

    #[test]
    fn sse_decoder_never_panics_and_is_chunking_invariant(bytes in prop::collection::vec(any::<u8>(), 0..400), cut in 0usize..400) {
        let whole = SseDecoder::new().push(&bytes);
        let cut = cut.min(bytes.len());
        let mut d = SseDecoder::new();
        let mut parts = d.push(&bytes[..cut]).unwrap_or_default();
        parts.extend(d.push(&bytes[cut..]).unwrap_or_default());
        // A split inside a multi-byte UTF-8 character may decode differently (lossy), so
        // only compare pure-ASCII inputs.
        if bytes.is_ascii() {
            prop_assert_eq!(whole.unwrap_or_default(), parts);
        }
    }

    #[test]
    fn elevenlabs_parser_never_panics(text in ".{0,200}", v in arb_json()) {
        let _ = elevenlabs::parse_server_message(&text);
        let _ = elevenlabs::parse_server_message(&v.to_string());
        let _ = elevenlabs::http_error(401, &tokio_tungstenite::tungstenite::http::HeaderMap::new(), v.to_string().as_bytes());
    }
}
