//! Process-wide latency histograms of the per-turn breakdown, for `/metrics`.

use std::sync::Mutex;
use std::sync::OnceLock;

use crate::actors::interview::TurnBreakdown;

/// Bucket upper bounds in milliseconds.
pub const BUCKETS_MS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// A cumulative histogram.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    pub counts: [u64; BUCKETS_MS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    fn observe(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        for (bucket, upper) in self.counts.iter_mut().zip(BUCKETS_MS) {
            if value <= upper {
                *bucket += 1;
            }
        }
    }
}

/// The histograms by breakdown component.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistograms {
    pub v2v: Histogram,
    pub engine_overhead: Histogram,
    pub stt_final: Histogram,
    pub llm_ttft: Histogram,
    pub tts_ttfa: Histogram,
}

fn store() -> &'static Mutex<LatencyHistograms> {
    static STORE: OnceLock<Mutex<LatencyHistograms>> = OnceLock::new();
    STORE.get_or_init(|| Mutex::new(LatencyHistograms::default()))
}

/// Records one turn.
pub fn observe(turn: &TurnBreakdown) {
    let mut h = store().lock().unwrap_or_else(|p| p.into_inner());
    h.v2v.observe(turn.v2v_ms);
    h.engine_overhead.observe(turn.engine_overhead_ms);
    h.stt_final.observe(turn.stt_final_ms);
    h.llm_ttft.observe(turn.llm_ttft_ms);
    h.tts_ttfa.observe(turn.tts_ttfa_ms);
}

/// A copy of the histograms.
pub fn snapshot() -> LatencyHistograms {
    store().lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The histograms in Prometheus text format (seconds, as Prometheus expects).
pub fn render_prometheus() -> String {
    let h = snapshot();
    let mut out = String::new();
    for (name, hist) in [
        ("v2v", &h.v2v),
        ("engine_overhead", &h.engine_overhead),
        ("stt_final", &h.stt_final),
        ("llm_ttft", &h.llm_ttft),
        ("tts_ttfa", &h.tts_ttfa),
    ] {
        let metric = format!("interviewcraft_turn_{name}_seconds");
        out.push_str(&format!(
            "# HELP {metric} Per-turn {name} latency.\n# TYPE {metric} histogram\n"
        ));
        for (count, upper) in hist.counts.iter().zip(BUCKETS_MS) {
            out.push_str(&format!(
                "{metric}_bucket{{le=\"{}\"}} {count}\n",
                upper / 1000.0
            ));
        }
        out.push_str(&format!("{metric}_bucket{{le=\"+Inf\"}} {}\n", hist.count));
        out.push_str(&format!(
            "{metric}_sum {}\n{metric}_count {}\n",
            hist.sum / 1000.0,
            hist.count
        ));
    }
    out
}
