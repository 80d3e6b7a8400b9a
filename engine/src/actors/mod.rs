//! The actors of a live interview and the process-wide ones. One actor per file; each
//! message's doc comment names its sender. See the crate docs for the tree and the rules.

pub mod ingress;
pub mod interview;
pub mod key_leaser;
pub mod llm;
pub mod playback;
pub mod retention_sweeper;
pub mod stt;
pub mod transcript_writer;
pub mod usage_meter;

use std::sync::atomic::{AtomicI64, Ordering};

use actix::prelude::*;

pub use crate::interview_core::Child;

/// Live instances of one actor type: incremented in `started`, decremented in `stopped`, so a
/// leaked actor shows in `/metrics` as a count that does not return to zero.
#[derive(Debug)]
pub struct LiveCount {
    pub name: &'static str,
    count: AtomicI64,
}

impl LiveCount {
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            count: AtomicI64::new(0),
        }
    }

    pub fn up(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn down(&self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.count.load(Ordering::Relaxed)
    }
}

pub static INTERVIEW_ACTORS: LiveCount = LiveCount::new("interview");
pub static INGRESS_ACTORS: LiveCount = LiveCount::new("ingress");
pub static STT_ACTORS: LiveCount = LiveCount::new("stt");
pub static LLM_ACTORS: LiveCount = LiveCount::new("llm");
pub static PLAYBACK_ACTORS: LiveCount = LiveCount::new("playback");

/// Every per-interview live counter, for `/metrics`.
pub fn live_counts() -> [(&'static str, i64); 5] {
    [
        &INTERVIEW_ACTORS,
        &INGRESS_ACTORS,
        &STT_ACTORS,
        &LLM_ACTORS,
        &PLAYBACK_ACTORS,
    ]
    .map(|c| (c.name, c.get()))
}

/// One live instance of an actor, held by the actor itself: counted up when made, down when
/// dropped. The actor is dropped when it stops *or* when one of its handlers panics (the task
/// running it is torn down), so a panic cannot leave a count behind the way a decrement in
/// `stopped()` (never called after a panic) would. A supervised child's guard also tells its
/// parent that it is gone.
pub struct LiveGuard {
    count: &'static LiveCount,
    supervisor: Option<Supervisor>,
}

impl LiveGuard {
    pub fn new(count: &'static LiveCount) -> Self {
        count.up();
        Self {
            count,
            supervisor: None,
        }
    }

    /// Also notify `supervisor` when the actor is gone.
    pub fn supervised(count: &'static LiveCount, supervisor: Option<Supervisor>) -> Self {
        let mut guard = Self::new(count);
        guard.supervisor = supervisor;
        guard
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.count.down();
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.parent.do_send(ChildGone {
                child: supervisor.child,
                generation: supervisor.generation,
                panicked: std::thread::panicking(),
            });
        }
    }
}

/// Where a child reports that it is gone, and which incarnation it is.
#[derive(Clone)]
pub struct Supervisor {
    pub parent: Recipient<ChildGone>,
    pub child: Child,
    /// Counts the parent's starts of this child, so the news of a replaced one is ignored.
    pub generation: u64,
}

/// A child actor is gone (stopped or panicked). Sent to: the interview actor, from the
/// child's [`LiveGuard`] as it is dropped.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct ChildGone {
    pub child: Child,
    pub generation: u64,
    pub panicked: bool,
}

/// Test-only fault: the receiving actor panics in its handler. Sender: the interview actor
/// (from `EngineHandle::inject_panic`). Compiled only with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct InjectPanic;
