//! `loadtest run`: options, the server under test, scheduling and the report.
//!
//! Threads: the simulated candidates run on their own tokio runtime (threads named
//! [`procstat::CLIENT_THREAD`]), the fake vendors (spawn mode) on another
//! ([`procstat::FAKES_THREAD`]), and the server on the actix system and its HTTP workers, so
//! the report can give the server's own CPU time next to the whole process's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use fakes::{FakeVendors, FakeVendorsConfig, Pacing};
use secrecy::SecretString;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::candidate::{self, Api, Audio, CandidatePlan, Outcome};
use crate::procstat;
use crate::report::{Percentiles, Summary};

/// `loadtest run` options.
#[derive(Debug, Clone, clap::Args)]
pub struct RunOptions {
    /// Start the server in process with fake vendors tuned for load (the default).
    #[arg(long, conflicts_with = "url")]
    pub spawn: bool,
    /// Target an already running server instead (http://127.0.0.1:PORT; loopback only).
    /// Its vendors should be fakes, and its auth rate limit must allow 2 requests per interview.
    #[arg(long)]
    pub url: Option<String>,
    /// Spawn mode: database URL (default: a fresh SQLite file in a temporary directory).
    #[arg(long, conflicts_with = "url")]
    pub database_url: Option<String>,
    /// Interviews to run in total (1..=1000).
    #[arg(long, default_value_t = 20)]
    pub interviews: usize,
    /// Interviews live at once (default: all of them).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Answers per interview (1..=20).
    #[arg(long, default_value_t = 3)]
    pub answers: usize,
    /// Spread the interviews' starts evenly over this many seconds.
    #[arg(long, default_value_t = 0.0)]
    pub ramp_up: f64,
    /// Hard limit for the whole run, seconds; unfinished interviews count as failed.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// How long each answer is voiced, milliseconds.
    #[arg(long, default_value_t = 1200)]
    pub speech_ms: u64,
    /// Exit non-zero when the engine overhead p99 exceeds this many milliseconds.
    #[arg(long)]
    pub fail_over_p99_ms: Option<f64>,
    /// Candidates signing up / logging in / creating their interview at once (the set-up is
    /// not what is measured; SQLite answers "database is locked" to a sign-up storm).
    #[arg(long, default_value_t = 2)]
    pub setup_concurrency: usize,
    /// Spawn mode: HTTP worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Spawn mode: keyless local mode: the local interviewer and the espeak-ng voice serve the
    /// interviews (speech recognition stays the load fakes); reports CPU per local interview.
    #[arg(long, conflicts_with = "url")]
    pub local: bool,
    /// Spawn mode, with `--local`: the offline recognizer prepared in DIR (`interviewcraft
    /// setup-local-speech DIR`) hears the candidates, who speak a sentence synthesized with
    /// espeak-ng instead of a tone; reports CPU per fully local interview.
    #[arg(long, value_name = "DIR", requires = "local")]
    pub local_speech: Option<std::path::PathBuf>,
    /// Spawn mode: the fake vendors' delays. `load` (default): short fixed delays, so the run
    /// measures the engine; `realistic`: the vendors' own latencies (LLM first token 300 ms
    /// then 15 ms per token, TTS first audio 150 ms after its text, 40 ms of audio per
    /// character, audio in real time), so the run shows what a candidate would wait.
    #[arg(long, value_enum, default_value_t = VendorProfileName::Load, conflicts_with = "url")]
    pub vendors: VendorProfileName,
    /// Overrides the profile's LLM time to first token, ms.
    #[arg(long, conflicts_with = "url")]
    pub llm_ttft_ms: Option<u64>,
    /// Overrides the profile's LLM time per streamed token, ms.
    #[arg(long, conflicts_with = "url")]
    pub llm_token_ms: Option<u64>,
    /// Overrides the profile's TTS time from text to first audio, ms.
    #[arg(long, conflicts_with = "url")]
    pub tts_ttfa_ms: Option<u64>,
    /// Overrides the profile's TTS audio length per character, ms.
    #[arg(long, conflicts_with = "url")]
    pub tts_ms_per_char: Option<f64>,
    /// Overrides the profile's STT processing delay before each result, ms (the engine's
    /// endpointing silence, 300 ms, comes on top).
    #[arg(long, conflicts_with = "url")]
    pub stt_result_ms: Option<u64>,
    /// Write the summary, every interview's outcome and every turn as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `--vendors`: which delays the spawned fake vendors have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorProfileName {
    Load,
    Realistic,
}

/// The fake vendors' delays for one run (a profile, with any flag overrides applied).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VendorProfile {
    pub name: VendorProfileName,
    pub stt_result_ms: u64,
    pub llm_ttft_ms: u64,
    pub llm_token_ms: u64,
    pub tts_ttfa_ms: u64,
    pub tts_ms_per_char: f64,
}

impl VendorProfile {
    pub fn named(name: VendorProfileName) -> Self {
        match name {
            VendorProfileName::Load => Self {
                name,
                stt_result_ms: 0,
                llm_ttft_ms: 40,
                llm_token_ms: 5,
                tts_ttfa_ms: 30,
                tts_ms_per_char: 25.0,
            },
            VendorProfileName::Realistic => Self {
                name,
                stt_result_ms: 0,
                llm_ttft_ms: 300,
                llm_token_ms: 15,
                tts_ttfa_ms: 150,
                tts_ms_per_char: 40.0,
            },
        }
    }

    /// The profile `--vendors` names, with the per-delay flags applied.
    pub fn from_options(opts: &RunOptions) -> Self {
        let mut profile = Self::named(opts.vendors);
        if let Some(ms) = opts.stt_result_ms {
            profile.stt_result_ms = ms;
        }
        if let Some(ms) = opts.llm_ttft_ms {
            profile.llm_ttft_ms = ms;
        }
        if let Some(ms) = opts.llm_token_ms {
            profile.llm_token_ms = ms;
        }
        if let Some(ms) = opts.tts_ttfa_ms {
            profile.tts_ttfa_ms = ms;
        }
        if let Some(ms) = opts.tts_ms_per_char {
            profile.tts_ms_per_char = ms;
        }
        profile
    }

    /// What the summary line says about it: `realistic`, or `realistic+` when a flag changed a
    /// delay (the JSON report has every value).
    pub fn label(&self) -> String {
        let base = Self::named(self.name);
        let name = match self.name {
            VendorProfileName::Load => "load",
            VendorProfileName::Realistic => "realistic",
        };
        if *self == base {
            name.to_owned()
        } else {
            format!("{name}+")
        }
    }
}

impl RunOptions {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            (1..=1000).contains(&self.interviews),
            "--interviews: 1 to 1000"
        );
        ensure!((1..=20).contains(&self.answers), "--answers: 1 to 20");
        ensure!(
            self.concurrency.is_none_or(|c| c >= 1),
            "--concurrency: at least 1"
        );
        ensure!(
            self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 3600.0,
            "--timeout: more than 0, at most 3600 seconds"
        );
        ensure!(
            self.ramp_up.is_finite() && self.ramp_up >= 0.0 && self.ramp_up < self.timeout,
            "--ramp-up: 0 or more, less than --timeout"
        );
        ensure!(
            self.setup_concurrency >= 1,
            "--setup-concurrency: at least 1"
        );
        ensure!(
            (200..=10_000).contains(&self.speech_ms),
            "--speech-ms: 200 to 10000"
        );
        let profile = VendorProfile::from_options(self);
        for (flag, ms) in [
            ("--stt-result-ms", profile.stt_result_ms),
            ("--llm-ttft-ms", profile.llm_ttft_ms),
            ("--llm-token-ms", profile.llm_token_ms),
            ("--tts-ttfa-ms", profile.tts_ttfa_ms),
        ] {
            ensure!(ms <= 10_000, "{flag}: at most 10000");
        }
        ensure!(
            profile.tts_ms_per_char.is_finite()
                && (1.0..=1000.0).contains(&profile.tts_ms_per_char),
            "--tts-ms-per-char: 1 to 1000"
        );
        Ok(())
    }
}

/// Everything `--json` writes.
#[derive(Debug, Serialize)]
pub struct Details {
    pub summary: Summary,
    /// CPU seconds since the process started, by thread name, at the end of the run
    /// (living threads only): where the time went.
    pub cpu_s_by_thread: std::collections::BTreeMap<String, f64>,
    pub interviews: Vec<Outcome>,
}

/// Checks `--url`: plain HTTP to a loopback IP literal. Returns the base URL without a slash.
pub fn loopback_base_url(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url:?}"))?;
    ensure!(
        parsed.scheme() == "http",
        "--url: only http:// is supported"
    );
    let host = parsed.host_str().unwrap_or_default();
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        bail!("--url: give a loopback IP address (127.0.0.1 or [::1]), not a name");
    };
    ensure!(
        ip.is_loopback(),
        "--url: {ip} is not a loopback address; the harness only talks to this machine"
    );
    ensure!(
        parsed.path() == "/" && parsed.query().is_none(),
        "--url: give only scheme, address and port"
    );
    let port = parsed.port_or_known_default().context("--url: no port")?;
    Ok(format!("http://{}", SocketAddr::new(ip, port)))
}

/// Fakes for a run: the profile's vendor latencies (`load`: short and fixed, so the run
/// measures the engine, not the fakes), audio in real time, no per-key connection limit in the
/// way.
pub fn fakes_config(profile: &VendorProfile) -> FakeVendorsConfig {
    let mut config = FakeVendorsConfig::default()
        .on_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .with_pacing(Pacing::REAL_TIME);
    config.deepgram.max_concurrent_per_key = 100_000;
    config.anthropic.replies = vec![
        "Hello, welcome. Tell me about a project you are proud of.".into(),
        "Thanks. What was the hardest part?".into(),
        "Good. How did you test it?".into(),
        "What would you change next time?".into(),
    ];
    config.deepgram.result_latency = Duration::from_millis(profile.stt_result_ms);
    // Time to first token: half to `message_start`, half to the first text delta.
    let ttft = Duration::from_millis(profile.llm_ttft_ms);
    config.anthropic.time_to_message_start = ttft / 2;
    config.anthropic.time_to_first_text = ttft - ttft / 2;
    config.anthropic.inter_delta = Duration::from_millis(profile.llm_token_ms);
    config.elevenlabs.ttfb = Duration::from_millis(profile.tts_ttfa_ms);
    config.elevenlabs.chars_per_second = 1000.0 / profile.tts_ms_per_char;
    config
}

fn spawn_settings(
    opts: &RunOptions,
    data_dir: &std::path::Path,
    fakes: &FakeVendors,
) -> api::configuration::Settings {
    let key = || Some(SecretString::from("loadtest-key".to_owned()));
    // Local mode: no Claude or ElevenLabs key, so the local implementations serve them.
    let vendor_key = || if opts.local { None } else { key() };
    let concurrency = opts.concurrency.unwrap_or(opts.interviews);
    api::configuration::Settings {
        listen_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        data_dir: data_dir.to_path_buf(),
        database_url: Some(opts.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("loadtest.db").display()
            )
        })),
        bcrypt_cost: 4,
        webrtc_loopback_only: true,
        max_live_interviews: concurrency.saturating_mul(2).max(10),
        free_interviews: 10,
        auth_rate_limit_per_minute: 1_000_000,
        // Every candidate signs up from loopback.
        signups_per_ip_per_day: u32::MAX,
        workers: opts.workers,
        log_level: "warn".into(),
        // Platform keys make the server use "real" vendors: the load-tuned fakes below.
        anthropic_api_key: vendor_key(),
        anthropic_base_url: fakes.anthropic.base_url(),
        // With the offline recognizer, no Deepgram key: it hears the candidates.
        deepgram_api_key: if opts.local_speech.is_some() {
            None
        } else {
            key()
        },
        local_speech_dir: opts.local_speech.clone(),
        local_speech_auto_setup: false,
        deepgram_base_url: fakes.deepgram.base_url(),
        elevenlabs_api_key: vendor_key(),
        elevenlabs_ws_base_url: fakes.elevenlabs.ws_base_url(),
        elevenlabs_http_base_url: fakes.elevenlabs.base_url(),
        local_vendors: api::configuration::LocalVendorsMode::Local,
        ..api::configuration::Settings::default()
    }
}

/// What a `--local-speech` candidate says for each answer.
const LOCAL_SPEECH_ANSWER: &str = "I led the migration of our billing database and cut the \
    monthly costs by thirty percent. The team finished it in six weeks.";

fn runtime(name: &'static str, threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("building the {name} runtime"))
}

/// Runs the whole load test (blocking). Only setup errors are `Err`; failed interviews are in
/// the report.
pub fn run(opts: &RunOptions) -> anyhow::Result<Details> {
    opts.validate()?;
    api::install_crypto_provider();
    let client_rt = runtime(procstat::CLIENT_THREAD, 2)?;
    match &opts.url {
        Some(url) => {
            let base = loopback_base_url(url)?;
            client_rt.block_on(drive(opts.clone(), base, "url"))
        }
        None => {
            let fakes_rt = runtime(procstat::FAKES_THREAD, 1)?;
            let fakes = fakes_rt
                .block_on(FakeVendors::start_all(fakes_config(
                    &VendorProfile::from_options(opts),
                )))
                .context("starting the fake vendors")?;
            let data_dir = tempfile::tempdir().context("temporary directory")?;
            let settings = spawn_settings(opts, data_dir.path(), &fakes);
            let opts = opts.clone();
            let handle = client_rt.handle().clone();
            let details = actix_web::rt::System::new().block_on(async move {
                let app = api::startup::Application::build(settings)
                    .await
                    .context("building the server")?;
                let base = format!("http://127.0.0.1:{}", app.port());
                actix_web::rt::spawn(app.run_until_stopped());
                handle
                    .spawn(drive(opts, base, "spawn"))
                    .await
                    .context("the harness task")?
            });
            fakes_rt.block_on(fakes.shutdown());
            drop(data_dir);
            details
        }
    }
}

/// Schedules the candidates, waits for them (bounded by `--timeout`) and builds the report.
async fn drive(opts: RunOptions, base: String, mode: &str) -> anyhow::Result<Details> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("HTTP client")?;
    let api = Api {
        http,
        base,
        setup_gate: Arc::new(Semaphore::new(opts.setup_concurrency)),
    };
    // Reachability first: a wrong --url fails fast and clearly.
    let health = api
        .http
        .get(format!("{}/health", api.base))
        .send()
        .await
        .with_context(|| format!("the server at {} does not answer", api.base))?;
    if opts.local {
        let health: serde_json::Value = health.json().await.context("/health is not JSON")?;
        let vendors = &health["vendors"];
        ensure!(
            vendors["llm"] == "local" && vendors["tts"] == "local",
            "--local: the server does not serve the interviewer and the voice locally \
             ({vendors}; notes: {}); is espeak-ng installed?",
            health["local_notes"]
        );
        ensure!(
            opts.local_speech.is_none() || vendors["stt"] == "local",
            "--local-speech: the server does not serve speech recognition locally ({vendors}; \
             notes: {}); is the directory prepared?",
            health["local_notes"]
        );
    }
    let (audio, speech) = if opts.local_speech.is_some() {
        let audio = Audio::speech(LOCAL_SPEECH_ANSWER)?;
        let length = audio.voiced_duration();
        (audio, length)
    } else {
        (Audio::new()?, Duration::from_millis(opts.speech_ms))
    };
    let plan = CandidatePlan {
        answers: opts.answers,
        speech,
        reaction: Duration::from_millis(300),
        reply_timeout: Duration::from_secs(20),
    };
    let concurrency = opts.concurrency.unwrap_or(opts.interviews);
    let permits = Arc::new(Semaphore::new(concurrency));
    let cpu_before = procstat::cpu_by_group();
    let process_before = procstat::process_cpu_s().unwrap_or(0.0);
    let children_before =
        procstat::children_cpu_s().unwrap_or(0.0) + procstat::living_children_cpu_s();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(opts.timeout);
    let mut set = JoinSet::new();
    for index in 0..opts.interviews {
        let delay = Duration::from_secs_f64(opts.ramp_up * index as f64 / opts.interviews as f64);
        let (api, plan, audio, permits) =
            (api.clone(), plan.clone(), audio.clone(), permits.clone());
        set.spawn(async move {
            tokio::time::sleep(delay).await;
            let Ok(_permit) = permits.acquire_owned().await else {
                return Outcome {
                    index,
                    error: Some("scheduler: closed".into()),
                    ..Outcome::default()
                };
            };
            candidate::run(api, index, plan, audio).await
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; opts.interviews];
    loop {
        match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(Some(Ok(outcome))) => {
                let index = outcome.index;
                outcomes[index] = Some(outcome);
            }
            Ok(Some(Err(e))) => tracing::warn!("a candidate task failed: {e}"),
            Ok(None) => break,
            Err(_) => {
                set.abort_all();
                while set.join_next().await.is_some() {}
                break;
            }
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let process_cpu = procstat::process_cpu_s().unwrap_or(0.0) - process_before;
    let groups = procstat::cpu_by_group().since(&cpu_before);
    let children_cpu = (procstat::children_cpu_s().unwrap_or(0.0)
        + procstat::living_children_cpu_s()
        - children_before)
        .max(0.0);
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .enumerate()
        .map(|(index, outcome)| {
            outcome.unwrap_or_else(|| Outcome {
                index,
                error: Some(format!(
                    "timeout: not finished within --timeout {}s",
                    opts.timeout
                )),
                ..Outcome::default()
            })
        })
        .collect();
    let mut summary = summarize(&outcomes, mode, wall_s);
    summary.local = opts.local;
    if mode == "spawn" {
        let profile = VendorProfile::from_options(&opts);
        summary.vendors = profile.label();
        summary.vendor_profile = Some(profile);
    }
    summary.child_cpu_s = children_cpu;
    summary.cpu_s = process_cpu.max(groups.total_s()) + children_cpu;
    summary.server_cpu_s =
        (mode == "spawn").then(|| (summary.cpu_s - groups.client_s - groups.fakes_s).max(0.0));
    if summary.interview_min > 0.0 {
        summary.server_cores_per_interview = summary
            .server_cpu_s
            .map(|s| s / (summary.interview_min * 60.0));
        summary.cpu_s_per_interview_min = Some(summary.cpu_s / summary.interview_min);
        summary.server_cpu_s_per_interview_min =
            summary.server_cpu_s.map(|s| s / summary.interview_min);
    }
    summary.rss_mb = procstat::peak_rss_mb();
    verdict(&mut summary, opts.fail_over_p99_ms);
    Ok(Details {
        summary,
        cpu_s_by_thread: procstat::cpu_by_thread_name(),
        interviews: outcomes,
    })
}

/// Latency percentiles and counts over every interview that completed.
pub fn summarize(outcomes: &[Outcome], mode: &str, wall_s: f64) -> Summary {
    let ok: Vec<&Outcome> = outcomes.iter().filter(|o| o.ok).collect();
    let turns: Vec<_> = ok
        .iter()
        .flat_map(|o| &o.turns)
        .filter(|t| t.engine_overhead_ms.is_some())
        .collect();
    let overhead: Vec<f64> = turns.iter().filter_map(|t| t.engine_overhead_ms).collect();
    let v2v: Vec<f64> = turns.iter().filter_map(|t| t.v2v_ms).collect();
    let gaps: Vec<f64> = ok.iter().flat_map(|o| o.gaps_ms.iter().copied()).collect();
    let packets_in: u64 = outcomes.iter().map(|o| o.packets_in).sum();
    let lost: u64 = outcomes.iter().map(|o| o.packets_lost).sum();
    Summary {
        mode: mode.to_owned(),
        interviews: outcomes.len(),
        ok: ok.len(),
        failed: outcomes.len() - ok.len(),
        turns: turns.len(),
        overhead_ms: Percentiles::of(&overhead),
        v2v_ms: Percentiles::of(&v2v),
        breakdown_ms: crate::candidate::part_names()
            .iter()
            .map(|part| {
                let values: Vec<f64> = turns.iter().filter_map(|t| t.part(part)).collect();
                ((*part).to_owned(), Percentiles::of(&values))
            })
            .collect(),
        gap_ms: Percentiles::of(&gaps),
        reply_stalls: outcomes.iter().map(|o| o.reply_stalls).sum(),
        setup_retries: outcomes.iter().map(|o| o.setup_retries).sum(),
        loss_pct: if packets_in + lost > 0 {
            100.0 * lost as f64 / (packets_in + lost) as f64
        } else {
            0.0
        },
        interview_min: outcomes.iter().map(|o| o.joined_s).sum::<f64>() / 60.0,
        wall_s,
        ..Summary::default()
    }
}

fn verdict(summary: &mut Summary, fail_over_p99_ms: Option<f64>) {
    let mut reasons = Vec::new();
    if summary.failed > 0 {
        reasons.push(format!("{} interviews failed", summary.failed));
    }
    if summary.ok > 0 && summary.turns == 0 {
        reasons.push("no turn recorded an engine overhead".to_owned());
    }
    if let (Some(limit), Some(p99)) = (fail_over_p99_ms, summary.overhead_ms.p99)
        && p99 > limit
    {
        reasons.push(format!("overhead p99 {p99:.1} ms over {limit} ms"));
    }
    if reasons.is_empty() {
        summary.verdict = "pass".into();
    } else {
        summary.verdict = "fail".into();
        summary.verdict_reason = Some(reasons.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_ip_urls_are_accepted() {
        assert_eq!(
            loopback_base_url("http://127.0.0.1:8080").expect("loopback"),
            "http://127.0.0.1:8080"
        );
        assert!(loopback_base_url("http://[::1]:8080/").is_ok());
        for bad in [
            "http://10.0.0.1:8080",
            "http://localhost:8080",
            "https://127.0.0.1:8443",
            "http://example.com",
            "http://0.0.0.0:80",
        ] {
            assert!(loopback_base_url(bad).is_err(), "{bad}");
        }
    }

    fn options(args: &[&str]) -> RunOptions {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunOptions,
        }
        let argv = std::iter::once("loadtest").chain(args.iter().copied());
        <Cli as clap::Parser>::try_parse_from(argv)
            .expect("options parse")
            .run
    }

    #[test]
    fn the_realistic_profile_sets_the_vendor_delays_and_flags_override_one_each() {
        let load = VendorProfile::from_options(&options(&[]));
        assert_eq!(load, VendorProfile::named(VendorProfileName::Load));
        assert_eq!(load.label(), "load");
        let realistic = VendorProfile::from_options(&options(&["--vendors", "realistic"]));
        assert_eq!(realistic.label(), "realistic");
        let config = fakes_config(&realistic);
        assert_eq!(
            config.anthropic.time_to_message_start + config.anthropic.time_to_first_text,
            Duration::from_millis(300)
        );
        assert_eq!(config.anthropic.inter_delta, Duration::from_millis(15));
        assert_eq!(config.elevenlabs.ttfb, Duration::from_millis(150));
        assert!((config.elevenlabs.chars_per_second - 25.0).abs() < 1e-9);

        let tuned = options(&["--vendors", "realistic", "--tts-ttfa-ms", "80"]);
        let profile = VendorProfile::from_options(&tuned);
        assert_eq!(profile.tts_ttfa_ms, 80);
        assert_eq!(
            profile.llm_ttft_ms, 300,
            "the other delays stay the profile's"
        );
        assert_eq!(profile.label(), "realistic+");
        assert!(tuned.validate().is_ok());
        assert!(
            options(&["--tts-ms-per-char", "0"]).validate().is_err(),
            "a zero speaking time per character is refused"
        );
    }

    #[test]
    fn failures_and_slow_p99_fail_the_run() {
        let mut summary = Summary {
            interviews: 2,
            ok: 1,
            failed: 1,
            turns: 1,
            overhead_ms: Percentiles::of(&[50.0]),
            ..Summary::default()
        };
        verdict(&mut summary, Some(30.0));
        assert_eq!(summary.verdict, "fail");
        let reason = summary.verdict_reason.expect("a reason");
        assert!(reason.contains("1 interviews failed") && reason.contains("p99"));
    }
}
