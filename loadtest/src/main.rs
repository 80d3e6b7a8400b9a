//! `loadtest`: the load harness (`run`) and a standalone mode that runs the fake vendors so
//! other processes can use them (`fakes`).
//!
//! ```text
//! loadtest run [--spawn | --server-bin PATH | --url http://127.0.0.1:PORT [--server-pid PID]]
//!              [--interviews N] [--concurrency C] [--duration 30m] [--answers K]
//!              [--ramp-up SECS] [--timeout SECS] [--barge-in [MS]] [--pauses]
//!              [--vendors load|realistic] [--json PATH] [--sweep 1,50,100 --out DIR] …
//!              (`loadtest run --help` lists every option)
//! loadtest fakes [--listen ADDR]... [--speed F] [--script TEXT]... [--reply TEXT]...
//! ```
//!
//! `run` prints one summary line on stdout (see `loadtest::report`; one per level with
//! `--sweep`) and exits 0 when every interview completed, no actor was left live and the
//! overhead p99 is under `--fail-over-p99-ms`, 1 otherwise, 2 when it could not start.
//!
//! `--listen` is given once (its IP, and its port as the first of three consecutive ports;
//! port 0 picks free ports) or three times (Deepgram, Anthropic, ElevenLabs, in that order).
//! Only loopback addresses are accepted. Faults are chosen by the API key; see the `fakes`
//! crate docs (`fakes::fault`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use fakes::{FakeVendors, FakeVendorsConfig, Pacing};

#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    about = "InterviewCraft load harness and fake vendors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the fake Deepgram, Anthropic and ElevenLabs servers until Ctrl-C.
    Fakes {
        /// Listen address: once (base port; 0 = free ports) or three times (one per vendor).
        #[arg(long = "listen", default_value = "127.0.0.1:0")]
        listen: Vec<SocketAddr>,
        /// Pacing: 1.0 is real time, larger is faster.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// What the simulated candidate says, one utterance per flag (Deepgram fake).
        #[arg(long = "script")]
        script: Vec<String>,
        /// The interviewer's replies, used in turn (Anthropic fake).
        #[arg(long = "reply")]
        reply: Vec<String>,
    },
    /// Run N concurrent interviews against a server with fake vendors; print one summary line.
    Run(Box<loadtest::harness::RunOptions>),
}

fn listen_addrs(listen: &[SocketAddr]) -> anyhow::Result<[SocketAddr; 3]> {
    for a in listen {
        if !a.ip().is_loopback() {
            bail!("{a} is not a loopback address; the fakes only listen on 127.0.0.1 or ::1");
        }
    }
    match listen {
        [one] => {
            let port = |i: u16| {
                if one.port() == 0 {
                    Ok(0)
                } else {
                    one.port().checked_add(i).context("port out of range")
                }
            };
            Ok([
                SocketAddr::new(one.ip(), port(0)?),
                SocketAddr::new(one.ip(), port(1)?),
                SocketAddr::new(one.ip(), port(2)?),
            ])
        }
        [a, b, c] => Ok([*a, *b, *c]),
        _ => bail!("give --listen once or three times (Deepgram, Anthropic, ElevenLabs)"),
    }
}

async fn run_fakes(
    listen: Vec<SocketAddr>,
    speed: f64,
    script: Vec<String>,
    reply: Vec<String>,
) -> anyhow::Result<()> {
    let [dg, an, el] = listen_addrs(&listen)?;
    let mut config = FakeVendorsConfig::default()
        .on_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .with_pacing(Pacing::faster(speed));
    config.deepgram.listen = dg;
    config.anthropic.listen = an;
    config.elevenlabs.listen = el;
    if !script.is_empty() {
        config.deepgram.script = script;
    }
    if !reply.is_empty() {
        config.anthropic.replies = reply;
    }
    let fakes = FakeVendors::start_all(config)
        .await
        .context("starting the fakes")?;
    println!("deepgram   {}", fakes.deepgram.base_url());
    println!("anthropic  {}", fakes.anthropic.base_url());
    println!(
        "elevenlabs {}  (HTTP {})",
        fakes.elevenlabs.ws_base_url(),
        fakes.elevenlabs.base_url()
    );
    println!("press Ctrl-C to stop");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    fakes.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "warn,rtc=error,rtc_dtls=error,rtc_ice=error,webrtc=error".into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Fakes {
            listen,
            speed,
            script,
            reply,
        } => match tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(run_fakes(listen, speed, script, reply)))
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadtest fakes: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Run(opts) => run(&opts),
    }
}

fn run(opts: &loadtest::harness::RunOptions) -> ExitCode {
    if opts.sweep.is_some() {
        return match loadtest::harness::sweep(opts) {
            Ok(reports) if reports.iter().all(|r| r.verdict == "pass") => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("loadtest run: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let report = match loadtest::harness::run(opts) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("loadtest run: {e:#}");
            return ExitCode::from(2);
        }
    };
    for outcome in report.outcomes.iter().filter(|o| !o.ok) {
        eprintln!(
            "loadtest: interview #{} failed: {}",
            outcome.index,
            outcome.error.as_deref().unwrap_or("unknown")
        );
    }
    if let Some(path) = &opts.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| std::fs::write(path, bytes).map_err(anyhow::Error::from));
        if let Err(e) = written {
            eprintln!("loadtest run: writing {}: {e:#}", path.display());
            println!("{}", report.summary.line());
            return ExitCode::from(2);
        }
    }
    println!("{}", report.summary.line());
    if report.verdict == "pass" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_listen_address_gives_three_consecutive_ports() {
        let addrs =
            listen_addrs(&["127.0.0.1:4000".parse().expect("literal address")]).expect("loopback");
        assert_eq!(addrs.map(|a| a.port()), [4000, 4001, 4002]);
    }

    #[test]
    fn non_loopback_addresses_are_refused() {
        assert!(listen_addrs(&["0.0.0.0:4000".parse().expect("literal address")]).is_err());
    }
}
