//! `loadtest run`: options, the server under test, scheduling and the report.
//!
//! The server under test is one of:
//! - `--spawn` (the default): the api crate's `Application` in this process, fakes tuned by
//!   `--vendors`. Its CPU is estimated (the process less the candidates' and fakes' threads)
//!   and its memory is the whole process's;
//! - `--server-bin PATH`: the server binary as a child process (fakes in this process), whose
//!   own `/proc` gives its CPU and memory ([`crate::server`]);
//! - `--url`: a running server (loopback only), measured through `--server-pid` if given.
//!
//! Threads: the simulated candidates run on their own tokio runtime (threads named
//! [`procstat::CLIENT_THREAD`]), the fake vendors on another ([`procstat::FAKES_THREAD`]), and
//! an in-process server on the actix system and its HTTP workers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use fakes::{FakeVendors, FakeVendorsConfig, Pacing};
use secrecy::SecretString;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::candidate::{self, Api, Audio, Outcome};
use crate::conversation::Plan;
use crate::procstat::{self, ProcessSample};
use crate::report::{
    BargeInCounts, CandidateSettings, ClientFigures, InterviewCounts, LeakCheck, Percentiles,
    Report, RssSample, ServerFigures, Soak, Summary,
};
use crate::server::{self, BargeInServer, ChildServer, MetricsReading};

/// How often the server's RSS is sampled during a run.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Longest wait after the run for the server's live actors to return to zero.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

/// `loadtest run` options.
#[derive(Debug, Clone, clap::Args)]
pub struct RunOptions {
    /// Start the server in process with fake vendors tuned for load (the default).
    #[arg(long, conflicts_with_all = ["url", "server_bin"])]
    pub spawn: bool,
    /// Start this server binary (`interviewcraft`) as a child process, with the fakes in the
    /// harness, and measure its own CPU and memory.
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    pub server_bin: Option<PathBuf>,
    /// With `--server-bin`: more of the server's environment, `KEY=VALUE` (repeatable; wins
    /// over the harness's), e.g. `VENDORS__TTS_FLUSH=false`.
    #[arg(long = "server-env", value_name = "KEY=VALUE", requires = "server_bin")]
    pub server_env_extra: Vec<String>,
    /// Target an already running server instead (http://127.0.0.1:PORT; loopback only).
    /// Its vendors should be fakes, and its auth rate limit must allow 2 requests per interview.
    #[arg(long)]
    pub url: Option<String>,
    /// With `--url`: the server's process id, to measure its CPU and memory.
    #[arg(long, requires = "url")]
    pub server_pid: Option<u32>,
    /// Spawn mode: database URL (default: a fresh SQLite file in a temporary directory).
    #[arg(long, conflicts_with = "url")]
    pub database_url: Option<String>,
    /// Interviews to run in total (1..=1000; ignored with `--duration`).
    #[arg(long, default_value_t = 20)]
    pub interviews: usize,
    /// Interviews live at once (default: all of them).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Keep `--concurrency` interviews going for this long (`30m`, `90s`), starting a new one
    /// as each ends: a soak. The report has the RSS over time (`rss_timeline`, `soak`).
    #[arg(long, value_parser = parse_duration, requires = "concurrency")]
    pub duration: Option<Duration>,
    /// The leak check: the server's RSS when this many interviews have completed vs at the end
    /// (reported when the run has more interviews than this).
    #[arg(long, default_value_t = 100)]
    pub leak_check_after: usize,
    /// Answers per interview (1..=20).
    #[arg(long, default_value_t = 3)]
    pub answers: usize,
    /// Spread the interviews' starts evenly over this many seconds.
    #[arg(long, default_value_t = 0.0)]
    pub ramp_up: f64,
    /// Hard limit for the whole run, seconds (with `--duration`: after it); unfinished
    /// interviews count as failed.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// How long each answer is voiced, milliseconds.
    #[arg(long, default_value_t = 1200)]
    pub speech_ms: u64,
    /// Code the candidates' audio from 48 kHz (hybrid SILK+CELT) whatever the server's answer
    /// says, as a browser ignoring its `maxplaybackrate` would (by default the harness honours
    /// it like Chrome: coded to wideband, SILK alone).
    #[arg(long)]
    pub full_band: bool,
    /// Every second answer starts while the interviewer's reply plays, this long into it
    /// (default 500 ms), and lasts at least 2.5 s: the barge-in reaction is measured (client:
    /// voice onset → reply audio stops; server: decision → playback stopped).
    #[arg(long, value_name = "MS", num_args = 0..=1, default_missing_value = "500")]
    pub barge_in: Option<u64>,
    /// Each answer pauses once, for a length drawn between `--pause-min-ms` and
    /// `--pause-max-ms`: the report counts how often a reply starts in or after the pause
    /// before the answer ended (`turn_cut_rate`).
    #[arg(long)]
    pub pauses: bool,
    #[arg(long, default_value_t = 600)]
    pub pause_min_ms: u64,
    #[arg(long, default_value_t = 900)]
    pub pause_max_ms: u64,
    /// Exit non-zero when the engine overhead p99 exceeds this many milliseconds.
    #[arg(long)]
    pub fail_over_p99_ms: Option<f64>,
    /// Candidates signing up / logging in / creating their interview at once (the set-up is
    /// not what is measured; SQLite answers "database is locked" to a sign-up storm).
    #[arg(long, default_value_t = 2)]
    pub setup_concurrency: usize,
    /// Spawn and server-bin modes: HTTP worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Keyless local mode: the local interviewer and the espeak-ng voice serve the interviews
    /// (speech recognition stays the load fakes); reports CPU per local interview.
    #[arg(long, conflicts_with = "url")]
    pub local: bool,
    /// With `--local`: the offline recognizer prepared in DIR (`interviewcraft
    /// setup-local-speech DIR`) hears the candidates, who speak a sentence synthesized with
    /// espeak-ng instead of a tone; reports CPU per fully local interview.
    #[arg(long, value_name = "DIR", requires = "local")]
    pub local_speech: Option<std::path::PathBuf>,
    /// The fake vendors' delays. `load` (default): short fixed delays, so the run measures the
    /// engine; `realistic`: the vendors' own latencies (LLM first token 300 ms then 15 ms per
    /// token, TTS first audio 150 ms after its text, 40 ms of audio per character, audio in
    /// real time), so the run shows what a candidate would wait.
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
    /// Overrides the profile's audio time between the STT's interim results, ms (the first
    /// words the barge-in detector can act on).
    #[arg(long, conflicts_with = "url")]
    pub stt_interim_ms: Option<u64>,
    /// Run each of these concurrency levels in turn (`1,50,100,200,300`), each with as many
    /// interviews (at least 3), and write `sweep.svg`, `sweep.md`, `sweep.json` and
    /// `level-<N>.json` to `--out`.
    #[arg(long, value_delimiter = ',', requires = "out")]
    pub sweep: Option<Vec<usize>>,
    /// Where the sweep's files go.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the report (stable keys, every interview's outcome and turns) as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `30m`, `90s`, `1h 30m`: a duration of at most a day.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime_serde::re::humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_zero() || d > Duration::from_secs(24 * 3600) {
        return Err("more than 0, at most 24h".into());
    }
    Ok(d)
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
    /// Audio time between the STT's interim results.
    pub stt_interim_ms: u64,
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
                stt_interim_ms: 1000,
            },
            VendorProfileName::Realistic => Self {
                name,
                stt_result_ms: 0,
                llm_ttft_ms: 300,
                llm_token_ms: 15,
                tts_ttfa_ms: 150,
                tts_ms_per_char: 40.0,
                stt_interim_ms: 1000,
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
        if let Some(ms) = opts.stt_interim_ms {
            profile.stt_interim_ms = ms;
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
        ensure!(self.leak_check_after >= 1, "--leak-check-after: at least 1");
        ensure!(
            self.concurrency.is_none_or(|c| (1..=1000).contains(&c)),
            "--concurrency: 1 to 1000"
        );
        ensure!(
            self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 86_400.0,
            "--timeout: more than 0, at most 86400 seconds (a day)"
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
        ensure!(
            self.barge_in.is_none_or(|ms| (20..=10_000).contains(&ms)),
            "--barge-in: 20 to 10000 ms into the reply"
        );
        ensure!(
            self.pause_min_ms >= 20
                && self.pause_min_ms <= self.pause_max_ms
                && self.pause_max_ms <= 10_000,
            "--pause-min-ms, --pause-max-ms: 20 ≤ min ≤ max ≤ 10000"
        );
        for pair in &self.server_env_extra {
            ensure!(
                pair.split_once('=').is_some_and(|(k, _)| !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')),
                "--server-env: KEY=VALUE, not {pair:?}"
            );
        }
        if let Some(levels) = &self.sweep {
            ensure!(
                !levels.is_empty() && levels.iter().all(|l| (1..=1000).contains(l)),
                "--sweep: concurrency levels from 1 to 1000"
            );
            ensure!(
                self.duration.is_none() && self.json.is_none(),
                "--sweep writes its own files to --out: no --duration, no --json"
            );
        }
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
            (20..=10_000).contains(&profile.stt_interim_ms),
            "--stt-interim-ms: 20 to 10000"
        );
        ensure!(
            profile.tts_ms_per_char.is_finite()
                && (1.0..=1000.0).contains(&profile.tts_ms_per_char),
            "--tts-ms-per-char: 1 to 1000"
        );
        Ok(())
    }

    /// The mode the report names.
    fn mode(&self) -> &'static str {
        if self.url.is_some() {
            "url"
        } else if self.server_bin.is_some() {
            "server_bin"
        } else {
            "spawn"
        }
    }
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

/// The interviewer's replies in a barge-in run: long enough (about 150 characters, 4–6 s of
/// audio) that the candidate can start half a second in and the server still has time to
/// decide before the reply ends.
const LONG_REPLIES: [&str; 4] = [
    "Hello, and welcome to this practice interview. To start, tell me about a project you are proud of, what your own part in it was, and how it turned out in the end.",
    "Thank you, that is a good start. Now tell me more about the hardest part of that project, what made it hard, and what you did yourself when it got difficult.",
    "Good. Let us talk about quality for a moment: how did you test the work, who reviewed it before it shipped, and what would you do differently next time around?",
    "Thanks. One more question before we finish: if you had to do the whole project again from the beginning, what would you change first, and why that one?",
];

/// Fakes for a run: the profile's vendor latencies (`load`: short and fixed, so the run
/// measures the engine, not the fakes), audio in real time, no per-key connection limit in the
/// way; long replies for a barge-in run.
pub fn fakes_config(profile: &VendorProfile, long_replies: bool) -> FakeVendorsConfig {
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
    if long_replies {
        config.anthropic.replies = LONG_REPLIES.iter().map(|r| (*r).to_owned()).collect();
    }
    config.deepgram.interim_interval = Duration::from_millis(profile.stt_interim_ms);
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

/// The environment of the server binary (`--server-bin`): the same settings as
/// [`spawn_settings`], as its environment variables (nothing else is inherited but `PATH`).
pub fn server_env(
    opts: &RunOptions,
    data_dir: &Path,
    fakes: &FakeVendors,
) -> Vec<(String, String)> {
    let concurrency = opts.concurrency.unwrap_or(opts.interviews);
    let database = opts.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("loadtest.db").display()
        )
    });
    let mut env: Vec<(&str, String)> = vec![
        ("LISTEN_ADDR", "127.0.0.1:0".into()),
        ("DATA_DIR", data_dir.display().to_string()),
        ("DATABASE_URL", database),
        ("BCRYPT_COST", "4".into()),
        ("WEBRTC_LOOPBACK_ONLY", "true".into()),
        (
            "MAX_LIVE_INTERVIEWS",
            concurrency.saturating_mul(2).max(10).to_string(),
        ),
        ("FREE_INTERVIEWS", "10".into()),
        ("AUTH_RATE_LIMIT_PER_MINUTE", "1000000".into()),
        // Every candidate signs up from loopback (a server without this setting ignores it).
        ("SIGNUPS_PER_IP_PER_DAY", u32::MAX.to_string()),
        // JSON lines; warnings, and the line that tells the port.
        ("LOG_FORMAT", "json".into()),
        ("LOG_LEVEL", "warn,api::cli=info".into()),
        ("LOCAL_VENDORS", "local".into()),
        ("LOCAL_SPEECH_AUTO_SETUP", "false".into()),
        ("ANTHROPIC_BASE_URL", fakes.anthropic.base_url()),
        ("DEEPGRAM_BASE_URL", fakes.deepgram.base_url()),
        ("ELEVENLABS_WS_BASE_URL", fakes.elevenlabs.ws_base_url()),
        ("ELEVENLABS_HTTP_BASE_URL", fakes.elevenlabs.base_url()),
    ];
    if let Some(workers) = opts.workers {
        env.push(("WORKERS", workers.to_string()));
    }
    let extra: Vec<(&str, String)> = opts
        .server_env_extra
        .iter()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
    if !opts.local {
        env.push(("ANTHROPIC_API_KEY", "loadtest-key".into()));
        env.push(("ELEVENLABS_API_KEY", "loadtest-key".into()));
    }
    match &opts.local_speech {
        Some(dir) => env.push(("LOCAL_SPEECH_DIR", dir.display().to_string())),
        None => env.push(("DEEPGRAM_API_KEY", "loadtest-key".into())),
    }
    env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    env.extend(extra);
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
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

/// Where the server's CPU and memory are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// The server runs in this process: the whole process is read (an estimate).
    InProcess,
    /// The server is process `pid`.
    Process(u32),
    /// Not measured (`--url` without `--server-pid`).
    None,
}

impl Probe {
    fn sample(self) -> Option<ProcessSample> {
        match self {
            Probe::InProcess => ProcessSample::of(std::process::id()),
            Probe::Process(pid) => ProcessSample::of(pid),
            Probe::None => None,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Probe::InProcess => "in_process_estimate",
            Probe::Process(_) => "process",
            Probe::None => "none",
        }
    }
}

/// The server a run talks to.
#[derive(Debug, Clone)]
struct Target {
    base: String,
    probe: Probe,
}

/// Runs the whole load test (blocking). Only setup errors are `Err`; failed interviews are in
/// the report.
pub fn run(opts: &RunOptions) -> anyhow::Result<Report> {
    opts.validate()?;
    api::install_crypto_provider();
    raise_open_file_limit();
    let client_rt = runtime(procstat::CLIENT_THREAD, 2)?;
    if let Some(url) = &opts.url {
        let target = Target {
            base: loopback_base_url(url)?,
            probe: opts.server_pid.map_or(Probe::None, Probe::Process),
        };
        return client_rt.block_on(drive(opts.clone(), target));
    }
    let profile = VendorProfile::from_options(opts);
    let fakes_rt = runtime(procstat::FAKES_THREAD, 1)?;
    let fakes = fakes_rt
        .block_on(FakeVendors::start_all(fakes_config(
            &profile,
            opts.barge_in.is_some(),
        )))
        .context("starting the fake vendors")?;
    let data_dir = tempfile::tempdir().context("temporary directory")?;
    let report = match &opts.server_bin {
        Some(bin) => run_child(opts, bin, data_dir.path(), &fakes, &client_rt),
        None => {
            let settings = spawn_settings(opts, data_dir.path(), &fakes);
            let opts = opts.clone();
            let handle = client_rt.handle().clone();
            actix_web::rt::System::new().block_on(async move {
                let app = api::startup::Application::build(settings)
                    .await
                    .context("building the server")?;
                let target = Target {
                    base: format!("http://127.0.0.1:{}", app.port()),
                    probe: Probe::InProcess,
                };
                actix_web::rt::spawn(app.run_until_stopped());
                handle
                    .spawn(drive(opts, target))
                    .await
                    .context("the harness task")?
            })
        }
    };
    fakes_rt.block_on(fakes.shutdown());
    drop(data_dir);
    report
}

/// Raises this process's soft limit of open files to its hard limit (best effort; the server
/// child inherits it): hundreds of interviews hold a UDP socket per candidate and three vendor
/// connections each in the fakes, past a common soft limit of 1,024.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit
        .maximum
        .is_some_and(|max| limit.current.is_none_or(|cur| cur < max))
    {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "could not raise the open-file limit");
        }
    }
}

/// `--server-bin`: the server binary as a child process for the run, stopped after it.
fn run_child(
    opts: &RunOptions,
    bin: &Path,
    data_dir: &Path,
    fakes: &FakeVendors,
    client_rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Report> {
    let log = match &opts.json {
        Some(json) => json.with_extension("server.log"),
        None => data_dir.join("server.log"),
    };
    let child = ChildServer::start(bin, &server_env(opts, data_dir, fakes), &log)?;
    let target = Target {
        base: child.base_url().to_owned(),
        probe: Probe::Process(child.pid()),
    };
    let report = client_rt.block_on(drive(opts.clone(), target));
    let tail = child.tail();
    let clean = child.stop();
    let mut report = report.with_context(|| format!("the server's log ends:\n{tail}"))?;
    report.server.clean_exit = Some(clean);
    if opts.json.is_some() {
        report.server.log = Some(log.display().to_string());
    }
    if !clean {
        fail(
            &mut report,
            "the server did not exit cleanly after SIGTERM".into(),
        );
    }
    Ok(report)
}

/// The server's RSS and the live interviews, every [`SAMPLE_EVERY`], until stopped.
struct Sampler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<RssSample>>,
}

impl Sampler {
    /// Also reads the server's own live interviews and media sessions from its `/metrics`
    /// (`base`) at each sample, when it answers.
    fn start(
        probe: Probe,
        live: Arc<AtomicUsize>,
        started: Instant,
        http: reqwest::Client,
        base: String,
    ) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let live = live.load(Ordering::Relaxed);
                let Some(rss_mib) = rss_mib(probe) else {
                    continue;
                };
                let t_s = started.elapsed().as_secs_f64();
                let reading = server::scrape(&http, &base).await.ok();
                samples.push(RssSample {
                    t_s,
                    rss_mib,
                    live,
                    server_live: reading.as_ref().and_then(|r| r.live_interviews),
                    media_sessions: reading.and_then(|r| r.live_media_sessions),
                });
            }
            samples
        });
        Self { stop, task }
    }

    async fn finish(self) -> Vec<RssSample> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// The server's resident memory now (cheap: `status` only), MiB.
fn rss_mib(probe: Probe) -> Option<f64> {
    let pid = match probe {
        Probe::InProcess => std::process::id(),
        Probe::Process(pid) => pid,
        Probe::None => return None,
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// What the candidates do in this run.
fn plan(opts: &RunOptions, speech: Duration) -> Plan {
    Plan {
        answers: opts.answers,
        speech,
        reaction: Duration::from_millis(300),
        reply_timeout: Duration::from_secs(20),
        barge_in_after: opts.barge_in.map(Duration::from_millis),
        pauses: opts.pauses.then(|| {
            (
                Duration::from_millis(opts.pause_min_ms),
                Duration::from_millis(opts.pause_max_ms),
            )
        }),
        seed: 0,
    }
}

/// Schedules the candidates, waits for them (bounded by `--timeout`) and builds the report.
async fn drive(opts: RunOptions, target: Target) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("HTTP client")?;
    let live = Arc::new(AtomicUsize::new(0));
    let api = Api {
        http: http.clone(),
        base: target.base.clone(),
        setup_gate: Arc::new(Semaphore::new(opts.setup_concurrency)),
        live: live.clone(),
    };
    check_health(&api, &opts).await?;
    let (audio, speech) = if opts.local_speech.is_some() {
        let audio = Audio::speech(LOCAL_SPEECH_ANSWER, !opts.full_band)?;
        let length = audio.voiced_duration();
        (audio, length)
    } else {
        (
            Audio::new(!opts.full_band)?,
            Duration::from_millis(opts.speech_ms),
        )
    };
    let plan = plan(&opts, speech);
    let concurrency = opts.concurrency.unwrap_or(opts.interviews);
    let metrics_before = server::scrape(&http, &target.base).await.ok();
    if target.probe == Probe::InProcess {
        procstat::reset_own_peak_rss();
    }
    let idle = target.probe.sample();
    let cpu_before = procstat::cpu_by_group();
    let process_before = procstat::process_cpu_s().unwrap_or(0.0);
    let children_before =
        procstat::children_cpu_s().unwrap_or(0.0) + procstat::living_children_cpu_s();
    let started = Instant::now();
    let sampler = Sampler::start(
        target.probe,
        live.clone(),
        started,
        http.clone(),
        target.base.clone(),
    );

    let scheduled = schedule(&opts, &api, &plan, &audio, concurrency, target.probe).await;

    let wall_s = started.elapsed().as_secs_f64();
    let server_after = target.probe.sample();
    let process_cpu = procstat::process_cpu_s().unwrap_or(0.0) - process_before;
    let groups = procstat::cpu_by_group().since(&cpu_before);
    let children_cpu = (procstat::children_cpu_s().unwrap_or(0.0)
        + procstat::living_children_cpu_s()
        - children_before)
        .max(0.0);
    let samples = sampler.finish().await;
    // Once every interview ended: the live actors must return to zero.
    let settled = settle(&http, &target.base).await;
    let end_rss = rss_mib(target.probe);

    let outcomes = scheduled.outcomes;
    let mut summary = summarize(&outcomes, opts.mode(), wall_s);
    summary.local = opts.local;
    let profile = (opts.url.is_none()).then(|| VendorProfile::from_options(&opts));
    if let Some(profile) = profile {
        summary.vendors = profile.label();
        summary.vendor_profile = Some(profile);
    }
    // This process (spawn mode: with the server in it). With the server as a child process,
    // its CPU is the server's figure, not this process's children's.
    let children_cpu = if target.probe == Probe::InProcess {
        children_cpu
    } else {
        0.0
    };
    summary.child_cpu_s = children_cpu;
    summary.cpu_s = process_cpu.max(groups.total_s()) + children_cpu;
    summary.rss_mb = procstat::peak_rss_mb();

    let mut server = ServerFigures {
        source: target.probe.source().to_owned(),
        pid: match target.probe {
            Probe::Process(pid) => Some(pid),
            _ => None,
        },
        idle_rss_mib: idle.map(|s| s.rss_mib),
        ..ServerFigures::default()
    };
    match target.probe {
        Probe::InProcess => {
            let cpu = (summary.cpu_s - groups.client_s - groups.fakes_s).max(0.0);
            server.cpu_seconds = Some(cpu);
            server.child_cpu_seconds = Some(children_cpu);
            server.peak_rss_mib = summary.rss_mb;
        }
        Probe::Process(_) => {
            if let (Some(before), Some(after)) = (idle, server_after) {
                server.cpu_seconds = Some((after.total_cpu_s() - before.total_cpu_s()).max(0.0));
                server.child_cpu_seconds =
                    Some((after.children_cpu_s - before.children_cpu_s).max(0.0));
                server.peak_rss_mib = Some(after.peak_rss_mib);
            }
        }
        Probe::None => {}
    }
    if let Some(cpu) = server.cpu_seconds {
        server.cores_avg = (wall_s > 0.0).then(|| cpu / wall_s);
        server.cpu_per_interview_pct =
            (summary.interview_min > 0.0).then(|| 100.0 * cpu / (summary.interview_min * 60.0));
    }
    if let Some(peak) = samples
        .iter()
        .max_by(|a, b| a.live.cmp(&b.live).then(a.rss_mib.total_cmp(&b.rss_mib)))
        .filter(|s| s.live > 0)
    {
        server.peak_live = peak.live;
        server.rss_at_peak_live_mib = Some(peak.rss_mib);
        server.rss_per_interview_mib = server
            .idle_rss_mib
            .map(|idle| (peak.rss_mib - idle) / peak.live as f64);
    }
    server.peak_server_live = samples.iter().filter_map(|s| s.server_live).max();
    server.peak_media_sessions = samples.iter().filter_map(|s| s.media_sessions).max();
    // The summary line's older figures, from the same numbers.
    summary.server_cpu_s = server.cpu_seconds;
    if let Some(child) = server.child_cpu_seconds {
        summary.child_cpu_s = child;
    }
    if summary.interview_min > 0.0 {
        summary.server_cores_per_interview = summary
            .server_cpu_s
            .map(|s| s / (summary.interview_min * 60.0));
        summary.cpu_s_per_interview_min = Some(summary.cpu_s / summary.interview_min);
        summary.server_cpu_s_per_interview_min =
            summary.server_cpu_s.map(|s| s / summary.interview_min);
    }

    let barge_in_server = settled
        .as_ref()
        .and_then(|after| after.barge_in.as_ref())
        .map(|after| {
            BargeInServer::from_histogram(
                &after.since(metrics_before.as_ref().and_then(|b| b.barge_in.as_ref())),
            )
        });
    let leak_check = match (scheduled.rss_after_leak_mark, end_rss) {
        (Some(after), Some(end)) if outcomes.len() > opts.leak_check_after => Some(LeakCheck::new(
            (opts.leak_check_after, after),
            (outcomes.len(), end),
        )),
        _ => None,
    };
    let soak = opts
        .duration
        .and_then(|d| Soak::of(&samples, d.as_secs_f64()));

    let ok: Vec<&Outcome> = outcomes.iter().filter(|o| o.ok).collect();
    let barge_in_ms: Vec<f64> = ok
        .iter()
        .flat_map(|o| o.measured.barge_in_ms.iter().copied())
        .collect();
    let pauses: u32 = outcomes.iter().map(|o| o.measured.pauses).sum();
    let turn_cuts: u32 = outcomes.iter().map(|o| o.measured.turn_cuts).sum();
    summary.barge_in_ms = Percentiles::of(&barge_in_ms);
    summary.barge_in_server_p95_ms = barge_in_server.and_then(|b| b.p95);
    summary.pauses = pauses;
    summary.turn_cut_rate = (pauses > 0).then(|| f64::from(turn_cuts) / f64::from(pauses));
    summary.server_source = server.source.clone();
    summary.server_cores_avg = server.cores_avg;
    summary.server_cpu_per_interview_pct = server.cpu_per_interview_pct;
    summary.server_peak_rss_mib = server.peak_rss_mib;
    summary.server_rss_per_interview_mib = server.rss_per_interview_mib;
    summary.live_actors_after = settled.as_ref().and_then(|m| m.live_actors);
    summary.media_sessions_after = settled.as_ref().and_then(|m| m.live_media_sessions);
    verdict(&mut summary, opts.fail_over_p99_ms);

    let client_cpu = groups.client_s;
    Ok(Report {
        mode: summary.mode.clone(),
        vendors: if summary.vendors.is_empty() {
            "-".into()
        } else {
            summary.vendors.clone()
        },
        vendor_profile: summary.vendor_profile,
        candidates: CandidateSettings {
            answers: opts.answers,
            speech_ms: u64::try_from(speech.as_millis()).unwrap_or(u64::MAX),
            concurrency,
            barge_in_after_ms: opts.barge_in,
            pause_ms: opts
                .pauses
                .then_some([opts.pause_min_ms, opts.pause_max_ms]),
            duration_s: opts.duration.map(|d| d.as_secs_f64()),
        },
        interviews: InterviewCounts {
            started: scheduled.started,
            completed: summary.ok,
            failed: summary.failed,
        },
        turns: summary.turns,
        v2v_client_ms: summary.gap_ms,
        v2v_server_ms: summary.v2v_ms,
        breakdown_ms: summary.breakdown_ms.clone(),
        engine_overhead_ms: summary.overhead_ms,
        barge_in_ms: summary.barge_in_ms,
        barge_in: BargeInCounts {
            attempts: outcomes.iter().map(|o| o.measured.barge_in_attempts).sum(),
            measured: barge_in_ms.len(),
            missed: outcomes.iter().map(|o| o.measured.barge_in_missed).sum(),
            skipped: outcomes.iter().map(|o| o.measured.barge_in_skipped).sum(),
        },
        barge_in_server_ms: barge_in_server,
        pauses,
        turn_cuts,
        turn_cut_rate: summary.turn_cut_rate,
        stalls: summary.reply_stalls,
        talked_over: outcomes.iter().map(|o| o.measured.talked_over).sum(),
        loss_pct: summary.loss_pct,
        setup_retries: summary.setup_retries,
        interview_min: summary.interview_min,
        wall_s,
        server,
        client: ClientFigures {
            cpu_seconds: client_cpu,
            fakes_cpu_seconds: groups.fakes_s,
            cores_avg: if wall_s > 0.0 {
                client_cpu / wall_s
            } else {
                0.0
            },
            cpu_by_thread: procstat::cpu_by_thread_name(),
        },
        live_actors_after: summary.live_actors_after,
        media_sessions_after: summary.media_sessions_after,
        leak_check,
        soak,
        rss_timeline: crate::report::thin(&samples, 200),
        verdict: summary.verdict.clone(),
        verdict_reason: summary.verdict_reason.clone(),
        summary,
        outcomes,
    })
}

/// Reachability first (a wrong --url fails fast and clearly), and the local mode's checks.
async fn check_health(api: &Api, opts: &RunOptions) -> anyhow::Result<()> {
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
    Ok(())
}

/// Reads `/metrics` until the live actors and the media sessions are back to zero (or
/// [`SETTLE_TIMEOUT`]); the last reading. `None` when the server has no readable `/metrics`.
async fn settle(http: &reqwest::Client, base: &str) -> Option<MetricsReading> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last = None;
    loop {
        if let Ok(reading) = server::scrape(http, base).await {
            let idle = reading.live_actors.is_none_or(|n| n == 0)
                && reading.live_media_sessions.is_none_or(|n| n == 0);
            last = Some(reading);
            if idle {
                return last;
            }
        }
        if Instant::now() >= deadline {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the scheduler collected.
struct Scheduled {
    started: usize,
    outcomes: Vec<Outcome>,
    /// The server's RSS when the `--leak-check-after`-th interview completed.
    rss_after_leak_mark: Option<f64>,
}

/// Runs the candidates: `--interviews` of them at most `concurrency` at once, or (with
/// `--duration`) `concurrency` at once, a new one as each ends, until the duration is over.
async fn schedule(
    opts: &RunOptions,
    api: &Api,
    plan: &Plan,
    audio: &Arc<Audio>,
    concurrency: usize,
    probe: Probe,
) -> Scheduled {
    let started = Instant::now();
    let (first_wave, starts_until) = match opts.duration {
        Some(duration) => (concurrency, Some(started + duration)),
        None => (opts.interviews, None),
    };
    let hard_deadline = tokio::time::Instant::from_std(
        started + opts.duration.unwrap_or_default() + Duration::from_secs_f64(opts.timeout),
    );
    let permits = Arc::new(Semaphore::new(concurrency));
    let spawn = |set: &mut JoinSet<Outcome>, index: usize, delay: Duration| {
        let (api, audio, permits) = (api.clone(), audio.clone(), permits.clone());
        let plan = Plan {
            seed: index as u64,
            ..plan.clone()
        };
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
    };
    let mut set = JoinSet::new();
    for index in 0..first_wave {
        let delay = Duration::from_secs_f64(opts.ramp_up * index as f64 / first_wave as f64);
        spawn(&mut set, index, delay);
    }
    let mut next_index = first_wave;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; first_wave];
    let mut completed = 0usize;
    let mut rss_after_leak_mark = None;
    loop {
        match tokio::time::timeout_at(hard_deadline, set.join_next()).await {
            Ok(Some(Ok(mut outcome))) => {
                let now = Instant::now();
                outcome.ended_s = now.saturating_duration_since(started).as_secs_f64();
                completed += 1;
                if completed == opts.leak_check_after {
                    rss_after_leak_mark = rss_mib(probe);
                }
                let index = outcome.index;
                if let Some(slot) = outcomes.get_mut(index) {
                    *slot = Some(outcome);
                }
                if starts_until.is_some_and(|until| now < until) {
                    outcomes.push(None);
                    spawn(&mut set, next_index, Duration::ZERO);
                    next_index += 1;
                }
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
    let given_up_s = started.elapsed().as_secs_f64();
    let outcomes = outcomes
        .into_iter()
        .enumerate()
        .map(|(index, outcome)| {
            outcome.unwrap_or_else(|| Outcome {
                index,
                error: Some(format!(
                    "timeout: not finished within --timeout {}s",
                    opts.timeout
                )),
                ended_s: given_up_s,
                ..Outcome::default()
            })
        })
        .collect();
    Scheduled {
        started: next_index,
        outcomes,
        rss_after_leak_mark,
    }
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
    let gaps: Vec<f64> = ok
        .iter()
        .flat_map(|o| o.measured.gaps_ms.iter().copied())
        .collect();
    let packets_in: u64 = outcomes.iter().map(|o| o.frames_received).sum();
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
        reply_stalls: outcomes.iter().map(|o| o.measured.reply_stalls).sum(),
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
    if let Some(live) = summary.live_actors_after.filter(|n| *n != 0) {
        reasons.push(format!("{live} actors still live after the run"));
    }
    if let Some(held) = summary.media_sessions_after.filter(|n| *n != 0) {
        reasons.push(format!("{held} media sessions still held after the run"));
    }
    if reasons.is_empty() {
        summary.verdict = "pass".into();
    } else {
        summary.verdict = "fail".into();
        summary.verdict_reason = Some(reasons.join("; "));
    }
}

/// Marks a finished report failed for `reason` (kept with any earlier reason).
fn fail(report: &mut Report, reason: String) {
    let reason = match report.verdict_reason.take() {
        Some(earlier) => format!("{earlier}; {reason}"),
        None => reason,
    };
    report.verdict = "fail".into();
    report.verdict_reason = Some(reason.clone());
    report.summary.verdict = "fail".into();
    report.summary.verdict_reason = Some(reason);
}

/// `--sweep`: one run per concurrency level, then the chart, the table and the reports.
pub fn sweep(opts: &RunOptions) -> anyhow::Result<Vec<Report>> {
    opts.validate()?;
    let (Some(levels), Some(out)) = (&opts.sweep, &opts.out) else {
        bail!("--sweep needs --out");
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut reports = Vec::new();
    for &level in levels {
        let mut level_opts = opts.clone();
        level_opts.sweep = None;
        level_opts.interviews = level.max(3);
        level_opts.concurrency = Some(level);
        let report = run(&level_opts).with_context(|| format!("the run at {level}"))?;
        println!("{}", report.summary.line());
        let path = out.join(format!("level-{level}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        reports.push(report);
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    crate::chart::write_sweep(out, &reports, &command)?;
    Ok(reports)
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
        let config = fakes_config(&realistic, false);
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
    fn barge_in_pauses_and_soak_options_parse_and_are_checked() {
        let opts = options(&["--barge-in", "--pauses", "--stt-interim-ms", "200"]);
        assert_eq!(opts.barge_in, Some(500), "the default point into the reply");
        assert!(opts.validate().is_ok());
        let plan = plan(&opts, Duration::from_millis(1200));
        assert_eq!(plan.barge_in_after, Some(Duration::from_millis(500)));
        assert_eq!(
            plan.pauses,
            Some((Duration::from_millis(600), Duration::from_millis(900)))
        );
        assert_eq!(VendorProfile::from_options(&opts).stt_interim_ms, 200);
        assert_eq!(options(&["--barge-in", "800"]).barge_in, Some(800));
        assert!(
            options(&["--pauses", "--pause-min-ms", "900", "--pause-max-ms", "600"])
                .validate()
                .is_err()
        );
        let soak = options(&["--duration", "30m", "--concurrency", "100"]);
        assert_eq!(soak.duration, Some(Duration::from_secs(1800)));
        assert!(soak.validate().is_ok());
        assert!(parse_duration("0s").is_err() && parse_duration("2d").is_err());
        let sweep = options(&["--sweep", "1,50,100", "--out", "/tmp/x"]);
        assert_eq!(sweep.sweep, Some(vec![1, 50, 100]));
        assert!(sweep.validate().is_ok());
        assert!(
            options(&["--sweep", "0,5", "--out", "/tmp/x"])
                .validate()
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_server_binary_gets_the_spawn_settings_as_its_environment() {
        let fakes = FakeVendors::start_all(fakes_config(
            &VendorProfile::named(VendorProfileName::Load),
            true,
        ))
        .await
        .expect("fakes");
        let dir = std::path::Path::new("/tmp/lt-data");
        let env = server_env(&options(&["--interviews", "300"]), dir, &fakes);
        let get = |key: &str| {
            env.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{key} is set"))
        };
        assert_eq!(get("LISTEN_ADDR"), "127.0.0.1:0");
        assert_eq!(get("WEBRTC_LOOPBACK_ONLY"), "true");
        assert_eq!(get("MAX_LIVE_INTERVIEWS"), "600");
        assert_eq!(get("LOCAL_SPEECH_AUTO_SETUP"), "false");
        assert_eq!(get("ANTHROPIC_BASE_URL"), fakes.anthropic.base_url());
        assert!(get("DATABASE_URL").starts_with("sqlite:///tmp/lt-data/"));
        let extra = options(&[
            "--server-bin",
            "/bin/true",
            "--server-env",
            "VENDORS__TTS_FLUSH=false",
            "--server-env",
            "BCRYPT_COST=5",
        ]);
        assert!(extra.validate().is_ok());
        let env = server_env(&extra, dir, &fakes);
        let values = |key: &str| {
            env.iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(values("VENDORS__TTS_FLUSH"), ["false"]);
        assert_eq!(values("BCRYPT_COST"), ["5"], "the extra wins, once");
        assert!(
            options(&["--server-bin", "x", "--server-env", "=1"])
                .validate()
                .is_err()
        );
        let local = server_env(&options(&["--local"]), dir, &fakes);
        assert!(
            !local
                .iter()
                .any(|(k, _)| k == "ANTHROPIC_API_KEY" || k == "ELEVENLABS_API_KEY"),
            "keyless local mode"
        );
        fakes.shutdown().await;
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
        let mut leaking = Summary {
            interviews: 1,
            ok: 1,
            turns: 1,
            live_actors_after: Some(2),
            ..Summary::default()
        };
        verdict(&mut leaking, None);
        assert_eq!(leaking.verdict, "fail", "actors left after the run");
    }
}
