//! `IngressActor`: candidate audio in. Runs voice-activity detection on each 20 ms frame,
//! reports it to the interview, and hands the frame to speech-to-text as it is: the transport
//! decodes at the STT's 16 kHz ([`crate::media::INBOUND_RATE`]), so nothing is resampled here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix::prelude::*;

use crate::actors::{INGRESS_ACTORS, LiveGuard, Supervisor};
use crate::audio::{EnergyVad, VoiceActivity, rms};
use crate::media::InboundFrame;

/// Frames queued in the ingress mailbox at most (1.28 s); beyond it frames are dropped.
pub const MAILBOX_FRAMES: usize = 64;

/// One candidate frame. Sender: the interview's transport pump (`try_send`; drops counted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Frame(pub InboundFrame);

/// Voice activity of one frame. Sent to: the interview actor (never dropped).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct VoiceFrame {
    pub at: Instant,
    pub activity: VoiceActivity,
    pub rms: f64,
}

/// 16 kHz audio for speech-to-text. Sent to: the STT actor (`try_send`; drops counted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SttAudio(pub Vec<i16>);

/// Stop. Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopIngress;

/// Counters of an ingress actor, readable from anywhere.
#[derive(Debug, Default)]
pub struct IngressCounters {
    pub frames: AtomicU64,
    pub voiced_frames: AtomicU64,
    pub dropped_to_stt: AtomicU64,
    pub dropped_in: AtomicU64,
}

pub struct IngressActor {
    vad: EnergyVad,
    voice: Recipient<VoiceFrame>,
    stt: Recipient<SttAudio>,
    counters: Arc<IngressCounters>,
    supervisor: Option<Supervisor>,
    live: Option<LiveGuard>,
}

impl IngressActor {
    pub fn new(
        vad: EnergyVad,
        voice: Recipient<VoiceFrame>,
        stt: Recipient<SttAudio>,
        counters: Arc<IngressCounters>,
    ) -> Self {
        Self {
            vad,
            voice,
            stt,
            counters,
            supervisor: None,
            live: None,
        }
    }

    /// Report to `supervisor` when this actor is gone (stopped or panicked).
    pub fn supervised(mut self, supervisor: Supervisor) -> Self {
        self.supervisor = Some(supervisor);
        self
    }
}

impl Actor for IngressActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_FRAMES);
        self.live = Some(LiveGuard::supervised(
            &INGRESS_ACTORS,
            self.supervisor.take(),
        ));
    }
}

impl Handler<Frame> for IngressActor {
    type Result = ();

    fn handle(&mut self, Frame(frame): Frame, _: &mut Self::Context) {
        self.counters.frames.fetch_add(1, Ordering::Relaxed);
        let activity = self.vad.classify(&frame.pcm);
        if activity.is_voiced() {
            self.counters.voiced_frames.fetch_add(1, Ordering::Relaxed);
        }
        self.voice.do_send(VoiceFrame {
            at: frame.at,
            activity,
            rms: rms(&frame.pcm),
        });
        if self.stt.try_send(SttAudio(frame.pcm)).is_err() {
            self.counters.dropped_to_stt.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Handler<StopIngress> for IngressActor {
    type Result = ();

    fn handle(&mut self, _: StopIngress, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::actors::InjectPanic> for IngressActor {
    type Result = ();

    fn handle(&mut self, _: crate::actors::InjectPanic, _: &mut Self::Context) {
        panic!("injected fault: IngressActor panics");
    }
}
