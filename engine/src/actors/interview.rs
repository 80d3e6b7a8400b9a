//! `InterviewActor`: one per live interview, a thin shell around [`InterviewCore`]. It maps
//! actor messages (candidate frames, child notices, timers, `EndInterview`) to core inputs,
//! and the core's commands to sends to its four children (ingress, STT, LLM, playback), to
//! subscribers and to the [`interview_store`](crate::interview_store). Every decision is the
//! core's; see its docs.
//!
//! Supervision: each child holds a [`LiveGuard`] that reports [`ChildGone`] when the child is
//! dropped, whether it stopped or panicked. News about the current incarnation of a child the
//! shell did not stop goes to the core as [`Input::ChildStopped`]; the core restarts it
//! (bounded) or ends the interview. The shell itself releases everything in `Drop`, which also
//! runs when one of its own handlers panics: the registry entry (`on_stopped`), the live
//! counter, the children, and, if the end was not stored yet, the end state
//! (`internal_error`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ids::{AccountId, InterviewId};
use actix::prelude::*;
use chrono::Utc;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::actors::ingress::{Frame, IngressActor, IngressCounters, StopIngress, VoiceFrame};
use crate::actors::llm::{CancelReply, Generate, LlmActor, LlmNotice, StopLlm};
use crate::actors::playback::{
    FinishText, Interrupt, PlaybackActor, PlaybackNotice, SharedSink, Speak, SpeakText,
    StopPlayback,
};
use crate::actors::stt::{CloseStt, Finalize, SttActor, SttNotice};
use crate::actors::transcript_writer::TranscriptWriter;
use crate::actors::usage_meter::Record;
use crate::actors::{ChildGone, INTERVIEW_ACTORS, LiveGuard, Supervisor};
use crate::audio::EnergyVad;
use crate::conversation::InterviewPlan;
use crate::interview_core::{Command, Input, InterviewCore, UsageInfo};
use crate::interview_store::StoreOp;
use crate::media::TransportLink;
use crate::metering::PriceTable;
use crate::transcript_assembler::SttWord;
use crate::vendor_set::VendorSet;
use crate::vendors::SttEvent;

pub use crate::interview_core::{
    Child, EndReason, InterviewConfig, InterviewEvent, Phase, StopMode, TurnBreakdown, VendorRole,
};

/// End the interview. Sender: the engine handle (API, admin, erasure, shutdown, key
/// revocation).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct EndInterview {
    pub reason: EndReason,
    pub mode: StopMode,
}

/// The transport pump ended (peer gone). Sender: the pump task.
#[derive(Message)]
#[rtype(result = "()")]
struct TransportClosed;

/// The end state is stored. Sender: the finishing task.
#[derive(Message)]
#[rtype(result = "()")]
struct Drained;

/// Test-only fault: panic the interview (`None`) or one of its children. Sender: the engine
/// handle (`inject_panic`). Compiled only with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct InjectFault(pub Option<Child>);

/// Everything an interview actor needs.
pub struct InterviewSetup {
    pub interview_id: InterviewId,
    pub account_id: AccountId,
    pub node_id: String,
    pub plan: InterviewPlan,
    pub config: InterviewConfig,
    pub vendors: VendorSet,
    pub prices: PriceTable,
    /// The node's writer: the transcript, turns and the live/ended marks go through it.
    pub writer: TranscriptWriter,
    pub usage: Recipient<Record>,
    pub events: broadcast::Sender<InterviewEvent>,
    pub transport: TransportLink,
    /// Called once when the actor is gone (the engine's registry removes the interview).
    pub on_stopped: Box<dyn FnOnce() + Send>,
}

pub struct InterviewActor {
    id: InterviewId,
    node_id: String,
    config: InterviewConfig,
    vendors: VendorSet,
    writer: TranscriptWriter,
    usage: Recipient<Record>,
    events: broadcast::Sender<InterviewEvent>,
    transport: Option<TransportLink>,
    on_stopped: Option<Box<dyn FnOnce() + Send>>,
    core: InterviewCore,

    ingress: Option<Addr<IngressActor>>,
    stt: Option<Addr<SttActor>>,
    llm: Option<Addr<LlmActor>>,
    playback: Option<Addr<PlaybackActor>>,
    /// Starts of each child so far (indexed like [`Child::ALL`]).
    generations: [u64; 4],
    sink: Option<SharedSink>,
    ingress_counters: Arc<IngressCounters>,
    wake: Option<(Instant, SpawnHandle)>,
    /// The last write handed to the writer: each write waits for the one before, so the
    /// interview's writes reach the writer's queue in order (and its end after all of them).
    last_write: Option<JoinHandle<()>>,
    /// Set once the end is being stored (the `Finish` command ran).
    end_reason: Option<EndReason>,
    live: Option<LiveGuard>,
}

/// Mailbox capacity of the interview actor for `try_send` (inbound frames): 256 messages,
/// about 5 s of audio; control messages use `do_send` and are never refused.
pub const INTERVIEW_MAILBOX: usize = 256;

fn slot(child: Child) -> usize {
    Child::ALL
        .iter()
        .position(|c| *c == child)
        .expect("invariant: every child is in Child::ALL")
}

impl InterviewActor {
    pub fn new(setup: InterviewSetup) -> Self {
        let usage_info = UsageInfo {
            account_id: setup.account_id,
            interview_id: setup.interview_id,
            names: setup.vendors.names,
            key_sources: setup.vendors.key_sources.clone(),
            stt_model: setup.vendors.stt_model.clone(),
            prices: setup.prices,
        };
        let core = InterviewCore::new(
            &setup.plan,
            setup.config.clone(),
            usage_info,
            Instant::now(),
        );
        Self {
            id: setup.interview_id,
            node_id: setup.node_id,
            config: setup.config,
            vendors: setup.vendors,
            writer: setup.writer,
            usage: setup.usage,
            events: setup.events,
            transport: Some(setup.transport),
            on_stopped: Some(setup.on_stopped),
            core,
            ingress: None,
            stt: None,
            llm: None,
            playback: None,
            generations: [0; 4],
            sink: None,
            ingress_counters: Arc::new(IngressCounters::default()),
            wake: None,
            last_write: None,
            end_reason: None,
            live: None,
        }
    }

    /// Feeds the core and carries out what it decides.
    fn feed(&mut self, input: Input, ctx: &mut Context<Self>) {
        let commands = self.core.handle(input, Instant::now());
        for command in commands {
            self.apply(command, ctx);
        }
    }

    fn supervisor(&mut self, child: Child, ctx: &mut Context<Self>) -> Supervisor {
        let generation = &mut self.generations[slot(child)];
        *generation += 1;
        Supervisor {
            parent: ctx.address().recipient(),
            child,
            generation: *generation,
        }
    }

    fn start_stt(&mut self, ctx: &mut Context<Self>) {
        if let Some(old) = self.stt.take() {
            old.do_send(CloseStt);
        }
        let supervisor = self.supervisor(Child::Stt, ctx);
        let stt = SttActor::new(self.vendors.stt.clone(), ctx.address().recipient())
            .supervised(supervisor)
            .start();
        self.stt = Some(stt);
        // Ingress feeds the STT actor it was made with: a new STT needs a new ingress.
        self.start_ingress(ctx);
    }

    fn start_ingress(&mut self, ctx: &mut Context<Self>) {
        if let Some(old) = self.ingress.take() {
            old.do_send(StopIngress);
        }
        let Some(stt) = self.stt.clone() else {
            return;
        };
        let supervisor = self.supervisor(Child::Ingress, ctx);
        let ingress = IngressActor::new(
            EnergyVad::new(self.config.vad_threshold, self.config.vad_hangover_frames),
            ctx.address().recipient(),
            stt.recipient(),
            self.ingress_counters.clone(),
        )
        .supervised(supervisor)
        .start();
        self.ingress = Some(ingress);
    }

    fn start_llm(&mut self, ctx: &mut Context<Self>) {
        if let Some(old) = self.llm.take() {
            old.do_send(StopLlm);
        }
        let supervisor = self.supervisor(Child::Llm, ctx);
        let llm = LlmActor::new(
            self.vendors.llm.clone(),
            self.vendors.llm_fallback.clone(),
            ctx.address().recipient(),
        )
        .supervised(supervisor)
        .start();
        self.llm = Some(llm);
    }

    fn start_playback(&mut self, ctx: &mut Context<Self>) {
        if let Some(old) = self.playback.take() {
            old.do_send(StopPlayback);
        }
        let Some(sink) = self.sink.clone() else {
            return;
        };
        let supervisor = self.supervisor(Child::Playback, ctx);
        let playback = PlaybackActor::new(
            self.vendors.tts.clone(),
            Box::new(sink),
            ctx.address().recipient(),
            self.config.playback_lead,
        )
        .sentence_flush(self.vendors.tts_sentence_flush)
        .supervised(supervisor)
        .start();
        self.playback = Some(playback);
    }

    fn stop_children(&mut self) {
        if let Some(ingress) = self.ingress.take() {
            ingress.do_send(StopIngress);
        }
        if let Some(stt) = self.stt.take() {
            stt.do_send(CloseStt);
        }
        if let Some(llm) = self.llm.take() {
            llm.do_send(StopLlm);
        }
        if let Some(playback) = self.playback.take() {
            playback.do_send(StopPlayback);
        }
    }

    /// Hands `op` to the writer after the interview's previous write (off the actor: waiting
    /// for room in the writer's queue never blocks the mailbox or the audio).
    fn spawn_write(&mut self, op: StoreOp) {
        let interview_id = self.id;
        let writer = self.writer.clone();
        let previous = self.last_write.take();
        self.last_write = Some(actix::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            // A refusal is counted by the writer; this names the interview.
            if let Err(error) = writer.submit(op).await {
                tracing::warn!(%interview_id, error = %error, "a write of the interview was dropped");
            }
        }));
    }

    fn apply(&mut self, command: Command, ctx: &mut Context<Self>) {
        match command {
            Command::Event(event) => {
                let _ = self.events.send(event);
            }
            Command::StartStt => self.start_stt(ctx),
            Command::StartIngress => self.start_ingress(ctx),
            Command::StartLlm => self.start_llm(ctx),
            Command::StartPlayback => self.start_playback(ctx),
            Command::Finalize => {
                if let Some(stt) = &self.stt {
                    stt.do_send(Finalize);
                }
            }
            Command::Generate { reply_id, request } => {
                if let Some(llm) = &self.llm {
                    llm.do_send(Generate { reply_id, request });
                }
            }
            Command::CancelReply { reply_id } => {
                if let Some(llm) = &self.llm {
                    llm.do_send(CancelReply { reply_id });
                }
            }
            Command::Speak { utterance_id } => {
                if let Some(playback) = &self.playback {
                    playback.do_send(Speak { utterance_id });
                }
            }
            Command::SpeakText { utterance_id, text } => {
                if let Some(playback) = &self.playback {
                    playback.do_send(SpeakText { utterance_id, text });
                }
            }
            Command::FinishText { utterance_id } => {
                if let Some(playback) = &self.playback {
                    playback.do_send(FinishText { utterance_id });
                }
            }
            Command::Interrupt {
                utterance_id,
                barge_in_at,
            } => {
                if let Some(playback) = &self.playback {
                    playback.do_send(Interrupt {
                        utterance_id,
                        barge_in_at,
                    });
                }
            }
            Command::StopIngress => {
                if let Some(ingress) = self.ingress.take() {
                    ingress.do_send(StopIngress);
                }
            }
            Command::CloseStt => {
                // The STT stays addressed until the end: its last finals still arrive.
                if let Some(stt) = &self.stt {
                    stt.do_send(CloseStt);
                }
            }
            Command::StopChildren => self.stop_children(),
            Command::PersistSegments(segments) => self.spawn_write(StoreOp::Segments {
                interview_id: self.id,
                segments,
                at: Utc::now(),
            }),
            Command::RecordTurn(breakdown) => {
                crate::latency::observe(&breakdown);
                tracing::debug!(interview_id = %self.id, ?breakdown, "turn latency");
                self.spawn_write(StoreOp::Turn {
                    interview_id: self.id,
                    breakdown,
                    at: Utc::now(),
                });
            }
            Command::Usage(record) => self.usage.do_send(Record(record)),
            Command::WakeAt(at) => {
                if self.wake.as_ref().is_some_and(|(when, _)| *when == at) {
                    return;
                }
                if let Some((_, timer)) = self.wake.take() {
                    ctx.cancel_future(timer);
                }
                let wait = at.saturating_duration_since(Instant::now());
                let timer = ctx.run_later(wait, |actor, ctx| {
                    actor.wake = None;
                    actor.feed(Input::Tick, ctx);
                });
                self.wake = Some((at, timer));
            }
            Command::Finish { reason } => {
                self.end_reason = Some(reason);
                if let Some((_, timer)) = self.wake.take() {
                    ctx.cancel_future(timer);
                }
                let ended = store_end(self.writer.clone(), self.last_write.take(), self.id, reason);
                let me = ctx.address();
                actix::spawn(async move {
                    ended.await;
                    me.do_send(Drained);
                });
            }
        }
    }
}

/// How long an ending interview waits for its end to be stored before it stops anyway (the
/// end stays queued in the writer and is stored when the database lets it).
pub const END_WAIT: Duration = Duration::from_secs(30);

/// Stores the end after the interview's last write (`previous`), waiting at most [`END_WAIT`].
fn store_end(
    writer: TranscriptWriter,
    previous: Option<JoinHandle<()>>,
    interview_id: InterviewId,
    reason: EndReason,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let at = Utc::now();
    async move {
        if let Some(previous) = previous {
            let _ = previous.await;
        }
        match tokio::time::timeout(END_WAIT, writer.end(interview_id, reason, at)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(%interview_id, error = %error, "storing the end of an interview failed");
            }
            Err(_) => {
                tracing::warn!(%interview_id, "the end of the interview is still queued");
            }
        }
    }
}

impl Actor for InterviewActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.live = Some(LiveGuard::new(&INTERVIEW_ACTORS));
        let Some(transport) = self.transport.take() else {
            ctx.stop();
            return;
        };
        let TransportLink {
            mut inbound,
            outbound,
            closed,
        } = transport;
        self.sink = Some(SharedSink::new(outbound));
        self.start_llm(ctx);
        self.start_playback(ctx);
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
                            me.do_send(TransportClosed);
                            break;
                        }
                    },
                    reason = &mut closed => {
                        // The transport's reason can name addresses: it is not logged or kept.
                        let _ = reason;
                        me.do_send(TransportClosed);
                        break;
                    }
                }
            }
        });
        self.spawn_write(StoreOp::Live {
            interview_id: self.id,
            node_id: self.node_id.clone(),
            at: Utc::now(),
        });
        // Idle, time-up, the hard stop and STT metering are checked on this tick.
        ctx.run_interval(Duration::from_secs(1), |actor, ctx| {
            actor.feed(Input::Tick, ctx);
        });
        self.feed(Input::Start, ctx);
    }
}

impl Drop for InterviewActor {
    /// Runs when the actor stopped and also when one of its handlers panicked (the task that
    /// ran it is torn down): nothing of the interview may outlive it.
    fn drop(&mut self) {
        self.stop_children();
        let reason = match self.end_reason {
            Some(reason) => reason,
            None => {
                let reason = if std::thread::panicking() {
                    EndReason::InternalError
                } else {
                    EndReason::Stopped
                };
                tracing::error!(interview_id = %self.id, reason = reason.as_str(), "interview actor gone without storing its end");
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(store_end(
                        self.writer.clone(),
                        self.last_write.take(),
                        self.id,
                        reason,
                    ));
                }
                reason
            }
        };
        let _ = self.events.send(InterviewEvent::Ended {
            reason: reason.as_str().to_owned(),
        });
        if let Some(on_stopped) = self.on_stopped.take() {
            on_stopped();
        }
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
        self.feed(
            Input::Voice {
                at: frame.at,
                activity: frame.activity,
            },
            ctx,
        );
    }
}

impl Handler<SttNotice> for InterviewActor {
    type Result = ();

    fn handle(&mut self, notice: SttNotice, ctx: &mut Self::Context) {
        let input = match notice {
            SttNotice::Opened { origin } => Input::SttOpened { origin },
            SttNotice::OpenFailed(error) => Input::SttOpenFailed(error),
            SttNotice::Event { event, at } => match event {
                SttEvent::Transcript(t) => Input::SttTranscript {
                    words: t
                        .words
                        .iter()
                        .map(|w| SttWord {
                            word: w.punctuated.clone(),
                            start: w.start,
                            end: w.end,
                            confidence: w.confidence,
                        })
                        .collect(),
                    text: t.text,
                    is_final: t.is_final,
                    speech_final: t.speech_final,
                    from_finalize: t.from_finalize,
                    at,
                },
                SttEvent::UtteranceEnd { .. } => Input::SttUtteranceEnd,
                SttEvent::SpeechStarted { .. } | SttEvent::Reconnected { .. } => return,
                SttEvent::Reconnecting { attempt, .. } => {
                    tracing::info!(interview_id = %self.id, attempt, "STT reconnecting");
                    return;
                }
                SttEvent::Closed(report) => Input::SttClosed(report),
                SttEvent::Failed { error, report } => Input::SttFailed { error, report },
            },
        };
        self.feed(input, ctx);
    }
}

impl Handler<LlmNotice> for InterviewActor {
    type Result = ();

    fn handle(&mut self, notice: LlmNotice, ctx: &mut Self::Context) {
        let input = match notice {
            LlmNotice::Sent { reply_id, at } => Input::LlmSent { reply_id, at },
            LlmNotice::Delta { reply_id, text, at } => Input::LlmDelta { reply_id, text, at },
            LlmNotice::Finished {
                reply_id, report, ..
            } => Input::LlmFinished { reply_id, report },
            LlmNotice::Cancelled { report, .. } => Input::LlmCancelled { report },
            // Metered like a cancelled call's: usage only, the reply goes on.
            LlmNotice::Superseded { report, .. } => Input::LlmCancelled {
                report: Some(report),
            },
            LlmNotice::Failed {
                reply_id,
                error,
                report,
            } => Input::LlmFailed {
                reply_id,
                error,
                report,
            },
        };
        self.feed(input, ctx);
    }
}

impl Handler<PlaybackNotice> for InterviewActor {
    type Result = ();

    fn handle(&mut self, notice: PlaybackNotice, ctx: &mut Self::Context) {
        let input = match notice {
            // Text counts as sent when handed to playback (so TTS connect time is TTS time).
            PlaybackNotice::TextSent { .. } => return,
            PlaybackNotice::FirstAudio { utterance_id, at } => {
                Input::PlaybackFirstAudio { utterance_id, at }
            }
            PlaybackNotice::FirstFrame { utterance_id, at } => {
                Input::PlaybackFirstFrame { utterance_id, at }
            }
            PlaybackNotice::Audio {
                utterance_id,
                duration,
                alignment,
            } => Input::PlaybackAudio {
                utterance_id,
                duration,
                alignment,
            },
            PlaybackNotice::Finished {
                utterance_id,
                played,
                interrupted,
            } => Input::PlaybackFinished {
                utterance_id,
                played,
                interrupted,
            },
            PlaybackNotice::Failed {
                utterance_id,
                error,
            } => Input::PlaybackFailed {
                utterance_id,
                error,
            },
            PlaybackNotice::Usage { report } => Input::TtsUsage(report),
            PlaybackNotice::PeerGone => Input::PeerGone,
        };
        self.feed(input, ctx);
    }
}

impl Handler<ChildGone> for InterviewActor {
    type Result = ();

    fn handle(&mut self, gone: ChildGone, ctx: &mut Self::Context) {
        // News of a replaced or deliberately stopped incarnation changes nothing.
        if gone.generation != self.generations[slot(gone.child)] {
            return;
        }
        let held = match gone.child {
            Child::Ingress => self.ingress.take().is_some(),
            Child::Stt => self.stt.take().is_some(),
            Child::Llm => self.llm.take().is_some(),
            Child::Playback => self.playback.take().is_some(),
        };
        // Children stop by themselves while the interview ends (the STT after its close).
        if !held || matches!(self.core.phase(), Phase::Ending | Phase::Ended) {
            return;
        }
        tracing::warn!(
            interview_id = %self.id,
            child = gone.child.as_str(),
            panicked = gone.panicked,
            "child actor stopped unexpectedly"
        );
        self.feed(Input::ChildStopped(gone.child), ctx);
    }
}

impl Handler<TransportClosed> for InterviewActor {
    type Result = ();

    fn handle(&mut self, _: TransportClosed, ctx: &mut Self::Context) {
        self.feed(Input::PeerGone, ctx);
    }
}

impl Handler<EndInterview> for InterviewActor {
    type Result = ();

    fn handle(&mut self, msg: EndInterview, ctx: &mut Self::Context) {
        self.feed(
            Input::End {
                reason: msg.reason,
                mode: msg.mode,
            },
            ctx,
        );
    }
}

impl Handler<Drained> for InterviewActor {
    type Result = ();

    fn handle(&mut self, _: Drained, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<InjectFault> for InterviewActor {
    type Result = ();

    fn handle(&mut self, InjectFault(target): InjectFault, _: &mut Self::Context) {
        use crate::actors::InjectPanic;
        match target {
            None => panic!("injected fault: the interview actor panics"),
            Some(Child::Ingress) => self.ingress.iter().for_each(|a| a.do_send(InjectPanic)),
            Some(Child::Stt) => self.stt.iter().for_each(|a| a.do_send(InjectPanic)),
            Some(Child::Llm) => self.llm.iter().for_each(|a| a.do_send(InjectPanic)),
            Some(Child::Playback) => self.playback.iter().for_each(|a| a.do_send(InjectPanic)),
        }
    }
}
