//! Fake ElevenLabs text-to-speech: WebSocket `/v1/text-to-speech/{voice}/stream-input` and
//! HTTP `POST /v1/text-to-speech/{voice}/stream` (providers.md C and D.3).
//!
//! Text is buffered per the chunk-length schedule (or `flush`, `try_trigger_generation`,
//! `auto_mode`, end-of-stream), "synthesized" as a sine tone whose length follows a speaking
//! rate, and sent as base64 PCM chunks with per-character alignment (relative to each chunk,
//! `charDurationsMs` spelling). First audio comes `ttfb` after the triggering text, later
//! chunks `realtime_factor` times faster than playback. `{"text":""}` ends the stream with
//! `{"audio":null,"isFinal":true,...}` and close 1000; silence past `inactivity_timeout`
//! ends it with `input_timeout_exceeded` and close 1008. Multi-context sockets
//! (`multi-stream-input`) are not served.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::{Pacing, Rng};
use crate::fault::{Fault, FaultBook, GateAction, Protocol, UnitGate, key_is_valid};
use crate::http::{
    ChunkedBody, Listener, ReadError, Request, accept_websocket, read_request, write_response,
};

/// How the fake ElevenLabs behaves.
#[derive(Debug, Clone)]
pub struct ElevenLabsConfig {
    pub listen: SocketAddr,
    /// Scales `ttfb` and chunk pacing.
    pub pacing: Pacing,
    /// Delay from the triggering text to the first audio chunk of a generation.
    pub ttfb: Duration,
    /// How much faster than playback audio is rendered (the real service: about 2–5×;
    /// 1.0 is a real-time stream).
    pub realtime_factor: f64,
    /// Speaking rate at `speed` 1.0.
    pub chars_per_second: f64,
    /// Audio per chunk.
    pub chunk_duration: Duration,
    /// The tone standing in for speech.
    pub tone_hz: f64,
    pub amplitude: i16,
    /// Default when the client sends no `inactivity_timeout` query parameter.
    pub inactivity_timeout: Duration,
    pub seed: u64,
}

impl Default for ElevenLabsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pacing: Pacing::REAL_TIME,
            ttfb: Duration::from_millis(200),
            realtime_factor: 3.0,
            chars_per_second: 15.0,
            chunk_duration: Duration::from_millis(250),
            tone_hz: 220.0,
            amplitude: 6000,
            inactivity_timeout: Duration::from_secs(20),
            seed: 0xe1e7_1ab5,
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    ws_connections: AtomicU64,
    http_requests: AtomicU64,
    rejected: AtomicU64,
    characters: AtomicU64,
    audio_micros: AtomicU64,
    chunks: AtomicU64,
    flushes: AtomicU64,
    end_of_streams: AtomicU64,
    keepalives: AtomicU64,
    timeouts: AtomicU64,
}

/// A snapshot of what the fake ElevenLabs received and sent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ElevenLabsCounters {
    pub ws_connections: u64,
    pub http_requests: u64,
    /// Upgrades or requests refused (auth, validation, injected faults).
    pub rejected: u64,
    /// Characters received for synthesis (keepalive spaces excluded).
    pub characters: u64,
    /// Seconds of audio sent.
    pub audio_seconds: f64,
    pub chunks: u64,
    pub flushes: u64,
    pub end_of_streams: u64,
    pub keepalives: u64,
    /// Sockets closed with `input_timeout_exceeded`.
    pub inactivity_closes: u64,
}

struct Inner {
    config: ElevenLabsConfig,
    faults: FaultBook,
    rng: Rng,
    stats: Stats,
}

/// A running fake ElevenLabs.
pub struct FakeElevenLabs {
    listener: Listener,
    inner: Arc<Inner>,
}

impl FakeElevenLabs {
    pub async fn start(config: ElevenLabsConfig) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            rng: Rng::new(config.seed),
            config,
            faults: FaultBook::default(),
            stats: Stats::default(),
        });
        let listener = Listener::serve(inner.config.listen, &inner, handle).await?;
        Ok(Self { listener, inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// `ws://127.0.0.1:PORT`, for the `stream-input` WebSocket.
    pub fn ws_base_url(&self) -> String {
        format!("ws://{}", self.addr())
    }

    /// `http://127.0.0.1:PORT`, for the HTTP `/stream` endpoint (same port).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn counters(&self) -> ElevenLabsCounters {
        let s = &self.inner.stats;
        let g = |a: &AtomicU64| a.load(Ordering::SeqCst);
        ElevenLabsCounters {
            ws_connections: g(&s.ws_connections),
            http_requests: g(&s.http_requests),
            rejected: g(&s.rejected),
            characters: g(&s.characters),
            audio_seconds: g(&s.audio_micros) as f64 / 1e6,
            chunks: g(&s.chunks),
            flushes: g(&s.flushes),
            end_of_streams: g(&s.end_of_streams),
            keepalives: g(&s.keepalives),
            inactivity_closes: g(&s.timeouts),
        }
    }

    pub async fn shutdown(self) {
        self.listener.shutdown().await;
    }
}

fn sample_rate_of(format: &str) -> Option<u32> {
    match format {
        "pcm_8000" => Some(8000),
        "pcm_16000" => Some(16000),
        "pcm_22050" => Some(22050),
        "pcm_24000" => Some(24000),
        "pcm_32000" => Some(32000),
        "pcm_44100" => Some(44100),
        "pcm_48000" => Some(48000),
        _ => None,
    }
}

/// 400 `invalid_output_format`: the fake speaks PCM only (WebSocket and HTTP alike).
async fn refuse_output_format(inner: &Inner, stream: &mut TcpStream) {
    let why = detail(
        "invalid_output_format",
        "The fake serves pcm_* output formats only",
    );
    refuse(inner, stream, 400, why, vec![]).await;
}

async fn refuse(
    inner: &Inner,
    stream: &mut TcpStream,
    status: u16,
    detail: Value,
    extra: Vec<(&'static str, String)>,
) {
    inner.stats.rejected.fetch_add(1, Ordering::SeqCst);
    let mut headers = extra;
    headers.push(("content-type", "application/json".to_string()));
    headers.push(("request-id", inner.rng.hex(32)));
    let body = json!({ "detail": detail }).to_string();
    let _ = write_response(stream, status, &headers, body.as_bytes()).await;
}

fn detail(status: &str, message: &str) -> Value {
    json!({"status": status, "message": message})
}

/// An HTTP refusal: status, `detail` body, extra headers.
type Refusal = (u16, Value, Vec<(&'static str, String)>);

/// The HTTP answer for a pre-stream fault, if this fault has one.
fn http_fault(fault: &Fault, ws: bool) -> Option<Refusal> {
    Some(match fault {
        Fault::Unauthorized => (401, detail("invalid_api_key", "Invalid API key"), vec![]),
        Fault::QuotaExceeded if !ws => (
            401,
            detail(
                "quota_exceeded",
                "This request exceeds your quota of 10000. You have 0 credits remaining.",
            ),
            vec![],
        ),
        Fault::RateLimited { retry_after } => (
            429,
            detail(
                "too_many_concurrent_requests",
                "Too many concurrent requests for your subscription.",
            ),
            retry_after
                .map(|s| vec![("retry-after", s.to_string())])
                .unwrap_or_default(),
        ),
        Fault::Overloaded => (
            429,
            detail(
                "system_busy",
                "The system is experiencing heavy traffic, please try again later.",
            ),
            vec![],
        ),
        Fault::ServerError { .. } => (
            500,
            detail("internal_error", "Internal server error"),
            vec![],
        ),
        _ => return None,
    })
}

async fn handle(inner: Arc<Inner>, mut stream: TcpStream) {
    let req = match read_request(&mut stream).await {
        Ok(r) => r,
        Err(ReadError::Malformed(why)) => {
            let _ = write_response(&mut stream, 400, &[], why.as_bytes()).await;
            return;
        }
        Err(_) => return,
    };
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", "text-to-speech", voice, "stream-input"]
            if !voice.is_empty() && req.is_websocket_upgrade() =>
        {
            ws_session(&inner, stream, &req).await
        }
        ["v1", "text-to-speech", voice, "stream"] if !voice.is_empty() && req.method == "POST" => {
            http_stream(&inner, stream, &req).await
        }
        _ => {
            refuse(
                &inner,
                &mut stream,
                404,
                detail("not_found", "Not found"),
                vec![],
            )
            .await
        }
    }
}

/// One generated chunk, ready to send.
#[derive(Debug, Clone)]
struct Chunk {
    pcm: Vec<u8>,
    seconds: f64,
    alignment: Value,
    normalized: Value,
}

/// Synthesizes `text` into chunks of `chunk_duration` with alignment relative to each chunk.
fn synthesize(config: &ElevenLabsConfig, text: &str, rate: u32, speed: f64) -> Vec<Chunk> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let cps = config.chars_per_second.max(1.0) * speed.clamp(0.5, 2.0);
    let per_char_ms = 1000.0 / cps;
    let total_ms = per_char_ms * chars.len() as f64;
    let total_samples = (total_ms / 1000.0 * rate as f64).round() as usize;
    let chunk_samples = ((config.chunk_duration.as_secs_f64() * rate as f64) as usize).max(1);
    let mut out = Vec::new();
    let mut first = 0usize;
    while first < total_samples {
        let last = (first + chunk_samples).min(total_samples);
        let pcm: Vec<u8> = (first..last)
            .flat_map(|i| {
                let t = i as f64 / rate as f64;
                let s = (config.amplitude as f64
                    * (2.0 * std::f64::consts::PI * config.tone_hz * t).sin())
                    as i16;
                s.to_le_bytes()
            })
            .collect();
        let start_ms = first as f64 * 1000.0 / rate as f64;
        let end_ms = last as f64 * 1000.0 / rate as f64;
        let mut a_chars = Vec::new();
        let mut a_starts = Vec::new();
        let mut a_durs = Vec::new();
        for (i, c) in chars.iter().enumerate() {
            let s = i as f64 * per_char_ms;
            if s >= start_ms && s < end_ms {
                a_chars.push(c.to_string());
                a_starts.push((s - start_ms).round() as u64);
                a_durs.push(per_char_ms.round() as u64);
            }
        }
        let alignment =
            json!({"chars": a_chars, "charStartTimesMs": a_starts, "charDurationsMs": a_durs});
        let mut normalized = alignment.clone();
        if first == 0 {
            normalized = json!({
                "chars": std::iter::once(" ".to_string()).chain(a_chars.iter().cloned()).collect::<Vec<_>>(),
                "charStartTimesMs": std::iter::once(0).chain(a_starts.iter().copied()).collect::<Vec<_>>(),
                "charDurationsMs": std::iter::once(0).chain(a_durs.iter().copied()).collect::<Vec<_>>(),
            });
        }
        out.push(Chunk {
            seconds: (last - first) as f64 / rate as f64,
            pcm,
            alignment,
            normalized,
        });
        first = last;
    }
    out
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    }))
}

fn error_frame(error: &str, message: &str) -> Message {
    Message::text(json!({"message": message, "error": error, "code": 1008}).to_string())
}

const TIMEOUT_MESSAGE: &str = "Have not received a new text input within the timeout of 20.0 seconds. Streaming input terminated. Please make sure to either feed the input in the timely manner, or to send the end of input text (empty string \"\") when done.";
const INVALID_INPUT: &str = "Could not parse input message, make sure it is a json and follows the schema outlined in protocol.";

async fn ws_session(inner: &Inner, mut stream: TcpStream, req: &Request) {
    let format = req.query("output_format").unwrap_or("mp3_44100_128");
    let header_key = req.header("xi-api-key").map(str::to_string).or_else(|| {
        req.query("authorization")
            .map(|a| a.trim_start_matches("Bearer ").to_string())
    });
    let mut fault = Fault::None;
    if let Some(key) = &header_key {
        fault = if key_is_valid(key) {
            inner.faults.next_for(key, Protocol::WebSocket)
        } else {
            Fault::Unauthorized
        };
        if let Fault::SlowFirstByte(d) = fault {
            tokio::time::sleep(d).await;
        }
        if let Some((status, d, extra)) = http_fault(&fault, true) {
            return refuse(inner, &mut stream, status, d, extra).await;
        }
    }
    let Some(rate) = sample_rate_of(format) else {
        return refuse_output_format(inner, &mut stream).await;
    };
    let inactivity = req
        .query("inactivity_timeout")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| (1..=180).contains(s))
        .map(Duration::from_secs)
        .unwrap_or(inner.config.inactivity_timeout);
    let auto_mode = req.query("auto_mode") == Some("true");
    let Ok(ws) = accept_websocket(stream, req, &[]).await else {
        return;
    };
    inner.stats.ws_connections.fetch_add(1, Ordering::SeqCst);
    let (mut sink, mut source) = ws.split();
    let pace = inner.config.pacing;
    let b64 = base64::engine::general_purpose::STANDARD;

    let mut authed = header_key.is_some();
    let mut initialized = false;
    let mut speed = 1.0;
    let mut schedule: Vec<usize> = vec![120, 160, 250, 290];
    let mut schedule_index = 0;
    let mut buffer = String::new();
    let mut queue: VecDeque<Chunk> = VecDeque::new();
    let mut next_due = Instant::now();
    let mut idle_deadline = Instant::now() + inactivity;
    let mut end_of_stream = false;
    let mut stalled = false;
    let mut gate = UnitGate::new(&fault);

    loop {
        if end_of_stream && queue.is_empty() && !stalled {
            let final_msg = json!({"audio": null, "isFinal": true, "normalizedAlignment": null, "alignment": null});
            let _ = sink.send(Message::text(final_msg.to_string())).await;
            let _ = sink.send(close(1000, "")).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(Ok(m)) = source.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
            return;
        }
        let sending = !queue.is_empty() && !stalled;
        let watching_idle = !end_of_stream && !stalled;
        tokio::select! {
            msg = source.next() => {
                let text = match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    let _ = sink.send(error_frame("invalid_input_message", INVALID_INPUT)).await;
                    let _ = sink.send(close(1008, INVALID_INPUT)).await;
                    return;
                };
                let Some(t) = v.get("text").and_then(Value::as_str) else {
                    let _ = sink.send(error_frame("invalid_input_message", INVALID_INPUT)).await;
                    let _ = sink.send(close(1008, INVALID_INPUT)).await;
                    return;
                };
                idle_deadline = Instant::now() + inactivity;
                if !initialized {
                    if t != " " {
                        let _ = sink.send(error_frame("invalid_input_message", "The first message must have text set to a single space.")).await;
                        let _ = sink.send(close(1008, INVALID_INPUT)).await;
                        return;
                    }
                    if !authed {
                        let key = ["xi_api_key", "xi-api-key"]
                            .iter()
                            .find_map(|k| v.get(*k).and_then(Value::as_str))
                            .map(str::to_string)
                            .or_else(|| v.get("authorization").and_then(Value::as_str).map(|a| a.trim_start_matches("Bearer ").to_string()))
                            .unwrap_or_default();
                        fault = if key_is_valid(&key) { inner.faults.next_for(&key, Protocol::WebSocket) } else { Fault::Unauthorized };
                        gate = UnitGate::new(&fault);
                        if let Some((_, d, _)) = http_fault(&fault, true) {
                            let status = d.get("status").and_then(Value::as_str).unwrap_or("error").to_string();
                            let message = d.get("message").and_then(Value::as_str).unwrap_or("").to_string();
                            inner.stats.rejected.fetch_add(1, Ordering::SeqCst);
                            let _ = sink.send(error_frame(&status, &message)).await;
                            let _ = sink.send(close(1008, &message)).await;
                            return;
                        }
                        authed = true;
                    }
                    if let Some(s) = v.pointer("/voice_settings/speed").and_then(Value::as_f64) {
                        speed = s;
                    }
                    if let Some(list) = v.pointer("/generation_config/chunk_length_schedule").and_then(Value::as_array) {
                        let parsed: Vec<usize> = list.iter().filter_map(Value::as_u64).map(|n| n as usize).collect();
                        if parsed.is_empty() || parsed.len() != list.len() || parsed.iter().any(|n| !(50..=500).contains(n)) {
                            let _ = sink.send(error_frame("invalid_input_message", "chunk_length_schedule values must be between 50 and 500")).await;
                            let _ = sink.send(close(1008, INVALID_INPUT)).await;
                            return;
                        }
                        schedule = parsed;
                    }
                    initialized = true;
                    continue;
                }
                if end_of_stream {
                    continue; // nothing may follow end-of-stream; the socket is closing
                }
                let flush = v.get("flush").and_then(Value::as_bool).unwrap_or(false);
                let try_trigger = v.get("try_trigger_generation").and_then(Value::as_bool).unwrap_or(false);
                let mut generate = String::new();
                if t.is_empty() {
                    inner.stats.end_of_streams.fetch_add(1, Ordering::SeqCst);
                    end_of_stream = true;
                    generate = std::mem::take(&mut buffer);
                } else if t == " " && !flush {
                    inner.stats.keepalives.fetch_add(1, Ordering::SeqCst);
                } else {
                    if t != " " {
                        inner.stats.characters.fetch_add(t.chars().count() as u64, Ordering::SeqCst);
                        buffer.push_str(t);
                    }
                    let buffered = buffer.chars().count();
                    if flush {
                        inner.stats.flushes.fetch_add(1, Ordering::SeqCst);
                        generate = std::mem::take(&mut buffer);
                    } else if try_trigger && buffered >= 50 {
                        generate = std::mem::take(&mut buffer);
                    } else if auto_mode {
                        if let Some(end) = buffer.rfind(['.', '?', '!']) {
                            let rest = buffer.split_off(end + 1);
                            generate = std::mem::replace(&mut buffer, rest);
                        }
                    } else if let Some(&threshold) = schedule.get(schedule_index)
                        && buffered >= threshold
                    {
                        schedule_index = (schedule_index + 1).min(schedule.len() - 1);
                        generate = std::mem::take(&mut buffer);
                    }
                }
                if fault == Fault::QuotaExceeded {
                    continue; // the silent quota failure: no audio, then a bare isFinal
                }
                let chunks = synthesize(&inner.config, &generate, rate, speed);
                if !chunks.is_empty() && queue.is_empty() {
                    next_due = Instant::now() + pace.scale(inner.config.ttfb);
                }
                queue.extend(chunks);
            }
            _ = tokio::time::sleep_until(next_due), if sending => {
                let Some(chunk) = queue.pop_front() else { continue };
                match gate.before_unit() {
                    GateAction::Send => {}
                    GateAction::MidStreamError => {
                        let _ = sink.send(close(1011, "Internal server error")).await;
                        return;
                    }
                    GateAction::Drop => return,
                    GateAction::Stall => {
                        stalled = true;
                        continue;
                    }
                }
                let msg = json!({"audio": b64.encode(&chunk.pcm), "isFinal": null,
                    "normalizedAlignment": chunk.normalized, "alignment": chunk.alignment});
                if sink.send(Message::text(msg.to_string())).await.is_err() {
                    return;
                }
                inner.stats.chunks.fetch_add(1, Ordering::SeqCst);
                inner.stats.audio_micros.fetch_add((chunk.seconds * 1e6) as u64, Ordering::SeqCst);
                let gap = Duration::from_secs_f64(chunk.seconds / inner.config.realtime_factor.max(0.01));
                next_due = Instant::now() + pace.scale(gap);
            }
            _ = tokio::time::sleep_until(idle_deadline), if watching_idle => {
                inner.stats.timeouts.fetch_add(1, Ordering::SeqCst);
                let _ = sink.send(error_frame("input_timeout_exceeded", TIMEOUT_MESSAGE)).await;
                let _ = sink.send(close(1008, TIMEOUT_MESSAGE)).await;
                return;
            }
        }
    }
}

async fn http_stream(inner: &Inner, mut stream: TcpStream, req: &Request) {
    inner.stats.http_requests.fetch_add(1, Ordering::SeqCst);
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let Some(text) = body.get("text").and_then(Value::as_str) else {
        inner.stats.rejected.fetch_add(1, Ordering::SeqCst);
        let detail = json!({"detail":[{"type":"missing","loc":["body","text"],"msg":"Field required","input":null}]});
        let _ = write_response(
            &mut stream,
            422,
            &[("content-type", "application/json".to_string())],
            detail.to_string().as_bytes(),
        )
        .await;
        return;
    };
    let key = req.header("xi-api-key").unwrap_or("").to_string();
    let fault = if key_is_valid(&key) {
        inner.faults.next_for(&key, Protocol::Http)
    } else {
        Fault::Unauthorized
    };
    if let Fault::SlowFirstByte(d) = fault {
        tokio::time::sleep(d).await;
    }
    if let Some((status, d, extra)) = http_fault(&fault, false) {
        return refuse(inner, &mut stream, status, d, extra).await;
    }
    let format = req.query("output_format").unwrap_or("mp3_44100_128");
    let Some(rate) = sample_rate_of(format) else {
        return refuse_output_format(inner, &mut stream).await;
    };
    let chars = text.chars().count();
    if chars > 40_000 {
        let msg = format!(
            "This request's text has {chars} characters and exceeds the character limit of 40000 characters."
        );
        return refuse(
            inner,
            &mut stream,
            400,
            detail("max_character_limit_exceeded", &msg),
            vec![],
        )
        .await;
    }
    inner
        .stats
        .characters
        .fetch_add(chars as u64, Ordering::SeqCst);
    let speed = body
        .pointer("/voice_settings/speed")
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    let chunks = synthesize(&inner.config, text, rate, speed);
    let headers = vec![
        ("content-type", "application/octet-stream".to_string()),
        ("request-id", inner.rng.hex(32)),
        ("character-cost", chars.to_string()),
    ];
    let pace = inner.config.pacing;
    let Ok(mut out) = ChunkedBody::start(&mut stream, 200, &headers).await else {
        return;
    };
    tokio::time::sleep(pace.scale(inner.config.ttfb)).await;
    let mut gate = UnitGate::new(&fault);
    for chunk in chunks {
        match gate.before_unit() {
            GateAction::Send => {}
            GateAction::MidStreamError | GateAction::Drop => return,
            GateAction::Stall => {
                let mut sink = [0u8; 256];
                while matches!(out.stream_mut().read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
        }
        if out.chunk(&chunk.pcm).await.is_err() {
            return;
        }
        inner.stats.chunks.fetch_add(1, Ordering::SeqCst);
        inner
            .stats
            .audio_micros
            .fetch_add((chunk.seconds * 1e6) as u64, Ordering::SeqCst);
        let gap = Duration::from_secs_f64(chunk.seconds / inner.config.realtime_factor.max(0.01));
        tokio::time::sleep(pace.scale(gap)).await;
    }
    let _ = out.finish().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesis_covers_every_character_once_with_chunk_relative_times() {
        let config = ElevenLabsConfig::default();
        let text = "Hello there, how are you today? ";
        let chunks = synthesize(&config, text, 16000, 1.0);
        let chars: String = chunks
            .iter()
            .flat_map(|c| c.alignment["chars"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        assert_eq!(chars, text);
        let seconds: f64 = chunks.iter().map(|c| c.seconds).sum();
        assert!((seconds - text.chars().count() as f64 / 15.0).abs() < 0.01);
        for c in &chunks {
            let max_start = c.alignment["charStartTimesMs"]
                .as_array()
                .and_then(|a| a.last())
                .and_then(Value::as_u64)
                .unwrap_or(0);
            assert!((max_start as f64) < c.seconds * 1000.0);
        }
        assert_eq!(chunks[0].normalized["chars"][0], " ");
    }
}
