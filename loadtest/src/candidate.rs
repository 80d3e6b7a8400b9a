//! One simulated candidate: signs up, creates an interview, joins it over WebRTC (loopback
//! only), answers `answers` times with a voiced tone paced in real time (20 ms frames) after
//! each interviewer reply ends, ends the interview and reads its per-turn latency breakdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use engine::transport::client::encode_opus_frames;
use engine::transport::{
    MediaSession, OpusRate, SdpType, SessionDescription, ToneGenerator, WebRtcClient, WebRtcConfig,
};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::error::TryRecvError;

/// A received frame at or above this RMS (full scale 1.0) is reply audio.
const VOICED_FLOOR: f64 = 0.01;
/// No reply audio for this long: the interviewer has stopped speaking. Generous, because a
/// loaded server can stall its playback for a few hundred ms mid-reply (counted as
/// [`Outcome::reply_stalls`]); a shorter gap would make the candidate talk over the reply.
const REPLY_END_GAP: Duration = Duration::from_millis(800);
/// Reply audio resuming after a silence longer than this (within one reply) is a stall.
const STALL_GAP: Duration = Duration::from_millis(100);
const FRAME: Duration = Duration::from_millis(20);
const PASSWORD: &str = "loadtest correct horse battery";

/// What each candidate does.
#[derive(Debug, Clone)]
pub struct CandidatePlan {
    pub answers: usize,
    /// How long each answer is voiced.
    pub speech: Duration,
    /// Silence after the interviewer stops before answering.
    pub reaction: Duration,
    /// Longest wait for the greeting or for a reply after an answer.
    pub reply_timeout: Duration,
}

/// The candidate's audio, Opus-encoded once for all candidates.
#[derive(Debug)]
pub struct Audio {
    voiced: Vec<Vec<u8>>,
    silence: Vec<u8>,
}

impl Audio {
    /// One second of a 180 Hz tone at 0.2 of full scale (well above every VAD threshold),
    /// encoded from 48 kHz as a browser's microphone track is, and one frame of digital silence.
    pub fn new() -> anyhow::Result<Arc<Self>> {
        let mut tone = ToneGenerator::new(OpusRate::Hz48000, 180.0, 0.2);
        let pcm: Vec<Vec<i16>> = (0..50).map(|_| tone.next_frame()).collect();
        let voiced = encode_opus_frames(&pcm, tone.rate()).context("encoding the voiced signal")?;
        Ok(Arc::new(Self {
            voiced,
            silence: silence_frame()?,
        }))
    }

    /// `text` spoken by espeak-ng (its 22.05 kHz converted to 24 kHz, encoded in 20 ms frames)
    /// and one frame of silence: an answer the offline recognizer can hear.
    pub fn speech(text: &str) -> anyhow::Result<Arc<Self>> {
        let output = std::process::Command::new("espeak-ng")
            .args(["--stdout", "-s", "165", "-v", "en-us", text])
            .output()
            .context("running espeak-ng (Debian package espeak-ng)")?;
        anyhow::ensure!(output.status.success(), "espeak-ng failed");
        let wav = engine::vendors::espeak::parse_wav(&output.stdout)
            .context("espeak-ng's output is not a WAV")?;
        let rate = OpusRate::at_least(wav.sample_rate);
        let pcm = engine::audio::RateConverter::convert_all(&wav.samples, wav.sample_rate, rate)
            .context("espeak-ng's sample rate")?;
        let mut frames: Vec<Vec<i16>> = pcm
            .chunks(rate.frame_samples())
            .map(|chunk| {
                let mut frame = chunk.to_vec();
                frame.resize(rate.frame_samples(), 0);
                frame
            })
            .collect();
        // The answer ends with its last voiced frame (so the client-observed gap starts there).
        while frames
            .last()
            .is_some_and(|frame| engine::audio::rms(frame) < VOICED_FLOOR * 32768.0)
        {
            frames.pop();
        }
        anyhow::ensure!(!frames.is_empty(), "espeak-ng produced no audible speech");
        let voiced = encode_opus_frames(&frames, rate).context("encoding the speech")?;
        Ok(Arc::new(Self {
            voiced,
            silence: silence_frame()?,
        }))
    }

    /// How long the voiced signal plays once through.
    pub fn voiced_duration(&self) -> Duration {
        FRAME * u32::try_from(self.voiced.len()).unwrap_or(u32::MAX)
    }
}

/// One 20 ms Opus frame of digital silence (the third of three, past the encoder's start).
fn silence_frame() -> anyhow::Result<Vec<u8>> {
    let rate = OpusRate::Hz48000;
    encode_opus_frames(&vec![vec![0i16; rate.frame_samples()]; 3], rate)
        .context("encoding silence")?
        .pop()
        .context("no silence frame")
}

/// One turn of the server's breakdown (`GET /api/v1/interviews/{id}` → `turns`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnRecord {
    pub turn_index: Option<i64>,
    /// The parts of v2v by their stored names (`ingress_ms`, `stt_final_ms`, …), in the
    /// engine's critical-path order ([`engine::interview_core::TurnBreakdown::parts`]).
    #[serde(flatten)]
    pub parts: std::collections::BTreeMap<String, Option<f64>>,
    pub engine_overhead_ms: Option<f64>,
    pub v2v_ms: Option<f64>,
}

/// The names of the parts of v2v, in critical-path order.
pub fn part_names() -> [&'static str; 8] {
    engine::interview_core::TurnBreakdown::default()
        .parts()
        .map(|(name, _)| name)
}

impl TurnRecord {
    fn from_json(turn: &Value) -> Self {
        let f = |key: &str| turn.get(key).and_then(Value::as_f64);
        Self {
            turn_index: turn.get("turn_index").and_then(Value::as_i64),
            parts: part_names()
                .iter()
                .map(|name| {
                    let key = format!("{name}_ms");
                    let value = f(&key);
                    (key, value)
                })
                .collect(),
            engine_overhead_ms: f("engine_overhead_ms"),
            v2v_ms: f("v2v_ms"),
        }
    }

    /// The value of one part (`ingress`, `stt_final`, …), if the server stored it.
    pub fn part(&self, name: &str) -> Option<f64> {
        self.parts.get(&format!("{name}_ms")).copied().flatten()
    }
}

/// What one candidate saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub index: usize,
    pub ok: bool,
    /// Why it failed: `stage: detail`.
    pub error: Option<String>,
    pub interview_id: Option<String>,
    pub end_reason: Option<String>,
    /// Server-side breakdown of every recorded turn.
    pub turns: Vec<TurnRecord>,
    /// Client-observed, per answer: last voiced frame sent → first reply audio received.
    pub gaps_ms: Vec<f64>,
    pub replies_heard: usize,
    /// Times reply audio paused for more than 100 ms and then resumed within the same reply
    /// (playback underruns seen by the candidate).
    pub reply_stalls: u32,
    /// Times reply audio arrived while the candidate was answering (it took a stalled reply
    /// for finished and answered over it: the server then hears a barge-in).
    pub talked_over: u32,
    pub frames_sent: u64,
    pub frames_send_dropped: u64,
    pub frames_received: u64,
    pub packets_in: u64,
    pub packets_lost: u64,
    /// Offer → end request.
    pub joined_s: f64,
    /// Sign-up, login, create and read-back calls retried after a 5xx or 429 (see
    /// `Api::setup_call`).
    pub setup_retries: u32,
}

/// A small JSON client for the API.
#[derive(Debug, Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    /// Bounds concurrent sign-up/login/create sequences (`--setup-concurrency`): the run
    /// measures live interviews, not a sign-up storm against SQLite.
    pub setup_gate: Arc<tokio::sync::Semaphore>,
}

/// An API call that did not succeed.
#[derive(Debug)]
struct CallError {
    /// The HTTP status, if a response came back.
    status: Option<u16>,
    message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CallError {}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| CallError {
            status: None,
            message: format!("request failed: {e}"),
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let mut detail: String = text.chars().take(160).collect();
            detail.retain(|c| !c.is_control());
            return Err(CallError {
                status: Some(status.as_u16()),
                message: format!("HTTP {} {detail}", status.as_u16()),
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A set-up call (sign-up, login, create): retried up to 3 times on 5xx or 429, which a
    /// loaded server may answer (e.g. SQLite's "database is locked"); retries are counted.
    /// `also_ok` is a status that counts as success on a retry (409 for a sign-up whose
    /// first attempt did commit).
    async fn setup_call(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        also_ok: Option<u16>,
        retries: &mut u32,
    ) -> Result<Value, CallError> {
        let mut attempt = 0u32;
        loop {
            match self
                .call(reqwest::Method::POST, path, token, Some(body))
                .await
            {
                Err(e) if attempt > 0 && e.status.is_some() && e.status == also_ok => {
                    return Ok(Value::Null);
                }
                Err(e) if attempt < 3 && e.status.is_some_and(|s| s >= 500 || s == 429) => {
                    attempt += 1;
                    *retries += 1;
                    // Back off with jitter so retrying candidates do not collide again.
                    let jitter = (uuid::Uuid::new_v4().as_u128() % 100) as u64;
                    tokio::time::sleep(Duration::from_millis((100 << attempt) + jitter)).await;
                }
                other => return other,
            }
        }
    }
}

/// Runs one candidate from sign-up to the read-back; never panics, failures are in the outcome.
pub async fn run(api: Api, index: usize, plan: CandidatePlan, audio: Arc<Audio>) -> Outcome {
    let mut outcome = Outcome {
        index,
        ..Outcome::default()
    };
    if let Err(e) = run_inner(&api, &plan, &audio, &mut outcome).await {
        outcome.ok = false;
        outcome.error = Some(format!("{e:#}"));
    }
    outcome
}

async fn run_inner(
    api: &Api,
    plan: &CandidatePlan,
    audio: &Audio,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    use reqwest::Method;
    let email = format!("loadtest-{}@example.com", uuid::Uuid::new_v4().simple());
    let setup_permit = api.setup_gate.acquire().await.context("set-up gate")?;
    let mut retries = 0;
    let registered = api
        .setup_call(
            "/api/v1/auth/register",
            None,
            &json!({"email": email, "password": PASSWORD, "age_confirmed": true}),
            Some(409),
            &mut retries,
        )
        .await;
    outcome.setup_retries = retries;
    registered.context("register")?;
    let login = api
        .setup_call(
            "/api/v1/auth/login",
            None,
            &json!({"email": email, "password": PASSWORD}),
            None,
            &mut retries,
        )
        .await;
    outcome.setup_retries = retries;
    let login = login.context("login")?;
    let token = login
        .get("access_token")
        .and_then(Value::as_str)
        .context("login: no access_token")?
        .to_owned();
    let created = api
        .setup_call(
            "/api/v1/interviews",
            Some(&token),
            &json!({"kind": "behavioral"}),
            None,
            &mut retries,
        )
        .await;
    outcome.setup_retries = retries;
    let created = created.context("create interview")?;
    let id = created
        .get("id")
        .and_then(Value::as_str)
        .context("create interview: no id")?
        .to_owned();
    outcome.interview_id = Some(id.clone());
    drop(setup_permit);

    let (pending, offer) = WebRtcClient::offer(&WebRtcConfig::loopback())
        .await
        .map_err(|e| anyhow!("webrtc offer: {e}"))?;
    let joined = Instant::now();
    let answer = match api
        .call(
            Method::POST,
            &format!("/api/v1/interviews/{id}/offer"),
            Some(&token),
            Some(&serde_json::to_value(&offer)?),
        )
        .await
    {
        Ok(answer) => answer,
        Err(e) => {
            pending.abandon().await;
            return Err(anyhow::Error::new(e).context("offer"));
        }
    };
    let answer: SessionDescription = match serde_json::from_value::<SessionDescription>(answer) {
        Ok(a) if a.sdp_type == SdpType::Answer => a,
        _ => {
            pending.abandon().await;
            bail!("offer: the server did not answer with an SDP answer");
        }
    };
    let mut session = pending
        .accept_answer(&answer)
        .await
        .map_err(|e| anyhow!("accept answer: {e}"))?;
    let talk = match session
        .control
        .wait_connected(Duration::from_secs(15))
        .await
    {
        Ok(()) => converse(&mut session, plan, audio, outcome).await,
        Err(e) => Err(anyhow!("connect: {e}")),
    };
    // End the interview whatever happened, so the server persists and frees it.
    let ended = api
        .setup_call(
            &format!("/api/v1/interviews/{id}/end"),
            Some(&token),
            &json!({}),
            None,
            &mut retries,
        )
        .await
        .context("end");
    outcome.setup_retries = retries;
    outcome.joined_s = joined.elapsed().as_secs_f64();
    let stats = session.stats().snapshot();
    outcome.frames_send_dropped = stats.frames_send_dropped;
    outcome.packets_in = stats.packets_in;
    outcome.packets_lost = stats.packets_lost;
    // `MediaSession` is not `Sync`: close through (a clone of) its control handle.
    let control = session.control.clone();
    drop(session);
    control.close().await;
    talk?;
    ended?;

    // The graceful end persists the transcript and metrics shortly after: poll for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let read = match api
            .call(
                Method::GET,
                &format!("/api/v1/interviews/{id}"),
                Some(&token),
                None,
            )
            .await
        {
            Ok(read) => read,
            // A loaded SQLite answers "database is locked" (500) now and then: retry.
            Err(e) if e.status.is_some_and(|s| s >= 500) && Instant::now() < deadline => {
                outcome.setup_retries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("read interview")),
        };
        let interview = read.get("interview");
        let status = interview
            .and_then(|i| i.get("status"))
            .and_then(Value::as_str);
        let live = interview
            .and_then(|i| i.get("live"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if status == Some("ended") && !live {
            outcome.end_reason = interview
                .and_then(|i| i.get("end_reason"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            outcome.turns = read
                .get("turns")
                .and_then(Value::as_array)
                .map(|turns| turns.iter().map(TurnRecord::from_json).collect())
                .unwrap_or_default();
            break;
        }
        if Instant::now() >= deadline {
            bail!("read interview: still {status:?} (live={live}) 20 s after ending");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recorded = outcome
        .turns
        .iter()
        .filter(|t| t.engine_overhead_ms.is_some())
        .count();
    if recorded < plan.answers {
        bail!(
            "turns: {recorded} of {} answers have a recorded engine overhead \
             (talked over the interviewer {} times, {} reply stalls over 100 ms)",
            plan.answers,
            outcome.talked_over,
            outcome.reply_stalls
        );
    }
    outcome.ok = true;
    Ok(())
}

/// The real-time conversation: silence, except `plan.speech` of tone after each reply.
async fn converse(
    session: &mut MediaSession,
    plan: &CandidatePlan,
    audio: &Audio,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let mut ticker = tokio::time::interval(FRAME);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut hearing = false;
    let mut last_heard: Option<Instant> = None;
    let mut answered = 0usize;
    let mut speaking_until: Option<Instant> = None;
    let mut last_voiced_sent: Option<Instant> = None;
    let mut awaiting_reply_since: Option<Instant> = None;
    let mut voiced_index = 0usize;
    loop {
        ticker.tick().await;
        let now = Instant::now();
        loop {
            match session.inbound.try_recv() {
                Ok(frame) => {
                    outcome.frames_received += 1;
                    if frame.rms() < VOICED_FLOOR {
                        continue;
                    }
                    if hearing
                        && last_heard.is_some_and(|t| {
                            frame.received_at.saturating_duration_since(t) > STALL_GAP
                        })
                    {
                        outcome.reply_stalls += 1;
                    }
                    if speaking_until.is_some() && !hearing {
                        outcome.talked_over += 1;
                    }
                    if !hearing {
                        hearing = true;
                        outcome.replies_heard += 1;
                        if awaiting_reply_since.take().is_some()
                            && let Some(sent) = last_voiced_sent
                        {
                            let gap = frame.received_at.saturating_duration_since(sent);
                            outcome.gaps_ms.push(gap.as_secs_f64() * 1000.0);
                        }
                    }
                    last_heard = Some(
                        frame
                            .received_at
                            .max(last_heard.unwrap_or(frame.received_at)),
                    );
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    bail!(
                        "media: the session ended ({:?}) after {answered} answers, {} replies",
                        session.state(),
                        outcome.replies_heard
                    )
                }
            }
        }
        if hearing && last_heard.is_some_and(|t| now.saturating_duration_since(t) > REPLY_END_GAP) {
            hearing = false;
        }
        if speaking_until.is_some_and(|until| now >= until) {
            speaking_until = None;
            awaiting_reply_since = Some(now);
        }
        if !hearing
            && speaking_until.is_none()
            && answered == plan.answers
            && outcome.replies_heard > plan.answers
        {
            return Ok(());
        }
        // Deadlines: the greeting, then each reply.
        if outcome.replies_heard == 0 && now.duration_since(started) > plan.reply_timeout {
            bail!("greeting: no audio within {:?}", plan.reply_timeout);
        }
        if let Some(since) = awaiting_reply_since
            && now.duration_since(since) > plan.reply_timeout
        {
            bail!(
                "reply {answered}: no audio within {:?} of the answer",
                plan.reply_timeout
            );
        }
        let can_answer = !hearing
            && speaking_until.is_none()
            && awaiting_reply_since.is_none()
            && answered < plan.answers
            && outcome.replies_heard > answered
            && last_heard.is_some_and(|t| now.saturating_duration_since(t) >= plan.reaction);
        if can_answer {
            speaking_until = Some(now + plan.speech);
            answered += 1;
            // Each answer plays the signal from its start (a spoken sentence, or the tone).
            voiced_index = 0;
        }
        let packet = if speaking_until.is_some() {
            last_voiced_sent = Some(Instant::now());
            let packet = &audio.voiced[voiced_index % audio.voiced.len()];
            voiced_index += 1;
            packet
        } else {
            &audio.silence
        };
        match session.outbound.send_opus(packet) {
            Ok(true) => outcome.frames_sent += 1,
            Ok(false) => {}
            Err(e) => bail!("media: sending failed after {answered} answers: {e}"),
        }
    }
}
