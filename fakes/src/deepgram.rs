//! Fake Deepgram live transcription: WebSocket `/v1/listen` (providers.md A and D.1).
//!
//! The audio clock is the audio itself: stream time is bytes received divided by the byte
//! rate, so results never lead the audio. Each 20 ms frame of linear16 PCM goes through an
//! energy (RMS) detector; a run of voiced frames is one utterance, whose words come from the
//! configured script (what the simulated candidate "said") spread evenly over the voiced span.
//! Interims arrive every `interim_interval` of speech, a final with `speech_final` once
//! `endpointing` ms of silence follow, `UtteranceEnd` once the clock passes the last final
//! word plus `utterance_end_ms`, `SpeechStarted` at onset with `vad_events`, and `Metadata`
//! before every server-side close.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::{Pacing, Rng, rfc3339_now};
use crate::fault::{Fault, FaultBook, GateAction, UnitGate, key_is_valid};
use crate::http::{
    Listener, ReadError, Refusal, Request, accept_websocket, read_request, write_response,
};

/// The exact NET-0001 close reason observed on the real service.
pub const NET0001_REASON: &str = "Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001";
/// The exact NET-0000 close reason observed on the real service.
pub const NET0000_REASON: &str = "Deepgram did not provide a response message within the timeout window. See https://dpgr.am/net0000";

/// How the fake Deepgram behaves.
#[derive(Debug, Clone)]
pub struct DeepgramConfig {
    pub listen: SocketAddr,
    /// Scales `result_latency`.
    pub pacing: Pacing,
    /// What the candidate says: one entry per detected utterance, per connection, in order.
    pub script: Vec<String>,
    /// Used once the script is exhausted.
    pub unscripted_text: String,
    /// RMS (on the i16 scale) at or above which a 20 ms frame counts as speech.
    pub energy_threshold: f64,
    /// Audio time between interim results while speech continues.
    pub interim_interval: Duration,
    /// Wall-clock time without any frame before closing with 1011 NET-0001.
    pub inactivity_timeout: Duration,
    /// Delay before each result is sent (the service's processing latency).
    pub result_latency: Duration,
    /// Audio time of pure silence after which an empty final tiles the timeline.
    pub silence_final_after: Duration,
    /// Continuous speech longer than this is finalized in segments (`is_final` without
    /// `speech_final`) while the speaker keeps talking; `None` keeps one final per utterance.
    pub max_segment: Option<Duration>,
    /// Interims show their newest word misheard (as `uh`); the final has the scripted word,
    /// so clients must prefer final text over interim text.
    pub revise_interims: bool,
    /// Concurrent sockets allowed per key before the handshake gets 429.
    pub max_concurrent_per_key: usize,
    /// Close code sent when a zero-length binary frame arrives (unconfirmed on the real service).
    pub empty_frame_close_code: u16,
    pub seed: u64,
}

impl Default for DeepgramConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pacing: Pacing::REAL_TIME,
            script: Vec::new(),
            unscripted_text: "I think that covers it.".to_string(),
            energy_threshold: 500.0,
            interim_interval: Duration::from_secs(1),
            inactivity_timeout: Duration::from_secs(10),
            result_latency: Duration::ZERO,
            silence_final_after: Duration::from_secs(5),
            max_segment: None,
            revise_interims: false,
            max_concurrent_per_key: 50,
            empty_frame_close_code: 1011,
            seed: 0xdee9_9a11,
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    connections: AtomicU64,
    rejected: AtomicU64,
    audio_bytes: AtomicU64,
    max_rms_bits: AtomicU64,
    utterances: AtomicU64,
    finals: AtomicU64,
    keepalives: AtomicU64,
    finalizes: AtomicU64,
    close_streams: AtomicU64,
    timeouts: AtomicU64,
}

/// A snapshot of what the fake Deepgram received and sent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeepgramCounters {
    /// Upgrades accepted.
    pub connections: u64,
    /// Handshakes refused (auth, params, injected faults, concurrency).
    pub rejected: u64,
    /// Seconds of 16-bit mono audio received (at each connection's sample rate).
    pub audio_seconds: f64,
    /// Highest 20 ms RMS seen, on the i16 scale.
    pub max_rms: f64,
    /// Utterances detected by the energy detector.
    pub utterances: u64,
    /// Final `Results` sent (including empty ones).
    pub finals: u64,
    pub keepalives: u64,
    pub finalizes: u64,
    pub close_streams: u64,
    /// Connections closed with NET-0001 for inactivity.
    pub inactivity_closes: u64,
}

struct Inner {
    config: DeepgramConfig,
    faults: FaultBook,
    rng: Rng,
    stats: Stats,
    /// Microseconds of audio, summed over connections (sample rates may differ).
    audio_micros: AtomicU64,
    active: Mutex<HashMap<String, usize>>,
    /// Where each key's speaker is in the script: one candidate's words are one sequence
    /// across reconnects.
    scripts: Mutex<HashMap<String, ScriptCursor>>,
}

impl Inner {
    fn script_for(&self, key: &str) -> ScriptCursor {
        let base = crate::fault::key_base(key).to_owned();
        self.scripts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(base)
            .or_insert_with(|| ScriptCursor::new(&self.config.script))
            .clone()
    }
}

/// A position in the script of what the candidate says. An utterance peeks its line when the
/// speech starts and consumes it only when its final is sent, so audio resent after a
/// reconnect (an utterance cut before its final) is heard as the same line again.
#[derive(Clone, Debug)]
pub(crate) struct ScriptCursor {
    lines: Arc<Vec<String>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
}

impl ScriptCursor {
    fn new(lines: &[String]) -> Self {
        Self {
            lines: Arc::new(lines.to_vec()),
            next: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    fn peek(&self) -> Option<(usize, String)> {
        let index = self.next.load(Ordering::SeqCst);
        self.lines.get(index).map(|line| (index, line.clone()))
    }

    fn consumed(&self, index: usize) {
        self.next.fetch_max(index + 1, Ordering::SeqCst);
    }

    fn position(&self) -> usize {
        self.next.load(Ordering::SeqCst)
    }

    /// Gives back lines consumed by finals that were never sent (a stalled socket).
    fn rewind_to(&self, position: usize) {
        self.next.store(position, Ordering::SeqCst);
    }
}

/// A running fake Deepgram.
pub struct FakeDeepgram {
    listener: Listener,
    inner: Arc<Inner>,
}

impl FakeDeepgram {
    pub async fn start(config: DeepgramConfig) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            rng: Rng::new(config.seed),
            config,
            faults: FaultBook::default(),
            stats: Stats::default(),
            audio_micros: AtomicU64::new(0),
            active: Mutex::new(HashMap::new()),
            scripts: Mutex::new(HashMap::new()),
        });
        let listener = Listener::serve(inner.config.listen, &inner, handle).await?;
        Ok(Self { listener, inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// `ws://127.0.0.1:PORT` (the client appends `/v1/listen?...`).
    pub fn base_url(&self) -> String {
        format!("ws://{}", self.addr())
    }

    pub fn counters(&self) -> DeepgramCounters {
        let s = &self.inner.stats;
        let g = |a: &AtomicU64| a.load(Ordering::SeqCst);
        DeepgramCounters {
            connections: g(&s.connections),
            rejected: g(&s.rejected),
            audio_seconds: g(&self.inner.audio_micros) as f64 / 1e6,
            max_rms: f64::from_bits(g(&s.max_rms_bits)),
            utterances: g(&s.utterances),
            finals: g(&s.finals),
            keepalives: g(&s.keepalives),
            finalizes: g(&s.finalizes),
            close_streams: g(&s.close_streams),
            inactivity_closes: g(&s.timeouts),
        }
    }

    pub async fn shutdown(self) {
        self.listener.shutdown().await;
    }
}

/// Connection parameters from the query string.
#[derive(Debug, Clone)]
struct Params {
    model: String,
    sample_rate: u32,
    interim_results: bool,
    /// `None` for `endpointing=false`.
    endpointing: Option<f64>,
    utterance_end: Option<f64>,
    vad_events: bool,
    formatted: bool,
}

fn parse_params(req: &Request) -> Result<Params, String> {
    let flag = |name: &str| req.query(name).is_some_and(|v| v == "true");
    let encoding = req.query("encoding");
    let sample_rate = match (encoding, req.query("sample_rate")) {
        (Some(_), None) => return Err("sample_rate is required when encoding is set".into()),
        (_, Some(r)) => r
            .parse::<u32>()
            .ok()
            .filter(|r| (8000..=48000).contains(r))
            .ok_or("Invalid sample_rate")?,
        (None, None) => return Err("the fake supports raw linear16 audio only".into()),
    };
    if encoding != Some("linear16") {
        return Err("the fake supports encoding=linear16 only".into());
    }
    if req.query("channels").is_some_and(|c| c != "1") {
        return Err("the fake supports channels=1 only".into());
    }
    let endpointing = match req.query("endpointing") {
        None => Some(0.010),
        Some("false") => None,
        Some(ms) => Some(ms.parse::<u32>().map_err(|_| "Invalid endpointing")? as f64 / 1000.0),
    };
    let utterance_end = match req.query("utterance_end_ms") {
        None => None,
        Some(ms) => {
            Some(ms.parse::<u32>().map_err(|_| "Invalid utterance_end_ms")? as f64 / 1000.0)
        }
    };
    if utterance_end.is_some() && !flag("interim_results") {
        return Err("utterance_end_ms requires interim_results=true".into());
    }
    Ok(Params {
        model: req.query("model").unwrap_or("base").to_string(),
        sample_rate,
        interim_results: flag("interim_results"),
        endpointing,
        utterance_end,
        vad_events: flag("vad_events"),
        formatted: flag("punctuate") || flag("smart_format"),
    })
}

fn credential(req: &Request) -> Option<String> {
    if let Some(auth) = req.header("authorization") {
        let (scheme, key) = auth.split_once(' ')?;
        return (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
            .then(|| key.trim().to_string());
    }
    // Browsers send `Sec-WebSocket-Protocol: token, <key>`.
    let proto = req.header("sec-websocket-protocol")?;
    let mut parts = proto.split(',').map(str::trim);
    (parts.next()? == "token").then(|| parts.next().map(str::to_string))?
}

async fn refuse(
    inner: &Inner,
    stream: &mut TcpStream,
    status: u16,
    code: &str,
    message: &str,
    request_id: &str,
    mut extra: Vec<(&'static str, String)>,
) {
    inner.stats.rejected.fetch_add(1, Ordering::SeqCst);
    extra.push(("dg-request-id", request_id.to_string()));
    extra.push(("dg-error", message.to_string()));
    extra.push(("content-type", "application/json".to_string()));
    let body = json!({"err_code": code, "err_msg": message, "request_id": request_id});
    let _ = write_response(stream, status, &extra, body.to_string().as_bytes()).await;
}

struct ActiveGuard<'a> {
    inner: &'a Inner,
    key: String,
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        let mut active = self.inner.active.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = active.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

/// One connection: the upgrade request in named steps (route, key and fault, parameters, the
/// per-key concurrency slot), then the live session.
async fn handle(inner: Arc<Inner>, mut stream: TcpStream) {
    let req = match read_request(&mut stream).await {
        Ok(r) => r,
        Err(ReadError::Malformed(why)) => {
            let _ = write_response(&mut stream, 400, &[], why.as_bytes()).await;
            return;
        }
        Err(_) => return,
    };
    let request_id = inner.rng.uuid();
    let (key, fault, params) = match admit(&inner, &req).await {
        Ok(admitted) => admitted,
        Err(r) => {
            let Refusal {
                status,
                code,
                message,
                headers,
            } = r;
            return refuse(
                &inner,
                &mut stream,
                status,
                code,
                &message,
                &request_id,
                headers,
            )
            .await;
        }
    };
    let script = inner.script_for(&key);
    let _guard = ActiveGuard { inner: &inner, key };
    let Ok(ws) = accept_websocket(stream, &req, &[("dg-request-id", request_id.clone())]).await
    else {
        return;
    };
    inner.stats.connections.fetch_add(1, Ordering::SeqCst);
    session(&inner, ws, params, request_id, fault, script).await;
}

/// The route, the key (and the fault it asks for), the parameters and a concurrency slot for
/// the key (released by the caller's [`ActiveGuard`]); or why the upgrade is refused.
async fn admit(inner: &Inner, req: &Request) -> Result<(String, Fault, Params), Refusal> {
    if req.path != "/v1/listen" {
        return Err(Refusal::new(404, "NOT_FOUND", "Not found"));
    }
    if !req.is_websocket_upgrade() {
        return Err(Refusal::new(
            400,
            "Bad Request",
            "The fake serves live streaming (WebSocket) only",
        ));
    }
    let key = credential(req).unwrap_or_default();
    let fault = if key_is_valid(&key) {
        inner.faults.next(&key)
    } else {
        Fault::Unauthorized
    };
    if let Fault::SlowFirstByte(d) = fault {
        tokio::time::sleep(d).await;
    }
    if let Some(refusal) = fault_refusal(&fault) {
        return Err(refusal);
    }
    let params =
        parse_params(req).map_err(|msg| Refusal::new(400, "INVALID_QUERY_PARAMETER", msg))?;
    if !take_slot(inner, &key) {
        return Err(
            Refusal::new(429, "RATE_LIMITED", "Too many concurrent requests.")
                .with_header("retry-after", "1"),
        );
    }
    Ok((key, fault, params))
}

/// The answer of a fault that refuses the upgrade.
fn fault_refusal(fault: &Fault) -> Option<Refusal> {
    Some(match fault {
        Fault::Unauthorized => Refusal::new(401, "INVALID_AUTH", "Invalid credentials.")
            .with_header("www-authenticate", "Token realm=\"Deepgram\""),
        Fault::QuotaExceeded => Refusal::new(
            402,
            "PAYMENT_REQUIRED",
            "Project does not have enough credits for this request.",
        ),
        Fault::RateLimited { retry_after } => {
            let refusal = Refusal::new(
                429,
                "RATE_LIMITED",
                "Too many requests. Please try again later.",
            );
            match retry_after {
                Some(s) => refusal.with_header("retry-after", s.to_string()),
                None => refusal,
            }
        }
        Fault::Overloaded => Refusal::new(
            503,
            "SERVICE_UNAVAILABLE",
            "Service temporarily unavailable.",
        ),
        Fault::ServerError { .. } => {
            Refusal::new(500, "INTERNAL_SERVER_ERROR", "Internal server error.")
        }
        _ => return None,
    })
}

/// Takes one of the key's concurrent-socket slots; `false` when they are all in use.
fn take_slot(inner: &Inner, key: &str) -> bool {
    let mut active = inner.active.lock().unwrap_or_else(|p| p.into_inner());
    let n = active.entry(key.to_string()).or_insert(0);
    if *n >= inner.config.max_concurrent_per_key {
        return false;
    }
    *n += 1;
    true
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn session(
    inner: &Inner,
    ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    params: Params,
    request_id: String,
    fault: Fault,
    script: ScriptCursor,
) {
    let (mut sink, mut source) = ws.split();
    let model_uuid = inner.rng.uuid();
    let mut tracker = Tracker::new(&inner.config, &params).with_script(script);
    let mut gate = UnitGate::new(&fault);
    let mut stalled = false;
    let mut bytes_total: u64 = 0;
    let byte_rate = params.sample_rate as f64 * 2.0;
    let metadata = |bytes: u64| {
        json!({"type":"Metadata","transaction_key":"deprecated","request_id":request_id,
            "sha256":"incomplete","created":rfc3339_now(),"duration":round3(bytes as f64 / byte_rate),
            "channels":1,"models":[model_uuid],
            "model_info":{model_uuid.clone():{"name":"2-general-nova","version":"2024-01-18.26916","arch":params.model}}})
        .to_string()
    };
    loop {
        let next = tokio::time::timeout(inner.config.inactivity_timeout, source.next()).await;
        let msg = match next {
            Err(_) if stalled => continue,
            Err(_) => {
                inner.stats.timeouts.fetch_add(1, Ordering::SeqCst);
                let _ = sink.send(Message::text(metadata(bytes_total))).await;
                let _ = sink.send(close(1011, NET0001_REASON)).await;
                return;
            }
            Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(m))) => m,
        };
        let mut closing = false;
        let script_before = tracker.script.position();
        let emits = match msg {
            Message::Binary(b) if b.is_empty() => {
                let _ = sink
                    .send(close(inner.config.empty_frame_close_code, ""))
                    .await;
                return;
            }
            Message::Binary(b) if stalled => {
                // A stalled server takes the audio and hears none of it.
                bytes_total += b.len() as u64;
                Vec::new()
            }
            Message::Binary(b) => {
                bytes_total += b.len() as u64;
                inner
                    .stats
                    .audio_bytes
                    .fetch_add(b.len() as u64, Ordering::SeqCst);
                inner
                    .audio_micros
                    .fetch_add((b.len() as f64 / byte_rate * 1e6) as u64, Ordering::SeqCst);
                let out = tracker.push_audio(&b);
                let max = tracker.max_rms;
                let _ = inner.stats.max_rms_bits.fetch_update(
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                    |old| (max > f64::from_bits(old)).then_some(max.to_bits()),
                );
                out
            }
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                match v.get("type").and_then(Value::as_str) {
                    Some("KeepAlive") => {
                        inner.stats.keepalives.fetch_add(1, Ordering::SeqCst);
                        Vec::new()
                    }
                    Some("Finalize") => {
                        inner.stats.finalizes.fetch_add(1, Ordering::SeqCst);
                        if stalled {
                            Vec::new()
                        } else {
                            tracker.finalize()
                        }
                    }
                    Some("CloseStream") => {
                        inner.stats.close_streams.fetch_add(1, Ordering::SeqCst);
                        closing = true;
                        if stalled { Vec::new() } else { tracker.close() }
                    }
                    Some(_) => Vec::new(), // unknown control types are ignored
                    None => {
                        let err = json!({"type":"Error","variant":"SchemaError","description":"Could not parse the text message as a control message.","message":t.as_str()});
                        let _ = sink.send(Message::text(err.to_string())).await;
                        Vec::new()
                    }
                }
            }
            Message::Close(_) => return,
            _ => Vec::new(),
        };
        let mut final_sent = false;
        for emit in emits {
            if stalled {
                break;
            }
            match gate.before_unit() {
                GateAction::Send => {}
                GateAction::MidStreamError => {
                    let _ = sink.send(close(1011, NET0000_REASON)).await;
                    return;
                }
                GateAction::Drop => return,
                GateAction::Stall => {
                    stalled = true;
                    if !final_sent {
                        // A final held back by the stall did not speak its line: audio resent
                        // on the next socket speaks it again.
                        tracker.script.rewind_to(script_before);
                    }
                    break;
                }
            }
            if let Emit::Results { is_final: true, .. } = emit {
                final_sent = true;
            }
            if let Emit::Results { is_final: true, .. } = emit {
                inner.stats.finals.fetch_add(1, Ordering::SeqCst);
            }
            if let Emit::Results { .. } = emit
                && tracker.take_new_utterance()
            {
                inner.stats.utterances.fetch_add(1, Ordering::SeqCst);
            }
            let latency = inner.config.pacing.scale(inner.config.result_latency);
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let text = emit.to_json(&request_id, &params, &model_uuid);
            if sink.send(Message::text(text)).await.is_err() {
                return;
            }
        }
        if closing {
            if !stalled {
                let _ = sink.send(Message::text(metadata(bytes_total))).await;
                let _ = sink.send(close(1000, "")).await;
            }
            // Wait briefly for the client's close reply so the close handshake completes.
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
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    }))
}

/// One message the tracker wants sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Emit {
    Results {
        start: f64,
        duration: f64,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
        /// (word, punctuated, start, end)
        words: Vec<(String, String, f64, f64)>,
    },
    SpeechStarted(f64),
    UtteranceEnd(f64),
}

impl Emit {
    fn to_json(&self, request_id: &str, params: &Params, model_uuid: &str) -> String {
        match self {
            Emit::Results {
                start,
                duration,
                is_final,
                speech_final,
                from_finalize,
                words,
            } => {
                let transcript = words
                    .iter()
                    .map(|(w, p, _, _)| {
                        if params.formatted {
                            p.as_str()
                        } else {
                            w.as_str()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                let words: Vec<Value> = words
                    .iter()
                    .map(|(w, p, s, e)| {
                        let mut word = json!({"word": w, "start": round3(*s), "end": round3(*e), "confidence": 0.98});
                        if params.formatted {
                            word["punctuated_word"] = json!(p);
                        }
                        word
                    })
                    .collect();
                json!({"type":"Results","channel_index":[0,1],"duration":round3(*duration),"start":round3(*start),
                    "is_final":is_final,"speech_final":speech_final,"from_finalize":from_finalize,
                    "channel":{"alternatives":[{"transcript":transcript,"confidence":if words.is_empty() {0.0} else {0.98},"words":words}]},
                    "metadata":{"request_id":request_id,"model_info":{"name":"2-general-nova","version":"2024-01-18.26916","arch":params.model},"model_uuid":model_uuid}})
                .to_string()
            }
            Emit::SpeechStarted(t) => {
                json!({"type":"SpeechStarted","channel":[0,1],"timestamp":round3(*t)}).to_string()
            }
            Emit::UtteranceEnd(t) => {
                json!({"type":"UtteranceEnd","channel":[0,1],"last_word_end":round3(*t)})
                    .to_string()
            }
        }
    }
}

/// Silence (without endpointing) after which an utterance is finalized anyway.
const NO_ENDPOINTING_FINAL_AFTER: f64 = 1.0;
/// Seconds of speech per revealed word in interims.
const SECONDS_PER_WORD: f64 = 0.3;

#[derive(Debug)]
struct Utterance {
    onset: f64,
    last_voice: f64,
    silence: f64,
    /// (word, punctuated)
    words: Vec<(String, String)>,
    /// The script line this utterance speaks, consumed when its final is sent.
    script_index: Option<usize>,
}

/// The sans-IO speech tracker: audio bytes and control messages in, messages out.
#[derive(Debug)]
pub(crate) struct Tracker {
    rate: f64,
    frame_bytes: usize,
    pending: Vec<u8>,
    samples: u64,
    threshold: f64,
    interim: bool,
    endpointing: Option<f64>,
    utterance_end: Option<f64>,
    vad_events: bool,
    interim_every: f64,
    silence_final_after: f64,
    max_segment: Option<f64>,
    revise_interims: bool,
    seg_start: f64,
    last_interim: f64,
    utterance: Option<Utterance>,
    pending_utterance_end: Option<f64>,
    script: ScriptCursor,
    unscripted: String,
    new_utterance: bool,
    pub max_rms: f64,
}

fn words_of(line: &str) -> Vec<(String, String)> {
    line.split_whitespace()
        .filter_map(|tok| {
            let word: String = tok
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'' || *c == '-')
                .flat_map(char::to_lowercase)
                .collect();
            (!word.is_empty()).then(|| (word, tok.to_string()))
        })
        .collect()
}

/// Words of `u` the speaker has had time to say so far.
fn revealed(u: &Utterance) -> usize {
    ((u.last_voice - u.onset) / SECONDS_PER_WORD).floor() as usize
}

fn spread(words: &[(String, String)], from: f64, to: f64) -> Vec<(String, String, f64, f64)> {
    let n = words.len().max(1) as f64;
    let span = (to - from).max(0.0);
    words
        .iter()
        .enumerate()
        .map(|(i, (w, p))| {
            (
                w.clone(),
                p.clone(),
                from + span * i as f64 / n,
                from + span * (i + 1) as f64 / n,
            )
        })
        .collect()
}

impl Tracker {
    /// Shares a script position (per key) instead of the tracker's own.
    fn with_script(mut self, script: ScriptCursor) -> Self {
        self.script = script;
        self
    }

    fn new(config: &DeepgramConfig, params: &Params) -> Self {
        let rate = params.sample_rate as f64;
        Self {
            rate,
            frame_bytes: (params.sample_rate as usize / 50).max(1) * 2,
            pending: Vec::new(),
            samples: 0,
            threshold: config.energy_threshold,
            interim: params.interim_results,
            endpointing: params.endpointing,
            utterance_end: params.utterance_end,
            vad_events: params.vad_events,
            interim_every: config.interim_interval.as_secs_f64(),
            silence_final_after: config.silence_final_after.as_secs_f64(),
            max_segment: config.max_segment.map(|d| d.as_secs_f64()),
            revise_interims: config.revise_interims,
            seg_start: 0.0,
            last_interim: 0.0,
            utterance: None,
            pending_utterance_end: None,
            script: ScriptCursor::new(&config.script),
            unscripted: config.unscripted_text.clone(),
            new_utterance: false,
            max_rms: 0.0,
        }
    }

    fn now(&self) -> f64 {
        self.samples as f64 / self.rate
    }

    /// Reports (once) that an utterance began since the last call.
    fn take_new_utterance(&mut self) -> bool {
        std::mem::take(&mut self.new_utterance)
    }

    pub fn push_audio(&mut self, bytes: &[u8]) -> Vec<Emit> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let whole = self.pending.len() / self.frame_bytes * self.frame_bytes;
        let frames: Vec<u8> = self.pending.drain(..whole).collect();
        for frame in frames.chunks_exact(self.frame_bytes) {
            self.frame(frame, &mut out);
        }
        out
    }

    fn frame(&mut self, frame: &[u8], out: &mut Vec<Emit>) {
        let n = frame.len() / 2;
        let energy: f64 = frame
            .chunks_exact(2)
            .map(|b| {
                let s = i16::from_le_bytes([b[0], b[1]]) as f64;
                s * s
            })
            .sum();
        let rms = (energy / n.max(1) as f64).sqrt();
        self.max_rms = self.max_rms.max(rms);
        let t0 = self.now();
        self.samples += n as u64;
        let t1 = self.now();
        let voiced = rms >= self.threshold;
        match (&mut self.utterance, voiced) {
            (None, true) => {
                let (script_index, line) = match self.script.peek() {
                    Some((index, line)) => (Some(index), line),
                    None => (None, self.unscripted.clone()),
                };
                self.utterance = Some(Utterance {
                    onset: t0,
                    last_voice: t1,
                    silence: 0.0,
                    words: words_of(&line),
                    script_index,
                });
                self.new_utterance = true;
                self.last_interim = t0;
                self.pending_utterance_end = None;
                if self.vad_events {
                    out.push(Emit::SpeechStarted(t0));
                }
            }
            (Some(u), true) => {
                u.last_voice = t1;
                u.silence = 0.0;
            }
            (Some(u), false) => u.silence += t1 - t0,
            (None, false) => {}
        }
        if let Some(u) = &self.utterance {
            let needed = self.endpointing.unwrap_or(NO_ENDPOINTING_FINAL_AFTER);
            if u.silence + 1e-9 >= needed {
                let speech_final = self.endpointing.is_some();
                out.extend(self.final_of_utterance(t1, speech_final, false));
            } else if let Some(max) = self.max_segment
                && t1 - self.seg_start + 1e-9 >= max
                && revealed(u) > 0
            {
                out.extend(self.segment_final(t1));
            } else if self.interim && t1 - self.last_interim + 1e-9 >= self.interim_every {
                self.last_interim = t1;
                let k = revealed(u).max(1).min(u.words.len());
                let mut words = spread(&u.words[..k], u.onset, u.last_voice);
                if self.revise_interims
                    && let Some(last) = words.last_mut()
                {
                    last.0 = "uh".to_string();
                    last.1 = "uh".to_string();
                }
                out.push(Emit::Results {
                    start: self.seg_start,
                    duration: t1 - self.seg_start,
                    is_final: false,
                    speech_final: false,
                    from_finalize: false,
                    words,
                });
            }
        } else if t1 - self.seg_start + 1e-9 >= self.silence_final_after {
            out.push(Emit::Results {
                start: self.seg_start,
                duration: t1 - self.seg_start,
                is_final: true,
                speech_final: self.endpointing.is_some(),
                from_finalize: false,
                words: Vec::new(),
            });
            self.seg_start = t1;
        }
        if let (Some(last), Some(gap), None) = (
            self.pending_utterance_end,
            self.utterance_end,
            &self.utterance,
        ) && t1 + 1e-9 >= last + gap
        {
            out.push(Emit::UtteranceEnd(last));
            self.pending_utterance_end = None;
        }
    }

    /// Finalizes the words heard so far while the speaker keeps talking.
    fn segment_final(&mut self, now: f64) -> Option<Emit> {
        let u = self.utterance.as_mut()?;
        let k = revealed(u).min(u.words.len());
        let rest = u.words.split_off(k);
        let words = spread(&u.words, u.onset, u.last_voice);
        u.words = rest;
        u.onset = u.last_voice;
        let start = self.seg_start;
        self.seg_start = now;
        self.last_interim = now;
        Some(Emit::Results {
            start,
            duration: now - start,
            is_final: true,
            speech_final: false,
            from_finalize: false,
            words,
        })
    }

    fn final_of_utterance(
        &mut self,
        now: f64,
        speech_final: bool,
        from_finalize: bool,
    ) -> Option<Emit> {
        let u = self.utterance.take()?;
        if let Some(index) = u.script_index {
            self.script.consumed(index);
        }
        let words = spread(&u.words, u.onset, u.last_voice);
        if self.utterance_end.is_some()
            && let Some(last) = words.last()
        {
            self.pending_utterance_end = Some(last.3);
        }
        let start = self.seg_start;
        self.seg_start = now;
        Some(Emit::Results {
            start,
            duration: now - start,
            is_final: true,
            speech_final,
            from_finalize,
            words,
        })
    }

    pub fn finalize(&mut self) -> Vec<Emit> {
        let now = self.now();
        self.final_of_utterance(now, false, true)
            .into_iter()
            .collect()
    }

    pub fn close(&mut self) -> Vec<Emit> {
        let now = self.now();
        self.final_of_utterance(now, false, false)
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            model: "nova-3".into(),
            sample_rate: 16000,
            interim_results: true,
            endpointing: Some(0.3),
            utterance_end: Some(1.0),
            vad_events: true,
            formatted: true,
        }
    }

    fn pcm(seconds: f64, amplitude: i16) -> Vec<u8> {
        let n = (seconds * 16000.0) as usize;
        (0..n)
            .flat_map(|i| {
                let s = if i % 2 == 0 { amplitude } else { -amplitude };
                s.to_le_bytes()
            })
            .collect()
    }

    #[test]
    fn speech_then_silence_gives_started_interims_final_and_utterance_end() {
        let config = DeepgramConfig {
            script: vec!["I led the billing migration.".into()],
            ..DeepgramConfig::default()
        };
        let mut t = Tracker::new(&config, &params());
        let mut out = t.push_audio(&pcm(0.5, 0));
        out.extend(t.push_audio(&pcm(2.0, 3000)));
        out.extend(t.push_audio(&pcm(2.0, 0)));
        assert!(matches!(out[0], Emit::SpeechStarted(s) if (s - 0.5).abs() < 1e-6));
        let interims = out
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Emit::Results {
                        is_final: false,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(interims, 2, "{out:?}");
        let final_ = out
            .iter()
            .find(|e| matches!(e, Emit::Results { is_final: true, .. }))
            .expect("a final");
        let Emit::Results {
            speech_final,
            words,
            start,
            duration,
            ..
        } = final_
        else {
            unreachable!("matched above");
        };
        assert!(*speech_final);
        assert_eq!(words.len(), 5);
        assert_eq!(words[4].1, "migration.");
        assert!(
            (words[4].3 - 2.5).abs() < 0.03,
            "last word ends with the speech"
        );
        assert!(
            (start + duration - 2.8).abs() < 0.03,
            "final after 300 ms silence"
        );
        assert!(matches!(out.last(), Some(Emit::UtteranceEnd(e)) if (e - 2.5).abs() < 0.03));
    }

    #[test]
    fn long_speech_is_finalized_in_segments_before_the_speech_final() {
        let config = DeepgramConfig {
            script: vec!["one two three four five six seven eight nine ten eleven twelve".into()],
            max_segment: Some(Duration::from_secs(2)),
            ..DeepgramConfig::default()
        };
        let mut t = Tracker::new(&config, &params());
        let mut out = t.push_audio(&pcm(5.0, 3000));
        out.extend(t.push_audio(&pcm(0.5, 0)));
        let finals: Vec<(bool, usize, f64, f64)> = out
            .iter()
            .filter_map(|e| match e {
                Emit::Results {
                    is_final: true,
                    speech_final,
                    words,
                    start,
                    duration,
                    ..
                } => Some((*speech_final, words.len(), *start, *duration)),
                _ => None,
            })
            .collect();
        assert!(finals.len() >= 3, "{finals:?}");
        assert!(finals[..finals.len() - 1].iter().all(|f| !f.0));
        assert!(
            finals.last().is_some_and(|f| f.0),
            "the last final is speech_final"
        );
        assert_eq!(
            finals.iter().map(|f| f.1).sum::<usize>(),
            12,
            "every word exactly once"
        );
        for pair in finals.windows(2) {
            assert!(
                (pair[0].2 + pair[0].3 - pair[1].2).abs() < 1e-9,
                "finals tile the timeline"
            );
        }
    }

    #[test]
    fn revised_interims_differ_from_the_final() {
        let config = DeepgramConfig {
            script: vec!["alpha beta gamma delta epsilon zeta".into()],
            revise_interims: true,
            ..DeepgramConfig::default()
        };
        let mut t = Tracker::new(&config, &params());
        let mut out = t.push_audio(&pcm(2.0, 3000));
        out.extend(t.push_audio(&pcm(0.5, 0)));
        let interim_last = out.iter().find_map(|e| match e {
            Emit::Results {
                is_final: false,
                words,
                ..
            } => words.last().map(|w| w.0.clone()),
            _ => None,
        });
        assert_eq!(interim_last.as_deref(), Some("uh"));
        let final_words = out.iter().find_map(|e| match e {
            Emit::Results {
                is_final: true,
                words,
                ..
            } => Some(words.len()),
            _ => None,
        });
        assert_eq!(final_words, Some(6));
    }

    #[test]
    fn finalize_without_speech_emits_nothing() {
        let mut t = Tracker::new(&DeepgramConfig::default(), &params());
        t.push_audio(&pcm(0.2, 0));
        assert!(t.finalize().is_empty());
    }
}
