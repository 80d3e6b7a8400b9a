//! `InterviewActor`: one per live interview. Owns the interview's state machine
//! (connecting → greeting → listening → thinking → speaking → … → ending → ended) and the
//! sans-IO cores (turn detection, barge-in, transcript), supervises its four children
//! (ingress, STT, LLM, playback), persists what the interview produces, and reports usage.
//!
//! Children report through `Recipient`s of their notice types; the interview decides: a failed
//! STT session is restarted (a bounded number of times), an LLM failure that is not permanent
//! is apologised for and the interview goes on, a permanent vendor failure or a vanished peer
//! ends the interview with a recorded reason. It never outlives its children or vice versa.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use entities::{interviews, transcript_segments, transcript_words, turn_metrics};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::actors::INTERVIEW_ACTORS;
use crate::actors::ingress::{Frame, IngressActor, IngressCounters, StopIngress, VoiceFrame};
use crate::actors::llm::{CancelReply, Generate, LlmActor, LlmNotice, StopLlm};
use crate::actors::playback::{
    FinishText, Interrupt, PlaybackActor, PlaybackNotice, Speak, SpeakText, StopPlayback,
};
use crate::actors::stt::{CloseStt, Finalize, SttActor, SttNotice};
use crate::actors::usage_meter::Record;
use crate::audio::EnergyVad;
use crate::barge_in::{BargeIn, BargeInConfig, BargeInDecision};
use crate::conversation::{Cue, InterviewPlan, ReplyFilter, system_prompt};
use crate::media::TransportLink;
use crate::metering::{PriceTable, UsageContext, UsageRecord};
use crate::transcript_assembler::{SegmentRecord, Speaker, SttWord, TranscriptAssembler};
use crate::turn_detector::{TurnConfig, TurnDetector, TurnEvent};
use crate::vendor_set::VendorSet;
use crate::vendors::{ChatMessage, LlmRequest, Role, SttEvent, VendorError};

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
    pub max_stt_restarts: u32,
    /// Failed replies in a row before the interview ends.
    pub max_llm_failures: u32,
    /// Longest wait for the STT's final transcripts when ending gracefully.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
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
            max_stt_restarts: 2,
            max_llm_failures: 3,
            drain_timeout: Duration::from_secs(2),
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
/// candidate's speech (last voiced frame received) to the first reply frame sent, and is the
/// sum of the other parts along the critical path: the STT's final after speech end, the
/// turn-detection wait, the part of the LLM's time to first token still waited for after the
/// turn was decided (a speculative start hides the rest), the TTS's time to first audio
/// (including its connection), and `engine_overhead`: what the engine itself added between
/// them (request dispatch, handing text to playback, and getting the first frame out).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct TurnBreakdown {
    pub turn_index: i32,
    pub stt_final_ms: f64,
    pub turn_wait_ms: f64,
    pub llm_ttft_ms: f64,
    pub tts_ttfa_ms: f64,
    pub engine_overhead_ms: f64,
    pub v2v_ms: f64,
}

/// What subscribers (the browser's event socket) see.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InterviewEvent {
    State { phase: Phase },
    Interim { text: String },
    Final { text: String },
    InterviewerText { text: String },
    Turn { breakdown: TurnBreakdown },
    Ended { reason: String },
}

/// How to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Drain: let the STT deliver its last words, persist everything, then stop.
    Graceful,
    /// Stop now; persist only the end state.
    CancelNow,
}

/// End the interview. Sender: the engine handle (API, admin, erasure), or the actor itself.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct EndInterview {
    pub reason: String,
    pub mode: StopMode,
}

/// The transport pump ended (peer gone). Sender: the pump task.
#[derive(Message)]
#[rtype(result = "()")]
struct TransportClosed(String);

/// Persistence of the end state finished. Sender: the drain task.
#[derive(Message)]
#[rtype(result = "()")]
struct Drained;

/// Everything an interview actor needs.
pub struct InterviewSetup {
    pub interview_id: Uuid,
    pub account_id: Uuid,
    pub node_id: String,
    pub plan: InterviewPlan,
    pub config: InterviewConfig,
    pub vendors: VendorSet,
    pub prices: PriceTable,
    pub db: DatabaseConnection,
    pub usage: Recipient<Record>,
    pub events: broadcast::Sender<InterviewEvent>,
    pub transport: TransportLink,
    /// Called once when the actor has stopped (the engine's registry removes the interview).
    pub on_stopped: Box<dyn FnOnce() + Send>,
}

#[derive(Debug, Default)]
struct TurnMarks {
    speech_ended_at: Option<Instant>,
    stt_final_at: Option<Instant>,
    decided_at: Option<Instant>,
    llm_sent_at: Option<Instant>,
    llm_first_at: Option<Instant>,
    text_sent_at: Option<Instant>,
    first_audio_at: Option<Instant>,
}

struct Reply {
    id: u64,
    cue: Cue,
    speculative: bool,
    filter: ReplyFilter,
    held: Vec<String>,
    speaking: bool,
    llm_done: bool,
    marks: TurnMarks,
    ends_interview: bool,
}

pub struct InterviewActor {
    id: Uuid,
    account_id: Uuid,
    node_id: String,
    plan: InterviewPlan,
    config: InterviewConfig,
    vendors: VendorSet,
    prices: PriceTable,
    db: DatabaseConnection,
    usage: Recipient<Record>,
    events: broadcast::Sender<InterviewEvent>,
    transport: Option<TransportLink>,
    on_stopped: Option<Box<dyn FnOnce() + Send>>,

    phase: Phase,
    started_at: Instant,
    turn: TurnDetector,
    barge_in: BargeIn,
    transcript: TranscriptAssembler,
    history: Vec<ChatMessage>,
    system: String,

    ingress: Option<Addr<IngressActor>>,
    stt: Option<Addr<SttActor>>,
    llm: Option<Addr<LlmActor>>,
    playback: Option<Addr<PlaybackActor>>,
    ingress_counters: Arc<IngressCounters>,

    next_reply_id: u64,
    reply: Option<Reply>,
    /// The reply being played (its id), while audio is going out.
    playing: Option<u64>,
    /// Final STT text heard while the interviewer was speaking, kept until barge-in decides.
    finals_during_playback: Vec<(String, Vec<SttWord>, bool)>,
    resume_voiced: Duration,
    last_final_at: Option<Instant>,
    turn_index: i32,
    waits_in_a_row: u32,
    llm_failures: u32,
    stt_restarts: u32,
    /// STT audio already metered in per-minute rows for the current session.
    stt_recorded_seconds: f64,
    /// Start of the current, not yet metered, minute of the STT stream.
    stt_minute_started: Option<Instant>,
    last_activity: Instant,
    idle_prompted: bool,
    turn_timer: Option<SpawnHandle>,
    writes: Vec<JoinHandle<()>>,
    end_reason: Option<String>,
}

const FRAME: Duration = Duration::from_millis(20);

/// Mailbox capacity of the interview actor for `try_send` (inbound frames): 256 messages,
/// about 5 s of audio; control messages use `do_send` and are never refused.
pub const INTERVIEW_MAILBOX: usize = 256;

fn ms_between(from: Option<Instant>, to: Option<Instant>) -> f64 {
    match (from, to) {
        (Some(from), Some(to)) => to.saturating_duration_since(from).as_secs_f64() * 1e3,
        _ => 0.0,
    }
}

impl InterviewActor {
    pub fn new(setup: InterviewSetup) -> Self {
        let now = Instant::now();
        let system = system_prompt(&setup.plan);
        Self {
            id: setup.interview_id,
            account_id: setup.account_id,
            node_id: setup.node_id,
            turn: TurnDetector::new(setup.config.turn.clone()),
            barge_in: BargeIn::new(setup.config.barge_in.clone()),
            plan: setup.plan,
            config: setup.config,
            vendors: setup.vendors,
            prices: setup.prices,
            db: setup.db,
            usage: setup.usage,
            events: setup.events,
            transport: Some(setup.transport),
            on_stopped: Some(setup.on_stopped),
            phase: Phase::Connecting,
            started_at: now,
            transcript: TranscriptAssembler::new(now),
            history: Vec::new(),
            system,
            ingress: None,
            stt: None,
            llm: None,
            playback: None,
            ingress_counters: Arc::new(IngressCounters::default()),
            next_reply_id: 0,
            reply: None,
            playing: None,
            finals_during_playback: Vec::new(),
            resume_voiced: Duration::ZERO,
            last_final_at: None,
            turn_index: 0,
            waits_in_a_row: 0,
            llm_failures: 0,
            stt_restarts: 0,
            stt_recorded_seconds: 0.0,
            stt_minute_started: None,
            last_activity: now,
            idle_prompted: false,
            turn_timer: None,
            writes: Vec::new(),
            end_reason: None,
        }
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            self.phase = phase;
            let _ = self.events.send(InterviewEvent::State { phase });
        }
    }

    fn usage_context(&self, key_source: crate::metering::KeySource) -> UsageContext {
        UsageContext {
            account_id: Some(self.account_id),
            interview_id: Some(self.id),
            key_source,
        }
    }

    fn time_is_up(&self) -> bool {
        self.started_at.elapsed() >= self.plan.planned
    }

    fn start_stt(&mut self, ctx: &mut Context<Self>) {
        let stt = SttActor::new(self.vendors.stt.clone(), ctx.address().recipient()).start();
        self.stt = Some(stt.clone());
        if let Some(ingress) = &self.ingress {
            // Re-wire ingress to the new STT actor by restarting it (cheap, stateless but VAD).
            ingress.do_send(StopIngress);
        }
        let ingress = IngressActor::new(
            EnergyVad::new(self.config.vad_threshold, self.config.vad_hangover_frames),
            ctx.address().recipient(),
            stt.recipient(),
            self.ingress_counters.clone(),
        )
        .start();
        self.ingress = Some(ingress);
    }

    fn push_user(&mut self, text: &str) {
        append_user(&mut self.history, text);
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

    /// Starts a reply to `cue`; a speculative one is held until the turn is confirmed.
    fn start_reply(&mut self, cue: Cue, speculative: bool) {
        let Some(llm) = &self.llm else { return };
        if let Some(old) = self.reply.take() {
            llm.do_send(CancelReply { reply_id: old.id });
        }
        self.next_reply_id += 1;
        let id = self.next_reply_id;
        let must_answer = !speculative && self.waits_in_a_row >= self.config.max_waits_in_a_row;
        let note = "\n\n(Please respond to the candidate now; do not wait.)";
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
                append_user(&mut self.history, note.trim());
            }
            self.history.clone()
        };
        let ends_interview = matches!(cue, Cue::TimeUp);
        llm.do_send(Generate {
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
        if let Some(playback) = &self.playback {
            playback.do_send(Speak { utterance_id: id });
        }
        self.reply = Some(Reply {
            id,
            cue,
            speculative,
            filter: ReplyFilter::new(),
            held: Vec::new(),
            speaking: false,
            llm_done: false,
            marks: TurnMarks::default(),
            ends_interview,
        });
    }

    fn speak_chunks(&mut self, chunks: Vec<String>) {
        let Some(playback) = self.playback.clone() else {
            return;
        };
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        for chunk in chunks {
            reply.speaking = true;
            if reply.marks.text_sent_at.is_none() {
                reply.marks.text_sent_at = Some(Instant::now());
            }
            let _ = self.events.send(InterviewEvent::InterviewerText {
                text: chunk.trim().to_owned(),
            });
            self.transcript.interviewer_text(&chunk);
            playback.do_send(SpeakText {
                utterance_id: reply.id,
                text: chunk,
            });
        }
    }

    /// The reply's text is complete: finish synthesis, or handle `[WAIT]` / an empty reply.
    fn finish_reply_text(&mut self) {
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
        if reply.filter.is_end() {
            reply.ends_interview = true;
        }
        let spoken = reply.filter.spoken().to_owned();
        let speaking = reply.speaking;
        let id = reply.id;
        if !speaking {
            // Nothing to say: back to listening (or end, if this was the closing reply).
            let ends = reply.ends_interview;
            self.reply = None;
            if ends {
                self.end_reason = Some("completed".into());
            } else {
                self.set_phase(Phase::Listening);
            }
            return;
        }
        self.push_assistant(&spoken);
        if let Some(playback) = &self.playback {
            playback.do_send(FinishText { utterance_id: id });
        }
    }

    fn barge_in(&mut self) {
        let (Some(playing), Some(playback)) = (self.playing, self.playback.clone()) else {
            return;
        };
        playback.do_send(Interrupt {
            utterance_id: playing,
        });
        if let (Some(reply), Some(llm)) = (&self.reply, &self.llm)
            && reply.id == playing
            && !reply.llm_done
        {
            llm.do_send(CancelReply { reply_id: reply.id });
        }
        self.barge_in.stop_playback();
        self.set_phase(Phase::Listening);
        let now = Instant::now();
        self.turn.reset();
        self.turn.voice_frame(now, true);
        self.transcript.candidate_voice(now);
        for (text, words, speech_final) in std::mem::take(&mut self.finals_during_playback) {
            self.turn.final_text(&text, speech_final);
            self.transcript.candidate_final(&text, &words);
        }
        tracing::debug!(interview_id = %self.id, "barge-in");
    }

    fn poll_turn(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.turn_timer.take() {
            ctx.cancel_future(timer);
        }
        if !matches!(self.phase, Phase::Listening | Phase::Thinking) {
            return;
        }
        let now = Instant::now();
        while let Some(event) = self.turn.poll(now) {
            match event {
                TurnEvent::SpeculativeReply { text } => {
                    if self.reply.is_none() && self.phase == Phase::Listening {
                        self.start_reply(Cue::Answer(text), true);
                    }
                }
                TurnEvent::Resumed => {
                    if let Some(reply) = self.reply.take_if(|r| r.speculative)
                        && let Some(llm) = &self.llm
                    {
                        llm.do_send(CancelReply { reply_id: reply.id });
                    }
                }
                TurnEvent::RequestFinalize => {
                    if let Some(stt) = &self.stt {
                        stt.do_send(Finalize);
                    }
                }
                TurnEvent::EndOfTurn(end) => {
                    self.set_phase(Phase::Thinking);
                    self.transcript.candidate_turn_end(end.speech_ended_at);
                    self.persist_segments();
                    let _ = self.events.send(InterviewEvent::Final {
                        text: end.text.clone(),
                    });
                    self.push_user(&end.text);
                    self.idle_prompted = false;
                    let cue = if self.time_is_up() {
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
                    if let Some(reply) = self.reply.as_mut() {
                        reply.speculative = false;
                        reply.marks.speech_ended_at = Some(end.speech_ended_at);
                        reply.marks.stt_final_at = self.last_final_at;
                        reply.marks.decided_at = Some(now);
                    }
                    if promote {
                        let held = self
                            .reply
                            .as_mut()
                            .map(|r| std::mem::take(&mut r.held))
                            .unwrap_or_default();
                        self.speak_chunks(held);
                        if self.reply.as_ref().is_some_and(|r| r.llm_done) {
                            self.finish_reply_text();
                        }
                    }
                }
            }
        }
        if let Some(deadline) = self.turn.next_deadline() {
            let wait = deadline.saturating_duration_since(Instant::now());
            self.turn_timer = Some(ctx.run_later(wait, |actor, ctx| {
                actor.turn_timer = None;
                actor.poll_turn(ctx);
            }));
        }
    }

    fn record_turn_metrics(&mut self, first_frame_at: Instant) {
        let Some(reply) = self.reply.as_ref() else {
            return;
        };
        let marks = &reply.marks;
        let Some(speech_end) = marks.speech_ended_at else {
            return;
        };
        let stt_final = marks.stt_final_at.filter(|t| *t > speech_end);
        let after_final = stt_final.unwrap_or(speech_end);
        let decided = marks.decided_at.unwrap_or(after_final).max(after_final);
        let (Some(sent), Some(first_token), Some(text_sent), Some(first_audio)) = (
            marks.llm_sent_at,
            marks.llm_first_at,
            marks.text_sent_at,
            marks.first_audio_at,
        ) else {
            return;
        };
        // The critical path after the decision: a speculative start hides part (or all) of
        // the LLM's time to first token, so only the part still waited for is counted.
        let request_delay = ms_between(Some(decided), Some(sent.max(decided)));
        let llm_wait = ms_between(Some(sent.max(decided)), Some(first_token.max(decided)));
        let release = ms_between(Some(first_token.max(decided)), Some(text_sent.max(decided)));
        let tts_wait = ms_between(Some(text_sent.max(decided)), Some(first_audio.max(decided)));
        let out = ms_between(
            Some(first_audio.max(decided)),
            Some(first_frame_at.max(decided)),
        );
        let breakdown = TurnBreakdown {
            turn_index: self.turn_index,
            stt_final_ms: ms_between(Some(speech_end), stt_final),
            turn_wait_ms: ms_between(Some(after_final), Some(decided)),
            llm_ttft_ms: llm_wait,
            tts_ttfa_ms: tts_wait,
            engine_overhead_ms: request_delay + release + out,
            v2v_ms: ms_between(Some(speech_end), Some(first_frame_at)),
        };
        self.turn_index += 1;
        let _ = self.events.send(InterviewEvent::Turn { breakdown });
        crate::latency::observe(&breakdown);
        tracing::debug!(interview_id = %self.id, ?breakdown, "turn latency");
        let db = self.db.clone();
        let interview_id = self.id;
        self.writes.push(actix::spawn(async move {
            let row = turn_metrics::ActiveModel {
                id: Set(Uuid::now_v7()),
                interview_id: Set(interview_id),
                turn_index: Set(breakdown.turn_index),
                stt_final_ms: Set(Some(breakdown.stt_final_ms)),
                turn_wait_ms: Set(Some(breakdown.turn_wait_ms)),
                llm_ttft_ms: Set(Some(breakdown.llm_ttft_ms)),
                tts_ttfa_ms: Set(Some(breakdown.tts_ttfa_ms)),
                engine_overhead_ms: Set(Some(breakdown.engine_overhead_ms)),
                v2v_ms: Set(Some(breakdown.v2v_ms)),
                created_at: Set(Utc::now()),
            };
            if let Err(error) = turn_metrics::Entity::insert(row).exec(&db).await {
                tracing::warn!(%interview_id, error = %error, "storing turn metrics failed");
            }
        }));
    }

    fn persist_segments(&mut self) {
        let segments = self.transcript.drain();
        if segments.is_empty() {
            return;
        }
        let db = self.db.clone();
        let interview_id = self.id;
        self.writes.push(actix::spawn(async move {
            if let Err(error) = store_segments(&db, interview_id, segments).await {
                tracing::warn!(%interview_id, error = %error, "storing transcript failed");
            }
        }));
    }

    fn end(&mut self, reason: String, mode: StopMode, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Ending | Phase::Ended) {
            return;
        }
        tracing::info!(interview_id = %self.id, reason = %reason, ?mode, "interview ending");
        self.end_reason = Some(reason);
        self.set_phase(Phase::Ending);
        if let Some(timer) = self.turn_timer.take() {
            ctx.cancel_future(timer);
        }
        if let (Some(playing), Some(playback)) = (self.playing, &self.playback) {
            playback.do_send(Interrupt {
                utterance_id: playing,
            });
        }
        if let (Some(reply), Some(llm)) = (&self.reply, &self.llm) {
            llm.do_send(CancelReply { reply_id: reply.id });
        }
        if let Some(ingress) = self.ingress.take() {
            ingress.do_send(StopIngress);
        }
        match mode {
            StopMode::Graceful => {
                if let Some(stt) = &self.stt {
                    stt.do_send(CloseStt);
                }
                ctx.run_later(self.config.drain_timeout, |actor, ctx| actor.drain(ctx));
            }
            StopMode::CancelNow => {
                if let Some(stt) = self.stt.take() {
                    stt.do_send(CloseStt);
                }
                self.drain(ctx);
            }
        }
    }

    /// Stops the children, persists what is left and the end state, then stops.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        if self.phase == Phase::Ended {
            return;
        }
        self.set_phase(Phase::Ended);
        if let Some(stt) = self.stt.take() {
            stt.do_send(CloseStt);
        }
        if let Some(llm) = self.llm.take() {
            llm.do_send(StopLlm);
        }
        if let Some(playback) = self.playback.take() {
            playback.do_send(StopPlayback);
        }
        self.persist_segments();
        let writes = std::mem::take(&mut self.writes);
        let db = self.db.clone();
        let id = self.id;
        let reason = self.end_reason.clone().unwrap_or_else(|| "ended".into());
        let me = ctx.address();
        actix::spawn(async move {
            for write in writes {
                let _ = write.await;
            }
            let update = interviews::Entity::update_many()
                .col_expr(
                    interviews::Column::Status,
                    Expr::value(interviews::InterviewStatus::Ended),
                )
                .col_expr(interviews::Column::EndedAt, Expr::value(Some(Utc::now())))
                .col_expr(
                    interviews::Column::EndReason,
                    Expr::value(Some(reason.chars().take(64).collect::<String>())),
                )
                .filter(interviews::Column::Id.eq(id))
                .exec(&db)
                .await;
            if let Err(error) = update {
                tracing::warn!(interview_id = %id, error = %error, "storing the end of an interview failed");
            }
            me.do_send(Drained);
        });
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if self.phase != Phase::Listening || self.reply.is_some() {
            return;
        }
        let quiet = self.last_activity.elapsed();
        if quiet >= self.config.idle_end_after {
            self.end("idle_timeout".into(), StopMode::Graceful, ctx);
        } else if quiet >= self.config.idle_prompt_after && !self.idle_prompted {
            self.idle_prompted = true;
            self.start_reply(Cue::Idle, false);
            self.set_phase(Phase::Thinking);
        }
    }

    fn vendor_failure(&mut self, kind: &str, error: &VendorError, ctx: &mut Context<Self>) {
        tracing::warn!(interview_id = %self.id, kind, category = ?error.category, status = ?error.status, message = %error.message, "vendor failure ends the interview");
        let reason = if error.category == crate::vendors::ErrorCategory::KeyRevoked {
            "byok_key_revoked".to_owned()
        } else {
            format!("vendor_failure:{kind}:{:?}", error.category).to_lowercase()
        };
        self.end(reason, StopMode::Graceful, ctx);
    }
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

/// Writes segments and their words.
async fn store_segments(
    db: &DatabaseConnection,
    interview_id: Uuid,
    segments: Vec<SegmentRecord>,
) -> Result<(), sea_orm::DbErr> {
    let now = Utc::now();
    for segment in segments {
        let segment_id = Uuid::now_v7();
        transcript_segments::Entity::insert(transcript_segments::ActiveModel {
            id: Set(segment_id),
            interview_id: Set(interview_id),
            seq: Set(segment.seq),
            speaker: Set(match segment.speaker {
                Speaker::Candidate => transcript_segments::Speaker::Candidate,
                Speaker::Interviewer => transcript_segments::Speaker::Interviewer,
            }),
            text: Set(segment.text),
            start_ms: Set(segment.start_ms),
            end_ms: Set(segment.end_ms),
            interrupted: Set(segment.interrupted),
            created_at: Set(now),
        })
        .exec(db)
        .await?;
        if !segment.words.is_empty() {
            let words = segment
                .words
                .into_iter()
                .map(|word| transcript_words::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    segment_id: Set(segment_id),
                    interview_id: Set(interview_id),
                    word: Set(word.word.chars().take(255).collect()),
                    start_ms: Set(word.start_ms),
                    end_ms: Set(word.end_ms),
                    confidence: Set(word.confidence),
                    created_at: Set(now),
                });
            transcript_words::Entity::insert_many(words)
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

impl Actor for InterviewActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        INTERVIEW_ACTORS.up();
        let Some(transport) = self.transport.take() else {
            ctx.stop();
            return;
        };
        let TransportLink {
            mut inbound,
            outbound,
            closed,
        } = transport;
        self.llm = Some(
            LlmActor::new(
                self.vendors.llm.clone(),
                self.vendors.llm_fallback.clone(),
                ctx.address().recipient(),
            )
            .start(),
        );
        self.playback = Some(
            PlaybackActor::new(
                self.vendors.tts.clone(),
                outbound,
                ctx.address().recipient(),
                self.config.playback_lead,
            )
            .start(),
        );
        self.start_stt(ctx);
        // The transport pump: frames to the interview (which hands them to ingress). A full
        // mailbox drops the frame and counts it; a stopped interview ends the pump.
        ctx.set_mailbox_capacity(INTERVIEW_MAILBOX);
        let me = ctx.address();
        let counters = self.ingress_counters.clone();
        actix::spawn(async move {
            let mut closed = closed;
            loop {
                tokio::select! {
                    frame = inbound.recv() => match frame {
                        Some(frame) => match me.try_send(ForwardFrame(frame)) {
                            Ok(()) => {}
                            Err(SendError::Full(_)) => {
                                counters.dropped_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(SendError::Closed(_)) => break,
                        },
                        None => {
                            me.do_send(TransportClosed("transport closed".into()));
                            break;
                        }
                    },
                    reason = &mut closed => {
                        let reason = reason.unwrap_or_else(|_| "peer disconnected".into());
                        me.do_send(TransportClosed(reason));
                        break;
                    }
                }
            }
        });
        // Mark the interview live.
        let db = self.db.clone();
        let id = self.id;
        let node_id = self.node_id.clone();
        self.writes.push(actix::spawn(async move {
            let update = interviews::Entity::update_many()
                .col_expr(interviews::Column::Status, Expr::value(interviews::InterviewStatus::Live))
                .col_expr(interviews::Column::StartedAt, Expr::value(Some(Utc::now())))
                .col_expr(interviews::Column::NodeId, Expr::value(Some(node_id)))
                .filter(interviews::Column::Id.eq(id))
                .exec(&db)
                .await;
            if let Err(error) = update {
                tracing::warn!(interview_id = %id, error = %error, "marking an interview live failed");
            }
        }));
        ctx.run_interval(Duration::from_secs(1), |actor, ctx| {
            actor.check_idle(ctx);
            actor.meter_stt_minutes();
        });
        ctx.run_later(
            self.plan.planned + self.config.overrun_grace,
            |actor, ctx| {
                actor.end("max_length".into(), StopMode::Graceful, ctx);
            },
        );
        self.set_phase(Phase::Greeting);
        self.start_reply(Cue::Start, false);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        for stop in [self.stt.take().map(|a| a.recipient::<CloseStt>())]
            .into_iter()
            .flatten()
        {
            stop.do_send(CloseStt);
        }
        if let Some(ingress) = self.ingress.take() {
            ingress.do_send(StopIngress);
        }
        if let Some(llm) = self.llm.take() {
            llm.do_send(StopLlm);
        }
        if let Some(playback) = self.playback.take() {
            playback.do_send(StopPlayback);
        }
        let reason = self.end_reason.clone().unwrap_or_else(|| "stopped".into());
        let _ = self.events.send(InterviewEvent::Ended { reason });
        if let Some(on_stopped) = self.on_stopped.take() {
            on_stopped();
        }
        INTERVIEW_ACTORS.down();
    }
}

/// A frame from the transport pump. Sender: the pump task.
#[derive(Message)]
#[rtype(result = "()")]
struct ForwardFrame(crate::media::InboundFrame);

impl Handler<ForwardFrame> for InterviewActor {
    type Result = ();

    fn handle(&mut self, ForwardFrame(frame): ForwardFrame, _: &mut Self::Context) {
        if let Some(ingress) = &self.ingress
            && ingress.try_send(Frame(frame)).is_err()
        {
            self.ingress_counters
                .dropped_in
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Handler<VoiceFrame> for InterviewActor {
    type Result = ();

    fn handle(&mut self, frame: VoiceFrame, ctx: &mut Self::Context) {
        if frame.voiced {
            self.last_activity = frame.at;
            self.idle_prompted = false;
        }
        match self.phase {
            Phase::Speaking
                if self.barge_in.voice_frame(FRAME, frame.voiced)
                    == Some(BargeInDecision::Interrupt) =>
            {
                self.barge_in();
                self.poll_turn(ctx);
            }
            Phase::Listening => {
                if frame.voiced {
                    self.transcript.candidate_voice(frame.at);
                }
                self.turn.voice_frame(frame.at, frame.voiced);
                self.poll_turn(ctx);
            }
            Phase::Thinking => {
                // The candidate keeps talking after the turn ended: withdraw the reply.
                self.resume_voiced = if frame.voiced {
                    self.resume_voiced + FRAME
                } else {
                    Duration::ZERO
                };
                if self.resume_voiced >= self.config.barge_in.min_voiced
                    && let Some(reply) = self.reply.take_if(|r| !r.speaking)
                {
                    if let Some(llm) = &self.llm {
                        llm.do_send(CancelReply { reply_id: reply.id });
                    }
                    self.resume_voiced = Duration::ZERO;
                    self.set_phase(Phase::Listening);
                    self.turn.reset();
                    self.turn.voice_frame(frame.at, true);
                    self.transcript.candidate_voice(frame.at);
                }
            }
            _ => {}
        }
    }
}

impl Handler<SttNotice> for InterviewActor {
    type Result = ();

    fn handle(&mut self, notice: SttNotice, ctx: &mut Self::Context) {
        match notice {
            SttNotice::Opened { origin } => {
                self.transcript.set_stt_origin(origin);
                self.stt_minute_started = Some(origin);
            }
            SttNotice::OpenFailed(error) => {
                if matches!(self.phase, Phase::Ending | Phase::Ended) {
                    return;
                }
                if error.is_permanent() || self.stt_restarts >= self.config.max_stt_restarts {
                    self.vendor_failure("stt", &error, ctx);
                } else {
                    self.stt_restarts += 1;
                    self.start_stt(ctx);
                }
            }
            SttNotice::Event { event, at } => match event {
                SttEvent::Transcript(t) => {
                    if t.text.trim().is_empty() {
                        return;
                    }
                    let words: Vec<SttWord> = t
                        .words
                        .iter()
                        .map(|w| SttWord {
                            word: w.punctuated.clone(),
                            start: w.start,
                            end: w.end,
                            confidence: w.confidence,
                        })
                        .collect();
                    if !t.is_final {
                        let _ = self.events.send(InterviewEvent::Interim {
                            text: t.text.clone(),
                        });
                    }
                    if self.phase == Phase::Speaking {
                        if t.is_final {
                            self.finals_during_playback.push((
                                t.text.clone(),
                                words,
                                t.speech_final,
                            ));
                        }
                        if self.barge_in.transcript(&t.text) == Some(BargeInDecision::Interrupt) {
                            self.barge_in();
                        }
                    } else if t.is_final {
                        self.turn.final_text(&t.text, t.speech_final);
                        self.transcript.candidate_final(&t.text, &words);
                        self.last_final_at = Some(at);
                    } else {
                        self.turn.interim(&t.text);
                    }
                    self.poll_turn(ctx);
                }
                SttEvent::UtteranceEnd { .. } => {
                    if self.phase != Phase::Speaking {
                        self.turn.utterance_end();
                        self.poll_turn(ctx);
                    }
                }
                SttEvent::SpeechStarted { .. } | SttEvent::Reconnected { .. } => {}
                SttEvent::Reconnecting { attempt, .. } => {
                    tracing::info!(interview_id = %self.id, attempt, "STT reconnecting");
                }
                SttEvent::Closed(report) => self.record_stt_end(&report),
                SttEvent::Failed { error, report } => {
                    self.record_stt_end(&report);
                    if matches!(self.phase, Phase::Ending | Phase::Ended) {
                        return;
                    }
                    if error.is_permanent() || self.stt_restarts >= self.config.max_stt_restarts {
                        self.vendor_failure("stt", &error, ctx);
                    } else {
                        self.stt_restarts += 1;
                        tracing::warn!(interview_id = %self.id, restarts = self.stt_restarts, "restarting STT");
                        self.start_stt(ctx);
                    }
                }
            },
        }
    }
}

impl Handler<LlmNotice> for InterviewActor {
    type Result = ();

    fn handle(&mut self, notice: LlmNotice, ctx: &mut Self::Context) {
        let usage_context = self.usage_context(self.vendors.key_sources.llm.source());
        let provider = self.vendors.names.llm;
        match notice {
            LlmNotice::Sent { reply_id, at } => {
                if let Some(reply) = self.reply.as_mut().filter(|r| r.id == reply_id)
                    && reply.marks.llm_sent_at.is_none()
                {
                    reply.marks.llm_sent_at = Some(at);
                }
            }
            LlmNotice::Delta { reply_id, text, at } => {
                let Some(reply) = self.reply.as_mut().filter(|r| r.id == reply_id) else {
                    return;
                };
                if reply.marks.llm_first_at.is_none() {
                    reply.marks.llm_first_at = Some(at);
                }
                let chunks = reply.filter.push(&text);
                if reply.speculative {
                    reply.held.extend(chunks);
                } else {
                    self.speak_chunks(chunks);
                }
            }
            LlmNotice::Finished {
                reply_id, report, ..
            } => {
                self.usage
                    .do_send(Record(UsageRecord::llm(usage_context, provider, &report)));
                let Some(reply) = self.reply.as_mut().filter(|r| r.id == reply_id) else {
                    return;
                };
                self.llm_failures = 0;
                reply.llm_done = true;
                let rest = reply.filter.finish();
                if reply.speculative {
                    reply.held.extend(rest);
                    return;
                }
                self.speak_chunks(rest);
                self.finish_reply_text();
                if self.end_reason.as_deref() == Some("completed") {
                    self.end_reason = None;
                    self.end("completed".into(), StopMode::Graceful, ctx);
                }
            }
            LlmNotice::Cancelled { report, .. } => {
                if let Some(report) = report {
                    self.usage
                        .do_send(Record(UsageRecord::llm(usage_context, provider, &report)));
                }
            }
            LlmNotice::Failed {
                reply_id,
                error,
                report,
            } => {
                if let Some(report) = report {
                    self.usage
                        .do_send(Record(UsageRecord::llm(usage_context, provider, &report)));
                }
                let Some(reply) = self.reply.take_if(|r| r.id == reply_id) else {
                    return;
                };
                self.llm_failures += 1;
                tracing::warn!(interview_id = %self.id, category = ?error.category, "LLM reply failed");
                if error.is_permanent() || self.llm_failures >= self.config.max_llm_failures {
                    self.vendor_failure("llm", &error, ctx);
                    return;
                }
                if reply.speaking {
                    // Part of the reply is out: finish with what was said.
                    self.reply = Some(reply);
                    self.finish_reply_text();
                } else {
                    // Ask again rather than go silent.
                    self.start_reply(reply.cue, false);
                }
            }
        }
    }
}

impl Handler<PlaybackNotice> for InterviewActor {
    type Result = ();

    fn handle(&mut self, notice: PlaybackNotice, ctx: &mut Self::Context) {
        match notice {
            // Text counts as sent when handed to playback (so TTS connect time is TTS time).
            PlaybackNotice::TextSent { .. } => {}
            PlaybackNotice::FirstAudio { utterance_id, at } => {
                if let Some(reply) = self.reply.as_mut().filter(|r| r.id == utterance_id) {
                    reply.marks.first_audio_at = Some(at);
                }
            }
            PlaybackNotice::FirstFrame { utterance_id, at } => {
                if self.reply.as_ref().is_some_and(|r| r.id == utterance_id) {
                    self.playing = Some(utterance_id);
                    self.record_turn_metrics(at);
                    self.transcript.interviewer_begin(at);
                    self.barge_in.start_playback();
                    self.finals_during_playback.clear();
                    self.set_phase(Phase::Speaking);
                }
            }
            PlaybackNotice::Audio {
                utterance_id,
                duration,
                alignment,
            } => {
                if self.reply.as_ref().is_some_and(|r| r.id == utterance_id) {
                    self.transcript
                        .interviewer_audio(duration, alignment.as_ref());
                }
            }
            PlaybackNotice::Finished {
                utterance_id,
                played,
                interrupted,
            } => {
                if self.playing == Some(utterance_id) {
                    self.playing = None;
                    self.barge_in.stop_playback();
                    self.transcript
                        .interviewer_end(Instant::now(), played, interrupted);
                    if interrupted {
                        // History keeps what the candidate actually heard.
                        let heard = self.transcript_last_interviewer_text();
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
                    .is_some_and(|r| r.id == utterance_id && r.ends_interview && !interrupted);
                if self.reply.as_ref().is_some_and(|r| r.id == utterance_id) {
                    self.reply = None;
                }
                self.last_activity = Instant::now();
                if ends {
                    self.end("completed".into(), StopMode::Graceful, ctx);
                } else if matches!(
                    self.phase,
                    Phase::Speaking | Phase::Greeting | Phase::Thinking
                ) && !interrupted
                {
                    self.turn.reset();
                    self.set_phase(Phase::Listening);
                }
            }
            PlaybackNotice::Failed {
                utterance_id,
                error,
            } => {
                tracing::warn!(interview_id = %self.id, category = ?error.category, "speech synthesis failed");
                if self.reply.as_ref().is_some_and(|r| r.id == utterance_id) {
                    self.reply = None;
                }
                self.playing = None;
                if error.is_permanent() {
                    self.vendor_failure("tts", &error, ctx);
                } else if !matches!(self.phase, Phase::Ending | Phase::Ended) {
                    self.set_phase(Phase::Listening);
                }
            }
            PlaybackNotice::Usage { report } => {
                let record = UsageRecord::tts(
                    self.usage_context(self.vendors.key_sources.tts.source()),
                    self.vendors.names.tts,
                    &report,
                );
                self.usage.do_send(Record(record));
            }
            PlaybackNotice::PeerGone => {
                self.end("peer_disconnected".into(), StopMode::CancelNow, ctx)
            }
        }
    }
}

impl InterviewActor {
    /// One usage row per metering period (a minute) of an open STT stream.
    fn meter_stt_minutes(&mut self) {
        let period = self.config.stt_metering_period;
        while let Some(started) = self.stt_minute_started
            && started.elapsed() >= period
        {
            let seconds = period.as_secs_f64();
            let record = UsageRecord::stt_minute(
                self.usage_context(self.vendors.key_sources.stt.source()),
                self.vendors.names.stt,
                &self.vendors.stt_model,
                seconds,
                &self.prices,
            );
            self.usage.do_send(Record(record));
            self.stt_recorded_seconds += seconds;
            self.stt_minute_started = Some(started + period);
        }
    }

    /// The rest of an STT session's usage when it closes or fails.
    fn record_stt_end(&mut self, report: &crate::vendors::usage::SttReport) {
        let record = UsageRecord::stt_remainder(
            self.usage_context(self.vendors.key_sources.stt.source()),
            self.vendors.names.stt,
            report,
            self.stt_recorded_seconds,
            &self.prices,
        );
        if let Some(record) = record {
            self.usage.do_send(Record(record));
        }
        self.stt_recorded_seconds = 0.0;
        self.stt_minute_started = None;
    }

    fn transcript_last_interviewer_text(&self) -> String {
        self.transcript.last_interviewer_text().unwrap_or_default()
    }
}

impl Handler<TransportClosed> for InterviewActor {
    type Result = ();

    fn handle(&mut self, TransportClosed(reason): TransportClosed, ctx: &mut Self::Context) {
        let reason = format!("peer_disconnected: {reason}");
        self.end(reason, StopMode::CancelNow, ctx);
    }
}

impl Handler<EndInterview> for InterviewActor {
    type Result = ();

    fn handle(&mut self, msg: EndInterview, ctx: &mut Self::Context) {
        self.end(msg.reason, msg.mode, ctx);
    }
}

impl Handler<Drained> for InterviewActor {
    type Result = ();

    fn handle(&mut self, _: Drained, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
