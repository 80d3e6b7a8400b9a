//! ElevenLabs text-to-speech: the `stream-input` WebSocket ([`ElevenLabsTts`]) and the HTTP
//! `/stream` endpoint as a fallback ([`ElevenLabsHttpTts`]), both behind [`TextToSpeech`].
//!
//! WebSocket: the first message is `{"text":" ", voice_settings, generation_config}`; text
//! follows as it is pushed, `flush` forces generation, `{"text":""}` ends the stream and the
//! server answers with the remaining audio, `isFinal` and close 1000. A keepalive `" "` is
//! sent while no text flows so the server's inactivity timeout (20 s) does not fire. A final
//! with no audio for non-empty text is the silent quota failure and is reported as such.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::error::{ErrorCategory, Vendor, VendorError, category_for_status};
use super::key::KeyHandle;
use super::retry::parse_retry_after;
use super::usage::{TtsReport, TtsTiming, TtsUsage};
use super::ws::{ConnectFailure, Ws, connect, header};
use super::{
    Alignment, AudioChunk, EVENT_QUEUE, TTS_COMMAND_QUEUE, TextToSpeech, TtsCommand, TtsEvent,
    TtsInput, TtsSession,
};

/// Stalled `stream-input` sockets detected by the watchdog in this process.
static STALLED_SOCKETS: std::sync::LazyLock<prometheus_client::metrics::counter::Counter> =
    std::sync::LazyLock::new(Default::default);

/// How many connected-but-silent ElevenLabs sockets the watchdog has given up on in this
/// process (each is then replaced by the failover).
pub fn stalled_sockets() -> u64 {
    STALLED_SOCKETS.get()
}

/// The same count as a counter for the server's `/metrics` registry.
pub fn stalled_sockets_counter() -> prometheus_client::metrics::counter::Counter {
    STALLED_SOCKETS.clone()
}

/// PCM output formats (the engine plays PCM; MP3/Opus are not requested).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OutputFormat {
    Pcm16000,
    Pcm22050,
    Pcm24000,
    Pcm44100,
}

impl OutputFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Pcm16000 => "pcm_16000",
            OutputFormat::Pcm22050 => "pcm_22050",
            OutputFormat::Pcm24000 => "pcm_24000",
            OutputFormat::Pcm44100 => "pcm_44100",
        }
    }

    pub fn sample_rate(self) -> u32 {
        match self {
            OutputFormat::Pcm16000 => 16_000,
            OutputFormat::Pcm22050 => 22_050,
            OutputFormat::Pcm24000 => 24_000,
            OutputFormat::Pcm44100 => 44_100,
        }
    }
}

/// Voice settings, sent once per session.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VoiceSettings {
    pub stability: f32,
    pub similarity_boost: f32,
    pub style: f32,
    pub use_speaker_boost: bool,
    /// 0.7–1.2.
    pub speed: f32,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self {
            stability: 0.5,
            similarity_boost: 0.75,
            style: 0.0,
            use_speaker_boost: true,
            speed: 1.0,
        }
    }
}

/// Configuration of both ElevenLabs clients. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct ElevenLabsConfig {
    /// `wss://api.elevenlabs.io`, or a fake's WebSocket base URL.
    pub ws_base_url: String,
    /// `https://api.elevenlabs.io`, or a fake's HTTP base URL (for the fallback).
    pub http_base_url: String,
    /// Read at every connection and request: the key leaser may swap or revoke it.
    pub api_key: KeyHandle,
    pub voice_id: String,
    pub model_id: String,
    pub output_format: OutputFormat,
    pub voice_settings: VoiceSettings,
    /// Characters buffered before each successive generation (each 50–500).
    pub chunk_length_schedule: Vec<u32>,
    /// Generate per sentence without the schedule (lower latency for whole sentences).
    pub auto_mode: bool,
    pub sync_alignment: bool,
    /// Server-side inactivity timeout in seconds (1–180).
    pub inactivity_timeout_secs: u32,
    /// Send a keepalive `" "` after this long without text (below the inactivity timeout).
    pub keepalive_after: Duration,
    pub connect_timeout: Duration,
    /// HTTP: the longest wait for response headers and between audio chunks.
    pub audio_timeout: Duration,
    /// WebSocket watchdog: text was flushed (or the stream ended) and neither audio nor the
    /// final came for this long, so the socket is taken as stalled and the session fails
    /// with [`ErrorCategory::Timeout`] (the failover then replays it elsewhere).
    pub stall_timeout: Duration,
    /// USD per 1000 characters.
    pub price_per_1k_chars: f64,
}

impl ElevenLabsConfig {
    pub fn new(
        ws_base_url: impl Into<String>,
        http_base_url: impl Into<String>,
        api_key: impl Into<KeyHandle>,
        voice_id: impl Into<String>,
    ) -> Self {
        Self {
            ws_base_url: ws_base_url.into(),
            http_base_url: http_base_url.into(),
            api_key: api_key.into(),
            voice_id: voice_id.into(),
            model_id: "eleven_flash_v2_5".to_string(),
            output_format: OutputFormat::Pcm16000,
            voice_settings: VoiceSettings::default(),
            chunk_length_schedule: vec![120, 160, 250, 290],
            auto_mode: false,
            sync_alignment: false,
            inactivity_timeout_secs: 20,
            keepalive_after: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            audio_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_millis(1500),
            price_per_1k_chars: 0.05,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire messages
// ---------------------------------------------------------------------------------------------

/// Alignment as sent; the durations field has two spellings in the wild.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireAlignment {
    #[serde(default)]
    pub chars: Vec<String>,
    #[serde(default, rename = "charStartTimesMs")]
    pub char_start_times_ms: Vec<f64>,
    #[serde(default, rename = "charDurationsMs", alias = "charsDurationsMs")]
    pub char_durations_ms: Vec<f64>,
}

impl WireAlignment {
    fn to_alignment(&self) -> Alignment {
        let ms = |v: &f64| {
            if v.is_finite() && *v > 0.0 {
                v.round().min(u32::MAX as f64) as u32
            } else {
                0
            }
        };
        Alignment {
            chars: self.chars.clone(),
            start_ms: self.char_start_times_ms.iter().map(ms).collect(),
            duration_ms: self.char_durations_ms.iter().map(ms).collect(),
        }
    }
}

/// One server message of `stream-input`.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// Audio bytes (already base64-decoded) and alignment, if any.
    Audio {
        audio: Vec<u8>,
        alignment: Option<Alignment>,
        normalized_alignment: Option<Alignment>,
    },
    /// `isFinal: true` (the `is_final` spelling too).
    Final,
    /// An error frame; the server closes with 1008 next.
    Error { error: String, message: String },
    /// Nothing this client needs.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed ElevenLabs message: {0}")]
pub struct MessageParseError(pub String);

/// Parses one text frame from the server.
pub fn parse_server_message(text: &str) -> Result<ServerMessage, MessageParseError> {
    let v: Value = serde_json::from_str(text).map_err(|e| MessageParseError(e.to_string()))?;
    if !v.is_object() {
        return Err(MessageParseError("not an object".into()));
    }
    if let Some(error) = v.get("error").and_then(Value::as_str) {
        return Ok(ServerMessage::Error {
            error: error.to_string(),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        });
    }
    let alignment = |k: &str| -> Result<Option<Alignment>, MessageParseError> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(a) => WireAlignment::deserialize(a)
                .map(|w| Some(w.to_alignment()))
                .map_err(|e| MessageParseError(format!("{k}: {e}"))),
        }
    };
    if let Some(audio) = v.get("audio").and_then(Value::as_str)
        && !audio.is_empty()
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(audio)
            .map_err(|e| MessageParseError(format!("audio: {e}")))?;
        return Ok(ServerMessage::Audio {
            audio: bytes,
            alignment: alignment("alignment")?,
            normalized_alignment: alignment("normalizedAlignment")?,
        });
    }
    let is_final = ["isFinal", "is_final"]
        .iter()
        .any(|k| v.get(*k).and_then(Value::as_bool) == Some(true));
    Ok(if is_final {
        ServerMessage::Final
    } else {
        ServerMessage::Other
    })
}

fn err(category: ErrorCategory, message: impl Into<String>) -> VendorError {
    VendorError::new(Vendor::ElevenLabs, category, message)
}

/// Maps an ElevenLabs error `status`/`error` code to a category.
pub fn category_for_code(code: &str) -> Option<ErrorCategory> {
    Some(match code {
        "invalid_api_key" | "unauthorized" | "missing_permissions" => ErrorCategory::Auth,
        "quota_exceeded" | "detected_unusual_activity" | "payment_required" => ErrorCategory::Quota,
        "too_many_concurrent_requests" | "concurrent_limit_exceeded" | "rate_limit_exceeded" => {
            ErrorCategory::RateLimited
        }
        "system_busy" => ErrorCategory::Overloaded,
        "input_timeout_exceeded" => ErrorCategory::Timeout,
        "invalid_input_message"
        | "max_active_conversations"
        | "max_character_limit_exceeded"
        | "voice_not_found"
        | "model_not_found"
        | "invalid_output_format" => ErrorCategory::BadRequest,
        _ => return None,
    })
}

/// Turns an HTTP error (upgrade refusal or `/stream` error) into a [`VendorError`]; the
/// legacy, newer and validation body shapes are all understood.
pub fn http_error(
    status: u16,
    headers: &tokio_tungstenite::tungstenite::http::HeaderMap,
    body: &[u8],
) -> VendorError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let d = v.get("detail").unwrap_or(&Value::Null);
    let (code, message) = match d {
        Value::Object(_) => (
            d.get("status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            d.get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        Value::Array(items) => (
            "validation_error".to_string(),
            items
                .iter()
                .filter_map(|i| i.get("msg").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => (String::new(), String::new()),
    };
    let message = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        message
    };
    let category = category_for_code(&code).unwrap_or_else(|| category_for_status(status));
    err(category, message)
        .with_status(status)
        .with_retry_after(parse_retry_after(
            None,
            header(headers, "retry-after"),
            std::time::SystemTime::now(),
        ))
        .with_request_id(header(headers, "request-id").map(str::to_string))
}

/// Decodes little-endian PCM, carrying an odd trailing byte to the next chunk.
#[derive(Debug, Default)]
struct PcmDecoder {
    carry: Option<u8>,
}

impl PcmDecoder {
    fn decode(&mut self, bytes: &[u8]) -> Vec<i16> {
        let mut all = Vec::with_capacity(bytes.len() + 1);
        all.extend(self.carry.take());
        all.extend_from_slice(bytes);
        if all.len() % 2 == 1 {
            self.carry = all.pop();
        }
        all.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }
}

/// Bookkeeping shared by both clients.
#[derive(Debug)]
struct Meter {
    config: Arc<ElevenLabsConfig>,
    started: Instant,
    connect: Option<Duration>,
    first_text_at: Option<Instant>,
    first_audio: Option<Duration>,
    characters: u64,
    samples: u64,
    chunks: u64,
    request_id: Option<String>,
}

impl Meter {
    fn new(config: Arc<ElevenLabsConfig>) -> Self {
        Self {
            config,
            started: Instant::now(),
            connect: None,
            first_text_at: None,
            first_audio: None,
            characters: 0,
            samples: 0,
            chunks: 0,
            request_id: None,
        }
    }

    fn text(&mut self, chars: usize) {
        self.characters += chars as u64;
        if self.first_text_at.is_none() {
            self.first_text_at = Some(Instant::now());
        }
    }

    fn audio(&mut self, samples: usize) {
        if self.first_audio.is_none() {
            self.first_audio = self.first_text_at.map(|t| t.elapsed());
        }
        self.samples += samples as u64;
        self.chunks += 1;
    }

    fn report(&self) -> TtsReport {
        TtsReport {
            model: self.config.model_id.clone(),
            usage: TtsUsage {
                characters: self.characters,
                audio_seconds: self.samples as f64 / self.config.output_format.sample_rate() as f64,
                chunks: self.chunks,
            },
            timing: TtsTiming {
                connect: self.connect,
                time_to_first_audio: self.first_audio,
                total: self.started.elapsed(),
            },
            cost_usd: self.characters as f64 / 1000.0 * self.config.price_per_1k_chars,
            request_id: self.request_id.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------------------------

/// The real ElevenLabs `stream-input` client.
#[derive(Debug, Clone)]
pub struct ElevenLabsTts {
    config: Arc<ElevenLabsConfig>,
}

impl ElevenLabsTts {
    pub fn new(config: ElevenLabsConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &ElevenLabsConfig {
        &self.config
    }

    fn url(&self) -> String {
        let c = &self.config;
        format!(
            "{}/v1/text-to-speech/{}/stream-input?model_id={}&output_format={}&inactivity_timeout={}&auto_mode={}&sync_alignment={}",
            c.ws_base_url.trim_end_matches('/'),
            c.voice_id,
            c.model_id,
            c.output_format.as_str(),
            c.inactivity_timeout_secs.clamp(1, 180),
            c.auto_mode,
            c.sync_alignment,
        )
    }
}

#[async_trait]
impl TextToSpeech for ElevenLabsTts {
    async fn start(&self) -> Result<TtsSession, VendorError> {
        let mut meter = Meter::new(Arc::clone(&self.config));
        let api_key = self.config.api_key.current(Vendor::ElevenLabs)?;
        let secret = api_key.expose_secret();
        let (mut ws, headers) = match connect(
            Vendor::ElevenLabs,
            &self.url(),
            &[("xi-api-key", secret)],
            self.config.connect_timeout,
        )
        .await
        {
            Ok(ok) => ok,
            Err(ConnectFailure::Http {
                status,
                headers,
                body,
            }) => {
                return Err(http_error(status, &headers, &body).redacted(secret));
            }
            Err(ConnectFailure::Other(e)) => return Err(e.redacted(secret)),
        };
        meter.request_id = header(&headers, "request-id").map(str::to_string);
        let init = json!({
            "text": " ",
            "voice_settings": self.config.voice_settings,
            "generation_config": {"chunk_length_schedule": self.config.chunk_length_schedule},
        });
        ws.send(Message::text(init.to_string()))
            .await
            .map_err(|e| err(ErrorCategory::Network, format!("send failed: {e}")))?;
        meter.connect = Some(meter.started.elapsed());
        let (cmd_tx, cmd_rx) = mpsc::channel(TTS_COMMAND_QUEUE);
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let task = WsTask {
            config: Arc::clone(&self.config),
            ws,
            commands: cmd_rx,
            tx,
            meter,
            decoder: PcmDecoder::default(),
            last_text_sent: Instant::now(),
            awaiting_audio_since: None,
            finishing: false,
            pending_error: None,
        };
        tokio::spawn(task.run());
        Ok(TtsSession {
            input: TtsInput { commands: cmd_tx },
            events: rx,
        })
    }
}

struct WsTask {
    config: Arc<ElevenLabsConfig>,
    ws: Ws,
    commands: mpsc::Receiver<TtsCommand>,
    tx: mpsc::Sender<TtsEvent>,
    meter: Meter,
    decoder: PcmDecoder,
    last_text_sent: Instant,
    /// Set by a flush or end-of-stream; cleared by audio (stall detection).
    awaiting_audio_since: Option<Instant>,
    finishing: bool,
    /// An error frame, reported when the close that follows it arrives.
    pending_error: Option<VendorError>,
}

impl WsTask {
    async fn fail(self, error: VendorError) {
        tracing::debug!(vendor = %Vendor::ElevenLabs, category = ?error.category, "session failed");
        let report = self.meter.report();
        let _ = self.tx.send(TtsEvent::Failed { error, report }).await;
    }

    async fn send_json(&mut self, v: Value) -> Result<(), VendorError> {
        self.last_text_sent = Instant::now();
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .map_err(|e| err(ErrorCategory::Network, format!("send failed: {e}")))
    }

    async fn run(mut self) {
        loop {
            let keepalive_at =
                tokio::time::Instant::from_std(self.last_text_sent + self.config.keepalive_after);
            let stall_at = self
                .awaiting_audio_since
                .map(|t| tokio::time::Instant::from_std(t + self.config.stall_timeout));
            tokio::select! {
                biased;
                cmd = self.commands.recv() => {
                    let result = match cmd {
                        Some(TtsCommand::Text(t)) => {
                            self.meter.text(t.chars().count());
                            self.send_json(json!({"text": t})).await
                        }
                        Some(TtsCommand::Flush) => {
                            self.awaiting_audio_since.get_or_insert_with(Instant::now);
                            self.send_json(json!({"text": " ", "flush": true})).await
                        }
                        Some(TtsCommand::Finish) => {
                            self.finishing = true;
                            self.awaiting_audio_since = Some(Instant::now());
                            self.send_json(json!({"text": ""})).await
                        }
                        Some(TtsCommand::Cancel) | None => {
                            let _ = tokio::time::timeout(Duration::from_millis(300), self.ws.close(None)).await;
                            return self.fail(err(ErrorCategory::Cancelled, "cancelled by the caller")).await;
                        }
                    };
                    if let Err(e) = result {
                        return self.fail(e).await;
                    }
                }
                msg = self.ws.next() => {
                    match self.on_message(msg).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => return self.fail(e).await,
                    }
                }
                _ = tokio::time::sleep_until(keepalive_at), if !self.finishing => {
                    if let Err(e) = self.send_json(json!({"text": " "})).await {
                        return self.fail(e).await;
                    }
                }
                _ = async { tokio::time::sleep_until(stall_at.unwrap_or(keepalive_at)).await }, if stall_at.is_some() => {
                    STALLED_SOCKETS.inc();
                    tracing::warn!(vendor = %Vendor::ElevenLabs, stalled = true, "no audio after text was flushed: the socket is stalled");
                    return self.fail(err(ErrorCategory::Timeout, "no audio from the server within the stall timeout")).await;
                }
            }
        }
    }

    /// Returns `Ok(false)` once the session has ended successfully.
    async fn on_message(
        &mut self,
        msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<bool, VendorError> {
        let msg = match msg {
            None => {
                return Err(self.pending_error.take().unwrap_or_else(|| {
                    err(
                        ErrorCategory::Network,
                        "connection closed without a close frame",
                    )
                }));
            }
            Some(Err(e)) => {
                return Err(self
                    .pending_error
                    .take()
                    .unwrap_or_else(|| err(ErrorCategory::Network, e.to_string())));
            }
            Some(Ok(m)) => m,
        };
        match msg {
            Message::Text(t) => match parse_server_message(t.as_str()) {
                Ok(ServerMessage::Audio {
                    audio,
                    alignment,
                    normalized_alignment,
                }) => {
                    let pcm = self.decoder.decode(&audio);
                    if self.finishing {
                        self.awaiting_audio_since = Some(Instant::now());
                    } else {
                        self.awaiting_audio_since = None;
                    }
                    if pcm.is_empty() {
                        return Ok(true);
                    }
                    self.meter.audio(pcm.len());
                    let chunk = AudioChunk {
                        pcm,
                        sample_rate: self.config.output_format.sample_rate(),
                        voice: crate::media::VoiceKind::Neural,
                        alignment,
                        normalized_alignment,
                    };
                    if self.tx.send(TtsEvent::Audio(chunk)).await.is_err() {
                        return Ok(false); // consumer gone
                    }
                    Ok(true)
                }
                Ok(ServerMessage::Final) => {
                    if self.meter.characters > 0 && self.meter.samples == 0 {
                        return Err(err(
                            ErrorCategory::Quota,
                            "the stream ended without audio for non-empty text (quota exhausted?)",
                        ));
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_millis(300), self.ws.close(None)).await;
                    let _ = self.tx.send(TtsEvent::Done(self.meter.report())).await;
                    Ok(false)
                }
                Ok(ServerMessage::Error { error, message }) => {
                    let category = category_for_code(&error).unwrap_or(ErrorCategory::Server);
                    self.pending_error =
                        Some(err(category, format!("{error}: {message}")).with_status(1008));
                    Ok(true)
                }
                Ok(ServerMessage::Other) => Ok(true),
                Err(e) => Err(err(ErrorCategory::Protocol, e.to_string())),
            },
            Message::Close(frame) => {
                if let Some(e) = self.pending_error.take() {
                    return Err(e);
                }
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                let category = match code {
                    1008 | 1009 | 1002 | 1003 | 1007 => ErrorCategory::BadRequest,
                    1011 => ErrorCategory::Server,
                    _ => ErrorCategory::Network,
                };
                Err(
                    err(category, format!("closed by the server: {code} {reason}"))
                        .with_status(code),
                )
            }
            _ => Ok(true),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP fallback
// ---------------------------------------------------------------------------------------------

/// The HTTP `/stream` fallback: text is collected until `flush` or `finish`, then each
/// collected segment is synthesized by one streaming POST. No alignment is available.
#[derive(Debug, Clone)]
pub struct ElevenLabsHttpTts {
    config: Arc<ElevenLabsConfig>,
    http: reqwest::Client,
}

impl ElevenLabsHttpTts {
    pub fn new(config: ElevenLabsConfig) -> Result<Self, VendorError> {
        let http = super::shared_http_client(config.connect_timeout)
            .map_err(|e| err(ErrorCategory::Protocol, format!("HTTP client: {e}")))?;
        Ok(Self {
            config: Arc::new(config),
            http,
        })
    }
}

#[async_trait]
impl TextToSpeech for ElevenLabsHttpTts {
    async fn start(&self) -> Result<TtsSession, VendorError> {
        let (cmd_tx, cmd_rx) = mpsc::channel(TTS_COMMAND_QUEUE);
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let task = HttpTask {
            meter: Meter::new(Arc::clone(&self.config)),
            config: Arc::clone(&self.config),
            http: self.http.clone(),
            commands: cmd_rx,
            tx,
            pending: String::new(),
            segments: std::collections::VecDeque::new(),
            finish_requested: false,
        };
        tokio::spawn(task.run());
        Ok(TtsSession {
            input: TtsInput { commands: cmd_tx },
            events: rx,
        })
    }
}

struct HttpTask {
    config: Arc<ElevenLabsConfig>,
    http: reqwest::Client,
    commands: mpsc::Receiver<TtsCommand>,
    tx: mpsc::Sender<TtsEvent>,
    meter: Meter,
    /// Text pushed since the last flush.
    pending: String,
    /// Flushed segments waiting for synthesis, in order.
    segments: std::collections::VecDeque<String>,
    finish_requested: bool,
}

/// A cancel (or the input going away) stops the session.
struct Cancelled;

impl HttpTask {
    async fn run(mut self) {
        loop {
            if let Some(segment) = self.segments.pop_front() {
                match self.synthesize(segment).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(Cancelled)) => return self.cancelled().await,
                    Err(e) => return self.fail(e).await,
                }
            }
            if self.finish_requested {
                let _ = self.tx.send(TtsEvent::Done(self.meter.report())).await;
                return;
            }
            let cmd = self.commands.recv().await;
            if self.on_command(cmd).is_err() {
                return self.cancelled().await;
            }
        }
    }

    fn on_command(&mut self, cmd: Option<TtsCommand>) -> Result<(), Cancelled> {
        match cmd {
            Some(TtsCommand::Text(t)) => self.pending.push_str(&t),
            Some(TtsCommand::Flush) => {
                let segment = std::mem::take(&mut self.pending);
                self.segments.push_back(segment);
            }
            Some(TtsCommand::Finish) => {
                let segment = std::mem::take(&mut self.pending);
                self.segments.push_back(segment);
                self.finish_requested = true;
            }
            Some(TtsCommand::Cancel) | None => return Err(Cancelled),
        }
        Ok(())
    }

    async fn cancelled(self) {
        self.fail(err(ErrorCategory::Cancelled, "cancelled by the caller"))
            .await;
    }

    async fn fail(self, error: VendorError) {
        let report = self.meter.report();
        let _ = self.tx.send(TtsEvent::Failed { error, report }).await;
    }

    /// One POST for one segment; commands keep being taken while it streams.
    async fn synthesize(&mut self, text: String) -> Result<Result<(), Cancelled>, VendorError> {
        if text.trim().is_empty() {
            return Ok(Ok(()));
        }
        self.meter.text(text.chars().count());
        let config = Arc::clone(&self.config);
        let c = &config;
        let url = format!(
            "{}/v1/text-to-speech/{}/stream?output_format={}",
            c.http_base_url.trim_end_matches('/'),
            c.voice_id,
            c.output_format.as_str()
        );
        let api_key = c.api_key.current(Vendor::ElevenLabs)?;
        let secret = api_key.expose_secret();
        let mut key = reqwest::header::HeaderValue::from_str(secret).map_err(|_| {
            err(
                ErrorCategory::Auth,
                "the API key contains characters not allowed in a header",
            )
        })?;
        key.set_sensitive(true);
        let body =
            json!({"text": text, "model_id": c.model_id, "voice_settings": c.voice_settings});
        let send = self
            .http
            .post(&url)
            .header("xi-api-key", key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send();
        let send = tokio::time::timeout(c.audio_timeout, send);
        tokio::pin!(send);
        let response = loop {
            tokio::select! {
                biased;
                cmd = self.commands.recv() => {
                    if self.on_command(cmd).is_err() {
                        return Ok(Err(Cancelled));
                    }
                }
                r = &mut send => break r,
            }
        };
        let response = match response {
            Err(_) => {
                return Err(err(
                    ErrorCategory::Timeout,
                    "no response headers within the timeout",
                ));
            }
            Ok(Err(e)) => {
                let category = if e.is_timeout() {
                    ErrorCategory::Timeout
                } else {
                    ErrorCategory::Network
                };
                return Err(err(category, e.to_string()).redacted(secret));
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if self.meter.request_id.is_none() {
            self.meter.request_id = headers
                .get("request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
        }
        if !response.status().is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(http_error(status, &headers, &body).redacted(secret));
        }
        let mut stream = response.bytes_stream();
        let mut decoder = PcmDecoder::default();
        loop {
            let next = tokio::select! {
                biased;
                cmd = self.commands.recv() => {
                    if self.on_command(cmd).is_err() {
                        return Ok(Err(Cancelled));
                    }
                    continue;
                }
                n = tokio::time::timeout(c.audio_timeout, stream.next()) => n,
            };
            match next {
                Err(_) => return Err(err(ErrorCategory::Timeout, "the audio stream stalled")),
                Ok(None) => return Ok(Ok(())),
                Ok(Some(Err(e))) => {
                    return Err(err(ErrorCategory::Network, e.to_string()).redacted(secret));
                }
                Ok(Some(Ok(bytes))) => {
                    let pcm = decoder.decode(&bytes);
                    if pcm.is_empty() {
                        continue;
                    }
                    self.meter.audio(pcm.len());
                    let chunk = AudioChunk {
                        pcm,
                        sample_rate: c.output_format.sample_rate(),
                        voice: crate::media::VoiceKind::Neural,
                        alignment: None,
                        normalized_alignment: None,
                    };
                    if self.tx.send(TtsEvent::Audio(chunk)).await.is_err() {
                        return Ok(Err(Cancelled));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_byte_chunks_decode_to_the_same_samples() {
        let samples: Vec<i16> = vec![1, -2, 300, -32768, 32767];
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut d = PcmDecoder::default();
        let mut out = d.decode(&bytes[..3]);
        out.extend(d.decode(&bytes[3..7]));
        out.extend(d.decode(&bytes[7..]));
        assert_eq!(out, samples);
    }
}
