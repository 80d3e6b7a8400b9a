//! Protects the fakes from drifting away from the real wire format: raw messages captured from
//! each fake must carry every field, with the same JSON type, as the real recorded payloads in
//! tests/fixtures (the fakes may add fields, never drop or retype one).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {path} is JSON: {e}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every field of `real` exists in `fake` with the same JSON type (nulls in `real` match anything).
fn assert_shape(real: &Value, fake: &Value, path: &str) {
    if real.is_null() {
        return;
    }
    assert_eq!(
        kind(real),
        kind(fake),
        "type of {path}: real {real} vs fake {fake}"
    );
    match (real, fake) {
        (Value::Object(r), Value::Object(f)) => {
            for (k, rv) in r {
                // `model_info` in Metadata is keyed by model UUID; compare its values instead.
                if path.ends_with("model_info") && k.contains('-') {
                    let fv = f
                        .values()
                        .next()
                        .unwrap_or_else(|| panic!("{path} is empty in the fake"));
                    assert_shape(rv, fv, &format!("{path}.<uuid>"));
                    continue;
                }
                let fv = f
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing from the fake: {fake}"));
                assert_shape(rv, fv, &format!("{path}.{k}"));
            }
        }
        (Value::Array(r), Value::Array(f)) => {
            if let (Some(rv), Some(fv)) = (r.first(), f.first()) {
                assert_shape(rv, fv, &format!("{path}[0]"));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn fake_deepgram_messages_have_the_real_shapes() {
    let fake = fakes::FakeDeepgram::start(fakes::DeepgramConfig {
        script: vec!["For the United States of America.".into()],
        ..fakes::DeepgramConfig::default()
    })
    .await
    .expect("fake starts");
    let url = format!(
        "{}/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true&smart_format=true",
        fake.base_url()
    );
    let mut req = url.into_client_request().expect("valid URL");
    req.headers_mut().insert(
        "authorization",
        "Token dg-test".parse().expect("ascii header"),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    assert!(response.headers().contains_key("dg-request-id"));
    let frame = |loud: bool| -> Vec<u8> {
        (0..1600)
            .flat_map(|i| {
                (if loud && (i / 20) % 2 == 0 {
                    3000i16
                } else if loud {
                    -3000
                } else {
                    0
                })
                .to_le_bytes()
            })
            .collect()
    };
    for loud in [false; 3].into_iter().chain([true; 15]).chain([false; 20]) {
        ws.send(Message::binary(frame(loud)))
            .await
            .expect("send audio");
    }
    ws.send(Message::text(r#"{"type":"CloseStream"}"#))
        .await
        .expect("send close");
    let mut by_type: std::collections::HashMap<String, Value> = Default::default();
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).expect("fake sends JSON");
                let ty = v["type"].as_str().unwrap_or("").to_string();
                let key = if ty == "Results"
                    && v["is_final"] == true
                    && v["speech_final"] == true
                    && v["channel"]["alternatives"][0]["transcript"] != ""
                {
                    "final".to_string()
                } else if ty == "Results" && v["is_final"] == false {
                    "interim".to_string()
                } else {
                    ty
                };
                by_type.entry(key).or_insert(v);
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the fake closes after CloseStream");
    let get = |k: &str| {
        by_type
            .get(k)
            .unwrap_or_else(|| panic!("no {k} message from the fake; got {:?}", by_type.keys()))
    };
    assert_shape(
        &fixture("deepgram/results_final_speech_final.json"),
        get("final"),
        "Results",
    );
    assert_shape(
        &fixture("deepgram/results_interim.json"),
        get("interim"),
        "Results(interim)",
    );
    assert_shape(
        &fixture("deepgram/speech_started.json"),
        get("SpeechStarted"),
        "SpeechStarted",
    );
    assert_shape(
        &fixture("deepgram/utterance_end.json"),
        get("UtteranceEnd"),
        "UtteranceEnd",
    );
    assert_shape(
        &fixture("deepgram/metadata_44s_session.json"),
        get("Metadata"),
        "Metadata",
    );
    assert_eq!(
        get("final")["channel"]["alternatives"][0]["transcript"],
        "For the United States of America."
    );
}

#[tokio::test]
async fn fake_anthropic_stream_has_the_real_grammar_and_shapes() {
    let fake = fakes::FakeAnthropic::start(fakes::AnthropicConfig {
        pacing: fakes::Pacing::faster(50.0),
        ..fakes::AnthropicConfig::default()
    })
    .await
    .expect("fake starts");
    let body = serde_json::json!({"model":"claude-haiku-4-5","max_tokens":300,"stream":true,
        "messages":[{"role":"user","content":"Hello"}]});
    engine::vendors::install_tls_provider();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", fake.base_url()))
        .header("x-api-key", "sk-test")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert!(
        response.headers()["request-id"]
            .to_str()
            .is_ok_and(|r| r.starts_with("req_"))
    );
    assert!(
        response
            .headers()
            .contains_key("anthropic-ratelimit-requests-remaining")
    );
    let text = response.text().await.expect("body");
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .expect("event line")
                .to_string();
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data line");
            let v: Value = serde_json::from_str(data).expect("JSON data");
            assert_eq!(v["type"], name.as_str(), "type equals the event name");
            (name, v)
        })
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "ping")
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names[1], "content_block_start");
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    // The recorded Haiku 4.5 stream, event by event type.
    let recorded = std::fs::read_to_string(format!(
        "{}/tests/fixtures/anthropic/haiku45_current_usage.sse",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    for block in recorded.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .expect("event line");
        let data: Value = serde_json::from_str(
            block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data line"),
        )
        .expect("JSON");
        let fake_event = events
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("fake never sent {name}"));
        assert_shape(&data, &fake_event.1, name);
    }
}

/// A forced tool call: one `tool_use` block (id, name, empty `input`), its input as
/// `input_json_delta` fragments that concatenate to the scripted JSON, `stop_reason: tool_use`
/// (providers.md B.3); a `tool_choice` naming a tool that is not given is a 400.
#[tokio::test]
async fn fake_anthropic_forced_tool_call_streams_a_tool_use_block() {
    let input = r#"{"findings": [], "improved_answer": "I led it."}"#;
    let fake = fakes::FakeAnthropic::start(fakes::AnthropicConfig {
        pacing: fakes::Pacing::faster(50.0),
        replies: vec![input.to_owned()],
        ..fakes::AnthropicConfig::default()
    })
    .await
    .expect("fake starts");
    let body = |choice: &str| {
        serde_json::json!({"model":"claude-haiku-4-5","max_tokens":300,"stream":true,
            "messages":[{"role":"user","content":"Score this."}],
            "tools":[{"name":"record_answer_score","description":"d",
                "input_schema":{"type":"object","properties":{}}}],
            "tool_choice":{"type":"tool","name":choice}})
    };
    engine::vendors::install_tls_provider();
    let post = |body: Value| {
        reqwest::Client::new()
            .post(format!("{}/v1/messages", fake.base_url()))
            .header("x-api-key", "sk-test")
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
    };
    let unknown = post(body("another_tool")).await.expect("request");
    assert_eq!(unknown.status(), 400);
    let error: Value = unknown.json().await.expect("error JSON");
    assert_eq!(error["error"]["type"], "invalid_request_error");

    let text = post(body("record_answer_score"))
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    let events: Vec<Value> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data line");
            serde_json::from_str(data).expect("JSON data")
        })
        .filter(|v: &Value| v["type"] != "ping")
        .collect();
    let start = events
        .iter()
        .find(|v| v["type"] == "content_block_start")
        .expect("a block");
    let block = &start["content_block"];
    assert_eq!(block["type"], "tool_use", "{block}");
    assert_eq!(block["name"], "record_answer_score");
    assert!(
        block["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("toolu_"))
    );
    assert_eq!(block["input"], serde_json::json!({}));
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|v| v["type"] == "content_block_delta")
        .collect();
    assert!(deltas.len() > 1, "the input comes in fragments");
    let mut streamed = String::new();
    for delta in deltas {
        assert_eq!(delta["index"], start["index"]);
        assert_eq!(delta["delta"]["type"], "input_json_delta");
        streamed.push_str(delta["delta"]["partial_json"].as_str().expect("fragment"));
    }
    assert_eq!(streamed, input);
    let message_delta = events
        .iter()
        .find(|v| v["type"] == "message_delta")
        .expect("message_delta");
    assert_eq!(message_delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        events.last().map(|v| &v["type"]),
        Some(&Value::from("message_stop"))
    );
}

#[tokio::test]
async fn fake_elevenlabs_messages_have_the_real_shapes() {
    let fake = fakes::FakeElevenLabs::start(fakes::ElevenLabsConfig {
        pacing: fakes::Pacing::faster(50.0),
        ..fakes::ElevenLabsConfig::default()
    })
    .await
    .expect("fake starts");
    let url = format!(
        "{}/v1/text-to-speech/v1/stream-input?model_id=eleven_flash_v2_5&output_format=pcm_16000",
        fake.ws_base_url()
    );
    let mut req = url.into_client_request().expect("valid URL");
    req.headers_mut()
        .insert("xi-api-key", "xi-test".parse().expect("ascii header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    for m in [
        r#"{"text":" "}"#,
        r#"{"text":"Hello World "}"#,
        r#"{"text":""}"#,
    ] {
        ws.send(Message::text(m)).await.expect("send");
    }
    let mut messages = Vec::new();
    let mut close_code = None;
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Text(t) => {
                    messages.push(serde_json::from_str::<Value>(t.as_str()).expect("JSON"))
                }
                Message::Close(f) => {
                    close_code = f.map(|f| u16::from(f.code));
                    break;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the fake closes after end-of-stream");
    assert_eq!(close_code, Some(1000));
    let last = messages.pop().expect("a final message");
    assert_eq!(last, fixture("elevenlabs/final.json"));
    let mut real_chunk = fixture("elevenlabs/audio_chunk.json");
    real_chunk["isFinal"] = Value::Null;
    assert_shape(&real_chunk, &messages[0], "audio chunk");
}
