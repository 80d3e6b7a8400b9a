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

/// One histogram per part of the breakdown.
#[derive(Debug, Clone)]
pub struct TurnHistograms {
    pub v2v: Histogram,
    pub engine_overhead: Histogram,
    pub stt_final: Histogram,
    pub llm_ttft: Histogram,
    pub tts_ttfa: Histogram,
}

impl TurnHistograms {
    fn new() -> Self {
        let histogram = || Histogram::new(buckets());
        Self {
            v2v: histogram(),
            engine_overhead: histogram(),
            stt_final: histogram(),
            llm_ttft: histogram(),
            tts_ttfa: histogram(),
        }
    }

    fn parts(&self) -> [(&'static str, &'static str, &Histogram); 5] {
        [
            (
                "turn_v2v_seconds",
                "Per-turn voice-to-voice latency: last voiced frame received to first reply frame sent.",
                &self.v2v,
            ),
            (
                "turn_engine_overhead_seconds",
                "Per-turn latency added by the engine itself.",
                &self.engine_overhead,
            ),
            (
                "turn_stt_final_seconds",
                "Per-turn wait for the speech-to-text final after speech ended.",
                &self.stt_final,
            ),
            (
                "turn_llm_ttft_seconds",
                "Per-turn LLM time to first token still waited for after the turn was decided.",
                &self.llm_ttft,
            ),
            (
                "turn_tts_ttfa_seconds",
                "Per-turn text-to-speech time to first audio.",
                &self.tts_ttfa,
            ),
        ]
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
    h.stt_final.observe(turn.stt_final_ms / 1e3);
    h.llm_ttft.observe(turn.llm_ttft_ms / 1e3);
    h.tts_ttfa.observe(turn.tts_ttfa_ms / 1e3);
}

/// Registers the per-turn histograms in `registry` (they stay shared with the process's).
pub fn register(registry: &mut Registry) {
    for (name, help, histogram) in histograms().parts() {
        registry.register(name, help, histogram.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::buckets;

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
}
