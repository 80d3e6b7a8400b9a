//! Structured logs with `tracing`: human-readable by default, JSON with `LOG_FORMAT=json`.
//!
//! What we log is chosen so personal data cannot appear: request lines carry method, route
//! pattern, status, latency and a request id; never client IPs, user agents, query strings,
//! headers or bodies. Types that hold personal data print `[REDACTED]` under `Debug`.
//!
//! Dependencies are another matter: at DEBUG and TRACE, WebSocket, HTTP, TLS, WebRTC and
//! database crates print whole frames, packets and statements (raw PCM, transcripts in vendor
//! frames, SQL with values, ICE addresses). So whatever `LOG_LEVEL` or `RUST_LOG` asks for, a
//! target outside our own crates ([`OWN_CRATES`]) logs at most WARN ([`DEPENDENCY_CAP`]).

use tracing::Level;
use tracing::Metadata;
use tracing_log::AsLog;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::configuration::LogFormat;

/// Crates whose own logs are capped, so SQL statements never reach the log.
const QUIET_CRATES: &str = "sqlx=warn,sea_orm=warn,sea_orm_migration=warn,actix_server=warn";

/// Our crates: they log at whatever level is configured (their events are written not to
/// carry personal data).
pub const OWN_CRATES: &[&str] = &["api", "engine", "fakes", "loadtest", "interviewcraft"];

/// The most verbose level any other target may log at.
pub const DEPENDENCY_CAP: Level = Level::WARN;

/// Whether `target` (a module path) belongs to one of [`OWN_CRATES`].
pub fn is_own_target(target: &str) -> bool {
    OWN_CRATES.iter().any(|krate| {
        target
            .strip_prefix(krate)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Whether an event or span passes the dependency cap.
pub fn passes_dependency_cap(metadata: &Metadata<'_>) -> bool {
    is_own_target(metadata.target()) || *metadata.level() <= DEPENDENCY_CAP
}

/// The filter in force: the given level plus the caps on noisy crates (unless `RUST_LOG` is set).
pub fn filter(level: &str) -> EnvFilter {
    if let Ok(from_env) = std::env::var("RUST_LOG")
        && let Ok(filter) = EnvFilter::try_new(format!("{from_env},{QUIET_CRATES}"))
    {
        return filter;
    }
    EnvFilter::try_new(format!("{level},{QUIET_CRATES}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET_CRATES}")))
}

/// Lines dependencies print at WARN or ERROR that mean nothing is wrong with the server: the
/// warnings a normal, healthy WebRTC session makes its stack print, and the client's own
/// malformed requests (answered 400, the client's fault). `(target, level, how the message
/// starts, why)`. They are dropped like the dependencies' DEBUG lines, so a WARN or ERROR in
/// the log is worth reading (and a client cannot fill the log with errors). Checked by
/// `tests/tests/quiet_logs.rs` (a whole interview logs no WARN or ERROR line).
pub const EXPECTED_WARNINGS: &[(&str, Level, &str, &str)] = &[
    (
        "rtc_dtls::config",
        Level::WARN,
        "conn.remote_addr is empty, please set explicitly server_name",
        "as the answerer the server is the DTLS client; WebRTC authenticates the peer by the \
         certificate fingerprint in the SDP, not by a server name, and the stack offers no way \
         to set one",
    ),
    (
        "rtc_ice::agent",
        Level::WARN,
        "[controlled]: pingAllCandidates called with no candidate pairs",
        "the ICE agent's first check fires before its host candidates are gathered (the answer \
         waits for gathering); the next check pairs them",
    ),
    (
        "rtc::peer_connection::handler",
        Level::WARN,
        "IceHandler.handle_read got error: password is empty",
        "a connectivity check that arrives before the remote description (a peer that checks \
         as soon as it has answered); ICE retransmits it and the next one is answered",
    ),
    (
        "actix_http::h1::dispatcher",
        Level::ERROR,
        "stream error: request parse error",
        "a client sent a request head that does not parse (a bad header, request line or \
         size); it is answered 400 and the connection closed: the client's fault, not the \
         server's",
    ),
];

/// Whether a dependency's event is one of [`EXPECTED_WARNINGS`].
pub fn is_expected_warning(target: &str, level: &Level, message: &str) -> bool {
    EXPECTED_WARNINGS
        .iter()
        .any(|(t, l, start, _)| *t == target && l == level && message.starts_with(start))
}

/// Drops [`EXPECTED_WARNINGS`] (the message is only read for WARN events of those targets).
struct ExpectedWarnings;

impl<S> tracing_subscriber::layer::Filter<S> for ExpectedWarnings {
    fn enabled(&self, _: &Metadata<'_>, _: &tracing_subscriber::layer::Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        use tracing_log::NormalizeEvent;
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if !EXPECTED_WARNINGS
            .iter()
            .any(|(target, level, ..)| *target == metadata.target() && level == metadata.level())
        {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        !is_expected_warning(metadata.target(), metadata.level(), &message.0)
    }
}

/// The `message` field of an event.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
}

/// Installs the global subscriber writing to `writer`. Returns `false` if one was already set
/// (tests start many servers in one process).
pub fn init<W>(format: LogFormat, level: &str, writer: W, ansi: bool) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(true)
        .with_ansi(ansi);
    let layer = match format {
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        LogFormat::Text => layer.boxed(),
    };
    let cap = tracing_subscriber::filter::filter_fn(passes_dependency_cap);
    let installed = tracing_subscriber::registry()
        .with(layer.with_filter(filter(level).and(cap).and(ExpectedWarnings)))
        .try_init()
        .is_ok();
    if installed {
        // Only dependencies log through the `log` crate (ours use `tracing`), and the cap drops
        // their records above WARN whatever the level. Stop those at the `log` macro (one
        // atomic load) rather than converting each into a `tracing` event first: the WebRTC
        // stack logs per packet at TRACE, which cost 0.4 % of the server's CPU under load.
        tracing_log::log::set_max_level(
            tracing_subscriber::filter::LevelFilter::from_level(DEPENDENCY_CAP).as_log(),
        );
    }
    installed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_log_records_above_the_cap_stop_at_the_log_macro() {
        // Whichever test of this process installed the subscriber, it set the `log` filter.
        let _ = init(LogFormat::Text, "trace", std::io::sink, false);
        assert_eq!(
            tracing_log::log::max_level(),
            tracing_log::log::LevelFilter::Warn
        );
        assert!(!tracing_log::log::log_enabled!(
            target: "rtc::peer_connection",
            tracing_log::log::Level::Debug
        ));
    }

    #[test]
    fn only_the_named_warnings_of_the_named_targets_are_expected() {
        let (target, level, start, _) = EXPECTED_WARNINGS[0];
        assert_eq!(level, Level::WARN);
        assert!(is_expected_warning(
            target,
            &Level::WARN,
            &format!("{start}! more")
        ));
        assert!(
            !is_expected_warning(target, &Level::ERROR, start),
            "only at its level"
        );
        assert!(!is_expected_warning(target, &Level::WARN, "a new warning"));
        assert!(!is_expected_warning("rtc_ice::agent", &Level::WARN, start));
        assert!(is_expected_warning(
            "actix_http::h1::dispatcher",
            &Level::ERROR,
            "stream error: request parse error: invalid Header provided"
        ));
    }

    #[test]
    fn only_our_crates_and_their_modules_are_own_targets() {
        for own in [
            "api",
            "api::routes::resume",
            "engine::actors::ingress",
            "fakes",
        ] {
            assert!(is_own_target(own), "{own}");
        }
        for dependency in [
            "apis",
            "tungstenite::protocol",
            "tokio_tungstenite",
            "webrtc::peer_connection",
            "rtc_srtp",
            "h2::codec",
            "rustls::conn",
            "sqlx::query",
            "engineer",
        ] {
            assert!(!is_own_target(dependency), "{dependency}");
        }
    }
}
