//! `InterviewCore`: every decision of a live interview, sans-IO. The actor shell
//! ([`crate::actors::interview`]) turns actor messages into [`Input`]s and carries out the
//! [`Command`]s that [`InterviewCore::handle`] returns; the core has no actix, no sockets, no
//! clock (the caller passes `now`) and no database.
//!
//! It owns the phases (connecting → greeting → listening → thinking → speaking → … → ending →
//! ended), the reply lifecycle (speculative start, promotion when the turn is confirmed,
//! withdrawal when the candidate resumes), the conversation history (after a barge-in it keeps
//! only what the candidate heard), the per-turn latency breakdown, idle prompting, time-up and
//! the hard length limit (checked on [`Input::Tick`], not only when a turn ends), the failure
//! policy for each child (restart it, or end the interview with a typed [`EndReason`]), and
//! the graceful end (a closing line on shutdown, the STT's last words, then the end state).

use std::time::{Duration, Instant};

use crate::ids::{AccountId, InterviewId};
use serde::Serialize;

use crate::audio::VoiceActivity;
use crate::barge_in::{BargeIn, BargeInConfig, BargeInDecision};
use crate::conversation::{Cue, InterviewPlan, ReplyFilter, system_prompt};
use crate::metering::{PriceTable, UsageContext, UsageRecord};
use crate::transcript_assembler::{ChunkAlignment, SegmentRecord, SttWord, TranscriptAssembler};
use crate::turn_detector::{TurnConfig, TurnDetector, TurnEvent};
use crate::vendor_set::{KeySources, VendorNames};
use crate::vendors::usage::SttReport;
use crate::vendors::{
    ChatMessage, ErrorCategory, LlmReport, LlmRequest, Role, TtsReport, Vendor, VendorError,
};

/// Behaviour thresholds of a live interview (configuration; README lists the defaults).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterviewConfig {
    pub turn: TurnConfig,
    pub barge_in: BargeInConfig,
    /// RMS on the i16 scale at or above which a frame is voiced.
    pub vad_threshold: f64,
    pub vad_hangover_frames: u32,
    /// How far ahead of real time playback may send.
    #[serde(with = "humantime_serde")]
    pub playback_lead: Duration,
    /// Silence before a gentle prompt, and before the interview ends.
    #[serde(with = "humantime_serde")]
    pub idle_prompt_after: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_end_after: Duration,
    /// `[WAIT]` replies allowed in a row before the interviewer must answer.
    pub max_waits_in_a_row: u32,
    /// Hard stop this long after the planned length.
    #[serde(with = "humantime_serde")]
    pub overrun_grace: Duration,
    /// When the planned length is over while the candidate is answering, how long they may
    /// go on before the interviewer closes the interview anyway.
    #[serde(with = "humantime_serde")]
    pub time_up_answer_grace: Duration,
    pub max_stt_restarts: u32,
    /// Failed replies in a row before the interview ends.
    pub max_llm_failures: u32,
    /// Restarts of each child actor (ingress, STT, LLM, playback) after it stopped or
    /// panicked unexpectedly, before the interview ends with `child_failed:<child>`.
    pub max_child_restarts: u32,
    /// Longest wait for the STT's final transcripts when ending gracefully.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Longest wait for the closing line spoken when the server shuts down (on top of
    /// `drain_timeout`; the server's own drain time bounds both).
    #[serde(with = "humantime_serde")]
    pub closing_line_timeout: Duration,
    /// STT usage is recorded per this period of an open stream (a minute), plus the remainder.
    #[serde(with = "humantime_serde")]
    pub stt_metering_period: Duration,
}

impl InterviewConfig {
    /// Checks every threshold at start, so a bad settings file fails loudly instead of making
    /// interviews misbehave.
    pub fn validate(&self) -> Result<(), String> {
        self.turn.validate()?;
        self.barge_in.validate()?;
        if !(self.vad_threshold.is_finite() && self.vad_threshold > 0.0) {
            return Err("interview.vad_threshold must be a positive number".into());
        }
        if self.idle_prompt_after.is_zero() || self.idle_end_after <= self.idle_prompt_after {
            return Err(
                "interview.idle_end_after must be longer than interview.idle_prompt_after (> 0)"
                    .into(),
            );
        }
        if self.stt_metering_period < Duration::from_secs(1) {
            return Err("interview.stt_metering_period must be at least 1s".into());
        }
        Ok(())
    }
}

impl Default for InterviewConfig {
    fn default() -> Self {
        Self {
            turn: TurnConfig::default(),
            barge_in: BargeInConfig::default(),
            vad_threshold: 400.0,
            vad_hangover_frames: 3,
            playback_lead: Duration::from_millis(20),
            idle_prompt_after: Duration::from_secs(25),
            idle_end_after: Duration::from_secs(120),
            max_waits_in_a_row: 2,
            overrun_grace: Duration::from_secs(300),
            time_up_answer_grace: Duration::from_secs(30),
            max_stt_restarts: 2,
            max_llm_failures: 3,
            max_child_restarts: 2,
            drain_timeout: Duration::from_secs(2),
            closing_line_timeout: Duration::from_secs(8),
            stt_metering_period: Duration::from_secs(60),
        }
    }
}

/// The interview's visible state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Connecting,
    Greeting,
    Listening,
    Thinking,
    Speaking,
    Ending,
    Ended,
}

/// Per-turn latency breakdown in milliseconds (see DESIGN §4). `v2v` runs from the end of the
/// candidate's speech (last voiced frame received by the transport) to the first reply frame
/// sent, and is the sum of the parts along the critical path, with no gaps, in order:
///
/// | part | whose | from → to |
/// |---|---|---|
/// | `ingress_ms` | ours | last voiced frame received → the conductor sees it (jitter buffer, decode, VAD, mailboxes) |
/// | `stt_final_ms` | vendor | that → the STT's final, as seen by us |
/// | `turn_wait_ms` | the quiet window | that → the end-of-turn decision |
/// | `dispatch_ms` | ours | decision → LLM request sent (0 when a speculative start sent it earlier) |
/// | `llm_ttft_ms` | vendor | request sent → first token, the part still waited for after the decision |
/// | `tts_buffering_ms` | ours | first token → text sent to the TTS |
/// | `tts_ttfa_ms` | vendor | text sent → first audio (including its connection) |
/// | `egress_ms` | ours | first audio → first reply frame sent |
///
/// `engine_overhead_ms` is the sum of the parts that are ours (ingress, dispatch, TTS buffering,
/// egress); the quiet window is reported beside it, never hidden in it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct TurnBreakdown {
    pub turn_index: i32,
    pub ingress_ms: f64,
    pub stt_final_ms: f64,
    pub turn_wait_ms: f64,
    pub dispatch_ms: f64,
    pub llm_ttft_ms: f64,
    pub tts_buffering_ms: f64,
    pub tts_ttfa_ms: f64,
    pub egress_ms: f64,
    pub engine_overhead_ms: f64,
    pub v2v_ms: f64,
}

impl TurnBreakdown {
    /// The parts in critical-path order, by their stable names (the `_ms` fields, which the
    /// events, `turn_metrics` and the load harness's report use).
    pub fn parts(&self) -> [(&'static str, f64); 8] {
        [
            ("ingress", self.ingress_ms),
            ("stt_final", self.stt_final_ms),
            ("turn_wait", self.turn_wait_ms),
            ("dispatch", self.dispatch_ms),
            ("llm_ttft", self.llm_ttft_ms),
            ("tts_buffering", self.tts_buffering_ms),
            ("tts_ttfa", self.tts_ttfa_ms),
            ("egress", self.egress_ms),
        ]
    }
}

/// What subscribers (the browser's event socket) see.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InterviewEvent {
    State {
        phase: Phase,
    },
    Interim {
        text: String,
    },
    Final {
        text: String,
    },
    InterviewerText {
        text: String,
    },
    Turn {
        breakdown: TurnBreakdown,
    },
    /// The interviewer's voice failed on both ways to speak (the TTS retried and fell
    /// back): `note` is what the transcript says in its place, `category` the failure.
    VoiceFailed {
        category: String,
        note: String,
    },
    /// `reason` is the [`EndReason`]'s stable name.
    Ended {
        reason: String,
    },
}

/// How to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Drain: let the STT deliver its last words, persist everything, then stop.
    Graceful,
    /// Stop now; persist only the end state.
    CancelNow,
}

/// A child actor of the interview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Child {
    Ingress,
    Stt,
    Llm,
    Playback,
}

impl Child {
    pub const ALL: [Child; 4] = [Child::Ingress, Child::Stt, Child::Llm, Child::Playback];

    pub fn as_str(self) -> &'static str {
        match self {
            Child::Ingress => "ingress",
            Child::Stt => "stt",
            Child::Llm => "llm",
            Child::Playback => "playback",
        }
    }

    fn index(self) -> usize {
        match self {
            Child::Ingress => 0,
            Child::Stt => 1,
            Child::Llm => 2,
            Child::Playback => 3,
        }
    }
}

/// Which vendor role failed (the middle part of `vendor_failure:<role>:<category>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VendorRole {
    Stt,
    Llm,
    Tts,
}

/// Why an interview ended. The database and the events carry its stable name
/// ([`EndReason::as_str`]); code never compares names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The interviewer closed the interview (`[END]`).
    Completed,
    /// The planned length was over and the interviewer closed the interview.
    TimeUp,
    /// The hard stop: planned length plus the overrun grace.
    MaxLength,
    /// The candidate stayed silent after the gentle prompt.
    IdleTimeout,
    /// The candidate pressed "end".
    CandidateEnded,
    /// The transport closed or the peer stopped taking audio.
    PeerDisconnected,
    AccountDisabled,
    AccountErased,
    AccountErasedByAdmin,
    /// The node shut down (SIGTERM/SIGINT drain).
    ServerShutdown,
    /// Ended at start-up: the node that ran it stopped without ending it.
    NodeRestarted,
    /// The account's own (BYOK) key was revoked and there is no platform key to go on with.
    ByokKeyRevoked,
    /// A vendor failed permanently (or too often).
    VendorFailure {
        role: VendorRole,
        category: ErrorCategory,
    },
    /// A child actor stopped or panicked more often than it may be restarted.
    ChildFailed(Child),
    /// The interview actor itself failed (a panic); only the end state could be stored.
    InternalError,
    /// The actor stopped without any recorded reason.
    Stopped,
}

impl EndReason {
    /// The stable name stored in `interviews.end_reason` (at most 64 characters).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::TimeUp => "time_up",
            EndReason::MaxLength => "max_length",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::CandidateEnded => "candidate_ended",
            EndReason::PeerDisconnected => "peer_disconnected",
            EndReason::AccountDisabled => "account_disabled",
            EndReason::AccountErased => "account_erased",
            EndReason::AccountErasedByAdmin => "account_erased_by_admin",
            EndReason::ServerShutdown => "server_shutdown",
            EndReason::NodeRestarted => crate::recovery::NODE_RESTARTED,
            EndReason::ByokKeyRevoked => "byok_key_revoked",
            EndReason::VendorFailure { role, category } => vendor_failure_name(role, category),
            EndReason::ChildFailed(Child::Ingress) => "child_failed:ingress",
            EndReason::ChildFailed(Child::Stt) => "child_failed:stt",
            EndReason::ChildFailed(Child::Llm) => "child_failed:llm",
            EndReason::ChildFailed(Child::Playback) => "child_failed:playback",
            EndReason::InternalError => "internal_error",
            EndReason::Stopped => "stopped",
        }
    }

    /// Whether the candidate should hear a closing line before a graceful end of this kind
    /// (the server is going away under them, not because of anything in the conversation).
    fn speaks_closing_line(self) -> bool {
        matches!(self, EndReason::ServerShutdown)
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn vendor_failure_name(role: VendorRole, category: ErrorCategory) -> &'static str {
    use ErrorCategory as C;
    use VendorRole as R;
    // The names stored since the first release: role, then the category's lowercased name.
    match (role, category) {
        (R::Stt, C::Auth) => "vendor_failure:stt:auth",
        (R::Stt, C::Quota) => "vendor_failure:stt:quota",
        (R::Stt, C::RateLimited) => "vendor_failure:stt:ratelimited",
        (R::Stt, C::Overloaded) => "vendor_failure:stt:overloaded",
        (R::Stt, C::BadRequest) => "vendor_failure:stt:badrequest",
        (R::Stt, C::Network) => "vendor_failure:stt:network",
        (R::Stt, C::Timeout) => "vendor_failure:stt:timeout",
        (R::Stt, C::Server) => "vendor_failure:stt:server",
        (R::Stt, C::Protocol) => "vendor_failure:stt:protocol",
        (R::Stt, C::Cancelled) => "vendor_failure:stt:cancelled",
        (R::Stt, C::KeyRevoked) => "vendor_failure:stt:keyrevoked",
        (R::Llm, C::Auth) => "vendor_failure:llm:auth",
        (R::Llm, C::Quota) => "vendor_failure:llm:quota",
        (R::Llm, C::RateLimited) => "vendor_failure:llm:ratelimited",
        (R::Llm, C::Overloaded) => "vendor_failure:llm:overloaded",
        (R::Llm, C::BadRequest) => "vendor_failure:llm:badrequest",
        (R::Llm, C::Network) => "vendor_failure:llm:network",
        (R::Llm, C::Timeout) => "vendor_failure:llm:timeout",
        (R::Llm, C::Server) => "vendor_failure:llm:server",
        (R::Llm, C::Protocol) => "vendor_failure:llm:protocol",
        (R::Llm, C::Cancelled) => "vendor_failure:llm:cancelled",
        (R::Llm, C::KeyRevoked) => "vendor_failure:llm:keyrevoked",
        (R::Tts, C::Auth) => "vendor_failure:tts:auth",
        (R::Tts, C::Quota) => "vendor_failure:tts:quota",
        (R::Tts, C::RateLimited) => "vendor_failure:tts:ratelimited",
        (R::Tts, C::Overloaded) => "vendor_failure:tts:overloaded",
        (R::Tts, C::BadRequest) => "vendor_failure:tts:badrequest",
        (R::Tts, C::Network) => "vendor_failure:tts:network",
        (R::Tts, C::Timeout) => "vendor_failure:tts:timeout",
        (R::Tts, C::Server) => "vendor_failure:tts:server",
        (R::Tts, C::Protocol) => "vendor_failure:tts:protocol",
        (R::Tts, C::Cancelled) => "vendor_failure:tts:cancelled",
        (R::Tts, C::KeyRevoked) => "vendor_failure:tts:keyrevoked",
    }
}

/// What the interview is told. Child notices are mirrored here so the core does not depend on
/// the actor types.
#[derive(Debug)]
pub enum Input {
    /// The actor started (children are up): greet.
    Start,
    /// Voice activity of one 20 ms frame ending at `at`.
    Voice {
        at: Instant,
        activity: VoiceActivity,
    },
    SttOpened {
        origin: Instant,
    },
    SttOpenFailed(VendorError),
    SttTranscript {
        text: String,
        words: Vec<SttWord>,
        is_final: bool,
        speech_final: bool,
        /// The final answers a `Finalize` (asked for after local quiet).
        from_finalize: bool,
        at: Instant,
    },
    SttUtteranceEnd,
    SttClosed(SttReport),
    SttFailed {
        error: VendorError,
        report: SttReport,
    },
    LlmSent {
        reply_id: u64,
        at: Instant,
    },
    LlmDelta {
        reply_id: u64,
        text: String,
        at: Instant,
    },
    LlmFinished {
        reply_id: u64,
        report: LlmReport,
    },
    LlmCancelled {
        report: Option<LlmReport>,
    },
    LlmFailed {
        reply_id: u64,
        error: VendorError,
        report: Option<LlmReport>,
    },
    PlaybackFirstAudio {
        utterance_id: u64,
        at: Instant,
    },
    PlaybackFirstFrame {
        utterance_id: u64,
        at: Instant,
    },
    PlaybackAudio {
        utterance_id: u64,
        duration: Duration,
        alignment: Option<ChunkAlignment>,
    },
    PlaybackFinished {
        utterance_id: u64,
        played: Duration,
        interrupted: bool,
    },
    PlaybackFailed {
        utterance_id: u64,
        error: VendorError,
    },
    TtsUsage(TtsReport),
    /// The transport refused audio or closed.
    PeerGone,
    /// A timer fired (the shell ticks every second and at each [`Command::WakeAt`]).
    Tick,
    /// A child actor stopped without being asked to (it failed or panicked).
    ChildStopped(Child),
    /// End the interview (API, admin, erasure, shutdown, key revocation).
    End {
        reason: EndReason,
        mode: StopMode,
    },
}

/// What the shell must do, in order.
#[derive(Debug, Clone)]
pub enum Command {
    /// Publish to subscribers.
    Event(InterviewEvent),
    /// (Re)start the STT session, and ingress wired to it.
    StartStt,
    /// Restart ingress (wired to the current STT).
    StartIngress,
    /// Restart the LLM actor.
    StartLlm,
    /// Restart playback (on the same outbound audio sink).
    StartPlayback,
    /// Ask the STT to finalize its pending interim text.
    Finalize,
    Generate {
        reply_id: u64,
        request: LlmRequest,
    },
    CancelReply {
        reply_id: u64,
    },
    /// Open a synthesis session for an utterance (replacing any current one).
    Speak {
        utterance_id: u64,
    },
    SpeakText {
        utterance_id: u64,
        text: String,
    },
    FinishText {
        utterance_id: u64,
    },
    /// Stop speaking now. `barge_in_at`: when the candidate's barge-in was decided (`None`
    /// for an end); the playback measures from it to the moment it stopped sending.
    Interrupt {
        utterance_id: u64,
        barge_in_at: Option<Instant>,
    },
    StopIngress,
    /// Close the STT stream gracefully (its last finals still arrive).
    CloseStt,
    /// Stop every child.
    StopChildren,
    /// Store finished transcript segments.
    PersistSegments(Vec<SegmentRecord>),
    /// Store (and observe) a turn's latency breakdown.
    RecordTurn(TurnBreakdown),
    /// A usage row for the meter.
    Usage(UsageRecord),
    /// Deliver [`Input::Tick`] at (or soon after) this instant.
    WakeAt(Instant),
    /// Wait for the pending writes, store the end, then stop the actor. Last command.
    Finish {
        reason: EndReason,
    },
}

/// Who pays and what is recorded for usage rows.
#[derive(Debug, Clone)]
pub struct UsageInfo {
    pub account_id: AccountId,
    pub interview_id: InterviewId,
    pub names: VendorNames,
    pub key_sources: KeySources,
    pub stt_model: String,
    pub prices: PriceTable,
}

/// What the transcript (and the events) say where the interviewer's voice failed.
pub const VOICE_FAILED_NOTE: &str =
    "(The interviewer's voice failed here; the rest of this reply was not heard.)";

/// Replies in a row whose voice failed (after the TTS's own retry and fallback) before the
/// interview ends as `vendor_failure:tts:<category>`: one is survived (the candidate sees the
/// note and the interview listens again), a second in a row means the voice is gone.
pub const MAX_VOICE_FAILURES_IN_A_ROW: u32 = 2;

/// The line spoken when the server shuts down under a live interview.
pub const CLOSING_LINE: &str = "I'm sorry, we have to stop here: the service is restarting. Thank you for your time, and goodbye.";

#[derive(Debug, Default, Clone, Copy)]
struct TurnMarks {
    speech_ended_at: Option<Instant>,
    /// When the conductor handled the last voiced frame (its `at` is `speech_ended_at`).
    speech_seen_at: Option<Instant>,
    stt_final_at: Option<Instant>,
    decided_at: Option<Instant>,
    llm_sent_at: Option<Instant>,
    llm_first_at: Option<Instant>,
    text_sent_at: Option<Instant>,
    first_audio_at: Option<Instant>,
}

#[derive(Debug)]
struct Reply {
    id: u64,
    cue: Cue,
    speculative: bool,
    filter: ReplyFilter,
    held: Vec<String>,
    speaking: bool,
    llm_done: bool,
    marks: TurnMarks,
    /// How the interview ends once this reply has been played.
    ends: Option<EndReason>,
}

#[derive(Debug)]
struct Ending {
    reason: EndReason,
    /// Finish at this instant (graceful: the STT's last words; the closing line).
    deadline: Instant,
    /// The closing line being spoken, if any; the end waits for it (up to `deadline`).
    closing: Option<u64>,
    /// The STT drain is over no earlier than this.
    stt_drained_at: Instant,
}

const FRAME: Duration = Duration::from_millis(20);
/// Voice this recent counts as the candidate still answering.
const STILL_TALKING: Duration = Duration::from_secs(1);

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}

/// The latency breakdown of a turn whose first reply frame left at `first_frame_at`; `None`
/// when a mark is missing (a greeting or prompt has no candidate speech to measure from).
fn breakdown(marks: &TurnMarks, first_frame_at: Instant, turn_index: i32) -> Option<TurnBreakdown> {
    // Each mark is clamped to the one before it on the critical path, so the parts never
    // overlap and always add up to v2v.
    let speech_end = marks.speech_ended_at?;
    let seen = marks.speech_seen_at.unwrap_or(speech_end).max(speech_end);
    let after_final = marks.stt_final_at.unwrap_or(seen).max(seen);
    let decided = marks.decided_at.unwrap_or(after_final).max(after_final);
    // A speculative start sent the request (and maybe got its first token) before the
    // decision: only what is still waited for after it counts.
    let sent = marks.llm_sent_at?.max(decided);
    let first_token = marks.llm_first_at?.max(sent);
    let text_sent = marks.text_sent_at?.max(first_token);
    let first_audio = marks.first_audio_at?.max(text_sent);
    let first_frame = first_frame_at.max(first_audio);
    let ingress = ms_between(speech_end, seen);
    let dispatch = ms_between(decided, sent);
    let buffering = ms_between(first_token, text_sent);
    let egress = ms_between(first_audio, first_frame);
    Some(TurnBreakdown {
        turn_index,
        ingress_ms: ingress,
        stt_final_ms: ms_between(seen, after_final),
        turn_wait_ms: ms_between(after_final, decided),
        dispatch_ms: dispatch,
        llm_ttft_ms: ms_between(sent, first_token),
        tts_buffering_ms: buffering,
        tts_ttfa_ms: ms_between(text_sent, first_audio),
        egress_ms: egress,
        engine_overhead_ms: ingress + dispatch + buffering + egress,
        v2v_ms: ms_between(speech_end, first_frame),
    })
}

/// Appends a user message, merged into a trailing user message (the API wants alternation).
fn append_user(messages: &mut Vec<ChatMessage>, text: &str) {
    match messages.last_mut() {
        Some(last) if last.role == Role::User => {
            last.content.push_str("\n\n");
            last.content.push_str(text);
        }
        _ => messages.push(ChatMessage::user(text)),
    }
}

/// The conductor of one interview.
#[derive(Debug)]
pub struct InterviewCore {
    config: InterviewConfig,
    planned: Duration,
    system: String,
    usage: UsageInfo,

    phase: Phase,
    started_at: Instant,
    turn: TurnDetector,
    barge_in: BargeIn,
    transcript: TranscriptAssembler,
    history: Vec<ChatMessage>,

    next_reply_id: u64,
    reply: Option<Reply>,
    /// The reply being played (its id) and when its first frame left.
    playing: Option<(u64, Instant)>,
    /// Final STT text heard while the interviewer was speaking, kept until barge-in decides.
    finals_during_playback: Vec<(String, Vec<SttWord>, bool)>,
    resume_voiced: Duration,
    last_final_at: Option<Instant>,
    last_voiced_at: Option<Instant>,
    /// When the last voiced frame was handled (`now` of its input).
    last_voiced_seen_at: Option<Instant>,
    turn_index: i32,
    waits_in_a_row: u32,
    llm_failures: u32,
    /// Utterances in a row whose voice failed (reset by a frame heard).
    voice_failures: u32,
    stt_restarts: u32,
    child_restarts: [u32; 4],
    /// STT audio already metered in per-period rows for the current session.
    stt_recorded_seconds: f64,
    /// Start of the current, not yet metered, period of the STT stream.
    stt_period_started: Option<Instant>,
    last_activity: Instant,
    idle_prompted: bool,
    /// When the planned length ran out (first noticed).
    time_up_since: Option<Instant>,
    ending: Option<Ending>,
    out: Vec<Command>,
}

impl InterviewCore {
    pub fn new(
        plan: &InterviewPlan,
        config: InterviewConfig,
        usage: UsageInfo,
        now: Instant,
    ) -> Self {
        let mut turn = config.turn.clone();
        if usage.names.stt == Vendor::Local {
            // Whisper decodes whole utterances: a finalize at each short pause would cost a
            // decode and cut the utterance's context. Its own endpointing decides.
            turn.early_finalize_after = Duration::ZERO;
        }
        Self {
            turn: TurnDetector::new(turn),
            barge_in: BargeIn::new(config.barge_in.clone()),
            planned: plan.planned,
            system: system_prompt(plan),
            config,
            usage,
            phase: Phase::Connecting,
            started_at: now,
            transcript: TranscriptAssembler::new(now),
            history: Vec::new(),
            next_reply_id: 0,
            reply: None,
            playing: None,
            finals_during_playback: Vec::new(),
            resume_voiced: Duration::ZERO,
            last_final_at: None,
            last_voiced_at: None,
            last_voiced_seen_at: None,
            turn_index: 0,
            waits_in_a_row: 0,
            llm_failures: 0,
            voice_failures: 0,
            stt_restarts: 0,
            child_restarts: [0; 4],
            stt_recorded_seconds: 0.0,
            stt_period_started: None,
            last_activity: now,
            idle_prompted: false,
            time_up_since: None,
            ending: None,
            out: Vec::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Why the interview is ending or ended, once it is.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.ending.as_ref().map(|e| e.reason)
    }

    /// The conversation as the model sees it.
    pub fn history(&self) -> &[ChatMessage] {
        &self.history
    }

    /// Feeds one input at `now`; returns what to do.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Command> {
        if self.phase == Phase::Ended {
            return Vec::new();
        }
        match input {
            Input::Start => {
                self.set_phase(Phase::Greeting);
                self.start_reply(Cue::Start, false);
            }
            Input::Voice { at, activity } => self.voice(at, activity, now),
            Input::SttOpened { origin } => {
                self.transcript.set_stt_origin(origin);
                self.stt_period_started = Some(origin);
            }
            Input::SttOpenFailed(error) => self.stt_failed(&error, now),
            Input::SttTranscript {
                text,
                words,
                is_final,
                speech_final,
                from_finalize,
                at,
            } => {
                // A final that answers our finalize is an endpoint as much as `speech_final`:
                // the finalize was asked for after local quiet.
                let endpoint = is_final && (speech_final || from_finalize);
                self.stt_transcript(text, words, is_final, endpoint, at, now)
            }
            Input::SttUtteranceEnd => {
                if self.phase != Phase::Speaking {
                    self.turn.utterance_end();
                    self.poll_turn(now);
                }
            }
            Input::SttClosed(report) => self.record_stt_end(&report),
            Input::SttFailed { error, report } => {
                self.record_stt_end(&report);
                self.stt_failed(&error, now);
            }
            Input::LlmSent { reply_id, at } => {
                if let Some(reply) = self.reply_mut(reply_id)
                    && reply.marks.llm_sent_at.is_none()
                {
                    reply.marks.llm_sent_at = Some(at);
                }
            }
            Input::LlmDelta { reply_id, text, at } => self.llm_delta(reply_id, &text, at, now),
            Input::LlmFinished { reply_id, report } => {
                self.llm_usage(&report);
                self.llm_finished(reply_id, now);
            }
            Input::LlmCancelled { report } => {
                if let Some(report) = report {
                    self.llm_usage(&report);
                }
            }
            Input::LlmFailed {
                reply_id,
                error,
                report,
            } => {
                if let Some(report) = report {
                    self.llm_usage(&report);
                }
                self.llm_failed(reply_id, &error, now);
            }
            Input::PlaybackFirstAudio { utterance_id, at } => {
                if let Some(reply) = self.reply_mut(utterance_id) {
                    reply.marks.first_audio_at = Some(at);
                }
            }
            Input::PlaybackFirstFrame { utterance_id, at } => self.first_frame(utterance_id, at),
            Input::PlaybackAudio {
                utterance_id,
                duration,
                alignment,
            } => {
                if self.is_current(utterance_id) {
                    self.transcript
                        .interviewer_audio(duration, alignment.as_ref());
                }
            }
            Input::PlaybackFinished {
                utterance_id,
                played,
                interrupted,
            } => self.playback_finished(utterance_id, played, interrupted, now),
            Input::PlaybackFailed {
                utterance_id,
                error,
            } => self.playback_failed(utterance_id, &error, now),
            Input::TtsUsage(report) => {
                let record = UsageRecord::tts(
                    self.context(self.usage.key_sources.tts.source()),
                    self.usage.names.tts,
                    &report,
                );
                self.out.push(Command::Usage(record));
            }
            Input::PeerGone => self.end(EndReason::PeerDisconnected, StopMode::CancelNow, now),
            Input::Tick => self.tick(now),
            Input::ChildStopped(child) => self.child_stopped(child, now),
            Input::End { reason, mode } => self.end(reason, mode, now),
        }
        self.schedule();
        std::mem::take(&mut self.out)
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            self.phase = phase;
            self.out
                .push(Command::Event(InterviewEvent::State { phase }));
        }
    }

    fn is_ending(&self) -> bool {
        matches!(self.phase, Phase::Ending | Phase::Ended)
    }

    fn context(&self, key_source: crate::metering::KeySource) -> UsageContext {
        UsageContext {
            account_id: Some(self.usage.account_id),
            interview_id: Some(self.usage.interview_id),
            key_source,
        }
    }

    fn reply_mut(&mut self, id: u64) -> Option<&mut Reply> {
        self.reply.as_mut().filter(|r| r.id == id)
    }

    fn is_current(&self, id: u64) -> bool {
        self.reply.as_ref().is_some_and(|r| r.id == id)
    }

    fn time_is_up(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started_at) >= self.planned
    }

    /// The next timer the shell must set: the turn detector's deadline, or the end's.
    fn schedule(&mut self) {
        let wake = match (&self.ending, self.phase) {
            (Some(ending), Phase::Ending) => Some(ending.deadline),
            (None, Phase::Listening | Phase::Thinking) => self.turn.next_deadline(),
            _ => None,
        };
        if let Some(at) = wake {
            self.out.push(Command::WakeAt(at));
        }
    }

    fn push_assistant(&mut self, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        match self.history.last_mut() {
            Some(last) if last.role == Role::Assistant => {
                last.content.push(' ');
                last.content.push_str(text);
            }
            _ => self.history.push(ChatMessage::assistant(text)),
        }
    }

    fn cancel_reply(&mut self) {
        if let Some(old) = self.reply.take() {
            self.out.push(Command::CancelReply { reply_id: old.id });
        }
    }

    /// Starts a reply to `cue`; a speculative one is held until the turn is confirmed.
    fn start_reply(&mut self, cue: Cue, speculative: bool) {
        self.cancel_reply();
        self.next_reply_id += 1;
        let id = self.next_reply_id;
        let must_answer = !speculative && self.waits_in_a_row >= self.config.max_waits_in_a_row;
        let messages = if speculative {
            // Not committed: the candidate may still go on.
            let mut messages = self.history.clone();
            append_user(&mut messages, &cue.message());
            messages
        } else {
            match &cue {
                // The answer entered the history when the turn ended.
                Cue::Answer(_) => {}
                other => append_user(&mut self.history, &other.message()),
            }
            if must_answer {
                append_user(
                    &mut self.history,
                    "(Please respond to the candidate now; do not wait.)",
                );
            }
            self.history.clone()
        };
        let ends = matches!(cue, Cue::TimeUp).then_some(EndReason::TimeUp);
        self.out.push(Command::Generate {
            reply_id: id,
            request: LlmRequest {
                system: self.system.clone(),
                messages,
                max_tokens: None,
                stop_sequences: Vec::new(),
            },
        });
        // Open the speech synthesis session now, so its connection is made while the model
        // thinks rather than after its first words (an unused session is cancelled by the next).
        self.out.push(Command::Speak { utterance_id: id });
        self.reply = Some(Reply {
            id,
            cue,
            speculative,
            filter: ReplyFilter::new(),
            held: Vec::new(),
            speaking: false,
            llm_done: false,
            marks: TurnMarks::default(),
            ends,
        });
    }

    fn speak_chunks(&mut self, chunks: Vec<String>, now: Instant) {
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        for chunk in chunks {
            reply.speaking = true;
            if reply.marks.text_sent_at.is_none() {
                reply.marks.text_sent_at = Some(now);
            }
            self.out
                .push(Command::Event(InterviewEvent::InterviewerText {
                    text: chunk.trim().to_owned(),
                }));
            self.transcript.interviewer_text(&chunk);
            self.out.push(Command::SpeakText {
                utterance_id: reply.id,
                text: chunk,
            });
        }
    }

    /// The reply's text is complete: finish synthesis, or handle `[WAIT]` / an empty reply.
    fn finish_reply_text(&mut self, now: Instant) {
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        if reply.filter.is_wait() {
            self.waits_in_a_row += 1;
            self.reply = None;
            self.set_phase(Phase::Listening);
            return;
        }
        self.waits_in_a_row = 0;
        if reply.filter.is_end() && reply.ends.is_none() {
            reply.ends = Some(EndReason::Completed);
        }
        let spoken = reply.filter.spoken().to_owned();
        let id = reply.id;
        if !reply.speaking {
            // Nothing to say: back to listening (or end, if this was the closing reply).
            let ends = reply.ends;
            self.reply = None;
            match ends {
                Some(reason) => self.end(reason, StopMode::Graceful, now),
                None => self.set_phase(Phase::Listening),
            }
            return;
        }
        self.push_assistant(&spoken);
        self.out.push(Command::FinishText { utterance_id: id });
    }

    fn voice(&mut self, at: Instant, activity: VoiceActivity, now: Instant) {
        let voiced = activity.is_voiced();
        if voiced {
            self.last_activity = at;
            self.idle_prompted = false;
        }
        if activity.is_speech() {
            // The end of speech (where v2v starts) is the last frame with speech energy, not
            // the end of the VAD's hangover after it.
            self.last_voiced_at = Some(at);
            self.last_voiced_seen_at = Some(now);
        }
        match self.phase {
            Phase::Speaking
                if self.barge_in.voice_frame(FRAME, voiced) == Some(BargeInDecision::Interrupt) =>
            {
                self.barge_in(now);
                self.poll_turn(now);
            }
            Phase::Listening => {
                if voiced {
                    self.transcript.candidate_voice(at);
                }
                self.turn.voice_frame(at, activity);
                self.poll_turn(now);
            }
            Phase::Thinking => {
                // The candidate keeps talking after the turn ended: withdraw the reply.
                self.resume_voiced = if voiced {
                    self.resume_voiced + FRAME
                } else {
                    Duration::ZERO
                };
                if self.resume_voiced >= self.config.barge_in.min_voiced
                    && let Some(reply) = self.reply.take_if(|r| !r.speaking && r.ends.is_none())
                {
                    // Its answer stays in the history: the rest of the turn is appended to
                    // the same user message.
                    self.out.push(Command::CancelReply { reply_id: reply.id });
                    self.resume_voiced = Duration::ZERO;
                    self.set_phase(Phase::Listening);
                    self.turn.reset();
                    self.turn.voice_frame(at, VoiceActivity::Speech);
                    self.transcript.candidate_voice(at);
                }
            }
            _ => {}
        }
    }

    /// `endpoint`: the final ends at an STT endpoint (see [`TurnDetector::final_text`]).
    #[allow(clippy::too_many_arguments)]
    fn stt_transcript(
        &mut self,
        text: String,
        words: Vec<SttWord>,
        is_final: bool,
        endpoint: bool,
        at: Instant,
        now: Instant,
    ) {
        if text.trim().is_empty() {
            // An empty final at an endpoint (nothing was left to finalize: the words came in
            // an earlier final) still says the candidate paused.
            if endpoint && self.phase != Phase::Speaking {
                self.turn.final_text("", true);
                self.poll_turn(now);
            }
            return;
        }
        if !is_final {
            self.out.push(Command::Event(InterviewEvent::Interim {
                text: text.clone(),
            }));
        }
        if self.phase == Phase::Speaking {
            let decision = self.barge_in.transcript(&text);
            if is_final {
                self.finals_during_playback.push((text, words, endpoint));
            }
            if decision == Some(BargeInDecision::Interrupt) {
                self.barge_in(now);
            }
        } else if is_final {
            self.turn.final_text(&text, endpoint);
            self.transcript.candidate_final(&text, &words);
            self.last_final_at = Some(at);
        } else {
            self.turn.interim(&text);
        }
        self.poll_turn(now);
    }

    fn barge_in(&mut self, now: Instant) {
        let Some((playing, _)) = self.playing else {
            return;
        };
        self.out.push(Command::Interrupt {
            utterance_id: playing,
            barge_in_at: Some(now),
        });
        if let Some(reply) = self.reply.as_ref()
            && reply.id == playing
            && !reply.llm_done
        {
            self.out.push(Command::CancelReply { reply_id: reply.id });
        }
        self.barge_in.stop_playback();
        self.set_phase(Phase::Listening);
        self.turn.reset();
        self.turn.voice_frame(now, VoiceActivity::Speech);
        self.transcript.candidate_voice(now);
        for (text, words, speech_final) in std::mem::take(&mut self.finals_during_playback) {
            self.turn.final_text(&text, speech_final);
            self.transcript.candidate_final(&text, &words);
        }
        tracing::debug!("barge-in");
    }

    fn poll_turn(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Listening | Phase::Thinking) {
            return;
        }
        while let Some(event) = self.turn.poll(now) {
            match event {
                TurnEvent::SpeculativeReply { text } => {
                    if self.reply.is_none() && self.phase == Phase::Listening {
                        self.start_reply(Cue::Answer(text), true);
                    }
                }
                TurnEvent::Resumed => {
                    if let Some(reply) = self.reply.take_if(|r| r.speculative) {
                        self.out.push(Command::CancelReply { reply_id: reply.id });
                    }
                }
                TurnEvent::RequestFinalize => self.out.push(Command::Finalize),
                TurnEvent::EndOfTurn(end) => {
                    self.set_phase(Phase::Thinking);
                    self.transcript.candidate_turn_end(end.speech_ended_at);
                    self.persist_segments();
                    self.out.push(Command::Event(InterviewEvent::Final {
                        text: end.text.clone(),
                    }));
                    append_user(&mut self.history, &end.text);
                    self.idle_prompted = false;
                    let cue = if self.time_is_up(now) {
                        Cue::TimeUp
                    } else {
                        Cue::Answer(end.text.clone())
                    };
                    let promote = matches!(
                        (&self.reply, &cue),
                        (Some(reply), Cue::Answer(text)) if reply.speculative && reply.cue == Cue::Answer(text.clone())
                    );
                    if !promote {
                        self.start_reply(cue, false);
                    }
                    let last_final_at = self.last_final_at;
                    let (last_voiced_at, last_voiced_seen_at) =
                        (self.last_voiced_at, self.last_voiced_seen_at);
                    if let Some(reply) = self.reply.as_mut() {
                        reply.speculative = false;
                        reply.marks.speech_ended_at = Some(end.speech_ended_at);
                        reply.marks.speech_seen_at = last_voiced_seen_at
                            .filter(|_| last_voiced_at == Some(end.speech_ended_at));
                        reply.marks.stt_final_at = last_final_at;
                        reply.marks.decided_at = Some(now);
                    }
                    if promote {
                        let held = self
                            .reply
                            .as_mut()
                            .map(|r| std::mem::take(&mut r.held))
                            .unwrap_or_default();
                        self.speak_chunks(held, now);
                        if self.reply.as_ref().is_some_and(|r| r.llm_done) {
                            self.finish_reply_text(now);
                        }
                    }
                }
            }
        }
    }

    fn llm_usage(&mut self, report: &LlmReport) {
        let record = UsageRecord::llm(
            self.context(self.usage.key_sources.llm.source()),
            self.usage.names.llm,
            report,
        );
        self.out.push(Command::Usage(record));
    }

    fn llm_delta(&mut self, reply_id: u64, text: &str, at: Instant, now: Instant) {
        let Some(reply) = self.reply_mut(reply_id) else {
            return;
        };
        if reply.marks.llm_first_at.is_none() {
            reply.marks.llm_first_at = Some(at);
        }
        let chunks = reply.filter.push(text);
        if reply.speculative {
            reply.held.extend(chunks);
        } else {
            self.speak_chunks(chunks, now);
        }
    }

    fn llm_finished(&mut self, reply_id: u64, now: Instant) {
        let Some(reply) = self.reply_mut(reply_id) else {
            return;
        };
        reply.llm_done = true;
        let rest = reply.filter.finish();
        if reply.speculative {
            reply.held.extend(rest);
            return;
        }
        self.llm_failures = 0;
        self.speak_chunks(rest, now);
        self.finish_reply_text(now);
    }

    fn llm_failed(&mut self, reply_id: u64, error: &VendorError, now: Instant) {
        let Some(reply) = self.reply.take_if(|r| r.id == reply_id) else {
            return;
        };
        self.llm_failures += 1;
        tracing::warn!(category = ?error.category, "LLM reply failed");
        if error.is_permanent() || self.llm_failures >= self.config.max_llm_failures {
            self.vendor_failure(VendorRole::Llm, error, now);
            return;
        }
        if reply.speaking {
            // Part of the reply is out: finish with what was said.
            self.reply = Some(reply);
            self.finish_reply_text(now);
        } else if !reply.speculative {
            // Ask again rather than go silent.
            self.start_reply(reply.cue, false);
        }
    }

    fn first_frame(&mut self, utterance_id: u64, at: Instant) {
        if self.is_ending() {
            if self.ending.as_ref().and_then(|e| e.closing) == Some(utterance_id) {
                self.playing = Some((utterance_id, at));
                self.transcript.interviewer_begin(at);
            }
            return;
        }
        let Some(reply) = self.reply.as_ref().filter(|r| r.id == utterance_id) else {
            return;
        };
        self.playing = Some((utterance_id, at));
        self.voice_failures = 0;
        if let Some(breakdown) = breakdown(&reply.marks, at, self.turn_index) {
            self.turn_index += 1;
            self.out
                .push(Command::Event(InterviewEvent::Turn { breakdown }));
            self.out.push(Command::RecordTurn(breakdown));
        }
        self.transcript.interviewer_begin(at);
        self.barge_in.start_playback();
        self.finals_during_playback.clear();
        self.set_phase(Phase::Speaking);
    }

    fn playback_finished(
        &mut self,
        utterance_id: u64,
        played: Duration,
        interrupted: bool,
        now: Instant,
    ) {
        if let Some(ending) = self.ending.as_mut() {
            if ending.closing == Some(utterance_id) {
                ending.closing = None;
                // The closing line is over: finish as soon as the STT drain is.
                ending.deadline = ending.deadline.min(ending.stt_drained_at.max(now));
                let finish_now = now >= ending.deadline;
                if self.playing.take().is_some() {
                    self.transcript.interviewer_end(now, played, interrupted);
                }
                if finish_now {
                    self.finish(now);
                }
            }
            return;
        }
        if self.playing.is_some_and(|(id, _)| id == utterance_id) {
            self.playing = None;
            self.barge_in.stop_playback();
            self.transcript.interviewer_end(now, played, interrupted);
            if interrupted {
                // History keeps what the candidate actually heard.
                let heard = self.transcript.last_interviewer_text().unwrap_or_default();
                if let Some(last) = self
                    .history
                    .last_mut()
                    .filter(|m| m.role == Role::Assistant)
                {
                    last.content = if heard.is_empty() {
                        "(interrupted)".into()
                    } else {
                        format!("{heard} (interrupted)")
                    };
                }
            }
            self.persist_segments();
        }
        let ends = self
            .reply
            .as_ref()
            .filter(|r| r.id == utterance_id)
            .and_then(|r| r.ends)
            // A closing reply the candidate talked over ends the interview anyway when the
            // time is up; an `[END]` they interrupted does not.
            .filter(|reason| !interrupted || *reason == EndReason::TimeUp);
        if self.is_current(utterance_id) {
            self.reply = None;
        }
        self.last_activity = now;
        if let Some(reason) = ends {
            self.end(reason, StopMode::Graceful, now);
        } else if matches!(
            self.phase,
            Phase::Speaking | Phase::Greeting | Phase::Thinking
        ) && !interrupted
        {
            self.turn.reset();
            self.set_phase(Phase::Listening);
        }
    }

    /// The reply being played stops after `played`: the transcript and the history keep only
    /// what the candidate heard.
    fn cut_off(&mut self, now: Instant, played: Duration) {
        self.transcript.interviewer_end(now, played, true);
        let heard = self.transcript.last_interviewer_text().unwrap_or_default();
        if let Some(last) = self
            .history
            .last_mut()
            .filter(|m| m.role == Role::Assistant)
        {
            last.content = if heard.is_empty() {
                "(interrupted)".into()
            } else {
                format!("{heard} (interrupted)")
            };
        }
        self.persist_segments();
    }

    fn playback_failed(&mut self, utterance_id: u64, error: &VendorError, now: Instant) {
        tracing::warn!(category = ?error.category, "speech synthesis failed");
        if let Some(ending) = self.ending.as_mut() {
            if ending.closing == Some(utterance_id) {
                ending.closing = None;
                ending.deadline = ending.deadline.min(ending.stt_drained_at.max(now));
            }
            return;
        }
        if error.is_permanent() {
            if self.is_current(utterance_id) {
                self.reply = None;
            }
            self.playing = None;
            self.barge_in.stop_playback();
            self.vendor_failure(VendorRole::Tts, error, now);
            return;
        }
        self.voice_failed(utterance_id, error, now);
    }

    /// Both ways to speak failed for a transient reason: the transcript keeps what was heard
    /// and says the voice failed, the history tells the model the rest was not heard, the
    /// events carry the note; then the interview listens again, or ends when the voice has
    /// failed [`MAX_VOICE_FAILURES_IN_A_ROW`] times (never a reply silently dropped).
    fn voice_failed(&mut self, utterance_id: u64, error: &VendorError, now: Instant) {
        let played = self
            .playing
            .take_if(|(id, _)| *id == utterance_id)
            .map(|(_, since)| now.saturating_duration_since(since));
        let reply = self.reply.take_if(|r| r.id == utterance_id);
        if played.is_none() && reply.is_none() {
            return; // an utterance already superseded
        }
        self.barge_in.stop_playback();
        let mut ends = None;
        if let Some(reply) = &reply {
            if !reply.llm_done {
                self.out.push(Command::CancelReply { reply_id: reply.id });
            }
            ends = reply.ends;
        }
        let mut heard = String::new();
        if played.is_some() || reply.as_ref().is_some_and(|r| r.speaking) {
            self.transcript
                .interviewer_end(now, played.unwrap_or_default(), true);
            if played.is_some() {
                heard = self.transcript.last_interviewer_text().unwrap_or_default();
            }
        }
        self.transcript.interviewer_text(VOICE_FAILED_NOTE);
        self.transcript.interviewer_begin(now);
        self.transcript.interviewer_end(now, Duration::ZERO, false);
        self.persist_segments();
        let said = if heard.is_empty() {
            VOICE_FAILED_NOTE.to_owned()
        } else {
            format!("{heard} {VOICE_FAILED_NOTE}")
        };
        match self.history.last_mut() {
            Some(last)
                if last.role == Role::Assistant && reply.as_ref().is_some_and(|r| r.llm_done) =>
            {
                last.content = said;
            }
            _ => self.push_assistant(&said),
        }
        self.out.push(Command::Event(InterviewEvent::VoiceFailed {
            category: format!("{:?}", error.category).to_lowercase(),
            note: VOICE_FAILED_NOTE.to_owned(),
        }));
        self.voice_failures += 1;
        self.last_activity = now;
        if self.voice_failures >= MAX_VOICE_FAILURES_IN_A_ROW {
            self.vendor_failure(VendorRole::Tts, error, now);
        } else if let Some(reason) = ends {
            self.end(reason, StopMode::Graceful, now);
        } else {
            self.turn.reset();
            self.set_phase(Phase::Listening);
        }
    }

    fn stt_failed(&mut self, error: &VendorError, now: Instant) {
        if self.is_ending() {
            return;
        }
        if error.is_permanent() || self.stt_restarts >= self.config.max_stt_restarts {
            self.vendor_failure(VendorRole::Stt, error, now);
        } else {
            self.stt_restarts += 1;
            tracing::warn!(restarts = self.stt_restarts, "restarting STT");
            self.out.push(Command::StartStt);
        }
    }

    /// The failure policy's last step: a revoked key ends the interview as such; anything else
    /// as `vendor_failure:<role>:<category>`.
    fn vendor_failure(&mut self, role: VendorRole, error: &VendorError, now: Instant) {
        tracing::warn!(role = ?role, category = ?error.category, status = ?error.status, "vendor failure ends the interview");
        let reason = if error.category == ErrorCategory::KeyRevoked {
            EndReason::ByokKeyRevoked
        } else {
            EndReason::VendorFailure {
                role,
                category: error.category,
            }
        };
        self.end(reason, StopMode::Graceful, now);
    }

    /// A child stopped without being asked: restart it (bounded), or end the interview.
    fn child_stopped(&mut self, child: Child, now: Instant) {
        if self.is_ending() {
            return;
        }
        let restarts = &mut self.child_restarts[child.index()];
        if *restarts >= self.config.max_child_restarts {
            tracing::warn!(
                child = child.as_str(),
                "child failed too often: ending the interview"
            );
            self.end(EndReason::ChildFailed(child), StopMode::Graceful, now);
            return;
        }
        *restarts += 1;
        tracing::warn!(
            child = child.as_str(),
            restarts = *restarts,
            "child stopped: restarting it"
        );
        match child {
            Child::Ingress => self.out.push(Command::StartIngress),
            Child::Stt => {
                // Its session is gone with it: meter what is known and start a new one.
                self.stt_recorded_seconds = 0.0;
                self.stt_period_started = None;
                self.out.push(Command::StartStt);
            }
            Child::Llm => {
                self.out.push(Command::StartLlm);
                // The reply in flight died with it: ask again, or finish what was said.
                if let Some(reply) = self.reply.take_if(|r| !r.llm_done) {
                    if reply.speaking {
                        self.reply = Some(reply);
                        self.finish_reply_text(now);
                    } else if !reply.speculative {
                        self.start_reply(reply.cue, false);
                    }
                }
            }
            Child::Playback => {
                self.out.push(Command::StartPlayback);
                // The utterance died with it: treat it as cut off where it was.
                if let Some((id, since)) = self.playing {
                    self.playback_finished(id, now.saturating_duration_since(since), true, now);
                    if !self.is_ending() {
                        self.set_phase(Phase::Listening);
                    }
                } else if let Some(reply) = self.reply.take() {
                    // Not heard yet: ask again on the new playback.
                    self.out.push(Command::CancelReply { reply_id: reply.id });
                    if reply.speaking {
                        self.transcript.interviewer_end(now, Duration::ZERO, true);
                        self.persist_segments();
                        self.set_phase(Phase::Listening);
                    } else if !reply.speculative {
                        self.start_reply(reply.cue, false);
                    }
                }
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        if let Some(ending) = &self.ending {
            if self.phase == Phase::Ending && now >= ending.deadline {
                self.finish(now);
            }
            return;
        }
        self.meter_stt_periods(now);
        self.poll_turn(now);
        if self.is_ending() {
            return;
        }
        let elapsed = now.saturating_duration_since(self.started_at);
        if elapsed >= self.planned + self.config.overrun_grace {
            self.end(EndReason::MaxLength, StopMode::Graceful, now);
            return;
        }
        if elapsed >= self.planned {
            let since = *self.time_up_since.get_or_insert(now);
            self.time_up(since, now);
            return;
        }
        self.check_idle(now);
    }

    /// The planned length is over: close now, unless the candidate is mid-answer (then at the
    /// end of their turn, which cues the closing, or after `time_up_answer_grace`).
    fn time_up(&mut self, since: Instant, now: Instant) {
        if self.phase != Phase::Listening || self.reply.is_some() {
            // The interviewer is speaking or about to: time-up is cued at the next turn end,
            // or checked again once it is listening.
            return;
        }
        let talking = self
            .last_voiced_at
            .is_some_and(|t| now.saturating_duration_since(t) < STILL_TALKING);
        let answer_pending = !self.turn.text().trim().is_empty();
        if (talking || answer_pending)
            && now.saturating_duration_since(since) < self.config.time_up_answer_grace
        {
            return;
        }
        // Keep what the candidate said so far, then close.
        let said = self.turn.text();
        if !said.trim().is_empty() {
            self.transcript
                .candidate_turn_end(self.last_voiced_at.unwrap_or(now));
            self.persist_segments();
            self.out
                .push(Command::Event(InterviewEvent::Final { text: said.clone() }));
            append_user(&mut self.history, &said);
        }
        self.turn.reset();
        self.start_reply(Cue::TimeUp, false);
        self.set_phase(Phase::Thinking);
    }

    fn check_idle(&mut self, now: Instant) {
        if self.phase != Phase::Listening || self.reply.is_some() {
            return;
        }
        let quiet = now.saturating_duration_since(self.last_activity);
        if quiet >= self.config.idle_end_after {
            self.end(EndReason::IdleTimeout, StopMode::Graceful, now);
        } else if quiet >= self.config.idle_prompt_after && !self.idle_prompted {
            self.idle_prompted = true;
            self.start_reply(Cue::Idle, false);
            self.set_phase(Phase::Thinking);
        }
    }

    /// One usage row per metering period (a minute) of an open STT stream.
    fn meter_stt_periods(&mut self, now: Instant) {
        let period = self.config.stt_metering_period;
        while let Some(started) = self.stt_period_started
            && now.saturating_duration_since(started) >= period
        {
            let seconds = period.as_secs_f64();
            let record = UsageRecord::stt_minute(
                self.context(self.usage.key_sources.stt.source()),
                self.usage.names.stt,
                &self.usage.stt_model,
                seconds,
                &self.usage.prices,
            );
            self.out.push(Command::Usage(record));
            self.stt_recorded_seconds += seconds;
            self.stt_period_started = Some(started + period);
        }
    }

    /// The rest of an STT session's usage when it closes or fails.
    fn record_stt_end(&mut self, report: &SttReport) {
        let record = UsageRecord::stt_remainder(
            self.context(self.usage.key_sources.stt.source()),
            self.usage.names.stt,
            report,
            self.stt_recorded_seconds,
            &self.usage.prices,
        );
        if let Some(record) = record {
            self.out.push(Command::Usage(record));
        }
        self.stt_recorded_seconds = 0.0;
        self.stt_period_started = None;
    }

    fn persist_segments(&mut self) {
        let segments = self.transcript.drain();
        if !segments.is_empty() {
            self.out.push(Command::PersistSegments(segments));
        }
    }

    fn end(&mut self, reason: EndReason, mode: StopMode, now: Instant) {
        if self.is_ending() {
            return;
        }
        tracing::info!(reason = reason.as_str(), ?mode, "interview ending");
        self.set_phase(Phase::Ending);
        // Text handed to synthesis but not heard yet stays pending in the transcript; the
        // closing line is then not added to it (it would read as one utterance).
        let unheard_text =
            self.playing.is_none() && self.reply.as_ref().is_some_and(|r| r.speaking);
        if let Some((playing, since)) = self.playing.take() {
            self.out.push(Command::Interrupt {
                utterance_id: playing,
                barge_in_at: None,
            });
            self.barge_in.stop_playback();
            self.cut_off(now, now.saturating_duration_since(since));
        }
        if let Some(reply) = self.reply.take() {
            self.out.push(Command::CancelReply { reply_id: reply.id });
        }
        self.out.push(Command::StopIngress);
        self.out.push(Command::CloseStt);
        match mode {
            StopMode::Graceful => {
                let stt_drained_at = now + self.config.drain_timeout;
                let mut ending = Ending {
                    reason,
                    deadline: stt_drained_at,
                    closing: None,
                    stt_drained_at,
                };
                if reason.speaks_closing_line() {
                    self.next_reply_id += 1;
                    let id = self.next_reply_id;
                    self.out.push(Command::Speak { utterance_id: id });
                    self.out.push(Command::SpeakText {
                        utterance_id: id,
                        text: CLOSING_LINE.to_owned(),
                    });
                    self.out.push(Command::FinishText { utterance_id: id });
                    self.out
                        .push(Command::Event(InterviewEvent::InterviewerText {
                            text: CLOSING_LINE.to_owned(),
                        }));
                    self.push_assistant(CLOSING_LINE);
                    if !unheard_text {
                        self.transcript.interviewer_text(CLOSING_LINE);
                    }
                    ending.closing = Some(id);
                    ending.deadline = stt_drained_at.max(now + self.config.closing_line_timeout);
                }
                self.ending = Some(ending);
            }
            StopMode::CancelNow => {
                self.ending = Some(Ending {
                    reason,
                    deadline: now,
                    closing: None,
                    stt_drained_at: now,
                });
                self.finish(now);
            }
        }
    }

    /// Stops the children, persists what is left, then the end state.
    fn finish(&mut self, now: Instant) {
        if self.phase == Phase::Ended {
            return;
        }
        let reason = self.end_reason().unwrap_or(EndReason::Stopped);
        if let Some((playing, since)) = self.playing.take() {
            // The closing line, cut off by the drain's deadline.
            self.out.push(Command::Interrupt {
                utterance_id: playing,
                barge_in_at: None,
            });
            self.transcript
                .interviewer_end(now, now.saturating_duration_since(since), true);
        }
        self.set_phase(Phase::Ended);
        self.out.push(Command::StopChildren);
        self.persist_segments();
        self.out.push(Command::Finish { reason });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::InterviewKind;
    use crate::metering::KeySource;
    use crate::vendor_set::SourceOf;
    use crate::vendors::Vendor;

    const MS: Duration = Duration::from_millis(1);

    fn plan(planned: Duration) -> InterviewPlan {
        InterviewPlan {
            kind: InterviewKind::Behavioral,
            target_role: Some("Backend Engineer".into()),
            company: None,
            planned,
            profile: None,
            focus_skill: None,
        }
    }

    fn usage() -> UsageInfo {
        UsageInfo {
            account_id: uuid::Uuid::nil().into(),
            interview_id: uuid::Uuid::nil().into(),
            names: VendorNames {
                stt: crate::vendors::Vendor::Deepgram,
                llm: crate::vendors::Vendor::Anthropic,
                tts: crate::vendors::Vendor::ElevenLabs,
            },
            key_sources: KeySources {
                stt: SourceOf::Fixed(KeySource::Platform),
                llm: SourceOf::Fixed(KeySource::Platform),
                tts: SourceOf::Fixed(KeySource::Platform),
            },
            stt_model: "nova-3".into(),
            prices: PriceTable::default(),
        }
    }

    /// A core driven in simulated time: `now` only moves when the test moves it.
    struct Sim {
        core: InterviewCore,
        now: Instant,
        log: Vec<Command>,
    }

    impl Sim {
        fn new() -> Self {
            Self::with(InterviewConfig::default(), Duration::from_secs(20 * 60))
        }

        fn with(config: InterviewConfig, planned: Duration) -> Self {
            Self::with_usage(config, planned, usage())
        }

        fn with_usage(config: InterviewConfig, planned: Duration, usage: UsageInfo) -> Self {
            let now = Instant::now();
            Self {
                core: InterviewCore::new(&plan(planned), config, usage, now),
                now,
                log: Vec::new(),
            }
        }

        fn feed(&mut self, input: Input) -> Vec<Command> {
            let out = self.core.handle(input, self.now);
            self.log.extend(out.iter().cloned());
            out
        }

        /// Advances the clock by `by`, ticking every 20 ms like the shell's timers would.
        fn wait(&mut self, by: Duration) -> Vec<Command> {
            let mut out = Vec::new();
            let end = self.now + by;
            while self.now < end {
                self.now = (self.now + 20 * MS).min(end);
                out.extend(self.feed(Input::Tick));
            }
            out
        }

        /// The candidate voices (or is silent) for `by`, 20 ms frames.
        fn frames(&mut self, voiced: bool, by: Duration) -> Vec<Command> {
            let mut out = Vec::new();
            let end = self.now + by;
            while self.now < end {
                self.now += 20 * MS;
                let at = self.now;
                out.extend(self.feed(Input::Voice {
                    at,
                    activity: VoiceActivity::speech_if(voiced),
                }));
                out.extend(self.feed(Input::Tick));
            }
            out
        }

        fn final_text(&mut self, text: &str) -> Vec<Command> {
            self.stt_final(text, true, false)
        }

        /// A final transcript now, with the STT's endpoint and finalize flags as given.
        fn stt_final(
            &mut self,
            text: &str,
            speech_final: bool,
            from_finalize: bool,
        ) -> Vec<Command> {
            let at = self.now;
            self.feed(Input::SttTranscript {
                text: text.into(),
                words: Vec::new(),
                is_final: true,
                speech_final,
                from_finalize,
                at,
            })
        }

        fn generated(out: &[Command]) -> Vec<(u64, LlmRequest)> {
            out.iter()
                .filter_map(|c| match c {
                    Command::Generate { reply_id, request } => Some((*reply_id, request.clone())),
                    _ => None,
                })
                .collect()
        }

        fn last_generated(&self) -> u64 {
            Self::generated(&self.log)
                .last()
                .expect("a reply was generated")
                .0
        }

        /// The model answers reply `id` with `text` at once.
        fn reply(&mut self, id: u64, text: &str) -> Vec<Command> {
            let at = self.now;
            let mut out = self.feed(Input::LlmSent { reply_id: id, at });
            out.extend(self.feed(Input::LlmDelta {
                reply_id: id,
                text: text.into(),
                at,
            }));
            out.extend(self.feed(Input::LlmFinished {
                reply_id: id,
                report: LlmReport::default(),
            }));
            out
        }

        /// Playback plays utterance `id` for `played` and finishes.
        fn play(&mut self, id: u64, played: Duration) -> Vec<Command> {
            let at = self.now;
            let mut out = self.feed(Input::PlaybackFirstAudio {
                utterance_id: id,
                at,
            });
            out.extend(self.feed(Input::PlaybackFirstFrame {
                utterance_id: id,
                at,
            }));
            out.extend(self.feed(Input::PlaybackAudio {
                utterance_id: id,
                duration: played,
                alignment: None,
            }));
            self.now += played;
            out.extend(self.feed(Input::PlaybackFinished {
                utterance_id: id,
                played,
                interrupted: false,
            }));
            out
        }

        /// Start, greeting generated and played: the core listens.
        fn greeted(&mut self) {
            self.feed(Input::Start);
            let id = self.last_generated();
            self.reply(id, "Hello! Tell me about yourself.");
            self.play(id, Duration::from_secs(2));
            assert_eq!(self.core.phase(), Phase::Listening);
        }

        fn finished_with(&self) -> Option<EndReason> {
            self.log.iter().find_map(|c| match c {
                Command::Finish { reason } => Some(*reason),
                _ => None,
            })
        }
    }

    fn has(out: &[Command], pred: impl Fn(&Command) -> bool) -> bool {
        out.iter().any(pred)
    }

    fn error(category: ErrorCategory) -> VendorError {
        VendorError::new(Vendor::Deepgram, category, "test")
    }

    #[test]
    fn local_quiet_finalizes_the_stt_and_its_answer_ends_the_turn_at_the_endpoint_window() {
        for from_finalize in [true, false] {
            let mut sim = Sim::new();
            sim.greeted();
            sim.frames(true, Duration::from_secs(1));
            let out = sim.frames(false, Duration::from_millis(200));
            assert!(
                has(&out, |c| matches!(c, Command::Finalize)),
                "asked after 200 ms of local quiet: {out:?}"
            );
            sim.frames(false, Duration::from_millis(40));
            let mut out = sim.stt_final("I build payment systems.", false, from_finalize);
            assert_eq!(
                Sim::generated(&out).len(),
                1,
                "the reply starts on the final at once: {out:?}"
            );
            out.extend(sim.frames(false, Duration::from_millis(160)));
            // 400 ms of quiet: the endpoint window when the final answered our finalize, the
            // 900 ms sentence window when it did not.
            let ended = sim.core.phase() == Phase::Thinking;
            assert_eq!(ended, from_finalize, "{out:?}");
        }
    }

    #[test]
    fn the_local_recognizer_is_not_asked_to_finalize_at_each_pause() {
        let mut usage = usage();
        usage.names.stt = Vendor::Local;
        let planned = Duration::from_secs(20 * 60);
        let mut sim = Sim::with_usage(InterviewConfig::default(), planned, usage);
        sim.greeted();
        sim.frames(true, Duration::from_secs(1));
        // A final without an endpoint, then quiet: a streaming STT would be asked at 200 ms.
        sim.stt_final("I build payment systems and", false, false);
        let out = sim.frames(false, Duration::from_millis(600));
        assert!(!has(&out, |c| matches!(c, Command::Finalize)), "{out:?}");
    }

    #[test]
    fn a_speculative_reply_is_promoted_when_the_turn_is_confirmed() {
        let mut sim = Sim::new();
        sim.greeted();
        sim.frames(true, Duration::from_millis(600));
        sim.final_text("I build payment systems.");
        let before = Sim::generated(&sim.log).len();
        // Quiet: first the speculative start, then the confirmed end of turn.
        let out = sim.frames(false, Duration::from_millis(300));
        let speculative = Sim::generated(&out);
        assert_eq!(speculative.len(), 1, "one speculative start: {out:?}");
        let (id, request) = &speculative[0];
        assert_eq!(
            request.messages.last().map(|m| m.content.as_str()),
            Some("I build payment systems.")
        );
        // The model answers while the candidate may still go on: nothing is spoken yet.
        let out = sim.reply(*id, "Interesting. What was the hardest bug?");
        assert!(
            !has(&out, |c| matches!(c, Command::SpeakText { .. })),
            "{out:?}"
        );
        let out = sim.frames(false, Duration::from_secs(2));
        assert_eq!(sim.core.phase(), Phase::Thinking);
        // Promoted: no second request, the held text goes to playback and finishes.
        assert!(Sim::generated(&out).is_empty(), "{out:?}");
        assert!(has(
            &out,
            |c| matches!(c, Command::SpeakText { utterance_id, text } if utterance_id == id && text.contains("hardest bug"))
        ));
        assert!(has(
            &out,
            |c| matches!(c, Command::FinishText { utterance_id } if utterance_id == id)
        ));
        assert_eq!(Sim::generated(&sim.log).len(), before + 1);
        // The turn's latency is measured from the end of speech when the first frame leaves.
        sim.now += 150 * MS;
        let out = sim.play(*id, Duration::from_secs(1));
        let turn = out
            .iter()
            .find_map(|c| match c {
                Command::RecordTurn(b) => Some(*b),
                _ => None,
            })
            .expect("turn recorded");
        assert!(turn.v2v_ms > 0.0);
        assert_eq!(
            turn.llm_ttft_ms, 0.0,
            "the speculative start hid the model's wait"
        );
        let parts: f64 = turn.parts().iter().map(|(_, ms)| ms).sum();
        assert!((parts - turn.v2v_ms).abs() < 1e-6, "{turn:?}");
    }

    #[test]
    fn every_part_of_a_turn_is_measured_and_the_parts_add_up_to_v2v() {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut config = InterviewConfig::default();
        // No speculative start: every wait after the decision is exposed and measured.
        config.turn.speculative_after = Duration::from_secs(60);
        let mut sim = Sim::with(config, Duration::from_secs(20 * 60));
        sim.greeted();
        // 600 ms of speech, each frame reaching the conductor 7 ms after the transport got it.
        let ingress = 7 * MS;
        let mut speech_end = sim.now;
        for _ in 0..30 {
            sim.now += 20 * MS;
            speech_end = sim.now - ingress;
            sim.feed(Input::Voice {
                at: speech_end,
                activity: VoiceActivity::Speech,
            });
            sim.feed(Input::Tick);
        }
        // The VAD's hangover: three more voiced frames without speech energy, which are not
        // speech (v2v starts at the last frame with speech energy).
        for _ in 0..3 {
            sim.now += 20 * MS;
            sim.feed(Input::Voice {
                at: sim.now - ingress,
                activity: VoiceActivity::Hangover,
            });
            sim.feed(Input::Tick);
        }
        // The final comes 120 ms after the conductor saw the end of speech.
        sim.frames(false, 60 * MS);
        let final_at = sim.now;
        sim.final_text("I build payment systems.");
        while sim.core.phase() == Phase::Listening {
            sim.frames(false, 20 * MS);
        }
        let decided = sim.now;
        let id = sim.last_generated();
        // Dispatch 30 ms, the model's first token 200 ms later, the TTS's first audio 150 ms
        // after the text, the first frame out 10 ms after that.
        sim.now += 30 * MS;
        let at = sim.now;
        sim.feed(Input::LlmSent { reply_id: id, at });
        sim.now += 200 * MS;
        let at = sim.now;
        sim.feed(Input::LlmDelta {
            reply_id: id,
            text: "What was the hardest part?".into(),
            at,
        });
        sim.feed(Input::LlmFinished {
            reply_id: id,
            report: LlmReport::default(),
        });
        sim.now += 150 * MS;
        let at = sim.now;
        sim.feed(Input::PlaybackFirstAudio {
            utterance_id: id,
            at,
        });
        sim.now += 10 * MS;
        let at = sim.now;
        let out = sim.feed(Input::PlaybackFirstFrame {
            utterance_id: id,
            at,
        });
        let turn = out
            .iter()
            .find_map(|c| match c {
                Command::RecordTurn(b) => Some(*b),
                _ => None,
            })
            .expect("turn recorded");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(turn.ingress_ms, 7.0), "{turn:?}");
        assert!(close(turn.stt_final_ms, 120.0), "{turn:?}");
        assert!(close(turn.turn_wait_ms, ms(decided - final_at)), "{turn:?}");
        assert!(
            turn.turn_wait_ms > 0.0,
            "the quiet window is reported: {turn:?}"
        );
        assert!(close(turn.dispatch_ms, 30.0), "{turn:?}");
        assert!(close(turn.llm_ttft_ms, 200.0), "{turn:?}");
        assert!(close(turn.tts_ttfa_ms, 150.0), "{turn:?}");
        assert!(close(turn.egress_ms, 10.0), "{turn:?}");
        assert!(close(turn.v2v_ms, ms(sim.now - speech_end)), "{turn:?}");
        let parts: f64 = turn.parts().iter().map(|(_, ms)| ms).sum();
        assert!(close(parts, turn.v2v_ms), "no gaps: {turn:?}");
        assert!(
            close(
                turn.engine_overhead_ms,
                turn.ingress_ms + turn.dispatch_ms + turn.tts_buffering_ms + turn.egress_ms
            ),
            "overhead is our parts only: {turn:?}"
        );
    }

    #[test]
    fn the_reply_is_withdrawn_when_the_candidate_resumes() {
        let mut sim = Sim::new();
        sim.greeted();
        sim.frames(true, Duration::from_millis(600));
        sim.final_text("I led a migration.");
        sim.frames(false, Duration::from_secs(2));
        assert_eq!(sim.core.phase(), Phase::Thinking);
        let id = sim.last_generated();
        // The candidate goes on before the reply is spoken.
        let out = sim.frames(true, Duration::from_millis(400));
        assert!(
            has(
                &out,
                |c| matches!(c, Command::CancelReply { reply_id } if *reply_id == id)
            ),
            "{out:?}"
        );
        assert_eq!(sim.core.phase(), Phase::Listening);
        // The withdrawn reply's late text is ignored.
        let out = sim.reply(id, "Tell me more.");
        assert!(
            !has(&out, |c| matches!(c, Command::SpeakText { .. })),
            "{out:?}"
        );
        // The next turn answers both parts together.
        sim.final_text("It took six months.");
        let out = sim.frames(false, Duration::from_secs(3));
        let requests = Sim::generated(&out);
        let (_, last) = requests.last().expect("a new reply");
        let user = &last.messages.last().expect("a message").content;
        assert!(
            user.contains("I led a migration.") && user.contains("It took six months."),
            "{user}"
        );
    }

    #[test]
    fn a_speculative_reply_is_dropped_when_the_candidate_speaks_again() {
        let mut sim = Sim::new();
        sim.greeted();
        sim.frames(true, Duration::from_millis(600));
        sim.final_text("I use Rust and");
        let out = sim.frames(false, Duration::from_millis(300));
        let (id, _) = Sim::generated(&out)[0].clone();
        let out = sim.frames(true, Duration::from_millis(100));
        assert!(
            has(
                &out,
                |c| matches!(c, Command::CancelReply { reply_id } if *reply_id == id)
            ),
            "{out:?}"
        );
        assert_eq!(sim.core.phase(), Phase::Listening);
    }

    #[test]
    fn a_barge_in_interrupt_carries_the_instant_of_its_decision_and_an_end_none() {
        let mut sim = Sim::new();
        sim.feed(Input::Start);
        let id = sim.last_generated();
        sim.reply(
            id,
            "Hello and welcome. Tell me about a system you designed and why.",
        );
        let at = sim.now;
        sim.feed(Input::PlaybackFirstFrame {
            utterance_id: id,
            at,
        });
        sim.now += Duration::from_secs(1);
        // The candidate talks over the reply until the detector decides, frame by frame.
        let mut decided = None;
        for _ in 0..100 {
            sim.now += 20 * MS;
            let at = sim.now;
            let out = sim.feed(Input::Voice {
                at,
                activity: VoiceActivity::Speech,
            });
            if let Some(barge_in_at) = out.iter().find_map(|c| match c {
                Command::Interrupt {
                    utterance_id,
                    barge_in_at,
                } if *utterance_id == id => Some(*barge_in_at),
                _ => None,
            }) {
                decided = Some((barge_in_at, sim.now));
                break;
            }
        }
        let (barge_in_at, now) = decided.expect("the barge-in was decided");
        assert_eq!(barge_in_at, Some(now), "the decision's own instant");

        // An end that cuts a reply off is not a barge-in: nothing to measure.
        let mut sim = Sim::new();
        sim.feed(Input::Start);
        let id = sim.last_generated();
        sim.reply(id, "Hello and welcome.");
        let at = sim.now;
        sim.feed(Input::PlaybackFirstFrame {
            utterance_id: id,
            at,
        });
        let out = sim.feed(Input::End {
            reason: EndReason::CandidateEnded,
            mode: StopMode::CancelNow,
        });
        assert!(has(&out, |c| matches!(
            c,
            Command::Interrupt {
                barge_in_at: None,
                ..
            }
        )));
    }

    #[test]
    fn after_a_barge_in_the_history_keeps_only_what_was_heard() {
        let mut sim = Sim::new();
        sim.feed(Input::Start);
        let id = sim.last_generated();
        let long = "Hello and welcome to the interview. Tell me about a system you designed and what you would change.";
        sim.reply(id, long);
        let at = sim.now;
        sim.feed(Input::PlaybackFirstFrame {
            utterance_id: id,
            at,
        });
        sim.feed(Input::PlaybackAudio {
            utterance_id: id,
            duration: Duration::from_secs(10),
            alignment: None,
        });
        assert_eq!(sim.core.phase(), Phase::Speaking);
        // The candidate talks over it after about 2 s.
        sim.now += Duration::from_secs(2);
        let out = sim.frames(true, Duration::from_millis(1000));
        assert!(
            has(
                &out,
                |c| matches!(c, Command::Interrupt { utterance_id, .. } if *utterance_id == id)
            ),
            "{out:?}"
        );
        assert_eq!(sim.core.phase(), Phase::Listening);
        let played = sim.now.saturating_duration_since(at);
        sim.feed(Input::PlaybackFinished {
            utterance_id: id,
            played,
            interrupted: true,
        });
        let assistant = sim
            .core
            .history()
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant)
            .expect("an assistant message");
        assert!(
            assistant.content.ends_with("(interrupted)"),
            "{}",
            assistant.content
        );
        let heard = assistant.content.trim_end_matches(" (interrupted)");
        assert!(
            !heard.is_empty() && long.starts_with(heard) && heard.len() < long.len() / 2,
            "{heard}"
        );
        // The stored segment is the heard part, marked interrupted.
        let segment = sim
            .log
            .iter()
            .find_map(|c| match c {
                Command::PersistSegments(s) => s.first().cloned(),
                _ => None,
            })
            .expect("segment stored");
        assert!(segment.interrupted && segment.text == heard, "{segment:?}");
    }

    #[test]
    fn a_silent_candidate_is_prompted_once_and_then_the_interview_ends() {
        let config = InterviewConfig {
            idle_prompt_after: Duration::from_secs(5),
            idle_end_after: Duration::from_secs(12),
            ..InterviewConfig::default()
        };
        let mut sim = Sim::with(config, Duration::from_secs(20 * 60));
        sim.greeted();
        let out = sim.wait(Duration::from_millis(4900));
        assert!(Sim::generated(&out).is_empty());
        let out = sim.wait(Duration::from_millis(200));
        let prompts = Sim::generated(&out);
        assert_eq!(prompts.len(), 1, "{out:?}");
        assert!(
            prompts[0]
                .1
                .messages
                .last()
                .unwrap()
                .content
                .contains("silent")
        );
        let id = prompts[0].0;
        sim.reply(id, "Take your time.");
        sim.play(id, Duration::from_secs(1));
        // The prompt's end counts as activity; still silent: no second prompt, then the end.
        let out = sim.wait(Duration::from_secs(11));
        assert!(Sim::generated(&out).is_empty(), "{out:?}");
        assert!(sim.finished_with().is_none());
        sim.wait(Duration::from_millis(1200));
        assert_eq!(sim.core.phase(), Phase::Ending);
        sim.wait(Duration::from_secs(3));
        assert_eq!(sim.finished_with(), Some(EndReason::IdleTimeout));
        assert_eq!(sim.core.phase(), Phase::Ended);
    }

    #[test]
    fn time_up_mid_answer_lets_the_candidate_finish_then_closes_on_the_timer() {
        let config = InterviewConfig {
            time_up_answer_grace: Duration::from_secs(5),
            ..InterviewConfig::default()
        };
        let mut sim = Sim::with(config, Duration::from_secs(30));
        sim.greeted();
        // The candidate answers through the end of the planned time and keeps going.
        sim.frames(true, Duration::from_secs(29));
        sim.final_text("And then we rewrote the billing service");
        let out = sim.frames(true, Duration::from_secs(3));
        assert!(
            Sim::generated(&out).is_empty(),
            "mid-answer: no interruption yet"
        );
        // Past the grace, the timer closes the interview although the candidate never paused.
        let out = sim.frames(true, Duration::from_secs(3));
        let closing = Sim::generated(&out);
        assert_eq!(closing.len(), 1, "{out:?}");
        let (id, request) = &closing[0];
        let user = &request.messages.last().unwrap().content;
        assert!(
            user.contains("billing service") && user.contains("Time is up"),
            "{user}"
        );
        assert_eq!(sim.core.phase(), Phase::Thinking);
        sim.reply(*id, "We are out of time, thank you! [END]");
        sim.play(*id, Duration::from_secs(2));
        sim.wait(Duration::from_secs(3));
        assert_eq!(sim.finished_with(), Some(EndReason::TimeUp));
        // What the candidate said before the closing is stored.
        assert!(sim.log.iter().any(|c| matches!(c, Command::PersistSegments(s) if s.iter().any(|s| s.text.contains("billing service")))));
    }

    #[test]
    fn time_up_while_silent_closes_at_once_and_the_hard_stop_follows() {
        let config = InterviewConfig {
            idle_prompt_after: Duration::from_secs(600),
            idle_end_after: Duration::from_secs(900),
            overrun_grace: Duration::from_secs(10),
            ..InterviewConfig::default()
        };
        let mut sim = Sim::with(config, Duration::from_secs(20));
        sim.greeted();
        let out = sim.wait(Duration::from_secs(19));
        let closing = Sim::generated(&out);
        assert_eq!(closing.len(), 1, "{out:?}");
        // The closing reply never comes back (a stuck model): the hard stop (planned + 10 s)
        // ends it.
        sim.wait(Duration::from_secs(7));
        assert_eq!(sim.core.phase(), Phase::Thinking);
        sim.wait(Duration::from_secs(5));
        assert_eq!(sim.core.phase(), Phase::Ended);
        assert_eq!(sim.finished_with(), Some(EndReason::MaxLength));
    }

    #[test]
    fn stt_failures_restart_it_until_the_budget_is_spent() {
        let mut sim = Sim::new();
        sim.greeted();
        for _ in 0..2 {
            let out = sim.feed(Input::SttFailed {
                error: error(ErrorCategory::Network),
                report: SttReport::default(),
            });
            assert!(has(&out, |c| matches!(c, Command::StartStt)), "{out:?}");
        }
        let out = sim.feed(Input::SttFailed {
            error: error(ErrorCategory::Network),
            report: SttReport::default(),
        });
        assert!(!has(&out, |c| matches!(c, Command::StartStt)));
        assert_eq!(
            sim.core.end_reason(),
            Some(EndReason::VendorFailure {
                role: VendorRole::Stt,
                category: ErrorCategory::Network
            })
        );
        assert_eq!(
            sim.core.end_reason().unwrap().as_str(),
            "vendor_failure:stt:network"
        );
    }

    #[test]
    fn a_permanent_stt_failure_ends_at_once() {
        let mut sim = Sim::new();
        sim.greeted();
        let out = sim.feed(Input::SttOpenFailed(error(ErrorCategory::Auth)));
        assert!(!has(&out, |c| matches!(c, Command::StartStt)));
        assert_eq!(
            sim.core.end_reason().unwrap().as_str(),
            "vendor_failure:stt:auth"
        );
    }

    #[test]
    fn a_revoked_key_ends_the_interview_as_byok_key_revoked() {
        for role in [VendorRole::Stt, VendorRole::Llm, VendorRole::Tts] {
            let mut sim = Sim::new();
            sim.feed(Input::Start);
            let id = sim.last_generated();
            let revoked = error(ErrorCategory::KeyRevoked);
            match role {
                VendorRole::Stt => sim.feed(Input::SttFailed {
                    error: revoked,
                    report: SttReport::default(),
                }),
                VendorRole::Llm => sim.feed(Input::LlmFailed {
                    reply_id: id,
                    error: revoked,
                    report: None,
                }),
                VendorRole::Tts => sim.feed(Input::PlaybackFailed {
                    utterance_id: id,
                    error: revoked,
                }),
            };
            assert_eq!(
                sim.core.end_reason(),
                Some(EndReason::ByokKeyRevoked),
                "{role:?}"
            );
            sim.wait(Duration::from_secs(3));
            assert_eq!(
                sim.finished_with().map(EndReason::as_str),
                Some("byok_key_revoked")
            );
        }
    }

    #[test]
    fn a_transient_llm_failure_asks_again_and_repeated_failures_end() {
        let mut sim = Sim::new();
        sim.feed(Input::Start);
        for attempt in 1..=3u64 {
            let id = sim.last_generated();
            assert_eq!(id, attempt);
            let out = sim.feed(Input::LlmFailed {
                reply_id: id,
                error: error(ErrorCategory::Overloaded),
                report: None,
            });
            if attempt < 3 {
                let again = Sim::generated(&out);
                assert_eq!(again.len(), 1, "asked again: {out:?}");
            }
        }
        assert_eq!(
            sim.core.end_reason().unwrap().as_str(),
            "vendor_failure:llm:overloaded"
        );
    }

    #[test]
    fn a_half_spoken_reply_whose_model_fails_is_finished_with_what_was_said() {
        let mut sim = Sim::new();
        sim.feed(Input::Start);
        let id = sim.last_generated();
        let at = sim.now;
        sim.feed(Input::LlmDelta {
            reply_id: id,
            text: "Hello and welcome. ".into(),
            at,
        });
        let out = sim.feed(Input::LlmFailed {
            reply_id: id,
            error: error(ErrorCategory::Server),
            report: None,
        });
        assert!(
            has(
                &out,
                |c| matches!(c, Command::FinishText { utterance_id } if *utterance_id == id)
            ),
            "{out:?}"
        );
        assert!(Sim::generated(&out).is_empty());
        assert!(sim.core.end_reason().is_none());
    }

    #[test]
    fn tts_failures_listen_again_or_end_when_permanent() {
        let mut sim = Sim::new();
        sim.greeted();
        sim.frames(true, Duration::from_millis(600));
        sim.final_text("Yes.");
        sim.frames(false, Duration::from_secs(2));
        let id = sim.last_generated();
        sim.feed(Input::PlaybackFailed {
            utterance_id: id,
            error: error(ErrorCategory::Network),
        });
        assert_eq!(sim.core.phase(), Phase::Listening);
        assert!(sim.core.end_reason().is_none());
        sim.frames(true, Duration::from_millis(600));
        sim.final_text("Still there?");
        sim.frames(false, Duration::from_secs(2));
        let id = sim.last_generated();
        sim.feed(Input::PlaybackFailed {
            utterance_id: id,
            error: error(ErrorCategory::Auth),
        });
        assert_eq!(
            sim.core.end_reason().unwrap().as_str(),
            "vendor_failure:tts:auth"
        );
    }

    #[test]
    fn a_voice_failure_is_said_in_the_transcript_and_events_and_a_second_in_a_row_ends() {
        let mut sim = Sim::new();
        sim.greeted();
        sim.frames(true, Duration::from_millis(600));
        sim.final_text("Yes.");
        sim.frames(false, Duration::from_secs(2));
        let id = sim.last_generated();
        sim.reply(id, "Tell me about a hard bug. What did you learn?");
        // Half a second of it is heard, then both ways to speak fail.
        let at = sim.now;
        sim.feed(Input::PlaybackFirstFrame {
            utterance_id: id,
            at,
        });
        sim.feed(Input::PlaybackAudio {
            utterance_id: id,
            duration: Duration::from_secs(3),
            alignment: None,
        });
        sim.now += Duration::from_millis(500);
        let out = sim.feed(Input::PlaybackFailed {
            utterance_id: id,
            error: error(ErrorCategory::Network),
        });
        let persisted: Vec<SegmentRecord> = out
            .iter()
            .filter_map(|c| match c {
                Command::PersistSegments(s) => Some(s.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let texts: Vec<&str> = persisted.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts.len(), 2, "{persisted:#?}");
        assert!(persisted[0].interrupted);
        assert!(
            "Tell me about a hard bug. What did you learn?".starts_with(texts[0])
                && texts[0].len() < 20,
            "what was heard: {texts:?}"
        );
        assert_eq!(texts[1], VOICE_FAILED_NOTE);
        assert!(has(&out, |c| matches!(
            c,
            Command::Event(InterviewEvent::VoiceFailed { category, .. }) if category == "network"
        )));
        assert_eq!(sim.core.phase(), Phase::Listening);
        assert!(sim.core.end_reason().is_none());
        // The model is told what was not heard, so it can ask again.
        sim.frames(true, Duration::from_millis(600));
        sim.final_text("Sorry, I did not hear you.");
        sim.frames(false, Duration::from_secs(2));
        let (next, request) = Sim::generated(&sim.log)
            .last()
            .cloned()
            .expect("asked again");
        assert!(
            request
                .messages
                .iter()
                .any(|m| m.role == Role::Assistant && m.content.contains(VOICE_FAILED_NOTE)),
            "{:?}",
            request.messages
        );
        // The voice fails again before a frame is heard: the interview ends, clearly.
        sim.reply(next, "Let me repeat: a hard bug?");
        sim.feed(Input::PlaybackFailed {
            utterance_id: next,
            error: error(ErrorCategory::Timeout),
        });
        assert_eq!(
            sim.core.end_reason().unwrap().as_str(),
            "vendor_failure:tts:timeout"
        );
    }

    #[test]
    fn stopped_children_are_restarted_within_their_budget_then_end_the_interview() {
        for child in Child::ALL {
            let mut sim = Sim::new();
            sim.greeted();
            for _ in 0..2 {
                let out = sim.feed(Input::ChildStopped(child));
                let restarted = out.iter().any(|c| {
                    matches!(
                        (child, c),
                        (Child::Ingress, Command::StartIngress)
                            | (Child::Stt, Command::StartStt)
                            | (Child::Llm, Command::StartLlm)
                            | (Child::Playback, Command::StartPlayback)
                    )
                });
                assert!(restarted, "{child:?}: {out:?}");
                assert!(sim.core.end_reason().is_none());
            }
            sim.feed(Input::ChildStopped(child));
            assert_eq!(sim.core.end_reason(), Some(EndReason::ChildFailed(child)));
            sim.wait(Duration::from_secs(3));
            assert_eq!(
                sim.finished_with().map(EndReason::as_str),
                Some(format!("child_failed:{}", child.as_str()).as_str())
            );
        }
    }

    #[test]
    fn an_llm_that_dies_mid_reply_is_restarted_and_the_reply_asked_again() {
        let mut sim = Sim::new();
        sim.feed(Input::Start);
        let first = sim.last_generated();
        let out = sim.feed(Input::ChildStopped(Child::Llm));
        let again = Sim::generated(&out);
        assert_eq!(again.len(), 1, "{out:?}");
        assert_ne!(again[0].0, first);
        // The dead actor's late news about the old reply changes nothing.
        let out = sim.reply(first, "Stale greeting.");
        assert!(!has(&out, |c| matches!(c, Command::SpeakText { .. })));
        let out = sim.reply(again[0].0, "Hello!");
        assert!(has(&out, |c| matches!(c, Command::SpeakText { .. })));
    }

    #[test]
    fn a_playback_that_dies_mid_utterance_is_restarted_and_keeps_the_heard_part() {
        let mut sim = Sim::new();
        sim.feed(Input::Start);
        let id = sim.last_generated();
        sim.reply(
            id,
            "Hello and welcome. Tell me about the last system you built, and why.",
        );
        let at = sim.now;
        sim.feed(Input::PlaybackFirstFrame {
            utterance_id: id,
            at,
        });
        sim.feed(Input::PlaybackAudio {
            utterance_id: id,
            duration: Duration::from_secs(6),
            alignment: None,
        });
        sim.now += Duration::from_secs(2);
        let out = sim.feed(Input::ChildStopped(Child::Playback));
        assert!(has(&out, |c| matches!(c, Command::StartPlayback)));
        assert_eq!(sim.core.phase(), Phase::Listening);
        let stored = out
            .iter()
            .find_map(|c| match c {
                Command::PersistSegments(s) => s.first().cloned(),
                _ => None,
            })
            .expect("the heard part is stored");
        assert!(
            stored.interrupted && stored.text.starts_with("Hello"),
            "{stored:?}"
        );
    }

    #[test]
    fn children_stopping_while_ending_are_not_restarted() {
        let mut sim = Sim::new();
        sim.greeted();
        sim.feed(Input::End {
            reason: EndReason::CandidateEnded,
            mode: StopMode::Graceful,
        });
        for child in Child::ALL {
            let out = sim.feed(Input::ChildStopped(child));
            assert!(!has(&out, |c| matches!(
                c,
                Command::StartIngress
                    | Command::StartStt
                    | Command::StartLlm
                    | Command::StartPlayback
            )));
        }
        sim.wait(Duration::from_secs(3));
        assert_eq!(sim.finished_with(), Some(EndReason::CandidateEnded));
    }

    #[test]
    fn a_shutdown_drain_speaks_a_closing_line_then_ends() {
        let mut sim = Sim::new();
        sim.greeted();
        let out = sim.feed(Input::End {
            reason: EndReason::ServerShutdown,
            mode: StopMode::Graceful,
        });
        let id = out
            .iter()
            .find_map(|c| match c {
                Command::SpeakText { utterance_id, text } if text == CLOSING_LINE => {
                    Some(*utterance_id)
                }
                _ => None,
            })
            .expect("closing line spoken");
        assert!(has(
            &out,
            |c| matches!(c, Command::FinishText { utterance_id } if *utterance_id == id)
        ));
        // The STT drain (2 s) is over, the line is still playing: keep waiting for it.
        sim.wait(Duration::from_millis(2500));
        assert!(sim.finished_with().is_none());
        sim.play(id, Duration::from_millis(1000));
        assert_eq!(sim.finished_with(), Some(EndReason::ServerShutdown));
        // The closing line is in the stored transcript.
        assert!(
            sim.log
                .iter()
                .any(|c| matches!(c, Command::PersistSegments(s)
            if s.iter().any(|s| s.text == CLOSING_LINE && !s.interrupted)))
        );
    }

    #[test]
    fn ending_while_the_interviewer_speaks_stores_the_heard_part() {
        let mut sim = Sim::new();
        sim.feed(Input::Start);
        let id = sim.last_generated();
        let long = "Hello and welcome to the interview. Tell me about a system you designed and what you would change.";
        sim.reply(id, long);
        let at = sim.now;
        sim.feed(Input::PlaybackFirstFrame {
            utterance_id: id,
            at,
        });
        sim.feed(Input::PlaybackAudio {
            utterance_id: id,
            duration: Duration::from_secs(10),
            alignment: None,
        });
        sim.now += Duration::from_secs(3);
        let out = sim.feed(Input::End {
            reason: EndReason::CandidateEnded,
            mode: StopMode::CancelNow,
        });
        assert!(has(
            &out,
            |c| matches!(c, Command::Interrupt { utterance_id, .. } if *utterance_id == id)
        ));
        let stored = out
            .iter()
            .find_map(|c| match c {
                Command::PersistSegments(s) => s.first().cloned(),
                _ => None,
            })
            .expect("heard part stored");
        assert!(
            stored.interrupted && long.starts_with(&stored.text) && stored.text.len() < long.len(),
            "{stored:?}"
        );
    }

    #[test]
    fn a_closing_line_that_never_finishes_is_bounded_by_its_timeout() {
        let mut sim = Sim::new();
        sim.greeted();
        sim.feed(Input::End {
            reason: EndReason::ServerShutdown,
            mode: StopMode::Graceful,
        });
        sim.wait(Duration::from_millis(7900));
        assert!(sim.finished_with().is_none());
        sim.wait(Duration::from_millis(200));
        assert_eq!(sim.finished_with(), Some(EndReason::ServerShutdown));
    }

    #[test]
    fn other_graceful_ends_say_nothing_and_cancel_now_finishes_at_once() {
        let mut sim = Sim::new();
        sim.greeted();
        let out = sim.feed(Input::End {
            reason: EndReason::CandidateEnded,
            mode: StopMode::Graceful,
        });
        assert!(!has(&out, |c| matches!(c, Command::SpeakText { .. })));
        let mut sim = Sim::new();
        sim.greeted();
        let out = sim.feed(Input::End {
            reason: EndReason::AccountDisabled,
            mode: StopMode::CancelNow,
        });
        assert!(has(&out, |c| matches!(c, Command::StopChildren)));
        assert_eq!(sim.finished_with(), Some(EndReason::AccountDisabled));
        assert!(sim.feed(Input::Tick).is_empty(), "nothing after the end");
    }

    #[test]
    fn end_reason_names_are_stable() {
        assert_eq!(EndReason::Completed.as_str(), "completed");
        assert_eq!(EndReason::NodeRestarted.as_str(), "node_restarted");
        assert_eq!(EndReason::ByokKeyRevoked.as_str(), "byok_key_revoked");
        assert_eq!(EndReason::ServerShutdown.as_str(), "server_shutdown");
        assert_eq!(
            EndReason::VendorFailure {
                role: VendorRole::Tts,
                category: ErrorCategory::RateLimited
            }
            .as_str(),
            "vendor_failure:tts:ratelimited"
        );
        for child in Child::ALL {
            assert!(EndReason::ChildFailed(child).as_str().len() <= 64);
        }
    }
}
