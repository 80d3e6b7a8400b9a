//! Structured logs with `tracing`: human-readable by default, JSON with `LOG_FORMAT=json`.
//!
//! What we log is chosen so personal data cannot appear: request lines carry method, route
//! pattern, status, latency and a request id; never client IPs, user agents, query strings,
//! headers or bodies. Types that hold personal data print `[REDACTED]` under `Debug`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::configuration::LogFormat;

/// Crates whose own logs are capped, so SQL statements never reach the log.
const QUIET_CRATES: &str = "sqlx=warn,sea_orm=warn,sea_orm_migration=warn,actix_server=warn";

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

/// Installs the global subscriber writing to `writer`. Returns `false` if one was already set
/// (tests start many servers in one process).
pub fn init<W>(format: LogFormat, level: &str, writer: W, ansi: bool) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(writer)
        .with_target(true)
        .with_ansi(ansi);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.is_ok()
}
