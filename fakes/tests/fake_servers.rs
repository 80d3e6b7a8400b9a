//! Protects the fakes' own strictness with raw clients: they must refuse what the real vendors
//! refuse (bad versions, bad bodies, over-limit sockets, malformed frames), so client bugs are
//! not hidden by a fake that accepts everything.

use std::time::Duration;

use fakes::{
    AnthropicConfig, DeepgramConfig, ElevenLabsConfig, FakeAnthropic, FakeDeepgram, FakeElevenLabs,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Sends one raw HTTP/1.1 request; returns the status and the body.
async fn http(addr: std::net::SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("fake is listening");
    let req = format!("{head}\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the fake answers and closes")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test]
async fn anthropic_refuses_missing_version_unknown_models_and_bad_roles() {
    let fake = FakeAnthropic::start(AnthropicConfig::default())
        .await
        .expect("starts");
    let ok_body = r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let head =
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\ncontent-type: application/json";
    let (status, body) = http(fake.addr(), head, ok_body).await;
    assert_eq!(status, 400, "no anthropic-version: {body}");

    let head = format!("{head}\r\nanthropic-version: 2023-06-01");
    let (status, body) = http(
        fake.addr(),
        &head,
        &ok_body.replace("claude-haiku-4-5", "gpt-4"),
    )
    .await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(v["error"]["type"], "not_found_error");
    assert!(
        v["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_"))
    );

    let two_users = r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}"#;
    let (status, body) = http(fake.addr(), &head, two_users).await;
    assert_eq!(status, 400);
    assert!(body.contains("roles must alternate"), "{body}");

    let (status, body) = http(fake.addr(), &head, ok_body).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""type":"message""#),
        "non-streaming reply is one Message"
    );
    assert_eq!(fake.counters().rejected, 3);
}

#[tokio::test]
async fn anthropic_answers_429_once_the_request_limit_is_used() {
    let fake = FakeAnthropic::start(AnthropicConfig {
        request_limit: 1,
        ..AnthropicConfig::default()
    })
    .await
    .expect("starts");
    let body = r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let head =
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\nanthropic-version: 2023-06-01";
    assert_eq!(http(fake.addr(), head, body).await.0, 200);
    let (status, body) = http(fake.addr(), head, body).await;
    assert_eq!(status, 429);
    assert!(body.contains("rate_limit_error"));
}

type ClientWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn open_deepgram(
    fake: &FakeDeepgram,
    key: &str,
    open: &mut Vec<ClientWs>,
) -> Result<(), u16> {
    let url = format!(
        "{}/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000",
        fake.base_url()
    );
    let mut req = url.into_client_request().expect("valid URL");
    req.headers_mut().insert(
        "authorization",
        format!("Token {key}").parse().expect("ascii"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => {
            open.push(ws); // keep the socket open for the rest of the test
            Ok(())
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

#[tokio::test]
async fn deepgram_refuses_sockets_over_the_per_key_concurrency_limit() {
    let fake = FakeDeepgram::start(DeepgramConfig {
        max_concurrent_per_key: 2,
        ..DeepgramConfig::default()
    })
    .await
    .expect("starts");
    let mut open = Vec::new();
    assert_eq!(open_deepgram(&fake, "k", &mut open).await, Ok(()));
    assert_eq!(open_deepgram(&fake, "k", &mut open).await, Ok(()));
    assert_eq!(open_deepgram(&fake, "k", &mut open).await, Err(429));
    assert_eq!(
        open_deepgram(&fake, "other", &mut open).await,
        Ok(()),
        "the limit is per key"
    );
    drop(open);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        open_deepgram(&fake, "k", &mut Vec::new()).await,
        Ok(()),
        "closed sockets free their slots"
    );
}

#[tokio::test]
async fn deepgram_closes_with_net0001_and_metadata_after_silence() {
    let fake = FakeDeepgram::start(DeepgramConfig {
        inactivity_timeout: Duration::from_millis(200),
        ..DeepgramConfig::default()
    })
    .await
    .expect("starts");
    let url = format!(
        "{}/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000",
        fake.base_url()
    );
    let mut req = url.into_client_request().expect("valid URL");
    req.headers_mut()
        .insert("authorization", "Token k".parse().expect("ascii"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    let mut saw_metadata = false;
    let mut close = None;
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Text(t) => saw_metadata |= t.as_str().contains(r#""type":"Metadata""#),
            Message::Close(f) => {
                close = f;
                break;
            }
            _ => {}
        }
    }
    assert!(saw_metadata);
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1011);
    assert_eq!(close.reason.as_str(), fakes::deepgram::NET0001_REASON);
}

#[tokio::test]
async fn elevenlabs_http_validates_the_body_before_the_key() {
    let fake = FakeElevenLabs::start(ElevenLabsConfig::default())
        .await
        .expect("starts");
    let head = "POST /v1/text-to-speech/v/stream?output_format=pcm_16000 HTTP/1.1\r\nhost: x\r\nxi-api-key: invalid";
    let (status, body) = http(fake.addr(), head, r#"{"model_id":"eleven_flash_v2_5"}"#).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("Field required"));
    let (status, body) = http(fake.addr(), head, r#"{"text":"hi"}"#).await;
    assert_eq!(status, 401);
    assert!(body.contains("invalid_api_key"));
}

#[tokio::test]
async fn elevenlabs_websocket_rejects_malformed_json_with_1008() {
    let fake = FakeElevenLabs::start(ElevenLabsConfig::default())
        .await
        .expect("starts");
    let url = format!(
        "{}/v1/text-to-speech/v/stream-input?output_format=pcm_16000",
        fake.ws_base_url()
    );
    let mut req = url.into_client_request().expect("valid URL");
    req.headers_mut()
        .insert("xi-api-key", "k".parse().expect("ascii"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    ws.send(Message::text("{not json")).await.expect("send");
    let mut error = None;
    let mut code = None;
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Text(t) => error = serde_json::from_str::<Value>(t.as_str()).ok(),
            Message::Close(f) => {
                code = f.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        error.expect("an error frame")["error"],
        "invalid_input_message"
    );
    assert_eq!(code, Some(1008));
}

#[tokio::test]
async fn anthropic_sends_pings_during_a_long_time_to_first_token() {
    let fake = FakeAnthropic::start(AnthropicConfig {
        time_to_first_text: Duration::from_millis(300),
        ping_interval: Duration::from_millis(50),
        time_to_message_start: Duration::ZERO,
        inter_delta: Duration::ZERO,
        ..AnthropicConfig::default()
    })
    .await
    .expect("starts");
    let body = r#"{"model":"claude-haiku-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let head =
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\nanthropic-version: 2023-06-01";
    let (status, text) = http(fake.addr(), head, body).await;
    assert_eq!(status, 200);
    assert!(text.matches("event: ping").count() >= 4, "{text}");
}
