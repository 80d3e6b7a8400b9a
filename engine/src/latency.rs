//! Process-wide latency histograms of the per-turn breakdown. They live in the engine (the
//! interview actor observes each turn) and are registered by [`register`] in the server's one
//! prometheus-client registry, which encodes `/metrics`.

use std::sync::OnceLock;

use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::actors::interview::TurnBreakdown;

/// Bucket upper bounds in seconds: fine steps below 25 ms (where engine overhead lives), then
/// every 25 ms up to 2 s (where voice-to-voice and the vendor waits live, so a 25 ms change
/// shows), then a coarse tail.
pub fn buckets() -> Vec<f64> {
    let fine = [0.001, 0.0025, 0.005, 0.01, 0.015, 0.02];
    let steps = (1..=80).map(|step| f64::from(step) * 0.025);
    let tail = [2.5, 3.0, 4.0, 5.0, 10.0];
    fine.into_iter().chain(steps).chain(tail).collect()
}

/// Bucket upper bounds of the barge-in reaction, in seconds: fine up to the 20 ms target, then
/// coarser up to a second (a reaction that slow means the playback actor was starved).
pub fn barge_in_buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02,
        0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0,
    ]
}

/// The process's barge-in reaction histogram: per barge-in, the interview core's decision to
/// the playback actor having stopped sending the reply (no reply frame leaves after that).
pub fn barge_in_histogram() -> &'static Histogram {
    static HISTOGRAM: OnceLock<Histogram> = OnceLock::new();
    HISTOGRAM.get_or_init(|| Histogram::new(barge_in_buckets()))
}

static BARGE_INS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Records one barge-in: from its decision to the reply's audio stopped.
pub fn observe_barge_in(reaction: std::time::Duration) {
    barge_in_histogram().observe(reaction.as_secs_f64());
    BARGE_INS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Barge-ins observed by this process (the histogram's count; for tests).
pub fn barge_ins_observed() -> u64 {
    BARGE_INS.load(std::sync::atomic::Ordering::Relaxed)
}

/// What each part's histogram says (`turn_<part>_seconds`), in [`TurnBreakdown::parts`] order.
const PART_HELP: [&str; 8] = [
    "Per-turn ingress (ours): last voiced frame received to the conductor seeing it.",
    "Per-turn wait for the speech-to-text final after the end of speech was seen (vendor).",
    "Per-turn end-of-turn decision wait after the final: the quiet window.",
    "Per-turn dispatch (ours): decision to the LLM request sent.",
    "Per-turn LLM time to first token still waited for after the decision (vendor).",
    "Per-turn TTS buffering (ours): reply text available to text sent to the TTS.",
    "Per-turn text-to-speech time to first audio (vendor).",
    "Per-turn egress (ours): first audio to the first reply frame sent.",
];

/// One histogram per part of the breakdown, plus voice-to-voice and engine overhead.
#[derive(Debug, Clone)]
pub struct TurnHistograms {
    pub v2v: Histogram,
    pub engine_overhead: Histogram,
    /// In [`TurnBreakdown::parts`] order.
    pub parts: [Histogram; 8],
}

impl TurnHistograms {
    fn new() -> Self {
        let histogram = || Histogram::new(buckets());
        Self {
            v2v: histogram(),
            engine_overhead: histogram(),
            parts: std::array::from_fn(|_| histogram()),
        }
    }
}

/// The process's histograms (every interview of the process observes into them).
pub fn histograms() -> &'static TurnHistograms {
    static HISTOGRAMS: OnceLock<TurnHistograms> = OnceLock::new();
    HISTOGRAMS.get_or_init(TurnHistograms::new)
}

/// Records one turn (the breakdown is in milliseconds; the histograms are in seconds).
pub fn observe(turn: &TurnBreakdown) {
    let h = histograms();
    h.v2v.observe(turn.v2v_ms / 1e3);
    h.engine_overhead.observe(turn.engine_overhead_ms / 1e3);
    for (histogram, (_, ms)) in h.parts.iter().zip(turn.parts()) {
        histogram.observe(ms / 1e3);
    }
}

/// Registers the per-turn histograms in `registry` (they stay shared with the process's).
pub fn register(registry: &mut Registry) {
    let h = histograms();
    registry.register(
        "turn_v2v_seconds",
        "Per-turn voice-to-voice latency: last voiced frame received to first reply frame sent.",
        h.v2v.clone(),
    );
    registry.register(
        "turn_engine_overhead_seconds",
        "Per-turn latency that is the engine's own: ingress + dispatch + TTS buffering + egress.",
        h.engine_overhead.clone(),
    );
    registry.register(
        "barge_in_seconds",
        "Per barge-in: the decision to interrupt to the playback having stopped sending the reply \
         (the server's part of the reaction; the last reply frame left before that).",
        barge_in_histogram().clone(),
    );
    let names = TurnBreakdown::default().parts().map(|(name, _)| name);
    for ((name, help), histogram) in names.iter().zip(PART_HELP).zip(&h.parts) {
        registry.register(format!("turn_{name}_seconds"), help, histogram.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::{barge_in_buckets, buckets};

    #[test]
    fn buckets_resolve_25_ms_up_to_two_seconds() {
        let buckets = buckets();
        assert!(buckets.windows(2).all(|w| w[0] < w[1]), "ascending");
        for ms in (25..=2000).step_by(25) {
            let seconds = f64::from(ms) / 1e3;
            assert!(
                buckets.iter().any(|b| (b - seconds).abs() < 1e-9),
                "{ms} ms is a bucket bound"
            );
        }
        assert!(
            buckets[0] <= 0.001,
            "engine overhead resolves single milliseconds"
        );
    }

    #[test]
    fn barge_in_buckets_resolve_the_20_ms_target() {
        let buckets = barge_in_buckets();
        assert!(buckets.windows(2).all(|w| w[0] < w[1]), "ascending");
        let under_target = buckets.iter().filter(|b| **b <= 0.02).count();
        assert!(under_target >= 10, "{under_target} bounds up to 20 ms");
        assert!(buckets.iter().any(|b| (b - 0.02).abs() < 1e-12));
    }
}
