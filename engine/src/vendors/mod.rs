//! The vendor layer: one trait per kind of vendor, one module per vendor.
//!
//! | kind | trait | real client | wire |
//! |---|---|---|---|
//! | speech-to-text | [`SpeechToText`] | [`deepgram::DeepgramStt`] | WebSocket `/v1/listen` |
//! | speech-to-text, offline | [`SpeechToText`] | [`local_stt::LocalStt`] (Whisper, keyless local mode) | child process: PCM on stdin, JSON lines out |
//! | LLM | [`LanguageModel`] | [`anthropic::AnthropicLlm`] | `POST /v1/messages`, SSE |
//! | text-to-speech | [`TextToSpeech`] | [`elevenlabs::ElevenLabsTts`], [`elevenlabs::ElevenLabsHttpTts`], the two as one by [`tts_failover::FailoverTts`] | WebSocket `stream-input`, HTTP `/stream` as its fallback |
//!
//! Every call is a *session* driven by a spawned task that owns the connection: the caller
//! holds an input handle (push audio/text, finalize, flush, close, cancel) and an event
//! receiver. That shape suits actors: a child never blocks its mailbox on a vendor socket.
//! Dropping a session's input handle (or an [`LlmStream`]) cancels it and closes the
//! connection. Every session ends with exactly one terminal event carrying a usage-and-timing
//! report ([`SttReport`], [`LlmReport`], [`TtsReport`]), also when it failed or was cancelled.
//!
//! Errors are [`VendorError`]s whose [`ErrorCategory`] decides retry versus fallback
//! (`is_permanent`). API keys are [`key::ApiKey`]s (zeroizing, redacting) behind a shared
//! [`key::KeyHandle`] that each client reads at every request or connection (the key leaser
//! swaps or revokes it); they are only exposed when a request header is written, and are
//! redacted from every error message.

pub mod anthropic;
pub mod check;
pub mod deepgram;
pub mod elevenlabs;
pub mod error;
pub mod espeak;
pub mod key;
pub mod local_drills;
pub mod local_interviewer;
pub mod local_stt;
pub mod retry;
pub mod sse;
pub mod tts_failover;
pub mod tuning;
pub mod usage;
mod ws;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

pub use error::{ErrorCategory, Vendor, VendorError};
pub use tuning::VendorTuning;
pub use usage::{
    LlmReport, LlmTiming, LlmUsage, SttReport, SttTiming, SttUsage, TokenPrices, TtsReport,
    TtsTiming, TtsUsage,
};

/// Installs the ring TLS provider once per process; needed before any https/wss client is
/// built because reqwest is compiled with `rustls-no-provider`.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP client of the vendor clients (Anthropic, ElevenLabs' HTTP stream): one per thread
/// and connect timeout, shared by every interview that thread runs.
///
/// Building a `reqwest::Client` loads and parses the platform's root certificates, and each
/// client keeps a connection pool of its own. Built per interview (two or three clients each),
/// that was ≈ 1.6 % of the server's CPU under load (`perf`: base64 and PEM decoding), and every
/// interview opened new TLS connections to the same vendors. Shared, the roots are parsed once
/// and connections are reused across interviews. The API keys travel in each request's
/// headers, never in the client, and no cookie store is enabled, so nothing of one account can
/// reach another's requests.
///
/// Per thread, not per process: a pooled connection is driven by a task of the runtime that
/// opened it, and an actix worker (like a test) runs one runtime on its thread; a connection is
/// never handed to another thread's runtime, which may be gone by then.
pub(crate) fn shared_http_client(
    connect_timeout: std::time::Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    thread_local! {
        static CLIENTS: std::cell::RefCell<Vec<(std::time::Duration, reqwest::Client)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    CLIENTS.with(|clients| {
        if let Some((_, client)) = clients
            .borrow()
            .iter()
            .find(|(timeout, _)| *timeout == connect_timeout)
        {
            return Ok(client.clone());
        }
        install_tls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()?;
        clients.borrow_mut().push((connect_timeout, client.clone()));
        Ok(client)
    })
}

// ---------------------------------------------------------------------------------------------
// Speech-to-text
// ---------------------------------------------------------------------------------------------

/// Audio frames queued towards the STT socket before new frames are dropped (≈ 5 s of 20 ms
/// frames). Overflow policy: drop the newest frame and count it; control messages never drop.
pub const STT_AUDIO_QUEUE_FRAMES: usize = 256;
/// Control messages (finalize, close) queued towards the STT task.
pub const STT_CONTROL_QUEUE: usize = 16;
/// Events queued from a vendor task to its consumer; the vendor task waits when it is full.
pub const EVENT_QUEUE: usize = 256;

/// A live speech-to-text vendor.
#[async_trait]
pub trait SpeechToText: Send + Sync {
    /// Opens a streaming session. Handshake failures (bad key, quota, rate limit) come back
    /// here; later failures arrive as [`SttEvent::Failed`].
    async fn start(&self) -> Result<SttSession, VendorError>;

    /// Whether sessions opened now are simulated (a stand-in while the real recognizer is not
    /// ready yet), so `/health` reports `fake`, not `local`, until it is.
    fn is_simulated(&self) -> bool {
        false
    }
}

/// One open STT stream: push audio through `input`, read transcripts from `events`.
#[derive(Debug)]
pub struct SttSession {
    pub input: SttInput,
    pub events: mpsc::Receiver<SttEvent>,
}

/// A word with its timing in seconds from the start of the session (reconnects re-offset).
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// Raw lower-case token.
    pub word: String,
    /// With punctuation and capitalisation when the vendor formats; otherwise `word`.
    pub punctuated: String,
    pub start: f64,
    pub end: f64,
    pub confidence: f64,
}

/// An interim or final transcript of one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// The segment's text will not change.
    pub is_final: bool,
    /// Endpointing saw a pause: an end-of-turn candidate.
    pub speech_final: bool,
    /// Produced by [`SttInput::finalize`].
    pub from_finalize: bool,
    /// Segment start and length, seconds from the start of the session.
    pub start: f64,
    pub duration: f64,
    pub confidence: f64,
    pub words: Vec<Word>,
}

/// What an STT session reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    Transcript(Transcript),
    /// Voice activity began at `at` seconds (the barge-in trigger).
    SpeechStarted {
        at: f64,
    },
    /// A gap of `utterance_end_ms` followed the last finalized word.
    UtteranceEnd {
        last_word_end: f64,
    },
    /// The connection broke; the client is reconnecting and will resend audio since the
    /// last final.
    Reconnecting {
        attempt: u32,
        error: VendorError,
    },
    /// Reconnected; transcripts continue on the same timeline.
    Reconnected {
        attempt: u32,
    },
    /// Terminal: the session closed normally after [`SttInput::close`].
    Closed(SttReport),
    /// Terminal: the session failed or was cancelled.
    Failed {
        error: VendorError,
        report: SttReport,
    },
}

impl SttEvent {
    pub fn is_terminal(&self) -> bool {
        matches!(self, SttEvent::Closed(_) | SttEvent::Failed { .. })
    }
}

/// Commands from [`SttInput`] to the session task.
#[derive(Debug)]
pub(crate) enum SttControl {
    Finalize,
    Close,
}

/// Why an audio frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AudioRejected {
    #[error("the STT audio queue is full; the frame was dropped")]
    QueueFull,
    #[error("the STT session has ended")]
    SessionEnded,
}

/// The sending half of an STT session. Dropping every clone cancels the session.
#[derive(Debug, Clone)]
pub struct SttInput {
    pub(crate) audio: mpsc::Sender<Vec<u8>>,
    pub(crate) control: mpsc::Sender<SttControl>,
    pub(crate) dropped: Arc<AtomicU64>,
}

impl SttInput {
    /// Queues 16-bit mono PCM at the session's sample rate. Never waits: when the queue is
    /// full the frame is dropped and counted (`SttUsage::dropped_frames`).
    pub fn push_pcm(&self, samples: &[i16]) -> Result<(), AudioRejected> {
        if samples.is_empty() {
            return Ok(()); // an empty binary frame would close a Deepgram stream
        }
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        match self.audio.try_send(bytes) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Err(AudioRejected::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AudioRejected::SessionEnded),
        }
    }

    /// Asks the vendor to finalize what it has buffered now (pending interim text becomes final).
    pub async fn finalize(&self) -> Result<(), AudioRejected> {
        self.control
            .send(SttControl::Finalize)
            .await
            .map_err(|_| AudioRejected::SessionEnded)
    }

    /// Ends the stream gracefully: remaining transcripts arrive, then [`SttEvent::Closed`].
    pub async fn close(&self) -> Result<(), AudioRejected> {
        self.control
            .send(SttControl::Close)
            .await
            .map_err(|_| AudioRejected::SessionEnded)
    }
}

// ---------------------------------------------------------------------------------------------
// LLM
// ---------------------------------------------------------------------------------------------

/// Who said a conversation message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One message of the conversation so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A request for one streamed reply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmRequest {
    /// The system prompt; cached by the vendor where it supports caching.
    pub system: String,
    pub messages: Vec<ChatMessage>,
    /// Overrides the client's configured `max_tokens`.
    pub max_tokens: Option<u32>,
    pub stop_sequences: Vec<String>,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence(String),
    ToolUse,
    PauseTurn,
    Refusal,
    ContextWindowExceeded,
    /// A reason this client does not know yet.
    Other(String),
}

/// What a streamed reply reports.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    /// Text to speak, in order. Thinking blocks are never reported.
    TextDelta(String),
    /// Terminal: the reply completed.
    Finished {
        stop_reason: StopReason,
        report: LlmReport,
    },
    /// Terminal: the reply failed (mid-stream error, drop, stall) or was cancelled; text
    /// already delivered is a partial, not a truncated success.
    Failed {
        error: VendorError,
        report: LlmReport,
    },
}

impl LlmEvent {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, LlmEvent::TextDelta(_))
    }
}

/// A tool the model is made to call (forced tool output): its name, what it is for, and the
/// JSON schema of its input. The model's answer is the tool's input, so it has a known shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// A JSON schema with `"type": "object"` at the top.
    pub input_schema: serde_json::Value,
}

/// How a forced tool call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutcome {
    /// The reply completed. `input` is the tool's input as the model streamed it (the
    /// concatenated partial JSON; not yet parsed or validated), `None` if no tool call came.
    Called {
        input: Option<String>,
        stop_reason: StopReason,
        report: LlmReport,
    },
    /// The call failed before or during the reply (after the client's retries); `report` is
    /// what was consumed when a reply had started.
    Failed {
        error: VendorError,
        report: Option<LlmReport>,
    },
}

/// A large language model that streams replies.
#[async_trait]
pub trait LanguageModel: Send + Sync {
    /// Starts a reply. Errors before the stream starts (after the client's retries) come
    /// back here; errors after it started arrive as [`LlmEvent::Failed`].
    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, VendorError>;

    /// One reply that must be a call of `tool` (`tool_choice` names it). Models without tool
    /// support refuse with a permanent [`ErrorCategory::BadRequest`].
    async fn call_tool(&self, request: LlmRequest, tool: &ToolDefinition) -> ToolOutcome {
        let _ = (request, tool);
        ToolOutcome::Failed {
            error: VendorError::new(
                Vendor::Local,
                ErrorCategory::BadRequest,
                "this language model does not support tool calls",
            ),
            report: None,
        }
    }
}

/// A reply being streamed. Dropping it cancels the call and closes the connection.
#[derive(Debug)]
pub struct LlmStream {
    events: mpsc::Receiver<LlmEvent>,
    cancel: Option<oneshot::Sender<()>>,
}

impl LlmStream {
    /// For implementations: `cancel` fires when the consumer cancels or drops the stream.
    pub fn new(events: mpsc::Receiver<LlmEvent>, cancel: oneshot::Sender<()>) -> Self {
        Self {
            events,
            cancel: Some(cancel),
        }
    }

    /// The next event; `None` after the terminal event.
    pub async fn next(&mut self) -> Option<LlmEvent> {
        self.events.recv().await
    }

    /// Cancels mid-stream and returns the report of what was consumed so far.
    pub async fn cancel(mut self) -> Option<LlmReport> {
        if let Some(tx) = self.cancel.take() {
            let _ = tx.send(());
        }
        while let Some(event) = self.events.recv().await {
            match event {
                LlmEvent::Finished { report, .. } | LlmEvent::Failed { report, .. } => {
                    return Some(report);
                }
                LlmEvent::TextDelta(_) => {}
            }
        }
        None
    }

    /// Reads to the end: the concatenated text and the terminal event.
    pub async fn collect(mut self) -> (String, Option<LlmEvent>) {
        let mut text = String::new();
        while let Some(event) = self.next().await {
            match event {
                LlmEvent::TextDelta(t) => text.push_str(&t),
                terminal => return (text, Some(terminal)),
            }
        }
        (text, None)
    }
}

impl Drop for LlmStream {
    fn drop(&mut self) {
        if let Some(tx) = self.cancel.take() {
            let _ = tx.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Text-to-speech
// ---------------------------------------------------------------------------------------------

/// Per-character timing of one audio chunk, relative to the chunk's start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Alignment {
    pub chars: Vec<String>,
    pub start_ms: Vec<u32>,
    pub duration_ms: Vec<u32>,
}

/// A chunk of synthesized speech.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioChunk {
    /// Signed 16-bit mono samples.
    pub pcm: Vec<i16>,
    pub sample_rate: u32,
    /// What kind of synthesizer spoke it (the reply encoder's complexity follows it).
    pub voice: crate::media::VoiceKind,
    /// Alignment of the original text, when the vendor sent it.
    pub alignment: Option<Alignment>,
    /// Alignment of the normalized text (numbers spelled out), when sent.
    pub normalized_alignment: Option<Alignment>,
}

/// What a TTS session reports.
#[derive(Debug, Clone, PartialEq)]
pub enum TtsEvent {
    Audio(AudioChunk),
    /// Terminal: all text was synthesized after [`TtsInput::finish`].
    Done(TtsReport),
    /// Terminal: the session failed or was cancelled.
    Failed {
        error: VendorError,
        report: TtsReport,
    },
}

impl TtsEvent {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, TtsEvent::Audio(_))
    }
}

/// Commands from [`TtsInput`] to the session task.
#[derive(Debug)]
pub(crate) enum TtsCommand {
    Text(String),
    Flush,
    Finish,
    Cancel,
}

/// Text commands queued towards the TTS task; the caller waits when it is full.
pub const TTS_COMMAND_QUEUE: usize = 64;

/// A streaming text-to-speech vendor.
#[async_trait]
pub trait TextToSpeech: Send + Sync {
    /// Opens a session. Failures to connect come back here; later ones as [`TtsEvent::Failed`].
    async fn start(&self) -> Result<TtsSession, VendorError>;

    /// The same voice engine speaking with the account's `interviewer_voice` setting, when it
    /// maps that setting to voices of its own (`None`: it does not; use it as it is).
    fn for_voice(&self, voice: &str) -> Option<Arc<dyn TextToSpeech>> {
        let _ = voice;
        None
    }
}

/// One TTS session: push text through `input`, read audio from `events`.
#[derive(Debug)]
pub struct TtsSession {
    pub input: TtsInput,
    pub events: mpsc::Receiver<TtsEvent>,
}

/// The sending half of a TTS session. Dropping it cancels the session.
#[derive(Debug, Clone)]
pub struct TtsInput {
    pub(crate) commands: mpsc::Sender<TtsCommand>,
}

impl TtsInput {
    /// Appends text (a phrase or sentence, ideally ending with a space).
    pub async fn push_text(&self, text: &str) -> Result<(), AudioRejected> {
        if text.is_empty() {
            return Ok(()); // an empty text message means end-of-stream on the wire
        }
        self.send(TtsCommand::Text(text.to_string())).await
    }

    /// Synthesizes everything buffered now, keeping the session open.
    pub async fn flush(&self) -> Result<(), AudioRejected> {
        self.send(TtsCommand::Flush).await
    }

    /// No more text: synthesize the rest, then [`TtsEvent::Done`].
    pub async fn finish(&self) -> Result<(), AudioRejected> {
        self.send(TtsCommand::Finish).await
    }

    /// Stops now (barge-in): the connection closes, and the session ends with
    /// [`TtsEvent::Failed`] of category [`ErrorCategory::Cancelled`].
    pub async fn cancel(&self) -> Result<(), AudioRejected> {
        self.send(TtsCommand::Cancel).await
    }

    async fn send(&self, c: TtsCommand) -> Result<(), AudioRejected> {
        self.commands
            .send(c)
            .await
            .map_err(|_| AudioRejected::SessionEnded)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A keep-alive HTTP/1.1 server on loopback answering `200 ok` to every request; counts the
    /// connections it accepted.
    async fn keep_alive_server() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut head = Vec::new();
                    loop {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        head.extend_from_slice(&buf[..n]);
                        while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            head.drain(..end + 4);
                            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if socket.write_all(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn interviews_on_one_thread_share_the_vendor_client_and_its_connections() {
        let (url, accepted) = keep_alive_server().await;
        let timeout = Duration::from_millis(1_234);
        // Two interviews' clients in turn, as `AnthropicLlm::new` builds them.
        for _ in 0..2 {
            let client = super::shared_http_client(timeout).expect("client");
            let body = client
                .get(&url)
                .send()
                .await
                .expect("request")
                .text()
                .await
                .expect("body");
            assert_eq!(body, "ok");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "the second interview reused the first one's connection"
        );
        // Another connect timeout is another client (and so another connection).
        let other = super::shared_http_client(Duration::from_millis(4_321)).expect("client");
        other.get(&url).send().await.expect("request");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}
