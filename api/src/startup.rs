//! Building and running the server: `Application::build` connects and migrates the database,
//! binds the listener (port 0 allowed) and reports the port it got.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

use crate::auth::{JwtKeys, RateLimiter, password_hash};
use crate::configuration::Settings;
use crate::error::{json_error_handler, path_error_handler, query_error_handler};
use crate::metrics::Metrics;
use crate::middleware::{json_client_error, observe};
use crate::routes;
use crate::state::AppState;

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// Connects to the configured database (SQLite file by default) without migrating it.
pub async fn connect_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.database_url()?;
    let sqlite = url.starts_with("sqlite:");
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(settings.database_max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if sqlite {
        // SQLite has one writer at a time, and a transaction that reads and then writes cannot
        // wait for the lock upgrade: with several connections, concurrent sign-ups fail with
        // "database is locked". The embedded default therefore uses one connection (requests
        // queue for it briefly), in WAL mode with a busy timeout for other processes.
        options.max_connections(1);
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
        });
    }
    Database::connect(options)
        .await
        .context("connecting to the database (check DATABASE_URL)")
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    migrations::Migrator::up(db, None)
        .await
        .context("running database migrations")
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let secrets = settings.resolve_secrets()?;
        let db = connect_database(&settings).await?;
        migrate(&db).await?;
        crate::policy::seed(&db)
            .await
            .map_err(|error| anyhow::anyhow!("seeding the privacy policy: {error}"))?;
        // Before any offer is accepted: interviews this node left live (crash, SIGKILL) end now.
        let orphans =
            engine::recovery::end_interviews_left_live(&db, &settings.node_id, chrono::Utc::now())
                .await
                .context("ending the interviews this node left live")?;
        if orphans > 0 {
            tracing::info!(
                interviews = orphans,
                reason = engine::recovery::NODE_RESTARTED,
                "ended the interviews this node left live when it last stopped"
            );
        }

        let cost = settings.bcrypt_cost;
        let dummy_password_hash = web::block(move || password_hash::dummy_hash(cost))
            .await
            .context("blocking pool")?
            .context("bcrypt")?;
        let local = if crate::local_vendors::needs_fakes(&settings) {
            crate::local_vendors::start(&settings)
                .await
                .context("starting keyless local mode")?
        } else {
            crate::local_vendors::LocalSetup {
                local: Default::default(),
                fakes: None,
                notes: Vec::new(),
            }
        };
        for note in &local.notes {
            match note.package {
                Some(package) => tracing::warn!(
                    kind = note.kind,
                    package,
                    "keyless local mode: {} (install the Debian package `{package}` for the local one)",
                    note.message
                ),
                None => tracing::warn!(kind = note.kind, "keyless local mode: {}", note.message),
            }
        }
        let local_vendors = local.fakes.map(Arc::new);
        let engine = engine::engine::EngineHandle::start(
            db.clone(),
            crate::interviews::engine_config(&settings, local.local, local_vendors.as_deref()),
            engine::key_lease::PlatformKeys {
                anthropic: settings.anthropic_api_key.clone(),
                deepgram: settings.deepgram_api_key.clone(),
                elevenlabs: settings.elevenlabs_api_key.clone(),
            },
            secrets.key_ring.clone(),
        );
        let webrtc = crate::interviews::webrtc_config(&settings);
        let metrics = Metrics::new();
        metrics.register(
            "usage_rows_dropped",
            "Usage rows dropped because their account or interview was erased first",
            engine.usage_rows_dropped(),
        );
        let state = web::Data::new(AppState {
            engine,
            local_vendors,
            local_notes: local.notes,
            webrtc,
            db,
            jwt: JwtKeys::new(&secrets.jwt_secret, settings.access_token_ttl_secs),
            key_ring: secrets.key_ring,
            auth_rate_limiter: RateLimiter::new(
                settings.auth_rate_limit_per_minute,
                Duration::from_secs(60),
            ),
            metrics: Arc::new(metrics),
            dummy_password_hash,
            settings: Arc::new(settings),
        });

        let listener = TcpListener::bind(state.settings.listen_addr)
            .with_context(|| format!("binding {}", state.settings.listen_addr))?;
        let port = listener.local_addr()?.port();
        let modes = state.engine.modes();
        let tls = state.settings.tls_cert_path.is_some();
        tracing::info!(
            address = %open_address(state.settings.listen_addr, port, tls),
            stt = modes.stt,
            llm = modes.llm,
            tts = modes.tts,
            "open {} in a browser; speech-to-text: {}, interviewer: {}, voice: {}",
            open_address(state.settings.listen_addr, port, tls),
            describe_mode(modes.stt),
            describe_mode(modes.llm),
            describe_mode(modes.tts),
        );
        let server = run(listener, state.clone())?;
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests use it to reach the database directly).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Serves until SIGTERM or SIGINT, then shuts down in order: new offers get 503, live
    /// interviews end gracefully within `SHUTDOWN_DRAIN_SECS` (their last words transcribed and
    /// stored), usage rows are written, and the HTTP server stops. A second signal during the
    /// drain ends the live interviews at once.
    pub async fn run_until_signalled(self) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut next_signal = async move || {
            tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            }
        };
        let handle = self.server.handle();
        let engine = self.state.engine.clone();
        let drain = Duration::from_secs(self.state.settings.shutdown_drain_secs);
        let mut server = actix_web::rt::spawn(self.server);
        let first = tokio::select! {
            result = &mut server => return Ok(result.context("the HTTP server task")??),
            first = next_signal() => first,
        };
        tracing::info!(
            signal = first,
            live = engine.live().len(),
            drain_secs = drain.as_secs(),
            "shutting down: no new interviews; live interviews end gracefully"
        );
        let reason = "server_shutdown";
        tokio::select! {
            left = engine.drain(reason, drain) => {
                if left > 0 {
                    tracing::warn!(interviews = left, "the drain time ran out: ending the rest now");
                    engine.cancel_all(reason);
                    engine.wait_until_idle(CANCEL_WAIT).await;
                }
            }
            second = next_signal() => {
                tracing::warn!(signal = second, "second signal: ending live interviews now");
                engine.cancel_all(reason);
                engine.wait_until_idle(CANCEL_WAIT).await;
                handle.stop(false).await;
                return Ok(server.await.context("the HTTP server task")??);
            }
        }
        handle.stop(true).await;
        Ok(server.await.context("the HTTP server task")??)
    }
}

/// How long a cancelled interview gets to store its end before the process exits.
const CANCEL_WAIT: Duration = Duration::from_secs(2);
/// A vendor mode in words for the start-up log.
fn describe_mode(mode: &str) -> String {
    match mode {
        "local" => "local (on this machine)".to_owned(),
        "fake" => "fake (simulated, on this machine)".to_owned(),
        "unavailable" => "unavailable".to_owned(),
        vendor => format!("{vendor} (platform key)"),
    }
}

/// The address to open in a browser: a wildcard listener is reached through loopback.
pub fn open_address(listen: std::net::SocketAddr, port: u16, tls: bool) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}/", SocketAddr::new(ip, port))
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let settings = state.settings.clone();
    let json_limit = settings.json_body_limit_bytes;
    let factory_state = state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(factory_state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(json_limit)
                    .error_handler(json_error_handler),
            )
            .app_data(web::PayloadConfig::default().limit(json_limit))
            .app_data(web::QueryConfig::default().error_handler(query_error_handler))
            .app_data(web::PathConfig::default().error_handler(path_error_handler))
            .wrap(
                ErrorHandlers::new()
                    .handler(StatusCode::NOT_FOUND, json_client_error)
                    .handler(StatusCode::METHOD_NOT_ALLOWED, json_client_error)
                    .handler(StatusCode::PAYLOAD_TOO_LARGE, json_client_error)
                    .handler(StatusCode::UNSUPPORTED_MEDIA_TYPE, json_client_error)
                    .handler(StatusCode::BAD_REQUEST, json_client_error),
            )
            .wrap(from_fn(observe))
            .configure(routes::configure)
    })
    // Signals are ours (`run_until_signalled`): interviews drain before the listener closes.
    .disable_signals()
    .shutdown_timeout(10);
    if let Some(workers) = settings.workers {
        server = server.workers(workers.max(1));
    }
    let server = match (&settings.tls_cert_path, &settings.tls_key_path) {
        (Some(cert), Some(key)) => {
            let config = crate::tls::server_config(cert, key)?;
            server.listen_rustls_0_23(listener, config)?
        }
        _ => server.listen(listener)?,
    };
    Ok(server.run())
}

#[cfg(test)]
mod tests {
    use super::open_address;

    #[test]
    fn open_address_names_loopback_for_a_wildcard_listener() {
        let at = |addr: &str| addr.parse().expect("socket address");
        assert_eq!(
            open_address(at("127.0.0.1:8080"), 8080, false),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            open_address(at("0.0.0.0:0"), 41234, false),
            "http://127.0.0.1:41234/"
        );
        assert_eq!(
            open_address(at("[::]:443"), 443, true),
            "https://[::1]:443/"
        );
        assert_eq!(
            open_address(at("192.0.2.7:8080"), 8080, true),
            "https://192.0.2.7:8080/"
        );
    }
}
