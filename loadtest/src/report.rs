//! Percentiles, the JSON report, the one-line summary and its parser.
//!
//! The summary is `loadtest:` followed by space-separated `key=value` pairs, every key unique,
//! so a script can split it (see [`parse_summary`]). Latencies are milliseconds with one
//! decimal; `-` when there was no sample.
//!
//! The JSON report ([`Report`], `--json PATH`) has stable keys: `interviews.{started,
//! completed,failed}`, `turns`, `v2v_client_ms`, `v2v_server_ms`, `breakdown_ms.<part>`,
//! `engine_overhead_ms`, `barge_in_ms` (client) and `barge_in_server_ms`, `turn_cut_rate`,
//! `stalls`, `server.{cpu_seconds,cores_avg,peak_rss_mib,cpu_per_interview_pct,
//! rss_per_interview_mib,peak_server_live,peak_media_sessions}`, `live_actors_after`,
//! `media_sessions_after`, `leak_check` and `rss_timeline`; every
//! percentile block has `count`, `p50`, `p95`, `p99` and `max` (`null` without a sample).

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

/// The JSON report of one run (see the module docs for its stable keys).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `spawn` (server in this process), `server_bin` (the server binary as a child process)
    /// or `url` (a running server).
    pub mode: String,
    /// The fake vendors' delay profile (`-` with `--url`) and its delays.
    pub vendors: String,
    pub vendor_profile: Option<crate::harness::VendorProfile>,
    /// What the candidates did.
    pub candidates: CandidateSettings,
    pub interviews: InterviewCounts,
    /// Candidate turns with a recorded engine overhead.
    pub turns: usize,
    /// Client-observed voice-to-voice: last voiced frame sent → first reply audio received.
    pub v2v_client_ms: Percentiles,
    /// The server's: last voiced frame received → first reply frame sent.
    pub v2v_server_ms: Percentiles,
    /// The server's breakdown of v2v, per part (`ingress`, `stt_final`, `turn_wait`,
    /// `dispatch`, `llm_ttft`, `tts_buffering`, `tts_ttfa`, `egress`).
    pub breakdown_ms: BTreeMap<String, Percentiles>,
    pub engine_overhead_ms: Percentiles,
    /// Barge-in reaction seen by the client: voice onset over a reply → last reply audio
    /// received (`--barge-in`).
    pub barge_in_ms: Percentiles,
    pub barge_in: BargeInCounts,
    /// The server's part: its decision → the playback stopped sending (from its histogram;
    /// p50/p95 are bucket upper bounds).
    pub barge_in_server_ms: Option<crate::server::BargeInServer>,
    /// Answers with a planned pause (`--pauses`) …
    pub pauses: u32,
    /// … of which a reply started during or after the pause, before the answer ended …
    pub turn_cuts: u32,
    /// … as a fraction (`null` without pauses).
    pub turn_cut_rate: Option<f64>,
    /// Reply audio pausing > 100 ms and resuming, summed over candidates.
    pub stalls: u32,
    /// Replies that started while a candidate answered without a planned pause or barge-in.
    pub talked_over: u32,
    /// Inbound packet loss seen by the candidates, percent.
    pub loss_pct: f64,
    /// Set-up calls retried after a 5xx or 429.
    pub setup_retries: u32,
    /// Interview-minutes held (each interview's join → end).
    pub interview_min: f64,
    pub wall_s: f64,
    pub server: ServerFigures,
    pub client: ClientFigures,
    /// `interviewcraft_live_actors` summed over kinds once the run is over (must be 0).
    pub live_actors_after: Option<i64>,
    /// `interviewcraft_live_media_sessions` once the run is over (must be 0: a peer connection
    /// held after every interview ended is a leak).
    pub media_sessions_after: Option<i64>,
    /// With more interviews than `--leak-check-after` (100): the server's RSS after that many
    /// and at the end.
    pub leak_check: Option<LeakCheck>,
    /// `--duration`: the soak's RSS trend.
    pub soak: Option<Soak>,
    /// The server's RSS (and the live interviews) during the run, at most 200 points.
    pub rss_timeline: Vec<RssSample>,
    /// `pass`, or `fail` with the reason in `verdict_reason`.
    pub verdict: String,
    pub verdict_reason: Option<String>,
    /// The summary line's fields.
    pub summary: Summary,
    /// Every interview's outcome and its turns.
    pub outcomes: Vec<crate::candidate::Outcome>,
}

/// What the candidates were told to do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CandidateSettings {
    pub answers: usize,
    pub speech_ms: u64,
    pub concurrency: usize,
    /// `--barge-in`: every second answer starts this long into the reply.
    pub barge_in_after_ms: Option<u64>,
    /// `--pauses`: the range of each answer's pause.
    pub pause_ms: Option<[u64; 2]>,
    /// `--duration`: interviews kept going for this long.
    pub duration_s: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct InterviewCounts {
    pub started: usize,
    pub completed: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BargeInCounts {
    /// Answers started over a reply.
    pub attempts: u32,
    /// Of which the reply stopped (a reaction measured).
    pub measured: usize,
    /// Of which the reply went on to within 200 ms of the end of the answer.
    pub missed: u32,
    /// Barge-in answers given after the reply (it ended before the barge-in point).
    pub skipped: u32,
}

/// The server's own CPU and memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerFigures {
    /// `process`: read from the server's own pid (`--server-bin`, `--server-pid`);
    /// `in_process_estimate`: the harness's process less the candidates' and fakes' threads
    /// (CPU), and the whole process (memory: includes the candidates); `none`: not measured.
    pub source: String,
    pub pid: Option<u32>,
    /// User + system seconds during the run, with its child processes'.
    pub cpu_seconds: Option<f64>,
    /// Of which child processes (espeak-ng, the offline recognizer's worker).
    pub child_cpu_seconds: Option<f64>,
    /// `cpu_seconds / wall_s`.
    pub cores_avg: Option<f64>,
    /// Percent of one core per live interview: `cpu_seconds / (interview_min × 60)`.
    pub cpu_per_interview_pct: Option<f64>,
    /// `VmHWM` at the end of the run, MiB.
    pub peak_rss_mib: Option<f64>,
    /// RSS before the first interview, MiB.
    pub idle_rss_mib: Option<f64>,
    /// The most interviews live at once, and the RSS sampled then.
    pub peak_live: usize,
    pub rss_at_peak_live_mib: Option<f64>,
    /// `(rss_at_peak_live − idle) / peak_live`.
    pub rss_per_interview_mib: Option<f64>,
    /// The most interviews the server itself counted live at one sample, and the most media
    /// sessions it held (its `/metrics`, sampled with the RSS).
    pub peak_server_live: Option<i64>,
    pub peak_media_sessions: Option<i64>,
    /// `--server-bin`: the child exited by itself after SIGTERM.
    pub clean_exit: Option<bool>,
    /// `--server-bin`: its log (JSON lines).
    pub log: Option<String>,
}

/// The harness's own cost (candidates, and the fakes when they run here).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientFigures {
    /// The candidates' threads (`lt-client`), seconds.
    pub cpu_seconds: f64,
    /// The fakes' threads (`lt-fakes`), seconds.
    pub fakes_cpu_seconds: f64,
    pub cores_avg: f64,
    /// CPU seconds since the harness started, by thread name (living threads at the end).
    pub cpu_by_thread: BTreeMap<String, f64>,
}

/// RSS after the 100th interview vs at the end (after the last, with no live actors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LeakCheck {
    pub after_interviews: usize,
    pub rss_after_mib: f64,
    pub end_interviews: usize,
    pub rss_end_mib: f64,
    /// `(end − after) / after`, percent.
    pub growth_pct: f64,
    /// `growth_pct ≤ 10`.
    pub within_10_pct: bool,
}

/// The soak's RSS trend: the median of the samples in the second tenth of the run (after the
/// first interviews warmed the allocator) vs in the last tenth (still under load).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Soak {
    pub duration_s: f64,
    pub rss_early_mib: f64,
    pub rss_late_mib: f64,
    pub growth_pct: f64,
}

/// One sample of the server's memory during the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RssSample {
    pub t_s: f64,
    pub rss_mib: f64,
    /// Interviews joined and not yet ended.
    pub live: usize,
    /// Interviews the server counted live then (`interviewcraft_live_interviews`): it holds
    /// an interview from its start until its actor is gone, so also while one ends.
    pub server_live: Option<i64>,
    /// Media sessions the server held then (`interviewcraft_live_media_sessions`; with the
    /// server in this process, the candidates' own sessions count too).
    pub media_sessions: Option<i64>,
}

impl Soak {
    pub fn of(samples: &[RssSample], duration_s: f64) -> Option<Self> {
        let median_between = |from: f64, to: f64| {
            let mut values: Vec<f64> = samples
                .iter()
                .filter(|s| s.t_s >= from && s.t_s < to)
                .map(|s| s.rss_mib)
                .collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied()
        };
        let early = median_between(duration_s * 0.1, duration_s * 0.2)?;
        let late = median_between(duration_s * 0.9, duration_s)?;
        Some(Self {
            duration_s,
            rss_early_mib: early,
            rss_late_mib: late,
            growth_pct: 100.0 * (late - early) / early,
        })
    }
}

impl LeakCheck {
    pub fn new(after: (usize, f64), end: (usize, f64)) -> Self {
        let growth_pct = 100.0 * (end.1 - after.1) / after.1;
        Self {
            after_interviews: after.0,
            rss_after_mib: after.1,
            end_interviews: end.0,
            rss_end_mib: end.1,
            growth_pct,
            within_10_pct: growth_pct <= 10.0,
        }
    }
}

/// At most `max` samples, evenly picked (the first and the last kept).
pub fn thin(samples: &[RssSample], max: usize) -> Vec<RssSample> {
    if samples.len() <= max || max < 2 {
        return samples.to_vec();
    }
    let step = (samples.len() - 1) as f64 / (max - 1) as f64;
    (0..max)
        .map(|i| samples[((i as f64 * step).round() as usize).min(samples.len() - 1)])
        .collect()
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
    /// Client-observed barge-in reaction (`--barge-in`).
    pub barge_in_ms: Percentiles,
    /// The server's part, p95 bucket bound.
    pub barge_in_server_p95_ms: Option<f64>,
    /// `--pauses`: answers with a pause and the share of them cut.
    pub pauses: u32,
    pub turn_cut_rate: Option<f64>,
    /// The server's own figures (`server.*` of the report).
    pub server_source: String,
    pub server_cores_avg: Option<f64>,
    pub server_cpu_per_interview_pct: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    pub server_rss_per_interview_mib: Option<f64>,
    pub live_actors_after: Option<i64>,
    pub media_sessions_after: Option<i64>,
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
        s.push_str(&format!(
            " barge_in_p50_ms={} barge_in_p95_ms={} barge_in_server_p95_ms={} pauses={} turn_cut_rate={} server={} server_cores_avg={} server_cpu_per_interview_pct={} server_peak_rss_mib={} server_rss_per_interview_mib={} live_actors_after={} media_sessions_after={}",
            ms(self.barge_in_ms.p50),
            ms(self.barge_in_ms.p95),
            ms(self.barge_in_server_p95_ms),
            self.pauses,
            opt(self.turn_cut_rate, 3),
            if self.server_source.is_empty() { "-" } else { &self.server_source },
            opt(self.server_cores_avg, 3),
            opt(self.server_cpu_per_interview_pct, 2),
            opt(self.server_peak_rss_mib, 1),
            opt(self.server_rss_per_interview_mib, 2),
            self.live_actors_after.map_or_else(|| "-".to_owned(), |n| n.to_string()),
            self.media_sessions_after.map_or_else(|| "-".to_owned(), |n| n.to_string()),
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
        assert_eq!(parsed["live_actors_after"], "-");
        assert_eq!(parsed["turn_cut_rate"], "-");
    }

    #[test]
    fn the_leak_check_passes_within_ten_percent() {
        let fine = LeakCheck::new((100, 50.0), (1000, 54.0));
        assert!(fine.within_10_pct && (fine.growth_pct - 8.0).abs() < 1e-9);
        assert!(!LeakCheck::new((100, 50.0), (1000, 56.0)).within_10_pct);
    }

    #[test]
    fn the_soak_compares_the_second_tenth_with_the_last() {
        let samples: Vec<RssSample> = (0..100)
            .map(|i| RssSample {
                t_s: f64::from(i),
                rss_mib: if i < 10 {
                    10.0
                } else {
                    40.0 + f64::from(i) / 10.0
                },
                live: 5,
                ..RssSample::default()
            })
            .collect();
        let soak = Soak::of(&samples, 100.0).expect("enough samples");
        assert!((soak.rss_early_mib - 41.5).abs() < 1e-9, "{soak:?}");
        assert!((soak.rss_late_mib - 49.5).abs() < 1e-9, "{soak:?}");
        assert!(Soak::of(&samples[..5], 100.0).is_none());
        let thinned = thin(&samples, 10);
        assert_eq!(thinned.len(), 10);
        assert_eq!((thinned[0].t_s, thinned[9].t_s), (0.0, 99.0));
    }
}
