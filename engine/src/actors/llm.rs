//! `LlmActor`: one streaming LLM call at a time. Each call runs in a task of its own (the
//! mailbox never waits on the vendor); its events come back to the interview as [`LlmNotice`]s
//! tagged with the reply id, so a cancelled or superseded reply's late events are ignored.
//! When the primary model fails with an overload or rate limit after its own retries, the call
//! is retried once on the fallback model, if one is configured.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::actors::{LLM_ACTORS, LiveGuard, Supervisor};
use crate::vendors::{
    ErrorCategory, LanguageModel, LlmEvent, LlmReport, LlmRequest, StopReason, VendorError,
};

/// Start a reply (replacing any running one). Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Generate {
    pub reply_id: u64,
    pub request: LlmRequest,
}

/// Cancel a reply (urgent: barge-in, or the candidate resumed). Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelReply {
    pub reply_id: u64,
}

/// Stop. Sender: the interview actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopLlm;

/// What a reply produced. Sent to: the interview actor (never dropped).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum LlmNotice {
    /// The request left for the vendor at `at` (the start of time-to-first-token).
    Sent { reply_id: u64, at: Instant },
    Delta {
        reply_id: u64,
        text: String,
        at: Instant,
    },
    Finished {
        reply_id: u64,
        stop_reason: StopReason,
        report: LlmReport,
        at: Instant,
    },
    Failed {
        reply_id: u64,
        error: VendorError,
        report: Option<LlmReport>,
    },
    /// The reply was cancelled; `report` is what the partial call used (for metering).
    Cancelled {
        reply_id: u64,
        report: Option<LlmReport>,
    },
    /// An attempt failed and the fallback model takes the reply over; what the failed attempt
    /// used was still billed, so it is metered.
    Superseded { reply_id: u64, report: LlmReport },
}

pub struct LlmActor {
    primary: Arc<dyn LanguageModel>,
    fallback: Option<Arc<dyn LanguageModel>>,
    parent: Recipient<LlmNotice>,
    running: Option<(u64, oneshot::Sender<()>)>,
    supervisor: Option<Supervisor>,
    live: Option<LiveGuard>,
}

impl LlmActor {
    pub fn new(
        primary: Arc<dyn LanguageModel>,
        fallback: Option<Arc<dyn LanguageModel>>,
        parent: Recipient<LlmNotice>,
    ) -> Self {
        Self {
            primary,
            fallback,
            parent,
            running: None,
            supervisor: None,
            live: None,
        }
    }

    /// Report to `supervisor` when this actor is gone (stopped or panicked).
    pub fn supervised(mut self, supervisor: Supervisor) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    fn cancel_running(&mut self) {
        if let Some((_, cancel)) = self.running.take() {
            // The task cancels the vendor call and reports what it used.
            let _ = cancel.send(());
        }
    }
}

impl Actor for LlmActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        self.live = Some(LiveGuard::supervised(&LLM_ACTORS, self.supervisor.take()));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // (After a panic the running call is cancelled too: its cancel sender is dropped.)
        self.cancel_running();
    }
}

/// Whether a failure is worth one more try on the fallback model.
fn fallback_worthy(error: &VendorError) -> bool {
    matches!(
        error.category,
        ErrorCategory::Overloaded | ErrorCategory::RateLimited | ErrorCategory::Server
    )
}

async fn run_reply(
    models: Vec<Arc<dyn LanguageModel>>,
    request: LlmRequest,
    reply_id: u64,
    parent: Recipient<LlmNotice>,
    mut cancel: oneshot::Receiver<()>,
) {
    let mut last_error = None;
    for (attempt, model) in models.iter().enumerate() {
        parent.do_send(LlmNotice::Sent {
            reply_id,
            at: Instant::now(),
        });
        let opened = tokio::select! {
            opened = model.stream(request.clone()) => opened,
            _ = &mut cancel => {
                parent.do_send(LlmNotice::Cancelled { reply_id, report: None });
                return;
            }
        };
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(error) => {
                let retry = fallback_worthy(&error) && attempt + 1 < models.len();
                last_error = Some((error, None));
                if retry {
                    continue;
                }
                break;
            }
        };
        let mut produced_text = false;
        loop {
            let event = tokio::select! {
                event = stream.next() => event,
                _ = &mut cancel => {
                    let report = stream.cancel().await;
                    parent.do_send(LlmNotice::Cancelled { reply_id, report });
                    return;
                }
            };
            let Some(event) = event else { break };
            match event {
                LlmEvent::TextDelta(text) => {
                    produced_text = true;
                    parent.do_send(LlmNotice::Delta {
                        reply_id,
                        text,
                        at: Instant::now(),
                    });
                }
                LlmEvent::Finished {
                    stop_reason,
                    report,
                } => {
                    parent.do_send(LlmNotice::Finished {
                        reply_id,
                        stop_reason,
                        report,
                        at: Instant::now(),
                    });
                    return;
                }
                LlmEvent::Failed { error, report } => {
                    // A reply half spoken cannot be restarted on another model.
                    let retry =
                        !produced_text && fallback_worthy(&error) && attempt + 1 < models.len();
                    if retry {
                        parent.do_send(LlmNotice::Superseded { reply_id, report });
                        last_error = Some((error, None));
                        break;
                    }
                    last_error = Some((error, Some(report)));
                    let (error, report) = last_error.take().expect("invariant: just set");
                    parent.do_send(LlmNotice::Failed {
                        reply_id,
                        error,
                        report,
                    });
                    return;
                }
            }
        }
    }
    if let Some((error, report)) = last_error {
        parent.do_send(LlmNotice::Failed {
            reply_id,
            error,
            report,
        });
    }
}

impl Handler<Generate> for LlmActor {
    type Result = ();

    fn handle(&mut self, msg: Generate, _: &mut Self::Context) {
        self.cancel_running();
        let mut models = vec![self.primary.clone()];
        models.extend(self.fallback.clone());
        let (cancel, cancelled) = oneshot::channel();
        actix::spawn(run_reply(
            models,
            msg.request,
            msg.reply_id,
            self.parent.clone(),
            cancelled,
        ));
        self.running = Some((msg.reply_id, cancel));
    }
}

impl Handler<CancelReply> for LlmActor {
    type Result = ();

    fn handle(&mut self, msg: CancelReply, _: &mut Self::Context) {
        if self
            .running
            .as_ref()
            .is_some_and(|(id, _)| *id == msg.reply_id)
        {
            self.cancel_running();
        }
    }
}

impl Handler<StopLlm> for LlmActor {
    type Result = ();

    fn handle(&mut self, _: StopLlm, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::actors::InjectPanic> for LlmActor {
    type Result = ();

    fn handle(&mut self, _: crate::actors::InjectPanic, _: &mut Self::Context) {
        panic!("injected fault: LlmActor panics");
    }
}
