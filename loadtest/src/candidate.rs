//! One simulated candidate: signs up, creates an interview, joins it over WebRTC (loopback
//! only), holds the conversation its [`Plan`] says (answers after each reply, over a reply, or
//! with a pause; see [`crate::conversation`]) with pre-encoded Opus paced in real time (20 ms
//! frames), ends the interview and reads its per-turn latency breakdown.
//!
//! Cheap by design, so one harness can drive hundreds of interviews: the audio is encoded once
//! for all candidates and sent as shared buffers (no allocation per frame), and the
//! interviewer's audio is received as undecoded RTP packets (no Opus decode per frame): the
//! server sends packets only while it speaks, so their arrival is all the candidate needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use engine::transport::client::encode_opus_frames;
use engine::transport::{
    MediaSession, OpusRate, SdpType, SessionDescription, ToneGenerator, WebRtcClient, WebRtcConfig,
};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::error::TryRecvError;

use crate::conversation::{Conversation, LossCounter, Measured, Plan, Step};

/// An espeak-ng frame below this RMS (full scale 1.0) ends the spoken answer.
const VOICED_FLOOR: f64 = 0.01;
const FRAME: Duration = Duration::from_millis(20);
const PASSWORD: &str = "loadtest correct horse battery";

/// The candidate's audio coded one way: the voiced signal and one frame of digital silence.
#[derive(Debug)]
pub struct Encoded {
    voiced: Vec<Bytes>,
    silence: Bytes,
}

impl Encoded {
    fn new(frames: &[Vec<i16>], rate: OpusRate) -> anyhow::Result<Self> {
        Ok(Self {
            voiced: encode_opus_frames(frames, rate).context("encoding the voiced signal")?,
            silence: silence_frame(rate)?,
        })
    }
}

/// The candidate's audio, Opus-encoded once for all candidates, in the two ways a browser codes
/// its microphone: up to the track's own band when the far end states no limit, and only up to
/// wideband when the answer says `maxplaybackrate` 16 kHz or less (Chrome's encoder then stops
/// at wideband and codes SILK alone; coding from 16 kHz gives the same kind of packets).
#[derive(Debug)]
pub struct Audio {
    full: Encoded,
    wideband: Encoded,
    /// Whether the answer's `maxplaybackrate` is honoured (`--full-band` turns it off).
    honour_playback_rate: bool,
}

impl Audio {
    /// One second of a 180 Hz tone at 0.2 of full scale (well above every VAD threshold),
    /// encoded from 48 kHz as a browser's microphone track is (and from 16 kHz).
    pub fn new(honour_playback_rate: bool) -> anyhow::Result<Arc<Self>> {
        let coded = |rate| -> anyhow::Result<Encoded> {
            let mut tone = ToneGenerator::new(rate, 180.0, 0.2);
            let pcm: Vec<Vec<i16>> = (0..50).map(|_| tone.next_frame()).collect();
            Encoded::new(&pcm, rate)
        };
        Ok(Arc::new(Self {
            full: coded(OpusRate::Hz48000)?,
            wideband: coded(OpusRate::Hz16000)?,
            honour_playback_rate,
        }))
    }

    /// What to send to a server whose answer states `max_playback_rate` (RFC 7587 §6.1).
    pub fn for_answer(&self, max_playback_rate: Option<u32>) -> &Encoded {
        match max_playback_rate {
            Some(hz) if self.honour_playback_rate && hz <= 16_000 => &self.wideband,
            _ => &self.full,
        }
    }

    /// `text` spoken by espeak-ng (its 22.05 kHz converted to 24 kHz, encoded in 20 ms frames;
    /// and converted to 16 kHz) and one frame of silence: an answer the offline recognizer can
    /// hear.
    pub fn speech(text: &str, honour_playback_rate: bool) -> anyhow::Result<Arc<Self>> {
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
        let mut frames = in_frames(&pcm, rate);
        // The answer ends with its last voiced frame (so the client-observed gap starts there).
        while frames
            .last()
            .is_some_and(|frame| engine::audio::rms(frame) < VOICED_FLOOR * 32768.0)
        {
            frames.pop();
        }
        anyhow::ensure!(!frames.is_empty(), "espeak-ng produced no audible speech");
        let narrow = OpusRate::Hz16000;
        let wideband = in_frames(
            &engine::audio::RateConverter::convert_all(&frames.concat(), rate.hz(), narrow)
                .context("converting the speech to 16 kHz")?,
            narrow,
        );
        Ok(Arc::new(Self {
            full: Encoded::new(&frames, rate).context("encoding the speech")?,
            wideband: Encoded::new(&wideband, narrow).context("encoding the speech")?,
            honour_playback_rate,
        }))
    }

    /// How long the voiced signal plays once through.
    pub fn voiced_duration(&self) -> Duration {
        FRAME * u32::try_from(self.full.voiced.len()).unwrap_or(u32::MAX)
    }
}

/// `pcm` cut into 20 ms frames at `rate`, the last one padded with silence.
fn in_frames(pcm: &[i16], rate: OpusRate) -> Vec<Vec<i16>> {
    pcm.chunks(rate.frame_samples())
        .map(|chunk| {
            let mut frame = chunk.to_vec();
            frame.resize(rate.frame_samples(), 0);
            frame
        })
        .collect()
}

/// One 20 ms Opus frame of digital silence coded from `rate` (the third of three, past the
/// encoder's start).
fn silence_frame(rate: OpusRate) -> anyhow::Result<Bytes> {
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
    /// What the candidate measured: client-observed gaps (last voiced frame sent → first reply
    /// audio received), stalls, barge-in reactions, pauses and turn cuts.
    #[serde(flatten)]
    pub measured: Measured,
    pub frames_sent: u64,
    pub frames_send_dropped: u64,
    /// Reply packets received.
    pub frames_received: u64,
    pub packets_in: u64,
    /// From the reply packets' sequence numbers.
    pub packets_lost: u64,
    /// Offer → end request.
    pub joined_s: f64,
    /// Seconds from the run's start to when the scheduler collected this outcome (a soak starts
    /// the next interview only if this is before `--duration`).
    pub ended_s: f64,
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
    /// Interviews joined and not yet ended (for memory per live interview).
    pub live: Arc<AtomicUsize>,
}

/// Counts an interview live from its join to its end (whatever happens in between).
struct LiveMark(Arc<AtomicUsize>);

impl LiveMark {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Self(live.clone())
    }
}

impl Drop for LiveMark {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
pub async fn run(api: Api, index: usize, plan: Plan, audio: Arc<Audio>) -> Outcome {
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
    plan: &Plan,
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

    let (mut pending, offer) = WebRtcClient::offer(&WebRtcConfig::loopback())
        .await
        .map_err(|e| anyhow!("webrtc offer: {e}"))?;
    let packets = pending.receive_packets();
    let joined = Instant::now();
    let live = LiveMark::new(&api.live);
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
        Ok(()) => {
            let audio =
                audio.for_answer(engine::transport::sdp::opus_max_playback_rate(&answer.sdp));
            converse(&mut session, packets, plan, audio, outcome).await
        }
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
    drop(live);
    let stats = session.stats().snapshot();
    outcome.frames_send_dropped = stats.frames_send_dropped;
    outcome.packets_in = stats.packets_in;
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
            outcome.measured.talked_over,
            outcome.measured.reply_stalls
        );
    }
    outcome.ok = true;
    Ok(())
}

/// The real-time conversation: one frame every 20 ms, voiced or silent as the
/// [`Conversation`] says, after telling it when each reply packet arrived.
async fn converse(
    session: &mut MediaSession,
    mut packets: tokio::sync::mpsc::Receiver<engine::transport::InboundPacket>,
    plan: &Plan,
    audio: &Encoded,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let mut ticker = tokio::time::interval(FRAME);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut conversation = Conversation::new(plan.clone(), Instant::now());
    let mut loss = LossCounter::default();
    let result = loop {
        ticker.tick().await;
        let closed = loop {
            match packets.try_recv() {
                Ok(packet) => {
                    loss.packet(packet.sequence_number);
                    conversation.hear(packet.received_at);
                }
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if closed {
            break Err(anyhow!(
                "media: the session ended ({:?}) after {} answers, {} replies",
                session.state(),
                conversation.answered(),
                conversation.measured().replies_heard
            ));
        }
        let packet = match conversation.tick(Instant::now()) {
            Ok(Step::Done) => break Ok(()),
            Ok(Step::Voiced { index }) => &audio.voiced[index % audio.voiced.len()],
            Ok(Step::Silence) => &audio.silence,
            Err(e) => break Err(e.into()),
        };
        match session.outbound.send_opus(packet) {
            Ok(true) => outcome.frames_sent += 1,
            Ok(false) => {}
            Err(e) => {
                break Err(anyhow!(
                    "media: sending failed after {} answers: {e}",
                    conversation.answered()
                ));
            }
        }
    };
    outcome.measured = conversation.measured().clone();
    outcome.frames_received = loss.received();
    outcome.packets_lost = loss.lost();
    result
}
