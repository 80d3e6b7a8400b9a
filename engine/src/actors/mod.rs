//! The actors of a live interview and the process-wide ones. One actor per file; each
//! message's doc comment names its sender. See the crate docs for the tree and the rules.

pub mod ingress;
pub mod interview;
pub mod key_leaser;
pub mod llm;
pub mod playback;
pub mod retention_sweeper;
pub mod stt;
pub mod usage_meter;

use std::sync::atomic::{AtomicI64, Ordering};

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
