//! Protects the vendor parsers against the real payloads recorded in providers.md (copied to
//! tests/fixtures/): if a parser stops understanding a real message, this fails.

use engine::vendors::anthropic::{self, ReplyAssembler, ReplyStep};
use engine::vendors::deepgram::{self, ServerMessage as DgMessage};
use engine::vendors::elevenlabs::{self, ServerMessage as ElMessage};
use engine::vendors::sse::SseDecoder;
use engine::vendors::{ErrorCategory, StopReason};
use reqwest::header::HeaderMap;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path} is readable: {e}"))
}

// --- Deepgram -------------------------------------------------------------------------------

#[test]
fn deepgram_recorded_final_parses_to_a_speech_final_transcript() {
    let DgMessage::Results(r) =
        deepgram::parse_server_message(&fixture("deepgram/results_final_speech_final.json"))
            .expect("recorded final parses")
    else {
        panic!("expected Results");
    };
    let t = r.to_transcript(0.0);
    assert_eq!(t.text, "For the United States of America.");
    assert!(t.is_final && t.speech_final && !t.from_finalize);
    assert_eq!(t.words.len(), 6);
    assert_eq!(t.words[0].punctuated, "For");
    assert!((t.words[0].start - 17.56).abs() < 1e-9);
    assert!((t.words[5].end - 18.66).abs() < 1e-9);
    assert_eq!(
        r.metadata.and_then(|m| m.request_id).as_deref(),
        Some("e1985d01-b8bc-42ab-a16a-e7a8419c07f2")
    );
    let shifted =
        deepgram::parse_server_message(&fixture("deepgram/results_final_speech_final.json"));
    let Ok(DgMessage::Results(r)) = shifted else {
        panic!("parses")
    };
    assert!(
        (r.to_transcript(100.0).words[0].start - 117.56).abs() < 1e-9,
        "reconnect offset applies"
    );
}

#[test]
fn deepgram_interim_parses_as_not_final() {
    let Ok(DgMessage::Results(r)) =
        deepgram::parse_server_message(&fixture("deepgram/results_interim.json"))
    else {
        panic!("interim parses");
    };
    let t = r.to_transcript(0.0);
    assert!(!t.is_final);
    assert_eq!(t.text, "for the united");
    assert_eq!(t.words.len(), 3);
}

#[test]
fn deepgram_metadata_speech_started_utterance_end_and_errors_parse() {
    assert_eq!(
        deepgram::parse_server_message(&fixture("deepgram/metadata_44s_session.json"))
            .expect("parses"),
        DgMessage::Metadata {
            request_id: "01a03ac3-92a1-79f0-ad85-2cee59754422".into(),
            duration: 44.259937
        }
    );
    assert!(matches!(
        deepgram::parse_server_message(&fixture("deepgram/metadata_empty.json")),
        Ok(DgMessage::Metadata { duration, .. }) if duration == 0.0
    ));
    assert_eq!(
        deepgram::parse_server_message(&fixture("deepgram/speech_started.json")).expect("parses"),
        DgMessage::SpeechStarted { timestamp: 9.54 }
    );
    assert_eq!(
        deepgram::parse_server_message(&fixture("deepgram/utterance_end.json")).expect("parses"),
        DgMessage::UtteranceEnd {
            last_word_end: 2.395
        }
    );
    for f in ["deepgram/error_schema.json", "deepgram/error_closing.json"] {
        assert!(
            matches!(
                deepgram::parse_server_message(&fixture(f)),
                Ok(DgMessage::Error { .. })
            ),
            "{f}"
        );
    }
    assert_eq!(
        deepgram::parse_server_message(r#"{"type":"TurnInfo"}"#).expect("parses"),
        DgMessage::Unknown("TurnInfo".into()),
        "unknown types are tolerated"
    );
}

#[test]
fn deepgram_upgrade_error_bodies_of_both_shapes_are_understood() {
    let h = HeaderMap::new();
    let e = deepgram::http_error(
        401,
        &h,
        fixture("deepgram/http_error_invalid_auth.json").as_bytes(),
    );
    assert_eq!(e.category, ErrorCategory::Auth);
    assert_eq!(e.message, "Invalid credentials.");
    assert_eq!(
        e.request_id.as_deref(),
        Some("6f7bea3e-d496-4b99-b5f8-e929cd931ed5")
    );
    let e = deepgram::http_error(
        400,
        &h,
        fixture("deepgram/http_error_bad_request.json").as_bytes(),
    );
    assert_eq!(e.category, ErrorCategory::BadRequest);
    assert!(e.message.contains("corrupt or unsupported data"));
    let e = deepgram::http_error(
        400,
        &h,
        fixture("deepgram/http_error_category_shape.json").as_bytes(),
    );
    assert_eq!(e.message, "Invalid JSON submitted.");
    let e = deepgram::http_error(429, &h, b"not json");
    assert_eq!(e.category, ErrorCategory::RateLimited);
}

// --- Anthropic ------------------------------------------------------------------------------

fn replay(sse: &str) -> (String, Vec<ReplyStep>, ReplyAssembler) {
    let mut decoder = SseDecoder::new();
    let mut assembler = ReplyAssembler::default();
    let mut text = String::new();
    let mut steps = Vec::new();
    for e in decoder
        .push(sse.as_bytes())
        .expect("fixture lines are short")
    {
        let event =
            anthropic::parse_event(e.event.as_deref(), &e.data).expect("fixture events parse");
        let step = assembler.apply(event);
        if let ReplyStep::Text(t) = &step {
            text.push_str(t);
        }
        if step != ReplyStep::Nothing {
            steps.push(step);
        }
    }
    (text, steps, assembler)
}

#[test]
fn anthropic_sdk_fixture_stream_assembles_text_stop_reason_and_usage() {
    let (text, steps, a) = replay(&fixture("anthropic/basic_response.sse"));
    assert_eq!(text, "Hello there!");
    assert_eq!(steps.last(), Some(&ReplyStep::Done(StopReason::EndTurn)));
    assert_eq!(a.usage.input_tokens, 11);
    assert_eq!(
        a.usage.output_tokens, 6,
        "the last message_delta is authoritative"
    );
}

#[test]
fn anthropic_current_usage_shape_keeps_cache_fields_and_cumulative_output() {
    let (text, steps, a) = replay(&fixture("anthropic/haiku45_current_usage.sse"));
    assert_eq!(text, "Building Mirra");
    assert!(matches!(
        steps.last(),
        Some(ReplyStep::Done(StopReason::EndTurn))
    ));
    assert_eq!(a.usage.input_tokens, 706);
    assert_eq!(a.usage.output_tokens, 13);
    assert_eq!(a.usage.cache_read_input_tokens, 0);
    assert_eq!(a.model.as_deref(), Some("claude-haiku-4-5-20251001"));
}

#[test]
fn anthropic_thinking_block_is_not_spoken_and_text_at_index_one_is() {
    let text_block = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi.\"}}\n\n";
    let stream = fixture("anthropic/thinking_block.sse") + text_block;
    let (text, _, _) = replay(&stream);
    assert_eq!(text, "Hi.");
}

#[test]
fn anthropic_refusal_and_mid_stream_error_are_recognised() {
    let (_, steps, _) = replay(
        &(fixture("anthropic/refusal_delta.sse")
            + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
    );
    assert_eq!(steps, vec![ReplyStep::Done(StopReason::Refusal)]);
    let (_, steps, _) = replay(&fixture("anthropic/mid_stream_error.sse"));
    let [ReplyStep::Failed { kind, message }] = steps.as_slice() else {
        panic!("one failure: {steps:?}");
    };
    assert_eq!(kind, "overloaded_error");
    assert_eq!(
        anthropic::category_for_error_type(kind, message, None),
        ErrorCategory::Overloaded
    );
}

#[test]
fn anthropic_http_error_body_gives_category_and_request_id() {
    let e = anthropic::http_error(
        400,
        &HeaderMap::new(),
        fixture("anthropic/http_error_invalid_request.json").as_bytes(),
    );
    assert_eq!(e.category, ErrorCategory::BadRequest);
    assert!(e.message.starts_with("messages: roles must alternate"));
    assert_eq!(
        e.request_id.as_deref(),
        Some("req_011CSHoEeqs5C35K2UUqR7Fy")
    );
    let mut h = HeaderMap::new();
    h.insert("retry-after", "7".parse().expect("static header value"));
    let e = anthropic::http_error(
        529,
        &h,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    assert_eq!(e.category, ErrorCategory::Overloaded);
    assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(7)));
}

// --- ElevenLabs -----------------------------------------------------------------------------

fn audio_chunk_fixture(durations_field: &str) -> String {
    fixture("elevenlabs/audio_chunk.json")
        .replace("<base64 of output_format bytes>", "AQACAAMA") // 1, 2, 3 as s16le
        .replace("charDurationsMs", durations_field)
}

#[test]
fn elevenlabs_audio_chunk_parses_audio_and_both_alignments() {
    let Ok(ElMessage::Audio {
        audio,
        alignment,
        normalized_alignment,
    }) = elevenlabs::parse_server_message(&audio_chunk_fixture("charDurationsMs"))
    else {
        panic!("audio chunk parses");
    };
    assert_eq!(audio, vec![1, 0, 2, 0, 3, 0]);
    let a = alignment.expect("alignment present");
    assert_eq!(a.chars.concat(), "Hello World ");
    assert_eq!(a.duration_ms[0], 104);
    assert_eq!(a.start_ms[11], 662);
    let n = normalized_alignment.expect("normalized alignment present");
    assert_eq!(n.chars[0], " ", "normalized text opens with a space");
    assert_eq!(n.chars.len(), 13);
}

#[test]
fn elevenlabs_old_chars_durations_spelling_parses_the_same() {
    let new =
        elevenlabs::parse_server_message(&audio_chunk_fixture("charDurationsMs")).expect("parses");
    let old =
        elevenlabs::parse_server_message(&audio_chunk_fixture("charsDurationsMs")).expect("parses");
    assert_eq!(new, old);
}

#[test]
fn elevenlabs_final_and_error_frames_parse_with_categories() {
    assert_eq!(
        elevenlabs::parse_server_message(&fixture("elevenlabs/final.json")),
        Ok(ElMessage::Final)
    );
    for (f, category) in [
        (
            "elevenlabs/error_input_timeout.json",
            ErrorCategory::Timeout,
        ),
        (
            "elevenlabs/error_invalid_input.json",
            ErrorCategory::BadRequest,
        ),
        (
            "elevenlabs/error_unusual_activity.json",
            ErrorCategory::Quota,
        ),
    ] {
        let Ok(ElMessage::Error { error, .. }) = elevenlabs::parse_server_message(&fixture(f))
        else {
            panic!("{f} is an error frame");
        };
        assert_eq!(elevenlabs::category_for_code(&error), Some(category), "{f}");
    }
}

#[test]
fn elevenlabs_http_error_bodies_of_every_shape_are_understood() {
    let h = HeaderMap::new();
    for (f, status, category) in [
        (
            "elevenlabs/http_invalid_api_key.json",
            401,
            ErrorCategory::Auth,
        ),
        (
            "elevenlabs/http_quota_exceeded.json",
            401,
            ErrorCategory::Quota,
        ),
        (
            "elevenlabs/http_max_character_limit.json",
            400,
            ErrorCategory::BadRequest,
        ),
        ("elevenlabs/http_newer_shape.json", 401, ErrorCategory::Auth),
        (
            "elevenlabs/http_validation_422.json",
            422,
            ErrorCategory::BadRequest,
        ),
    ] {
        let e = elevenlabs::http_error(status, &h, fixture(f).as_bytes());
        assert_eq!(e.category, category, "{f}");
        assert!(!e.message.is_empty());
    }
    let e = elevenlabs::http_error(
        422,
        &h,
        fixture("elevenlabs/http_validation_422.json").as_bytes(),
    );
    assert_eq!(e.message, "Field required");
}
