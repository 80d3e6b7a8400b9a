//! Deepgram live transcription client: WebSocket `{base}/v1/listen?...` with
//! `Authorization: Token <key>`, linear16 audio in binary frames, `KeepAlive` while idle,
//! `Finalize`, `CloseStream`, and reconnection that resends the audio since the last final
//! so no words are lost and timestamps stay on one session timeline.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::HeaderMap;

use super::error::{ErrorCategory, Vendor, VendorError, category_for_status};
use super::key::KeyHandle;
use super::retry::parse_retry_after;
use super::usage::{SttReport, SttTiming, SttUsage};
use super::ws::{ConnectFailure, Ws, connect, header};
use super::{
    EVENT_QUEUE, STT_AUDIO_QUEUE_FRAMES, STT_CONTROL_QUEUE, SpeechToText, SttControl, SttEvent,
    SttInput, SttSession, Transcript, Word,
};

/// Query parameters of `/v1/listen`. Audio is always raw linear16 mono.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ListenParams {
    pub model: String,
    pub language: Option<String>,
    pub sample_rate: u32,
    pub interim_results: bool,
    /// Silence in ms that ends a segment with `speech_final`; `None` sends `endpointing=false`.
    pub endpointing_ms: Option<u32>,
    /// Requires `interim_results`.
    pub utterance_end_ms: Option<u32>,
    pub vad_events: bool,
    pub smart_format: bool,
    pub punctuate: bool,
    /// Nova-3 key terms.
    pub keyterms: Vec<String>,
}

impl Default for ListenParams {
    fn default() -> Self {
        Self {
            model: "nova-3".to_string(),
            language: Some("en".to_string()),
            sample_rate: 16_000,
            interim_results: true,
            endpointing_ms: Some(300),
            utterance_end_ms: Some(1000),
            vad_events: true,
            smart_format: true,
            punctuate: false,
            keyterms: Vec::new(),
        }
    }
}

fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl ListenParams {
    /// The query string, without the leading `?`.
    pub fn query(&self) -> String {
        let mut q: Vec<(&str, String)> = vec![
            ("model", self.model.clone()),
            ("encoding", "linear16".into()),
            ("sample_rate", self.sample_rate.to_string()),
            ("channels", "1".into()),
            ("interim_results", self.interim_results.to_string()),
            (
                "endpointing",
                self.endpointing_ms
                    .map_or_else(|| "false".to_string(), |ms| ms.to_string()),
            ),
            ("vad_events", self.vad_events.to_string()),
            ("smart_format", self.smart_format.to_string()),
            ("punctuate", self.punctuate.to_string()),
        ];
        if let Some(l) = &self.language {
            q.push(("language", l.clone()));
        }
        if let Some(ms) = self.utterance_end_ms {
            q.push(("utterance_end_ms", ms.to_string()));
        }
        for k in &self.keyterms {
            q.push(("keyterm", k.clone()));
        }
        q.iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Reconnection after a dropped socket.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReconnectPolicy {
    /// Consecutive failed attempts before the session fails.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Configuration of the Deepgram client. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct DeepgramConfig {
    /// `wss://api.deepgram.com`, or a fake's base URL.
    pub base_url: String,
    /// Read at every connection (and reconnection): the key leaser may swap or revoke it.
    pub api_key: KeyHandle,
    pub params: ListenParams,
    /// Send `KeepAlive` after this long without sending anything (the server gives up at 10 s).
    pub keepalive_after: Duration,
    pub reconnect: ReconnectPolicy,
    /// Most audio kept for resending after a reconnect.
    pub resend_limit: Duration,
    pub connect_timeout: Duration,
    /// How long to wait for the server's close after `CloseStream`.
    pub close_timeout: Duration,
    /// The stall watchdog: this much audio sent since the last server message, counted from
    /// its first speech (a frame above [`SPEECH_RMS_FLOOR`]; resent audio not counted), and
    /// at least as long on the clock, means the socket is connected but silent: it is
    /// replaced and the audio since the last final is resent. The service answers about once
    /// per second of audio (interims, also empty ones), so the default of 2 s is its cadence
    /// plus 1 s: a stall is detected within a second of the answer that did not come.
    /// Silence alone never trips it (a socket stalled during silence is found, and replaced
    /// without loss, once speech starts).
    pub stall_timeout: Duration,
    /// USD per streamed audio minute.
    pub price_per_minute: f64,
}

impl DeepgramConfig {
    pub fn new(base_url: impl Into<String>, api_key: impl Into<KeyHandle>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            params: ListenParams::default(),
            keepalive_after: Duration::from_secs(4),
            reconnect: ReconnectPolicy::default(),
            resend_limit: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(2),
            price_per_minute: 0.0077,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire messages
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireWord {
    pub word: String,
    pub start: f64,
    pub end: f64,
    #[serde(default)]
    pub confidence: f64,
    #[serde(default)]
    pub punctuated_word: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireAlternative {
    #[serde(default)]
    pub transcript: String,
    #[serde(default)]
    pub confidence: f64,
    #[serde(default)]
    pub words: Vec<WireWord>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireChannel {
    #[serde(default)]
    pub alternatives: Vec<WireAlternative>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireResultsMetadata {
    #[serde(default)]
    pub request_id: Option<String>,
}

/// A `Results` message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireResults {
    pub start: f64,
    pub duration: f64,
    #[serde(default)]
    pub is_final: bool,
    #[serde(default)]
    pub speech_final: bool,
    #[serde(default)]
    pub from_finalize: bool,
    pub channel: WireChannel,
    #[serde(default)]
    pub metadata: Option<WireResultsMetadata>,
}

/// One server message.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Results(WireResults),
    Metadata {
        request_id: String,
        duration: f64,
    },
    SpeechStarted {
        timestamp: f64,
    },
    UtteranceEnd {
        last_word_end: f64,
    },
    Error {
        variant: String,
        description: String,
    },
    /// A type this client does not know; ignored for forward compatibility.
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Deepgram message: {0}")]
pub struct MessageParseError(pub String);

/// Parses one text frame from the server.
pub fn parse_server_message(text: &str) -> Result<ServerMessage, MessageParseError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| MessageParseError(e.to_string()))?;
    let kind = v
        .get("type")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| MessageParseError("no type".into()))?;
    let num = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| MessageParseError(format!("{kind} without {k}")))
    };
    let s = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ok(match kind {
        "Results" => ServerMessage::Results(
            WireResults::deserialize(&v).map_err(|e| MessageParseError(e.to_string()))?,
        ),
        "Metadata" => ServerMessage::Metadata {
            request_id: s("request_id"),
            duration: v
                .get("duration")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0),
        },
        "SpeechStarted" => ServerMessage::SpeechStarted {
            timestamp: num("timestamp")?,
        },
        "UtteranceEnd" => ServerMessage::UtteranceEnd {
            last_word_end: num("last_word_end")?,
        },
        "Error" => ServerMessage::Error {
            variant: s("variant"),
            description: s("description"),
        },
        other => ServerMessage::Unknown(other.to_string()),
    })
}

impl WireResults {
    /// Converts to a [`Transcript`] on the session timeline (`offset` seconds added).
    pub fn to_transcript(&self, offset: f64) -> Transcript {
        let alt = self.channel.alternatives.first();
        Transcript {
            text: alt.map(|a| a.transcript.clone()).unwrap_or_default(),
            is_final: self.is_final,
            speech_final: self.speech_final,
            from_finalize: self.from_finalize,
            start: self.start + offset,
            duration: self.duration,
            confidence: alt.map_or(0.0, |a| a.confidence),
            words: alt
                .map(|a| {
                    a.words
                        .iter()
                        .map(|w| Word {
                            word: w.word.clone(),
                            punctuated: w.punctuated_word.clone().unwrap_or_else(|| w.word.clone()),
                            start: w.start + offset,
                            end: w.end + offset,
                            confidence: w.confidence,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

fn err(category: ErrorCategory, message: impl Into<String>) -> VendorError {
    VendorError::new(Vendor::Deepgram, category, message)
}

/// Turns a refused upgrade into a [`VendorError`]; both body shapes are understood.
pub fn http_error(status: u16, headers: &HeaderMap, body: &[u8]) -> VendorError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let pick = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(serde_json::Value::as_str))
            .map(str::to_string)
    };
    let message = pick(&["err_msg", "message"])
        .or_else(|| header(headers, "dg-error").map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let code = pick(&["err_code", "category"]).unwrap_or_default();
    let category = match code.as_str() {
        "INVALID_AUTH" | "UNAUTHORIZED" | "FORBIDDEN" => ErrorCategory::Auth,
        "PAYMENT_REQUIRED" | "INSUFFICIENT_CREDITS" => ErrorCategory::Quota,
        "RATE_LIMITED" | "TOO_MANY_REQUESTS" => ErrorCategory::RateLimited,
        _ => category_for_status(status),
    };
    let request_id = header(headers, "dg-request-id")
        .map(str::to_string)
        .or_else(|| pick(&["request_id"]));
    err(category, message)
        .with_status(status)
        .with_retry_after(parse_retry_after(
            None,
            header(headers, "retry-after"),
            std::time::SystemTime::now(),
        ))
        .with_request_id(request_id)
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// The real Deepgram live client.
#[derive(Debug, Clone)]
pub struct DeepgramStt {
    config: Arc<DeepgramConfig>,
}

impl DeepgramStt {
    pub fn new(config: DeepgramConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &DeepgramConfig {
        &self.config
    }
}

async fn open(config: &DeepgramConfig) -> Result<(Ws, Option<String>), VendorError> {
    let url = format!(
        "{}/v1/listen?{}",
        config.base_url.trim_end_matches('/'),
        config.params.query()
    );
    let api_key = config.api_key.current(Vendor::Deepgram)?;
    let secret = api_key.expose_secret();
    let mut auth = format!("Token {secret}");
    let connected = connect(
        Vendor::Deepgram,
        &url,
        &[("authorization", &auth)],
        config.connect_timeout,
    )
    .await;
    zeroize::Zeroize::zeroize(&mut auth);
    match connected {
        Ok((ws, headers)) => Ok((ws, header(&headers, "dg-request-id").map(str::to_string))),
        Err(ConnectFailure::Http {
            status,
            headers,
            body,
        }) => Err(http_error(status, &headers, &body).redacted(secret)),
        Err(ConnectFailure::Other(e)) => Err(e.redacted(secret)),
    }
}

#[async_trait]
impl SpeechToText for DeepgramStt {
    async fn start(&self) -> Result<SttSession, VendorError> {
        let started = Instant::now();
        let mut key_changes = self.config.api_key.subscribe();
        key_changes.mark_unchanged();
        let (ws, request_id) = open(&self.config).await?;
        let (audio_tx, audio_rx) = mpsc::channel(STT_AUDIO_QUEUE_FRAMES);
        let (control_tx, control_rx) = mpsc::channel(STT_CONTROL_QUEUE);
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let task = SessionTask {
            byte_rate: self.config.params.sample_rate.max(1) as f64 * 2.0,
            config: Arc::clone(&self.config),
            ws,
            audio_rx,
            control_rx,
            tx,
            dropped: Arc::clone(&dropped),
            offset: 0.0,
            resend: VecDeque::new(),
            resend_start: 0.0,
            pushed_bytes: 0,
            billed_bytes: 0,
            last_sent: Instant::now(),
            reconnects: 0,
            request_id,
            started,
            connect_time: started.elapsed(),
            first_audio_at: None,
            first_result: None,
            got_metadata: false,
            unanswered_since: None,
            unanswered_speech: 0,
            stalls: 0,
            closing: false,
            key_changes,
        };
        tokio::spawn(task.run());
        Ok(SttSession {
            input: SttInput {
                audio: audio_tx,
                control: control_tx,
                dropped,
            },
            events: rx,
        })
    }
}

/// Frames at least this loud (RMS of 16-bit samples) count as speech for the stall watchdog.
pub const SPEECH_RMS_FLOOR: f64 = 300.0;

/// Stalled sockets detected (and replaced) by the watchdog in this process, every session.
static STALLED_SOCKETS: std::sync::LazyLock<prometheus_client::metrics::counter::Counter> =
    std::sync::LazyLock::new(Default::default);

/// How many connected-but-silent Deepgram sockets the watchdog has replaced in this process.
pub fn stalled_sockets() -> u64 {
    STALLED_SOCKETS.get()
}

/// The same count as a counter for the server's `/metrics` registry.
pub fn stalled_sockets_counter() -> prometheus_client::metrics::counter::Counter {
    STALLED_SOCKETS.clone()
}

/// Root mean square of little-endian 16-bit samples.
fn rms(bytes: &[u8]) -> f64 {
    let n = bytes.len() / 2;
    if n == 0 {
        return 0.0;
    }
    let sum: f64 = bytes
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])).powi(2))
        .sum();
    (sum / n as f64).sqrt()
}

const KEEPALIVE: &str = r#"{"type":"KeepAlive"}"#;
const FINALIZE: &str = r#"{"type":"Finalize"}"#;
const CLOSE_STREAM: &str = r#"{"type":"CloseStream"}"#;
/// Resent audio goes out in 100 ms frames.
const RESEND_FRAME_SECONDS: f64 = 0.1;

enum Flow {
    Continue,
    End,
}

struct SessionTask {
    config: Arc<DeepgramConfig>,
    ws: Ws,
    audio_rx: mpsc::Receiver<Vec<u8>>,
    control_rx: mpsc::Receiver<SttControl>,
    tx: mpsc::Sender<SttEvent>,
    dropped: Arc<AtomicU64>,
    byte_rate: f64,
    /// Session seconds at which the current connection's clock starts.
    offset: f64,
    /// Audio since the last final, for resending after a reconnect.
    resend: VecDeque<u8>,
    /// Session seconds of `resend[0]`.
    resend_start: f64,
    pushed_bytes: u64,
    billed_bytes: u64,
    last_sent: Instant,
    reconnects: u32,
    request_id: Option<String>,
    started: Instant,
    connect_time: Duration,
    first_audio_at: Option<Instant>,
    first_result: Option<Duration>,
    got_metadata: bool,
    /// When audio was first sent after the last server message (stall detection).
    unanswered_since: Option<Instant>,
    /// Bytes of audio sent since the last server message, from its first speech on (stall
    /// detection).
    unanswered_speech: u64,
    /// Stalls detected in this session.
    stalls: u32,
    /// The caller asked to close; `CloseStream` goes out (again after a reconnect).
    closing: bool,
    /// Sees the key leaser swap or revoke the key: the open socket is then replaced by one
    /// on the current key, or the session fails with `KeyRevoked`.
    key_changes: tokio::sync::watch::Receiver<u64>,
}

impl SessionTask {
    fn report(&self) -> SttReport {
        let billed = self.billed_bytes as f64 / self.byte_rate;
        SttReport {
            model: self.config.params.model.clone(),
            usage: SttUsage {
                audio_seconds: self.pushed_bytes as f64 / self.byte_rate,
                billed_audio_seconds: billed,
                reconnects: self.reconnects,
                dropped_frames: self.dropped.load(Ordering::Relaxed),
            },
            timing: SttTiming {
                connect: Some(self.connect_time),
                first_result: self.first_result,
                total: self.started.elapsed(),
            },
            cost_usd: billed / 60.0 * self.config.price_per_minute,
            request_id: self.request_id.clone(),
        }
    }

    async fn emit(&self, event: SttEvent) {
        let _ = self.tx.send(event).await;
    }

    async fn fail(self, error: VendorError) {
        tracing::debug!(vendor = %Vendor::Deepgram, category = ?error.category, "session failed");
        let report = self.report();
        let error = error.with_request_id(self.request_id.clone());
        self.emit(SttEvent::Failed { error, report }).await;
    }

    async fn run(mut self) {
        loop {
            let step = self.step().await;
            match step {
                Ok(Flow::Continue) => {}
                Ok(Flow::End) => return,
                Err(e) if e.is_permanent() => return self.fail(e).await,
                Err(e) => {
                    if let Err(e) = self.reconnect(e).await {
                        return self.fail(e).await;
                    }
                }
            }
        }
    }

    async fn step(&mut self) -> Result<Flow, VendorError> {
        if self.closing {
            // Also reached again after a reconnect, so a close is never lost.
            self.drain_audio().await?;
            self.send(Message::text(CLOSE_STREAM)).await?;
            self.finish().await;
            return Ok(Flow::End);
        }
        let keepalive_at =
            tokio::time::Instant::from_std(self.last_sent + self.config.keepalive_after);
        let stall_speech = (self.config.stall_timeout.as_secs_f64() * self.byte_rate) as u64;
        let stall_at = self
            .unanswered_since
            .filter(|_| self.unanswered_speech >= stall_speech)
            .map(|t| tokio::time::Instant::from_std(t + self.config.stall_timeout));
        tokio::select! {
            biased;
            control = self.control_rx.recv() => match control {
                Some(SttControl::Finalize) => {
                    self.drain_audio().await?;
                    self.send(Message::text(FINALIZE)).await?;
                    Ok(Flow::Continue)
                }
                Some(SttControl::Close) => {
                    self.closing = true;
                    Ok(Flow::Continue)
                }
                None => {
                    self.cancel().await;
                    Ok(Flow::End)
                }
            },
            audio = self.audio_rx.recv() => match audio {
                Some(bytes) => {
                    self.send_audio(bytes).await?;
                    Ok(Flow::Continue)
                }
                None => {
                    self.cancel().await;
                    Ok(Flow::End)
                }
            },
            msg = self.ws.next() => {
                self.on_message(msg).await?;
                Ok(Flow::Continue)
            }
            Ok(()) = self.key_changes.changed() => {
                // Revoked without a platform key: a permanent `KeyRevoked` ends the session.
                self.config.api_key.current(Vendor::Deepgram)?;
                Err(err(ErrorCategory::Network, "the key was swapped; reconnecting on the current one"))
            }
            _ = tokio::time::sleep_until(keepalive_at) => {
                self.send(Message::text(KEEPALIVE)).await?;
                Ok(Flow::Continue)
            }
            _ = async { tokio::time::sleep_until(stall_at.unwrap_or(keepalive_at)).await }, if stall_at.is_some() => {
                // A message already waiting is an answer (the task was busy sending), not a
                // stall.
                if let Some(msg) = self.ws.next().now_or_never() {
                    self.on_message(msg).await?;
                    return Ok(Flow::Continue);
                }
                self.stalls += 1;
                STALLED_SOCKETS.inc();
                tracing::warn!(
                    vendor = %Vendor::Deepgram,
                    stalled = true,
                    stalls = self.stalls,
                    unanswered_speech_secs = self.unanswered_speech as f64 / self.byte_rate,
                    "no answer to the speech sent: replacing the stalled socket"
                );
                Err(err(ErrorCategory::Timeout, "stalled: no message from the server while speech was flowing"))
            }
        }
    }

    async fn send(&mut self, m: Message) -> Result<(), VendorError> {
        self.ws
            .send(m)
            .await
            .map_err(|e| err(ErrorCategory::Network, format!("send failed: {e}")))?;
        self.last_sent = Instant::now();
        Ok(())
    }

    async fn drain_audio(&mut self) -> Result<(), VendorError> {
        while let Ok(bytes) = self.audio_rx.try_recv() {
            self.send_audio(bytes).await?;
        }
        Ok(())
    }

    async fn send_audio(&mut self, bytes: Vec<u8>) -> Result<(), VendorError> {
        if self.first_audio_at.is_none() {
            self.first_audio_at = Some(Instant::now());
        }
        self.pushed_bytes += bytes.len() as u64;
        self.resend.extend(bytes.iter().copied());
        let limit = (self.config.resend_limit.as_secs_f64() * self.byte_rate) as usize & !1;
        if self.resend.len() > limit {
            let excess = (self.resend.len() - limit) & !1;
            self.resend.drain(..excess);
            self.resend_start += excess as f64 / self.byte_rate;
        }
        self.billed_bytes += bytes.len() as u64;
        if self.unanswered_since.is_none() {
            self.unanswered_since = Some(Instant::now());
        }
        // Counted from the first speech on (the silence after it too): an answer's last
        // words must not wait in a stalled socket for the next answer to start.
        if self.unanswered_speech > 0 || rms(&bytes) >= SPEECH_RMS_FLOOR {
            self.unanswered_speech += bytes.len() as u64;
        }
        self.send(Message::binary(bytes)).await
    }

    /// Forgets resend audio up to `session_secs` (the end of a final).
    fn settle_until(&mut self, session_secs: f64) {
        let secs = (session_secs - self.resend_start).max(0.0);
        let n = ((secs * self.byte_rate) as usize & !1).min(self.resend.len() & !1);
        self.resend.drain(..n);
        self.resend_start += n as f64 / self.byte_rate;
    }

    async fn on_message(
        &mut self,
        msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<(), VendorError> {
        let msg = match msg {
            None => {
                return Err(err(
                    ErrorCategory::Network,
                    "connection closed without a close frame",
                ));
            }
            Some(Err(e)) => return Err(err(ErrorCategory::Network, e.to_string())),
            Some(Ok(m)) => m,
        };
        match msg {
            Message::Text(t) => self.on_text(t.as_str()).await,
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                let category = match code {
                    1008 | 1002 | 1003 | 1007 => ErrorCategory::BadRequest,
                    1011 if reason.contains("NET-0001") || reason.contains("net0001") => {
                        ErrorCategory::Timeout
                    }
                    1011 => ErrorCategory::Server,
                    _ => ErrorCategory::Network,
                };
                Err(
                    err(category, format!("closed by the server: {code} {reason}"))
                        .with_status(code),
                )
            }
            _ => Ok(()),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), VendorError> {
        self.unanswered_since = None;
        self.unanswered_speech = 0;
        let parsed = match parse_server_message(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(vendor = %Vendor::Deepgram, error = %e, "ignoring a malformed message");
                return Ok(());
            }
        };
        match parsed {
            ServerMessage::Results(r) => {
                let t = r.to_transcript(self.offset);
                if self.first_result.is_none()
                    && let Some(at) = self.first_audio_at
                {
                    self.first_result = Some(at.elapsed());
                }
                if t.is_final {
                    self.settle_until(t.start + t.duration);
                }
                self.emit(SttEvent::Transcript(t)).await;
            }
            ServerMessage::SpeechStarted { timestamp } => {
                self.emit(SttEvent::SpeechStarted {
                    at: timestamp + self.offset,
                })
                .await;
            }
            ServerMessage::UtteranceEnd { last_word_end } => {
                self.emit(SttEvent::UtteranceEnd {
                    last_word_end: last_word_end + self.offset,
                })
                .await;
            }
            ServerMessage::Metadata { .. } => self.got_metadata = true,
            ServerMessage::Error {
                variant,
                description,
            } => {
                tracing::warn!(vendor = %Vendor::Deepgram, %variant, %description, "server reported an error");
            }
            ServerMessage::Unknown(kind) => {
                tracing::debug!(vendor = %Vendor::Deepgram, %kind, "ignoring an unknown message type");
            }
        }
        Ok(())
    }

    /// After `CloseStream`: read the last results until the server closes.
    async fn finish(&mut self) {
        let deadline = tokio::time::Instant::now() + self.config.close_timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await;
            match next {
                Err(_) => {
                    let e = err(
                        ErrorCategory::Timeout,
                        "no close from the server after CloseStream",
                    );
                    let report = self.report();
                    return self.emit(SttEvent::Failed { error: e, report }).await;
                }
                Ok(Some(Ok(Message::Text(t)))) => {
                    let _ = self.on_text(t.as_str()).await;
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                    if self.got_metadata {
                        let report = self.report();
                        return self.emit(SttEvent::Closed(report)).await;
                    }
                    let e = err(
                        ErrorCategory::Network,
                        "the stream ended before its final Metadata",
                    );
                    let report = self.report();
                    return self.emit(SttEvent::Failed { error: e, report }).await;
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    async fn cancel(&mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(500), self.ws.close(None)).await;
        let report = self.report();
        self.emit(SttEvent::Failed {
            error: err(ErrorCategory::Cancelled, "cancelled by the caller"),
            report,
        })
        .await;
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let p = &self.config.reconnect;
        super::retry::scaled(
            p.initial_backoff,
            2f64.powi(attempt.min(20) as i32),
            p.max_backoff,
        )
    }

    async fn reconnect(&mut self, mut cause: VendorError) -> Result<(), VendorError> {
        for attempt in 1..=self.config.reconnect.max_attempts {
            tracing::debug!(vendor = %Vendor::Deepgram, attempt, category = ?cause.category, "reconnecting");
            self.emit(SttEvent::Reconnecting {
                attempt,
                error: cause.clone(),
            })
            .await;
            let wait = cause
                .retry_after
                .filter(|d| *d <= Duration::from_secs(60))
                .unwrap_or_else(|| self.backoff(attempt - 1));
            tokio::time::sleep(wait).await;
            match open(&self.config).await {
                Ok((ws, request_id)) => {
                    self.ws = ws;
                    self.request_id = request_id.or(self.request_id.take());
                    self.offset = self.resend_start;
                    self.unanswered_since = None;
                    self.unanswered_speech = 0;
                    match self.resend_buffer().await {
                        Ok(()) => {
                            self.reconnects += 1;
                            self.emit(SttEvent::Reconnected { attempt }).await;
                            return Ok(());
                        }
                        Err(e) => cause = e,
                    }
                }
                Err(e) if e.is_permanent() => return Err(e),
                Err(e) => cause = e,
            }
        }
        Err(cause)
    }

    async fn resend_buffer(&mut self) -> Result<(), VendorError> {
        let frame = ((RESEND_FRAME_SECONDS * self.byte_rate) as usize & !1).max(2);
        let audio: Vec<u8> = self.resend.iter().copied().collect();
        for chunk in audio.chunks(frame) {
            self.billed_bytes += chunk.len() as u64;
            self.send(Message::binary(chunk.to_vec())).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_carries_every_configured_parameter() {
        let q = ListenParams {
            keyterms: vec!["Kubernetes operator".into()],
            ..ListenParams::default()
        }
        .query();
        for part in [
            "model=nova-3",
            "encoding=linear16",
            "sample_rate=16000",
            "interim_results=true",
            "endpointing=300",
            "utterance_end_ms=1000",
            "vad_events=true",
            "smart_format=true",
            "keyterm=Kubernetes%20operator",
        ] {
            assert!(q.contains(part), "{part} missing from {q}");
        }
        let off = ListenParams {
            endpointing_ms: None,
            ..ListenParams::default()
        }
        .query();
        assert!(off.contains("endpointing=false"));
    }
}
