//! One typed [`Settings`], layered: built-in defaults and the embedded settings file
//! (`default_settings.toml`: the shipped price table), then an optional TOML file, then
//! environment variables (and command-line flags, which clap reads together with the environment).
//!
//! Secrets are [`SecretString`]s and are never printed. In the embedded default (development),
//! a missing `JWT_SECRET`, `KEY_ENCRYPTION_KEY` or `ABUSE_LEDGER_KEY` is generated once and
//! persisted under the data directory, so a newcomer needs no set-up; with
//! `APP_ENV=production` all three must be given.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use engine::byok_cipher::{KeyRing, MasterKey};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The shipped settings, the lowest file layer (prices per model).
const DEFAULT_SETTINGS: &str = include_str!("default_settings.toml");

/// The price table of the embedded settings file.
pub fn shipped_prices() -> engine::metering::PriceTable {
    Figment::from(Toml::string(DEFAULT_SETTINGS))
        .extract_inner("prices")
        .expect("the embedded settings file's price table parses (a unit test checks it)")
}

/// Where the server runs; production tightens every default that is lenient for a newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What serves a vendor kind that has no key (keyless local mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LocalVendorsMode {
    /// In-process local implementations (the rule-based interviewer, the espeak-ng voice), and
    /// the protocol fakes for what has no local implementation yet.
    Local,
    /// The protocol fakes only (tests): scripted replies, simulated recognition, a synthetic
    /// tone for the voice.
    Fakes,
}

/// Every setting of the server. Field docs name the environment variable of each.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `APP_ENV`: `development` (default) or `production`.
    pub environment: Environment,
    /// `LISTEN_ADDR`: address of the HTTP listener; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// `DATA_DIR`: where the embedded SQLite file and generated secrets live.
    pub data_dir: PathBuf,
    /// `DATABASE_URL`: `sqlite://...` or `postgres://...`; default a SQLite file in `DATA_DIR`.
    pub database_url: Option<String>,
    /// `DATABASE_MAX_CONNECTIONS`.
    pub database_max_connections: u32,
    /// `JWT_SECRET`: HMAC key for access tokens (at least 32 bytes).
    pub jwt_secret: Option<SecretString>,
    /// `KEY_ENCRYPTION_KEY`: base64 of 32 random bytes; encrypts BYOK keys (AES-256-GCM).
    pub key_encryption_key: Option<SecretString>,
    /// `PREVIOUS_KEY_ENCRYPTION_KEYS`: comma-separated earlier master keys, still accepted for
    /// decryption while `interviewcraft rotate-keys` re-encrypts rows under the current one.
    pub previous_key_encryption_keys: Option<SecretString>,
    /// `LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// `LOG_LEVEL`: a tracing filter such as `info` or `api=debug,info`.
    pub log_level: String,
    /// `BCRYPT_COST`: 12 by default; at least 12 in production, lower only for tests.
    pub bcrypt_cost: u32,
    /// `ACCESS_TOKEN_TTL_SECS`: lifetime of an access token (JWT).
    pub access_token_ttl_secs: u64,
    /// `REFRESH_TOKEN_TTL_SECS`: lifetime of a refresh token.
    pub refresh_token_ttl_secs: u64,
    /// `REFRESH_REUSE_WINDOW_SECS`: how long after a refresh token is exchanged another
    /// exchange of it (two tabs, a retried request) gets the same successor instead of counting
    /// as reuse; 0 turns the window off.
    pub refresh_reuse_window_secs: u64,
    /// `LOGIN_MAX_FAILURES`: failed password checks (sign-in, or the re-checks of `/me`) per
    /// subject and client before that client waits (see `auth::attempts`).
    pub login_max_failures: u32,
    /// `LOGIN_LOCKOUT_SECS`: the window of those failures, and the wait.
    pub login_lockout_secs: u64,
    /// `AUTH_RATE_LIMIT_PER_MINUTE`: requests per client IP per minute on `/api/v1/auth/*`.
    pub auth_rate_limit_per_minute: u32,
    /// `TRUST_FORWARDED_FOR`: take the client IP from `X-Forwarded-For` (behind a proxy only).
    pub trust_forwarded_for: bool,
    /// `TRUSTED_PROXY_HOPS`: how many proxies we trust in front of the server; the client IP is
    /// the `X-Forwarded-For` entry the outermost of them added (0 with `TRUST_FORWARDED_FOR`
    /// counts as 1).
    pub trusted_proxy_hops: u8,
    /// `JSON_BODY_LIMIT_BYTES`: largest accepted JSON body.
    pub json_body_limit_bytes: usize,
    /// `TLS_CERT_PATH` and `TLS_KEY_PATH`: PEM files; when both are set the listener speaks
    /// TLS 1.2+ only.
    pub tls_cert_path: Option<PathBuf>,
    pub tls_key_path: Option<PathBuf>,
    /// `WORKERS`: HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// `NODE_ID`: this node's name in the interview registry.
    pub node_id: String,
    /// `FREE_INTERVIEWS`: free interviews granted to a new account.
    pub free_interviews: u32,
    /// `ABUSE_LEDGER_KEY`: HMAC key of the abuse ledger's mailbox hashes and the sign-up
    /// counts' address hashes (at least 32 bytes). Changing it forgets the ledger.
    pub abuse_ledger_key: Option<SecretString>,
    /// `ABUSE_LEDGER_DAYS`: how long a mailbox stays in the abuse ledger after it was last
    /// recorded (sign-up, e-mail change, erasure), so its free interviews are granted once.
    pub abuse_ledger_days: u32,
    /// `SIGNUPS_PER_IP_PER_DAY`: sign-ups from one client address (IPv6: its /64) in one UTC
    /// day; later ones are flagged for an admin's review.
    pub signups_per_ip_per_day: u32,
    /// `PUBLIC_URL`: the address users reach this server at (`https://interviewcraft.example`),
    /// for links in e-mails; default the listener's own address.
    pub public_url: Option<String>,
    /// `ANTHROPIC_API_KEY`.
    pub anthropic_api_key: Option<SecretString>,
    /// `ANTHROPIC_BASE_URL`.
    pub anthropic_base_url: String,
    /// `ANTHROPIC_MODEL`.
    pub anthropic_model: String,
    /// `DEEPGRAM_API_KEY`.
    pub deepgram_api_key: Option<SecretString>,
    /// `DEEPGRAM_BASE_URL`.
    pub deepgram_base_url: String,
    /// `DEEPGRAM_MODEL`.
    pub deepgram_model: String,
    /// `ELEVENLABS_API_KEY`.
    pub elevenlabs_api_key: Option<SecretString>,
    /// `ELEVENLABS_WS_BASE_URL`.
    pub elevenlabs_ws_base_url: String,
    /// `ELEVENLABS_HTTP_BASE_URL`.
    pub elevenlabs_http_base_url: String,
    /// `ELEVENLABS_VOICE_ID`.
    pub elevenlabs_voice_id: String,
    /// `ELEVENLABS_MODEL`: the ElevenLabs model (`model_id`), priced by `[prices.tts]`.
    pub elevenlabs_model: String,
    /// `RESUME_MAX_BYTES`.
    pub resume_max_bytes: usize,
    /// `ANTHROPIC_FALLBACK_MODEL`.
    pub anthropic_fallback_model: Option<String>,
    /// `MAX_LIVE_INTERVIEWS`.
    pub max_live_interviews: usize,
    /// `SHUTDOWN_DRAIN_SECS`: on SIGTERM/SIGINT, how long live interviews get to end gracefully.
    pub shutdown_drain_secs: u64,
    /// `[interview]` in the settings file, `INTERVIEW__…` in the environment (e.g.
    /// `INTERVIEW__TURN__ENDPOINT_QUIET=300ms`): the conversation thresholds.
    pub interview: engine::actors::interview::InterviewConfig,
    /// `[prices]` in the settings file, `PRICES__…` in the environment: vendor prices in dollars
    /// per model (`[prices.llm."claude-haiku-4-5"] input_per_mtok = 1.0`, or
    /// `PRICES__LLM__claude-haiku-4-5__INPUT_PER_MTOK=1.0`), over the embedded file's table.
    pub prices: engine::metering::PriceTable,
    /// `[feedback]` in the settings file, `FEEDBACK__…` in the environment (e.g.
    /// `FEEDBACK__MIN_ANSWER_WORDS=20`, `FEEDBACK__SCORER_MODEL=claude-sonnet-4-5`): the scoring,
    /// delivery, skill and drill thresholds, and the scorer's model.
    pub feedback: engine::feedback::FeedbackConfig,
    /// `[key_lease]` in the settings file, `KEY_LEASE__…` in the environment (e.g.
    /// `KEY_LEASE__GRACE=10m`): a BYOK key lease ends at the interview's planned length plus
    /// `grace` even if nobody released it; `check_every` is how often expiry is looked for.
    pub key_lease: engine::key_lease::KeyLeaseConfig,
    /// `[vendors]` in the settings file, `VENDORS__…` in the environment (e.g.
    /// `VENDORS__DEEPGRAM_STALL_MS=2500`, `VENDORS__TTS_FLUSH=false`): the vendor clients' stall
    /// watchdogs in milliseconds, and whether each finished sentence is flushed to the TTS.
    pub vendors: engine::vendors::VendorTuning,
    /// `ICE_SERVERS`.
    pub ice_servers: Option<String>,
    /// `WEBRTC_LOOPBACK_ONLY`: gather and accept only loopback ICE candidates (tests).
    pub webrtc_loopback_only: bool,
    /// `OPUS_COMPLEXITY`: the Opus encoder complexity of the interviewer's neural voice, 0–10.
    pub opus_complexity: u8,
    /// `LOCAL_VENDORS`: `local` (default) or `fakes`: what serves a kind without a key.
    pub local_vendors: LocalVendorsMode,
    /// `ESPEAK_NG_PROGRAM`: the espeak-ng program of the local voice.
    pub espeak_ng_program: PathBuf,
    /// `LOCAL_SPEECH_DIR`: the offline recognizer prepared by `setup-local-speech`; default
    /// `DATA_DIR/local-speech`.
    pub local_speech_dir: Option<PathBuf>,
    /// `LOCAL_SPEECH_AUTO_SETUP`: in keyless local mode, prepare the offline recognizer in the
    /// background when it is missing (first start; PyPI only), and switch to it when ready.
    pub local_speech_auto_setup: bool,
    /// `MIGRATE_ON_START`: apply pending migrations when the server starts. Off for a server
    /// that runs as a least-privilege database role: the schema owner runs `interviewcraft
    /// migrate`, and the server only checks that nothing is pending.
    pub migrate_on_start: bool,
    /// `RESUME_WORKER_PATH`: the executable that extracts resume text in a sandboxed child
    /// process; default this server's own binary (its hidden `resume-worker` command).
    pub resume_worker_path: Option<PathBuf>,
    /// Arguments of `resume_worker_path` (file setting only); default `["resume-worker"]`.
    pub resume_worker_args: Vec<String>,
    /// `RESUME_WORKER_MEMORY_BYTES`: address space a resume worker may add to its start size.
    pub resume_worker_memory_bytes: u64,
    /// `RESUME_WORKER_CPU_SECS`: CPU seconds a resume worker may use.
    pub resume_worker_cpu_secs: u64,
    /// `RESUME_WORKER_TIMEOUT_SECS`: wall-clock seconds before a resume worker is killed.
    pub resume_worker_timeout_secs: u64,
    /// `RESUME_WORKER_CONCURRENCY`: resume workers running at once on this node.
    pub resume_worker_concurrency: usize,
    /// `RESUME_WORKER_QUEUE_SECS`: how long an upload waits for a free worker before 503.
    pub resume_worker_queue_secs: u64,
    /// `REQUEST_HEADER_TIMEOUT_SECS`: time a client has to send a request's head (slow-loris).
    pub request_header_timeout_secs: u64,
    /// `REQUEST_BODY_TIMEOUT_SECS`: time a client has to send a whole request body.
    pub request_body_timeout_secs: u64,
    /// `SMTP_URL`: the server weekly digests go through (`smtp://host:port` plain,
    /// `smtp://host?tls=required` STARTTLS, `smtps://user:pass@host` implicit TLS). Unset: no
    /// digests (said once in the log at start).
    pub smtp_url: Option<SecretString>,
    /// `DIGEST_FROM`: the digest's sender address.
    pub digest_from: String,
    /// `DIGEST_INTERVAL_SECS`: how often the digest job looks for accounts due this week.
    pub digest_interval_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            environment: Environment::Development,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 10,
            jwt_secret: None,
            key_encryption_key: None,
            previous_key_encryption_keys: None,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            bcrypt_cost: 12,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            refresh_reuse_window_secs: 10,
            login_max_failures: 5,
            login_lockout_secs: 15 * 60,
            auth_rate_limit_per_minute: 30,
            trust_forwarded_for: false,
            trusted_proxy_hops: 0,
            json_body_limit_bytes: 64 * 1024,
            tls_cert_path: None,
            tls_key_path: None,
            workers: None,
            node_id: "node-1".to_owned(),
            free_interviews: 3,
            abuse_ledger_key: None,
            abuse_ledger_days: 365,
            signups_per_ip_per_day: 10,
            public_url: None,
            anthropic_api_key: None,
            anthropic_base_url: "https://api.anthropic.com".to_owned(),
            anthropic_model: "claude-haiku-4-5".to_owned(),
            deepgram_api_key: None,
            deepgram_base_url: "wss://api.deepgram.com".to_owned(),
            deepgram_model: "nova-3".to_owned(),
            elevenlabs_api_key: None,
            elevenlabs_ws_base_url: "wss://api.elevenlabs.io".to_owned(),
            elevenlabs_http_base_url: "https://api.elevenlabs.io".to_owned(),
            elevenlabs_voice_id: "21m00Tcm4TlvDq8ikWAM".to_owned(),
            elevenlabs_model: "eleven_flash_v2_5".to_owned(),
            resume_max_bytes: 5 * 1024 * 1024,
            anthropic_fallback_model: None,
            max_live_interviews: 100,
            shutdown_drain_secs: 15,
            interview: engine::actors::interview::InterviewConfig::default(),
            prices: shipped_prices(),
            feedback: engine::feedback::FeedbackConfig::default(),
            key_lease: engine::key_lease::KeyLeaseConfig::default(),
            vendors: engine::vendors::VendorTuning::default(),
            ice_servers: None,
            webrtc_loopback_only: false,
            opus_complexity: engine::transport::codec::DEFAULT_COMPLEXITY,
            local_vendors: LocalVendorsMode::Local,
            espeak_ng_program: PathBuf::from("espeak-ng"),
            local_speech_dir: None,
            local_speech_auto_setup: true,
            migrate_on_start: true,
            resume_worker_path: None,
            resume_worker_args: vec![crate::resume::worker::WORKER_COMMAND.to_owned()],
            resume_worker_memory_bytes: 512 * 1024 * 1024,
            resume_worker_cpu_secs: 10,
            resume_worker_timeout_secs: 15,
            resume_worker_concurrency: 2,
            resume_worker_queue_secs: 15,
            request_header_timeout_secs: 10,
            request_body_timeout_secs: 60,
            smtp_url: None,
            digest_from: "InterviewCraft <digest@interviewcraft.invalid>".to_owned(),
            digest_interval_secs: 3600,
        }
    }
}

/// Why the settings cannot be used. Messages never contain a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("{0} is required when APP_ENV=production")]
    MissingInProduction(&'static str),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Overrides from the environment and the command line; `None` leaves lower layers in place.
#[derive(Debug, Default, Clone, Serialize, clap::Args)]
pub struct SettingsArgs {
    /// Optional TOML file with settings (same names as below, in snake_case).
    #[arg(long, env = "CONFIG_FILE", global = true)]
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
    /// development (default: secrets generated under DATA_DIR) or production (secrets required).
    #[arg(long = "env", env = "APP_ENV", value_enum, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Address of the HTTP listener [default: 127.0.0.1:8080].
    #[arg(long, env = "LISTEN_ADDR", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_addr: Option<SocketAddr>,
    /// Directory for the embedded SQLite database and generated secrets [default: ./data].
    #[arg(long, env = "DATA_DIR", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, sqlite:// or postgres:// [default: sqlite file in DATA_DIR].
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Maximum database connections in the pool [default: 10].
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_max_connections: Option<u32>,
    /// HMAC secret for access tokens, at least 32 bytes [default: generated in DATA_DIR].
    #[arg(long, env = "JWT_SECRET", global = true, hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<String>,
    /// Base64 of 32 bytes; encrypts BYOK keys, separate from JWT_SECRET [default: generated in DATA_DIR].
    #[arg(
        long,
        env = "KEY_ENCRYPTION_KEY",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_encryption_key: Option<String>,
    /// Comma-separated earlier KEY_ENCRYPTION_KEYs, accepted for decryption during a rotation.
    #[arg(
        long,
        env = "PREVIOUS_KEY_ENCRYPTION_KEYS",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_key_encryption_keys: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "LOG_FORMAT", value_enum, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or api=debug,info [default: info].
    #[arg(long, env = "LOG_LEVEL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// bcrypt cost [default: 12; at least 12 in production].
    #[arg(long, env = "BCRYPT_COST", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcrypt_cost: Option<u32>,
    /// Access token lifetime in seconds [default: 900].
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_ttl_secs: Option<u64>,
    /// Refresh token lifetime in seconds [default: 2592000 = 30 days].
    #[arg(long, env = "REFRESH_TOKEN_TTL_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl_secs: Option<u64>,
    /// Seconds after an exchange in which the same refresh token gets the same successor
    /// [default: 10].
    #[arg(long, env = "REFRESH_REUSE_WINDOW_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_reuse_window_secs: Option<u64>,
    /// Failed logins in a row before the account is locked [default: 5].
    #[arg(long, env = "LOGIN_MAX_FAILURES", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_max_failures: Option<u32>,
    /// Lockout duration in seconds [default: 900].
    #[arg(long, env = "LOGIN_LOCKOUT_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_lockout_secs: Option<u64>,
    /// Requests per client IP per minute on /api/v1/auth/* [default: 30].
    #[arg(long, env = "AUTH_RATE_LIMIT_PER_MINUTE", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_rate_limit_per_minute: Option<u32>,
    /// Take the client IP from X-Forwarded-For; only behind a trusted proxy [default: false].
    #[arg(long, env = "TRUST_FORWARDED_FOR", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_forwarded_for: Option<bool>,
    /// Trusted proxies in front of the server (with TRUST_FORWARDED_FOR) [default: 1].
    #[arg(long, env = "TRUSTED_PROXY_HOPS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxy_hops: Option<u8>,
    /// Largest accepted JSON body in bytes [default: 65536].
    #[arg(long, env = "JSON_BODY_LIMIT_BYTES", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_body_limit_bytes: Option<usize>,
    /// PEM certificate chain; with TLS_KEY_PATH the listener serves TLS 1.2+.
    #[arg(long, env = "TLS_CERT_PATH", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_path: Option<PathBuf>,
    /// PEM private key for TLS_CERT_PATH.
    #[arg(long, env = "TLS_KEY_PATH", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_path: Option<PathBuf>,
    /// HTTP worker threads [default: one per core].
    #[arg(long, env = "WORKERS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// This node's id in the interview registry [default: node-1].
    #[arg(long, env = "NODE_ID", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Free interviews granted to each new account [default: 3].
    #[arg(long, env = "FREE_INTERVIEWS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_interviews: Option<u32>,
    /// HMAC key (at least 32 bytes) of the abuse ledger's mailbox hashes and the sign-up counts'
    /// address hashes [default: generated in DATA_DIR].
    #[arg(long, env = "ABUSE_LEDGER_KEY", global = true, hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abuse_ledger_key: Option<String>,
    /// Days a mailbox stays in the abuse ledger after it was last recorded [default: 365].
    #[arg(long, env = "ABUSE_LEDGER_DAYS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abuse_ledger_days: Option<u32>,
    /// Sign-ups from one client address per UTC day before later ones are flagged [default: 10].
    #[arg(long, env = "SIGNUPS_PER_IP_PER_DAY", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signups_per_ip_per_day: Option<u32>,
    /// The address users reach this server at, for links in e-mails [default: the listener's].
    #[arg(long, env = "PUBLIC_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Platform Anthropic API key (users may bring their own) [default: none: keyless local mode].
    #[arg(long, env = "ANTHROPIC_API_KEY", global = true, hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anthropic_api_key: Option<String>,
    /// Anthropic API base URL [default: https://api.anthropic.com].
    #[arg(long, env = "ANTHROPIC_BASE_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anthropic_base_url: Option<String>,
    /// Claude model of the interviewer [default: claude-haiku-4-5].
    #[arg(long, env = "ANTHROPIC_MODEL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anthropic_model: Option<String>,
    /// Platform Deepgram API key [default: none].
    #[arg(long, env = "DEEPGRAM_API_KEY", global = true, hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deepgram_api_key: Option<String>,
    /// Deepgram streaming base URL [default: wss://api.deepgram.com].
    #[arg(long, env = "DEEPGRAM_BASE_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deepgram_base_url: Option<String>,
    /// Deepgram model [default: nova-3].
    #[arg(long, env = "DEEPGRAM_MODEL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deepgram_model: Option<String>,
    /// Platform ElevenLabs API key [default: none].
    #[arg(
        long,
        env = "ELEVENLABS_API_KEY",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elevenlabs_api_key: Option<String>,
    /// ElevenLabs WebSocket base URL [default: wss://api.elevenlabs.io].
    #[arg(long, env = "ELEVENLABS_WS_BASE_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elevenlabs_ws_base_url: Option<String>,
    /// ElevenLabs HTTP base URL (fallback) [default: https://api.elevenlabs.io].
    #[arg(long, env = "ELEVENLABS_HTTP_BASE_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elevenlabs_http_base_url: Option<String>,
    /// ElevenLabs voice of the interviewer [default: 21m00Tcm4TlvDq8ikWAM].
    #[arg(long, env = "ELEVENLABS_VOICE_ID", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elevenlabs_voice_id: Option<String>,
    /// ElevenLabs model [default: eleven_flash_v2_5].
    #[arg(long, env = "ELEVENLABS_MODEL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elevenlabs_model: Option<String>,
    /// Largest accepted resume upload in bytes [default: 5242880].
    #[arg(long, env = "RESUME_MAX_BYTES", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_max_bytes: Option<usize>,
    /// Claude model tried once when the main one is overloaded [default: none].
    #[arg(long, env = "ANTHROPIC_FALLBACK_MODEL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anthropic_fallback_model: Option<String>,
    /// Live interviews this node accepts at most [default: 100].
    #[arg(long, env = "MAX_LIVE_INTERVIEWS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_live_interviews: Option<usize>,
    /// Seconds live interviews get to end gracefully on SIGTERM/SIGINT (a second signal ends
    /// them at once) [default: 15].
    #[arg(long, env = "SHUTDOWN_DRAIN_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_drain_secs: Option<u64>,
    /// Comma-separated STUN/TURN URLs for WebRTC [default: none: host candidates only].
    #[arg(long, env = "ICE_SERVERS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ice_servers: Option<String>,
    /// Gather and accept only loopback ICE candidates (for tests on one machine) [default: false].
    #[arg(long, env = "WEBRTC_LOOPBACK_ONLY", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webrtc_loopback_only: Option<bool>,
    /// Opus encoder complexity of the interviewer's neural voice (ElevenLabs), 0 (cheapest) to
    /// 10: lower costs less CPU per interview, higher codes the voice a little more faithfully;
    /// the local espeak-ng voice is always encoded at 9 [default: 1].
    #[arg(long, env = "OPUS_COMPLEXITY", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opus_complexity: Option<u8>,
    /// What serves a vendor kind without a key: `local` (the rule-based interviewer and the
    /// espeak-ng voice, nothing leaves the machine) or `fakes` (tests) [default: local].
    #[arg(long, env = "LOCAL_VENDORS", global = true, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_vendors: Option<LocalVendorsMode>,
    /// The espeak-ng program of the local voice (Debian package espeak-ng) [default: espeak-ng].
    #[arg(long, env = "ESPEAK_NG_PROGRAM", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub espeak_ng_program: Option<PathBuf>,
    /// The offline recognizer's directory, prepared by `setup-local-speech`
    /// [default: DATA_DIR/local-speech].
    #[arg(long, env = "LOCAL_SPEECH_DIR", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_speech_dir: Option<PathBuf>,
    /// Prepare the offline recognizer in the background when it is missing, and use it once
    /// ready [default: true].
    #[arg(long, env = "LOCAL_SPEECH_AUTO_SETUP", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_speech_auto_setup: Option<bool>,
    /// Apply pending migrations at start; false for a least-privilege database role (the
    /// owner runs `interviewcraft migrate`; the server refuses to start while any is pending)
    /// [default: true].
    #[arg(long, env = "MIGRATE_ON_START", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrate_on_start: Option<bool>,
    /// Executable extracting resume text in a sandboxed child [default: this binary].
    #[arg(long, env = "RESUME_WORKER_PATH", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_worker_path: Option<PathBuf>,
    /// Address space in bytes a resume worker may add to its start size [default: 536870912].
    #[arg(long, env = "RESUME_WORKER_MEMORY_BYTES", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_worker_memory_bytes: Option<u64>,
    /// CPU seconds a resume worker may use [default: 10].
    #[arg(long, env = "RESUME_WORKER_CPU_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_worker_cpu_secs: Option<u64>,
    /// Wall-clock seconds before a resume worker is killed [default: 15].
    #[arg(long, env = "RESUME_WORKER_TIMEOUT_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_worker_timeout_secs: Option<u64>,
    /// Resume workers running at once on this node [default: 2].
    #[arg(long, env = "RESUME_WORKER_CONCURRENCY", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_worker_concurrency: Option<usize>,
    /// Seconds an upload waits for a free resume worker before 503 [default: 15].
    #[arg(long, env = "RESUME_WORKER_QUEUE_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_worker_queue_secs: Option<u64>,
    /// Seconds a client has to send a request's head [default: 10].
    #[arg(long, env = "REQUEST_HEADER_TIMEOUT_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a whole request body [default: 60].
    #[arg(long, env = "REQUEST_BODY_TIMEOUT_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body_timeout_secs: Option<u64>,
    /// SMTP server of the weekly digest, smtp:// or smtps:// [default: unset, no digests].
    #[arg(long, env = "SMTP_URL", global = true, hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,
    /// Sender of the weekly digest [default: InterviewCraft <digest@interviewcraft.invalid>].
    #[arg(long, env = "DIGEST_FROM", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_from: Option<String>,
    /// Seconds between the digest job's looks for accounts due this week [default: 3600].
    #[arg(long, env = "DIGEST_INTERVAL_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_interval_secs: Option<u64>,
}

impl Settings {
    /// Layers defaults, the optional TOML file, then environment and flags (`args`).
    pub fn load(args: &SettingsArgs) -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_SETTINGS));
        if let Some(path) = &args.config_file {
            if !path.exists() {
                return Err(SettingsError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        // The nested tables (conversation thresholds, prices, feedback, vendors) also come from the
        // environment, with `__` between levels; clap's flat variables cannot express them.
        let nested = Env::raw()
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                key.starts_with("interview__")
                    || key.starts_with("prices__")
                    || key.starts_with("key_lease__")
                    || key.starts_with("feedback__")
                    || key.starts_with("vendors__")
            })
            .split("__");
        let settings: Settings = figment
            .merge(Serialized::defaults(args))
            .merge(nested)
            .extract()
            .map_err(|error| SettingsError::Invalid(error.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the rules that no single field can check alone.
    pub fn validate(&self) -> Result<(), SettingsError> {
        crate::digest::validate_settings(self).map_err(SettingsError::Invalid)?;
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err(SettingsError::Invalid(
                "BCRYPT_COST must be between 4 and 31".into(),
            ));
        }
        if self.tls_cert_path.is_some() != self.tls_key_path.is_some() {
            return Err(SettingsError::Invalid(
                "TLS_CERT_PATH and TLS_KEY_PATH must be set together".into(),
            ));
        }
        self.interview.validate().map_err(SettingsError::Invalid)?;
        self.prices.validate().map_err(SettingsError::Invalid)?;
        self.feedback.validate().map_err(SettingsError::Invalid)?;
        self.prices
            .require(&self.priced_models())
            .map_err(SettingsError::Invalid)?;
        self.key_lease.validate().map_err(SettingsError::Invalid)?;
        self.vendors.validate().map_err(SettingsError::Invalid)?;
        if self.opus_complexity > 10 {
            return Err(SettingsError::Invalid(
                "OPUS_COMPLEXITY must be between 0 and 10".into(),
            ));
        }
        if self.resume_worker_cpu_secs == 0
            || self.resume_worker_timeout_secs == 0
            || self.resume_worker_concurrency == 0
            || self.resume_worker_queue_secs == 0
            || self.resume_worker_memory_bytes < 16 * 1024 * 1024
            || self.request_header_timeout_secs == 0
            || self.request_body_timeout_secs == 0
        {
            return Err(SettingsError::Invalid(
                "RESUME_WORKER_CPU_SECS, RESUME_WORKER_TIMEOUT_SECS, RESUME_WORKER_CONCURRENCY and \
                 the REQUEST_*_TIMEOUT_SECS must be positive, RESUME_WORKER_MEMORY_BYTES at least \
                 16 MiB"
                    .into(),
            ));
        }
        if !(1..=3650).contains(&self.abuse_ledger_days) {
            return Err(SettingsError::Invalid(
                "ABUSE_LEDGER_DAYS must be between 1 and 3650".into(),
            ));
        }
        if self.signups_per_ip_per_day == 0 {
            return Err(SettingsError::Invalid(
                "SIGNUPS_PER_IP_PER_DAY must be at least 1".into(),
            ));
        }
        if let Some(url) = &self.public_url
            && !valid_public_url(url)
        {
            return Err(SettingsError::Invalid(
                "PUBLIC_URL must be an http:// or https:// address without a query or fragment"
                    .into(),
            ));
        }
        if self.access_token_ttl_secs == 0 || self.refresh_token_ttl_secs == 0 {
            return Err(SettingsError::Invalid(
                "token lifetimes must be positive".into(),
            ));
        }
        if self.is_production() {
            if self.jwt_secret.is_none() {
                return Err(SettingsError::MissingInProduction("JWT_SECRET"));
            }
            if self.key_encryption_key.is_none() {
                return Err(SettingsError::MissingInProduction("KEY_ENCRYPTION_KEY"));
            }
            if self.abuse_ledger_key.is_none() {
                return Err(SettingsError::MissingInProduction("ABUSE_LEDGER_KEY"));
            }
            // Links in e-mails must point where users reach the server, not at the listener.
            if self.smtp_url.is_some() && self.public_url.is_none() {
                return Err(SettingsError::MissingInProduction(
                    "PUBLIC_URL (with SMTP_URL)",
                ));
            }
            if self.bcrypt_cost < 12 {
                return Err(SettingsError::Invalid(
                    "BCRYPT_COST must be at least 12 in production".into(),
                ));
            }
        }
        Ok(())
    }

    /// The Claude model the scorer uses: `[feedback] scorer_model`, else the interviewer's.
    pub fn scorer_model(&self) -> &str {
        self.feedback
            .scorer_model
            .as_deref()
            .unwrap_or(&self.anthropic_model)
    }

    /// Every model this server may call, each of which needs a price.
    fn priced_models(&self) -> Vec<engine::metering::PricedModel<'_>> {
        use engine::metering::PricedModel;
        let mut models = vec![
            PricedModel::Llm {
                model: &self.anthropic_model,
                setting: "ANTHROPIC_MODEL",
            },
            PricedModel::Llm {
                model: self.scorer_model(),
                setting: "feedback.scorer_model",
            },
            PricedModel::Stt {
                model: &self.deepgram_model,
                setting: "DEEPGRAM_MODEL",
            },
            PricedModel::Tts {
                model: &self.elevenlabs_model,
                setting: "ELEVENLABS_MODEL",
            },
        ];
        if let Some(model) = &self.anthropic_fallback_model {
            models.push(PricedModel::Llm {
                model,
                setting: "ANTHROPIC_FALLBACK_MODEL",
            });
        }
        models
    }

    /// The caps on one resume extraction.
    pub fn resume_worker_limits(&self) -> crate::resume::worker::WorkerLimits {
        crate::resume::worker::WorkerLimits {
            memory_bytes: self.resume_worker_memory_bytes,
            cpu_secs: self.resume_worker_cpu_secs,
            wall: std::time::Duration::from_secs(self.resume_worker_timeout_secs),
            concurrency: self.resume_worker_concurrency,
            queue: std::time::Duration::from_secs(self.resume_worker_queue_secs),
        }
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// Whether cookies must carry `Secure`: over TLS and always in production.
    pub fn secure_cookies(&self) -> bool {
        self.is_production() || self.tls_cert_path.is_some()
    }

    /// The database URL, defaulting to a SQLite file in the data directory (created if missing).
    pub fn database_url(&self) -> Result<String, SettingsError> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        ensure_dir(&self.data_dir)?;
        Ok(format!(
            "sqlite://{}?mode=rwc",
            self.data_dir.join("interviewcraft.db").display()
        ))
    }

    /// The secrets in force: given ones, or in development ones generated once under `data_dir`.
    pub fn resolve_secrets(&self) -> Result<Secrets, SettingsError> {
        let jwt = match &self.jwt_secret {
            Some(secret) => secret.clone(),
            None => SecretString::from(self.persisted_secret("jwt_secret", 64)?),
        };
        if jwt.expose_secret().len() < 32 {
            return Err(SettingsError::Invalid(
                "JWT_SECRET must be at least 32 bytes".into(),
            ));
        }
        let kek = match &self.key_encryption_key {
            Some(secret) => secret.clone(),
            None => SecretString::from(self.persisted_secret("key_encryption_key", 32)?),
        };
        let invalid =
            |_| SettingsError::Invalid("KEY_ENCRYPTION_KEY must be base64 of 32 bytes".into());
        let current = MasterKey::from_base64(kek.expose_secret()).map_err(invalid)?;
        let previous = match &self.previous_key_encryption_keys {
            Some(list) => list
                .expose_secret()
                .split(',')
                .filter(|item| !item.trim().is_empty())
                .map(|item| {
                    MasterKey::from_base64(item).map_err(|_| {
                        SettingsError::Invalid(
                            "PREVIOUS_KEY_ENCRYPTION_KEYS must be base64 keys of 32 bytes".into(),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let ledger = match &self.abuse_ledger_key {
            Some(secret) => secret.clone(),
            None => SecretString::from(self.persisted_secret("abuse_ledger_key", 32)?),
        };
        if ledger.expose_secret().len() < 32 {
            return Err(SettingsError::Invalid(
                "ABUSE_LEDGER_KEY must be at least 32 bytes".into(),
            ));
        }
        Ok(Secrets {
            jwt_secret: jwt,
            key_ring: KeyRing::new(current, previous),
            ledger_key: crate::abuse::LedgerKey::new(ledger),
        })
    }

    /// Reads `data_dir/name`, or creates it (mode 0600) with `bytes` random bytes in base64.
    fn persisted_secret(&self, name: &str, bytes: usize) -> Result<String, SettingsError> {
        ensure_dir(&self.data_dir)?;
        let path = self.data_dir.join(name);
        let io_error = |source| SettingsError::Io {
            path: path.clone(),
            source,
        };
        if path.exists() {
            let value = std::fs::read_to_string(&path).map_err(io_error)?;
            return Ok(value.trim().to_owned());
        }
        let mut raw = Zeroizing::new(vec![0u8; bytes]);
        rand::rng().fill_bytes(&mut raw);
        let encoded = BASE64.encode(&*raw);
        write_private_file(&path, &encoded).map_err(io_error)?;
        tracing::info!(file = %path.display(), "generated a development secret");
        Ok(encoded)
    }
}

/// An absolute http(s) address with a host and without a query or fragment.
fn valid_public_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !rest.contains(['?', '#'])
            && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// Creates the data directory (owner-only, 0700, when this creates it).
fn ensure_dir(dir: &Path) -> Result<(), SettingsError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| SettingsError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Secrets resolved at start-up.
#[derive(Clone)]
pub struct Secrets {
    pub jwt_secret: SecretString,
    /// The BYOK master key (and earlier ones during a rotation).
    pub key_ring: KeyRing,
    /// The abuse ledger's HMAC key.
    pub ledger_key: crate::abuse::LedgerKey,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings with `toml` as the settings file (in a temp dir of its own).
    fn load_file(toml: &str) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("settings.toml");
        std::fs::write(&file, toml).expect("write");
        Settings::load(&SettingsArgs {
            config_file: Some(file),
            ..SettingsArgs::default()
        })
    }

    #[test]
    fn production_requires_the_ledger_key_and_with_smtp_a_public_url() {
        let base = Settings {
            environment: Environment::Production,
            jwt_secret: Some(SecretString::from("x".repeat(40))),
            key_encryption_key: Some(SecretString::from(BASE64.encode([3u8; 32]))),
            ..Settings::default()
        };
        assert!(matches!(
            base.validate(),
            Err(SettingsError::MissingInProduction("ABUSE_LEDGER_KEY"))
        ));
        let keyed = Settings {
            abuse_ledger_key: Some(SecretString::from("l".repeat(40))),
            ..base
        };
        assert!(keyed.validate().is_ok());
        let with_smtp = Settings {
            smtp_url: Some(SecretString::from("smtp://127.0.0.1:2525".to_owned())),
            ..keyed.clone()
        };
        assert!(matches!(
            with_smtp.validate(),
            Err(SettingsError::MissingInProduction(_))
        ));
        let with_url = Settings {
            public_url: Some("https://interviewcraft.example".into()),
            ..with_smtp
        };
        assert!(with_url.validate().is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https://a/?q=1",
            "https://a b",
            "interviewcraft",
        ] {
            let settings = Settings {
                public_url: Some(bad.into()),
                ..keyed.clone()
            };
            assert!(settings.validate().is_err(), "{bad}");
        }
        let short = Settings {
            abuse_ledger_key: Some(SecretString::from("short".to_owned())),
            ..keyed.clone()
        };
        assert!(short.resolve_secrets().is_err());
        for (days, per_ip) in [(0, 10), (3651, 10), (365, 0)] {
            let settings = Settings {
                abuse_ledger_days: days,
                signups_per_ip_per_day: per_ip,
                ..keyed.clone()
            };
            assert!(settings.validate().is_err(), "{days} {per_ip}");
        }
    }

    #[test]
    fn the_opus_complexity_reaches_the_webrtc_config_and_is_bounded() {
        assert_eq!(
            crate::interviews::webrtc_config(&Settings::default()).encoder_complexity,
            engine::transport::codec::DEFAULT_COMPLEXITY
        );
        let settings = load_file("opus_complexity = 9\n").expect("a valid complexity");
        assert_eq!(
            crate::interviews::webrtc_config(&settings).encoder_complexity,
            9
        );
        assert!(matches!(
            load_file("opus_complexity = 11\n"),
            Err(SettingsError::Invalid(message)) if message.contains("OPUS_COMPLEXITY")
        ));
    }

    #[test]
    fn production_requires_both_secrets() {
        let settings = Settings {
            environment: Environment::Production,
            ..Settings::default()
        };
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::MissingInProduction("JWT_SECRET"))
        ));
        let settings = Settings {
            environment: Environment::Production,
            jwt_secret: Some(SecretString::from("x".repeat(40))),
            ..Settings::default()
        };
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::MissingInProduction("KEY_ENCRYPTION_KEY"))
        ));
    }

    #[test]
    fn development_secrets_are_generated_once_and_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        let first = settings.resolve_secrets().expect("generated");
        let second = settings.resolve_secrets().expect("read back");
        let email = crate::domain::Email::parse("ada@example.com").expect("valid");
        assert_eq!(
            first.ledger_key.mailbox(&email),
            second.ledger_key.mailbox(&email),
            "the ledger key is generated once and kept"
        );
        assert_eq!(
            first.jwt_secret.expose_secret(),
            second.jwt_secret.expose_secret()
        );
        assert_eq!(
            first.key_ring.current_key_id(),
            second.key_ring.current_key_id()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("jwt_secret"))
                .expect("secret file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn key_encryption_key_rejects_wrong_length_without_echoing_it() {
        let short = BASE64.encode([7u8; 16]);
        let settings = Settings {
            jwt_secret: Some(SecretString::from("j".repeat(40))),
            key_encryption_key: Some(SecretString::from(short.clone())),
            ..Settings::default()
        };
        let error = settings
            .resolve_secrets()
            .expect_err("16 bytes is too short");
        assert!(!error.to_string().contains(&short));
    }

    #[test]
    fn secrets_debug_is_redacted() {
        let kek = MasterKey::from_base64(&BASE64.encode([9u8; 32])).expect("valid");
        let secrets = Secrets {
            jwt_secret: SecretString::from("super-secret-value-that-is-long-enough".to_owned()),
            key_ring: KeyRing::new(kek, vec![]),
            ledger_key: crate::abuse::LedgerKey::new(SecretString::from(
                "super-secret-ledger-key-long-enough".to_owned(),
            )),
        };
        let printed = format!("{secrets:?} {:?}", secrets.key_ring);
        assert!(!printed.contains("super-secret"));
        assert!(!printed.contains(&BASE64.encode([9u8; 32])));
    }

    #[test]
    fn conversation_thresholds_and_prices_come_from_the_settings_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("settings.toml");
        std::fs::write(
            &file,
            "[interview]\nidle_prompt_after = \"40s\"\n\
             [interview.turn]\nendpoint_quiet = \"350ms\"\n\
             [interview.barge_in]\nmin_voiced = \"250ms\"\n\
             [prices.llm.\"claude-haiku-4-5\"]\ninput_per_mtok = 3.0\noutput_per_mtok = 15.0\n\
             [prices.stt.\"nova-3\"]\nper_minute = 0.01\n",
        )
        .expect("write");
        let args = SettingsArgs {
            config_file: Some(file),
            ..SettingsArgs::default()
        };
        let settings = Settings::load(&args).expect("loads");
        assert_eq!(
            settings.interview.idle_prompt_after,
            std::time::Duration::from_secs(40)
        );
        assert_eq!(
            settings.interview.turn.endpoint_quiet,
            std::time::Duration::from_millis(350)
        );
        assert_eq!(
            settings.interview.barge_in.min_voiced,
            std::time::Duration::from_millis(250)
        );
        // Unset values keep their defaults.
        let defaults = engine::actors::interview::InterviewConfig::default();
        assert_eq!(settings.interview.turn.min_quiet, defaults.turn.min_quiet);
        assert_eq!(settings.interview.idle_end_after, defaults.idle_end_after);
        let haiku = settings
            .prices
            .llm_prices("claude-haiku-4-5")
            .expect("priced");
        assert_eq!(haiku.input_per_mtok, 3.0);
        assert_eq!(haiku.output_per_mtok, 15.0);
        assert!((haiku.cache_read_per_mtok - 0.3).abs() < 1e-9);
        assert_eq!(settings.prices.stt_per_minute("nova-3"), Some(0.01));
        // Models the file does not name keep their shipped prices.
        assert_eq!(
            settings.prices.tts_per_1k_chars("eleven_flash_v2_5"),
            shipped_prices().tts_per_1k_chars("eleven_flash_v2_5")
        );
        assert_eq!(
            settings.prices.llm_prices("claude-sonnet-4-5"),
            shipped_prices().llm_prices("claude-sonnet-4-5")
        );
    }

    #[test]
    fn the_key_lease_grace_comes_from_the_settings_file_and_is_checked() {
        let settings = load_file("[key_lease]\ngrace = \"2m\"\n").expect("loads");
        assert_eq!(
            settings.key_lease.grace,
            std::time::Duration::from_secs(120)
        );
        assert_eq!(
            settings.key_lease.check_every,
            engine::key_lease::KeyLeaseConfig::default().check_every
        );
        let error = load_file("[key_lease]\ncheck_every = \"0s\"\n")
            .expect_err("zero interval")
            .to_string();
        assert!(error.contains("key_lease.check_every"), "{error}");
        let error = load_file("[key_lease]\ngrace = \"2 days\"\n")
            .expect_err("too long")
            .to_string();
        assert!(error.contains("key_lease.grace"), "{error}");
    }

    #[test]
    fn bad_thresholds_and_prices_are_refused_at_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (toml, expected) in [
            ("[interview.turn]\nmin_quiet = \"0ms\"\n", "turn.min_quiet"),
            (
                "[interview.turn]\nendpoint_quiet = \"100ms\"\n",
                "turn.endpoint_quiet",
            ),
            (
                "[interview]\nidle_end_after = \"10s\"\n",
                "interview.idle_end_after",
            ),
            (
                "[prices.stt.\"nova-3\"]\nper_minute = -1.0\n",
                "prices.stt.\"nova-3\".per_minute",
            ),
            ("[prices]\nstt_per_minute = 0.01\n", "stt_per_minute"),
            (
                "anthropic_fallback_model = \"claude-opus-9\"\n",
                "no price for the llm model \"claude-opus-9\" (ANTHROPIC_FALLBACK_MODEL)",
            ),
            (
                "[feedback]\nscorer_model = \"claude-mystery\"\n",
                "no price for the llm model \"claude-mystery\" (feedback.scorer_model)",
            ),
            (
                "deepgram_model = \"nova-9\"\n",
                "no price for the stt model \"nova-9\" (DEEPGRAM_MODEL)",
            ),
            ("[feedback]\nweak_share = 2.0\n", "feedback.weak_share"),
            ("[feedback]\nno_such_threshold = 1\n", "no_such_threshold"),
            (
                "[interview.turn]\nendpoint_quiet = \"soon\"\n",
                "endpoint_quiet",
            ),
            ("[interview]\nno_such_threshold = 1\n", "no_such_threshold"),
        ] {
            let file = dir.path().join("settings.toml");
            std::fs::write(&file, toml).expect("write");
            let args = SettingsArgs {
                config_file: Some(file),
                ..SettingsArgs::default()
            };
            let error = Settings::load(&args).expect_err(toml).to_string();
            assert!(error.contains(expected), "{toml}: {error}");
        }
    }

    #[test]
    fn the_embedded_settings_price_every_default_model() {
        let prices = shipped_prices();
        assert_eq!(prices.validate(), Ok(()));
        let settings = Settings::default();
        assert_eq!(settings.prices.require(&settings.priced_models()), Ok(()));
        assert!(settings.validate().is_ok());
        assert_eq!(
            prices
                .llm_prices("claude-haiku-4-5")
                .map(|p| p.output_per_mtok),
            Some(5.0)
        );
    }

    #[test]
    fn a_fallback_model_and_the_scorer_model_are_priced_by_their_own_entries() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("settings.toml");
        std::fs::write(
            &file,
            "anthropic_fallback_model = \"claude-sonnet-4-5\"\n\
             [feedback]\nscorer_model = \"claude-scorer-x\"\nmin_answer_words = 20\n\
             [prices.llm.\"claude-scorer-x\"]\ninput_per_mtok = 7.0\noutput_per_mtok = 9.0\n\
             cache_read_per_mtok = 0.5\n",
        )
        .expect("write");
        let settings = Settings::load(&SettingsArgs {
            config_file: Some(file),
            ..SettingsArgs::default()
        })
        .expect("loads");
        assert_eq!(settings.scorer_model(), "claude-scorer-x");
        assert_eq!(settings.feedback.min_answer_words, 20);
        assert_eq!(
            settings.feedback.rambling_secs,
            engine::feedback::FeedbackConfig::default().rambling_secs
        );
        let scorer = settings
            .prices
            .llm_prices("claude-scorer-x")
            .expect("priced");
        assert_eq!(
            (scorer.input_per_mtok, scorer.cache_read_per_mtok),
            (7.0, 0.5)
        );
        assert_eq!(
            settings
                .prices
                .llm_prices("claude-sonnet-4-5")
                .map(|p| p.input_per_mtok),
            Some(3.0)
        );
        assert_eq!(
            settings
                .prices
                .llm_prices(&settings.anthropic_model)
                .map(|p| p.input_per_mtok),
            Some(1.0)
        );
    }

    #[test]
    fn the_vendor_table_has_defaults_reads_the_file_and_refuses_bad_values() {
        let defaults = Settings::default().vendors;
        assert_eq!(
            (
                defaults.deepgram_stall_ms,
                defaults.elevenlabs_stall_ms,
                defaults.anthropic_first_token_ms,
                defaults.anthropic_inter_token_ms,
                defaults.tts_flush
            ),
            (2000, 1500, 2000, 1500, true)
        );
        let settings =
            load_file("[vendors]\nelevenlabs_stall_ms = 2500\ntts_flush = false\n").expect("loads");
        assert_eq!(
            settings.vendors.elevenlabs_stall(),
            std::time::Duration::from_millis(2500)
        );
        assert!(!settings.vendors.tts_flush);
        // Unset values keep their defaults.
        assert_eq!(settings.vendors.deepgram_stall_ms, 2000);
        for (toml, expected) in [
            (
                "[vendors]\ndeepgram_stall_ms = 0\n",
                "vendors.deepgram_stall_ms",
            ),
            (
                "[vendors]\nelevenlabs_stall_ms = 600000\n",
                "vendors.elevenlabs_stall_ms",
            ),
            (
                "[vendors]\nanthropic_first_token_ms = 0\n",
                "vendors.anthropic_first_token_ms",
            ),
            (
                "[vendors]\nanthropic_inter_token_ms = 45000\n",
                "vendors.anthropic_inter_token_ms",
            ),
            (
                "[vendors]\nanthropic_first_token_ms = -5\n",
                "anthropic_first_token_ms",
            ),
            ("[vendors]\ntts_flush = \"sometimes\"\n", "tts_flush"),
            ("[vendors]\nno_such_watchdog = 1\n", "no_such_watchdog"),
        ] {
            let error = load_file(toml).expect_err(toml).to_string();
            assert!(error.contains(expected), "{toml}: {error}");
        }
    }

    #[test]
    fn file_layer_is_overridden_by_environment_layer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("settings.toml");
        std::fs::write(&file, "node_id = \"from-file\"\nfree_interviews = 7\n").expect("write");
        let args = SettingsArgs {
            config_file: Some(file),
            node_id: Some("from-env".into()),
            ..SettingsArgs::default()
        };
        let settings = Settings::load(&args).expect("loads");
        assert_eq!(settings.node_id, "from-env");
        assert_eq!(settings.free_interviews, 7);
        assert_eq!(settings.listen_addr.port(), 8080);
    }
}
