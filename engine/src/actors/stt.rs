//! `SttActor`: one streaming speech-to-text session. Audio goes out without waiting (a full
//! vendor queue drops and counts); every vendor event comes back to the interview as an
//! [`SttNotice`]. Reconnects happen inside the client; a terminal failure is reported and the
//! interview decides whether to restart this actor or end.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use actix::prelude::*;

use crate::actors::ingress::SttAudio;
use crate::actors::{LiveGuard, STT_ACTORS, Supervisor};
use crate::vendors::{SpeechToText, SttEvent, SttInput, SttSession, VendorError};

/// Audio kept while the vendor session opens: 3 s at 16 kHz, so the first words are not lost.
pub const PRE_OPEN_SAMPLES: usize = 48_000;

/// What the STT session reports. Sent to: the interview actor (never dropped).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum SttNotice {
    /// The session is open; its clock (`t = 0`) started at `origin`.
    Opened {
        origin: Instant,
    },
    Event {
        event: SttEvent,
        at: Instant,
    },
    /// Opening failed.
    OpenFailed(VendorError),
}

/// Ask the vendor to finalize pending audio. Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Finalize;

/// Close the stream (graceful) and stop. Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseStt;

#[derive(Message)]
#[rtype(result = "()")]
struct Opened(Result<SttSession, VendorError>, Instant);

pub struct SttActor {
    vendor: Arc<dyn SpeechToText>,
    parent: Recipient<SttNotice>,
    input: Option<SttInput>,
    pending: VecDeque<i16>,
    closing: bool,
    supervisor: Option<Supervisor>,
    live: Option<LiveGuard>,
    /// Set when the actor is dropped by a panic (its session's events are then stale).
    orphaned: Arc<AtomicBool>,
}

impl Drop for SttActor {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.orphaned.store(true, Ordering::Relaxed);
        }
    }
}

impl SttActor {
    pub fn new(vendor: Arc<dyn SpeechToText>, parent: Recipient<SttNotice>) -> Self {
        Self {
            vendor,
            parent,
            input: None,
            pending: VecDeque::new(),
            closing: false,
            supervisor: None,
            live: None,
            orphaned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Report to `supervisor` when this actor is gone (stopped or panicked).
    pub fn supervised(mut self, supervisor: Supervisor) -> Self {
        self.supervisor = Some(supervisor);
        self
    }
}

impl Actor for SttActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.live = Some(LiveGuard::supervised(&STT_ACTORS, self.supervisor.take()));
        ctx.set_mailbox_capacity(crate::actors::ingress::MAILBOX_FRAMES);
        let vendor = self.vendor.clone();
        let me = ctx.address();
        actix::spawn(async move {
            let started = Instant::now();
            let result = vendor.start().await;
            me.do_send(Opened(result, started));
        });
    }
}

impl Handler<Opened> for SttActor {
    type Result = ();

    fn handle(&mut self, Opened(result, started): Opened, ctx: &mut Self::Context) {
        let session = match result {
            Ok(session) => session,
            Err(error) => {
                self.parent.do_send(SttNotice::OpenFailed(error));
                ctx.stop();
                return;
            }
        };
        let SttSession { input, mut events } = session;
        // The vendor's clock starts with the first audio it receives, i.e. now.
        let origin = Instant::now().max(started);
        self.parent.do_send(SttNotice::Opened { origin });
        let pending: Vec<i16> = self.pending.drain(..).collect();
        if !pending.is_empty() {
            let _ = input.push_pcm(&pending);
        }
        self.input = Some(input);
        let parent = self.parent.clone();
        let me = ctx.address();
        let orphaned = self.orphaned.clone();
        actix::spawn(async move {
            while let Some(event) = events.recv().await {
                let terminal = event.is_terminal();
                // After a panic the session ends with the actor: its end is metered, but it is
                // not news about the interview's current STT (which the interview restarts).
                // After a normal close, its last finals still count.
                let event = match event {
                    SttEvent::Failed { report, .. } if orphaned.load(Ordering::Relaxed) => {
                        SttEvent::Closed(report)
                    }
                    _ if orphaned.load(Ordering::Relaxed) && !terminal => continue,
                    event => event,
                };
                parent.do_send(SttNotice::Event {
                    event,
                    at: Instant::now(),
                });
                if terminal {
                    break;
                }
            }
            me.do_send(CloseStt);
        });
        if self.closing {
            ctx.notify(CloseStt);
        }
    }
}

impl Handler<SttAudio> for SttActor {
    type Result = ();

    fn handle(&mut self, SttAudio(pcm): SttAudio, _: &mut Self::Context) {
        match &self.input {
            // A full vendor queue drops the frame inside the client, which counts it.
            Some(input) => {
                let _ = input.push_pcm(&pcm);
            }
            None => {
                self.pending.extend(pcm);
                let excess = self.pending.len().saturating_sub(PRE_OPEN_SAMPLES);
                self.pending.drain(..excess);
            }
        }
    }
}

impl Handler<Finalize> for SttActor {
    type Result = ();

    fn handle(&mut self, _: Finalize, _: &mut Self::Context) {
        if let Some(input) = self.input.clone() {
            actix::spawn(async move {
                let _ = input.finalize().await;
            });
        }
    }
}

impl Handler<CloseStt> for SttActor {
    type Result = ();

    fn handle(&mut self, _: CloseStt, ctx: &mut Self::Context) {
        self.closing = true;
        // Still opening: the actor stops once the session is there (or failed).
        if let Some(input) = self.input.take() {
            actix::spawn(async move {
                let _ = input.close().await;
            });
            ctx.stop();
        }
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::actors::InjectPanic> for SttActor {
    type Result = ();

    fn handle(&mut self, _: crate::actors::InjectPanic, _: &mut Self::Context) {
        panic!("injected fault: SttActor panics");
    }
}
