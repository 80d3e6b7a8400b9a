//! Percentiles, the one-line summary and its parser.
//!
//! The summary is `loadtest:` followed by space-separated `key=value` pairs, every key unique,
//! so a script can split it (see [`parse_summary`]). Latencies are milliseconds with one
//! decimal; `-` when there was no sample.

use std::collections::BTreeMap;

use serde::Serialize;

/// p50/p95/p99/max of a sample (nearest-rank), or all `None` when empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    pub fn of(values: &[f64]) -> Self {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| -> Option<f64> {
            if sorted.is_empty() {
                return None;
            }
            // Nearest rank: the smallest value with at least p% of the sample at or below it.
            let n = sorted.len();
            let idx = ((p / 100.0) * n as f64).ceil() as usize;
            Some(sorted[idx.clamp(1, n) - 1])
        };
        Self {
            count: sorted.len(),
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: sorted.last().copied(),
        }
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// Everything the summary line says.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub mode: String,
    pub interviews: usize,
    pub ok: usize,
    pub failed: usize,
    /// Candidate turns with a recorded engine overhead.
    pub turns: usize,
    pub overhead_ms: Percentiles,
    pub v2v_ms: Percentiles,
    /// The server's breakdown of v2v, per part (`ingress`, `stt_final`, `turn_wait`,
    /// `dispatch`, `llm_ttft`, `tts_buffering`, `tts_ttfa`, `egress`).
    pub breakdown_ms: BTreeMap<String, Percentiles>,
    /// Client-observed: last voiced frame sent → first reply audio received.
    pub gap_ms: Percentiles,
    /// Reply audio pauses over 100 ms within a reply, summed over candidates.
    pub reply_stalls: u32,
    /// Set-up calls (sign-up, login, create) retried after a 5xx or 429.
    pub setup_retries: u32,
    /// Inbound packet loss seen by the candidates, percent.
    pub loss_pct: f64,
    /// Process CPU seconds (user + system) during the run, all threads.
    pub cpu_s: f64,
    /// Of which: server threads (everything but the candidates and the fakes); spawn mode only
    /// (with `--url`, `cpu_s` is the harness's own).
    pub server_cpu_s: Option<f64>,
    /// Interview-minutes held (sum of each interview's join → end time).
    pub interview_min: f64,
    /// `cpu_s / interview_min`.
    pub cpu_s_per_interview_min: Option<f64>,
    pub server_cpu_s_per_interview_min: Option<f64>,
    /// Keyless local mode (`--local`): the local interviewer and the espeak-ng voice.
    pub local: bool,
    /// The fake vendors' delay profile (`--vendors`; `+` when a flag changed one); `-` with
    /// `--url`.
    pub vendors: String,
    /// Its delays (JSON report only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_profile: Option<crate::harness::VendorProfile>,
    /// CPU seconds of child processes (espeak-ng, the offline recognizer's worker), included in
    /// `cpu_s` and `server_cpu_s`.
    pub child_cpu_s: f64,
    /// Server CPU per live interview, in cores (`server_cpu_s / (interview_min * 60)`): its
    /// inverse is how many interviews one core holds.
    pub server_cores_per_interview: Option<f64>,
    /// Peak RSS of the process (VmHWM), MiB.
    pub rss_mb: Option<f64>,
    pub wall_s: f64,
    /// `pass`, or `fail` with the reason in [`Summary::verdict_reason`].
    pub verdict: String,
    pub verdict_reason: Option<String>,
}

impl Summary {
    /// The one summary line.
    pub fn line(&self) -> String {
        let mut s = format!(
            "loadtest: mode={} interviews={} ok={} failed={} turns={}",
            self.mode, self.interviews, self.ok, self.failed, self.turns
        );
        for (name, p) in [
            ("overhead", &self.overhead_ms),
            ("v2v", &self.v2v_ms),
            ("gap", &self.gap_ms),
        ] {
            s.push_str(&format!(
                " {name}_p50_ms={} {name}_p95_ms={} {name}_p99_ms={} {name}_max_ms={}",
                ms(p.p50),
                ms(p.p95),
                ms(p.p99),
                ms(p.max)
            ));
        }
        // In critical-path order.
        for (part, p) in crate::candidate::part_names()
            .iter()
            .filter_map(|part| Some((part, self.breakdown_ms.get(*part)?)))
        {
            s.push_str(&format!(
                " {part}_p50_ms={} {part}_p99_ms={}",
                ms(p.p50),
                ms(p.p99)
            ));
        }
        let opt = |v: Option<f64>, prec: usize| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.prec$}"))
        };
        s.push_str(&format!(
            " reply_stalls={} setup_retries={} loss_pct={:.2} cpu_s={:.2} server_cpu_s={} interview_min={:.2} cpu_s_per_interview_min={} server_cpu_s_per_interview_min={} local={} vendors={} child_cpu_s={:.3} server_cores_per_interview={} rss_mb={} wall_s={:.1} verdict={}",
            self.reply_stalls,
            self.setup_retries,
            self.loss_pct,
            self.cpu_s,
            opt(self.server_cpu_s, 2),
            self.interview_min,
            opt(self.cpu_s_per_interview_min, 2),
            opt(self.server_cpu_s_per_interview_min, 2),
            self.local,
            if self.vendors.is_empty() { "-" } else { &self.vendors },
            self.child_cpu_s,
            opt(self.server_cores_per_interview, 3),
            opt(self.rss_mb, 1),
            self.wall_s,
            self.verdict,
        ));
        if let Some(reason) = &self.verdict_reason {
            s.push_str(&format!(" reason={}", reason.replace(' ', "_")));
        }
        s
    }
}

/// Splits a summary line into its `key=value` pairs; `None` if it is not one.
pub fn parse_summary(line: &str) -> Option<BTreeMap<String, String>> {
    let rest = line.trim().strip_prefix("loadtest:")?;
    let mut map = BTreeMap::new();
    for pair in rest.split_whitespace() {
        let (key, value) = pair.split_once('=')?;
        if map.insert(key.to_owned(), value.to_owned()).is_some() {
            return None;
        }
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&values);
        assert_eq!(
            (p.p50, p.p95, p.p99, p.max),
            (Some(50.0), Some(95.0), Some(99.0), Some(100.0))
        );
        let one = Percentiles::of(&[7.0]);
        assert_eq!((one.p50, one.p99), (Some(7.0), Some(7.0)));
        assert_eq!(Percentiles::of(&[]).p50, None);
    }

    #[test]
    fn the_line_parses_back() {
        let summary = Summary {
            mode: "spawn".into(),
            interviews: 2,
            ok: 2,
            turns: 2,
            overhead_ms: Percentiles::of(&[1.0, 2.0]),
            verdict: "fail".into(),
            verdict_reason: Some("1 interview failed".into()),
            ..Summary::default()
        };
        let parsed = parse_summary(&summary.line()).expect("parses");
        assert_eq!(parsed["ok"], "2");
        assert_eq!(parsed["overhead_p99_ms"], "2.0");
        assert_eq!(parsed["v2v_p50_ms"], "-");
        assert_eq!(parsed["reason"], "1_interview_failed");
    }
}
