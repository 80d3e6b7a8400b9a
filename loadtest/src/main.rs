//! `loadtest`: the load harness (a later issue) and a standalone mode that runs the fake
//! vendors so other processes can use them.
//!
//! ```text
//! loadtest fakes [--listen ADDR]... [--speed F] [--script TEXT]... [--reply TEXT]...
//! loadtest run        # not built yet: exits with status 2
//! ```
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
    /// Run the load harness (not built yet).
    Run,
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

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Fakes {
            listen,
            speed,
            script,
            reply,
        } => match run_fakes(listen, speed, script, reply).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadtest fakes: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Run => {
            eprintln!(
                "loadtest run: the load harness is not built yet (it comes in a later issue); no results were produced"
            );
            ExitCode::from(2)
        }
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
