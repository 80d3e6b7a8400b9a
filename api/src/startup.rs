//! Building and running the server: `Application::build` connects and migrates the database,
//! binds the listener (port 0 allowed) and reports the port it got.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_http::{HttpService, Protocol};
use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, fn_service, map_config};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_web::body::MessageBody;
use actix_web::dev::AppConfig;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::{Condition, DefaultHeaders, Next};
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpMessage, web};
use anyhow::Context as _;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

use crate::auth::{FailedAttempts, JwtKeys, RateLimiter, password_hash};
use crate::configuration::Settings;
use crate::error::{json_error_handler, path_error_handler, query_error_handler};
use crate::metrics::Metrics;
use crate::middleware::{json_client_error, observe};
use crate::protocol_errors::JsonProtocolErrors;
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
    let url_for_file = url.clone();
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(settings.database_max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if sqlite {
        create_private_sqlite_file(&url_for_file)?;
        // SQLite has one writer at a time, and a transaction that reads and then writes cannot
        // wait for the lock upgrade: with several connections, concurrent sign-ups fail with
        // "database is locked". The embedded default therefore uses one connection (requests
        // queue for it briefly), in WAL mode with a busy timeout for other processes.
        options.max_connections(1);
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                // Deleted rows are overwritten with zeros, not left in free pages (erasure).
                .pragma("secure_delete", "ON")
        });
    }
    Database::connect(options)
        .await
        .context("connecting to the database (check DATABASE_URL)")
}

/// The file of a `sqlite:` URL, unless it is in memory.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || rest.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Creates the SQLite file owner-only (0600) before SQLite opens it, and tightens an existing
/// one; SQLite gives its `-wal` and `-shm` files the database file's permissions.
fn create_private_sqlite_file(url: &str) -> anyhow::Result<()> {
    let Some(path) = sqlite_file(url) else {
        return Ok(());
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match created {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} owner-only", path.display()))?;
            }
            // A missing directory and the like: SQLite reports it more clearly.
            Err(_) => {}
        }
    }
    Ok(())
}

/// After an erasure, make the deleted bytes unrecoverable from the database files where the
/// database allows: SQLite (with `secure_delete` on) copies the zeroed pages back from the WAL
/// and truncates it; PostgreSQL keeps dead tuples until vacuum, so the erased tables are
/// vacuumed in the background (best effort: the role may not be allowed to).
pub async fn scrub_after_erasure(db: &DatabaseConnection, tables: &[&'static str]) {
    use sea_orm::{ConnectionTrait, DatabaseBackend};
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            if let Err(error) = db
                .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await
            {
                tracing::warn!(%error, "WAL checkpoint after an erasure failed");
            }
        }
        DatabaseBackend::Postgres => {
            let list = tables
                .iter()
                .map(|table| format!("\"{table}\""))
                .collect::<Vec<_>>()
                .join(", ");
            if list.is_empty() {
                return;
            }
            let db = db.clone();
            tokio::spawn(async move {
                match db.execute_unprepared(&format!("VACUUM {list}")).await {
                    Ok(_) => tracing::debug!("erased tables vacuumed"),
                    Err(error) => tracing::debug!(%error, "vacuum after an erasure not possible"),
                }
            });
        }
        _ => {}
    }
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    migrations::Migrator::up(db, None)
        .await
        .context("running database migrations")
}

/// For a server that does not migrate (`MIGRATE_ON_START=false`, a least-privilege role):
/// checks, reading only, that the schema is current.
pub async fn check_migrated(db: &DatabaseConnection) -> anyhow::Result<()> {
    let pending = migrations::Migrator::get_pending_migrations_read_only(db)
        .await
        .context("reading the applied migrations (MIGRATE_ON_START=false)")?;
    if let Some(first) = pending.first() {
        anyhow::bail!(
            "{} database migrations are pending (first: {}); with MIGRATE_ON_START=false the \
             schema owner applies them: run `interviewcraft migrate` as the owner role",
            pending.len(),
            first.name()
        );
    }
    Ok(())
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let secrets = settings.resolve_secrets()?;
        let db = connect_database(&settings).await?;
        if settings.migrate_on_start {
            migrate(&db).await?;
        } else {
            check_migrated(&db).await?;
        }
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
            crate::local_vendors::LocalSetup::none()
        };
        for note in &local.notes.snapshot() {
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
        let writer = engine.transcript_writer_counters();
        metrics.register(
            "transcript_rows_queued",
            "Transcript, word and turn rows queued for the transcript writer",
            writer.queued,
        );
        metrics.register(
            "transcript_rows_written",
            "Transcript, word and turn rows stored by the transcript writer",
            writer.written,
        );
        metrics.register(
            "transcript_write_retries",
            "Transcript writer batches retried after a passing failure (busy database, pool timeout)",
            writer.retried,
        );
        metrics.register(
            "transcript_rows_dropped",
            "Transcript rows not stored (their interview was erased, or the writer stayed full)",
            writer.dropped,
        );
        let (wideband, wider) = engine::transport::inbound::packets_by_band_counters();
        metrics.register(
            "inbound_opus_packets_wideband",
            "Candidate Opus packets coding at most 8 kHz of audio (what the engine hears)",
            wideband,
        );
        metrics.register(
            "inbound_opus_packets_above_wideband",
            "Candidate Opus packets coding audio above 8 kHz, decoded only to be dropped (a browser ignoring our maxplaybackrate)",
            wider,
        );
        metrics.register(
            "stt_stalled_sockets",
            "Deepgram sockets replaced by the stall watchdog (connected, silent while audio was sent)",
            engine::vendors::deepgram::stalled_sockets_counter(),
        );
        metrics.register(
            "tts_stalled_sockets",
            "ElevenLabs sockets given up by the stall watchdog (no audio after text; the HTTP stream took over)",
            engine::vendors::elevenlabs::stalled_sockets_counter(),
        );
        metrics.register(
            "llm_stalled_streams",
            "Claude streams given up by the watchdog (no token in time; sent again while nothing was heard)",
            engine::vendors::anthropic::stalled_streams_counter(),
        );
        let lease_gauges = engine.lease_gauges();
        metrics.register(
            "key_leases_live",
            "Live key leases (one per live interview using a vendor key; no account ids)",
            lease_gauges.live,
        );
        metrics.register(
            "key_leases_own_keys_live",
            "Live key leases still holding their account's own (BYOK) keys",
            lease_gauges.own_keys,
        );
        let resume_limits = settings.resume_worker_limits();
        let resume_sandbox = match &settings.resume_worker_path {
            Some(path) => crate::resume::worker::ExtractionSandbox::new(
                path.clone(),
                settings.resume_worker_args.clone(),
                resume_limits,
            ),
            None => crate::resume::worker::ExtractionSandbox::current_executable(resume_limits)
                .context("locating this executable for the resume worker")?,
        };
        let feedback_config = settings.feedback.clone();
        let scoring = crate::feedback::job::ScoringQueue::start(
            db.clone(),
            feedback_config.clone(),
            crate::feedback::job::ScorerSource::new(
                &settings,
                &feedback_config,
                engine.clone(),
                Some(engine.usage_meter()),
            ),
            settings.node_id.clone(),
        );
        engine.on_interview_ended(scoring.listener());
        crate::digest::start(db.clone(), &settings).map_err(|error| anyhow::anyhow!(error))?;
        let mailer = crate::digest::Mailer::from_settings(&settings)
            .map_err(|error| anyhow::anyhow!(error))?;
        if mailer.is_some() {
            tracing::info!(
                "SMTP_URL is set: a new mailbox is verified by e-mail link before its first free interview"
            );
        }
        let listener = TcpListener::bind(settings.listen_addr)
            .with_context(|| format!("binding {}", settings.listen_addr))?;
        let port = listener.local_addr()?.port();
        let tls = settings.tls_cert_path.is_some();
        let public_url = match &settings.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => open_address(settings.listen_addr, port, tls)
                .trim_end_matches('/')
                .to_owned(),
        };
        let state = web::Data::new(AppState {
            mailer,
            public_url,
            ledger_key: secrets.ledger_key,
            scoring,
            engine,
            local_vendors,
            local_notes: local.notes,
            events: Default::default(),
            webrtc,
            resume_sandbox,
            db,
            jwt: JwtKeys::new(&secrets.jwt_secret, settings.access_token_ttl_secs),
            key_ring: secrets.key_ring,
            auth_rate_limiter: RateLimiter::new(
                settings.auth_rate_limit_per_minute,
                Duration::from_secs(60),
            ),
            failed_attempts: FailedAttempts::new(
                settings.login_max_failures,
                Duration::from_secs(settings.login_lockout_secs),
            ),
            metrics: Arc::new(metrics),
            dummy_password_hash,
            settings: Arc::new(settings),
        });

        let modes = state.engine.modes();
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
        let reason = engine::actors::interview::EndReason::ServerShutdown;
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

/// Ends a request body that is still arriving when `REQUEST_BODY_TIMEOUT_SECS` have passed: the
/// handler's extractor then fails (a JSON error) and the connection is freed. WebSocket upgrades
/// are exempt: their "body" is the socket.
async fn body_deadline(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use futures_util::StreamExt as _;
    let upgrade = request.headers().contains_key(header::UPGRADE);
    let limit = request
        .app_data::<web::Data<AppState>>()
        .map(|state| Duration::from_secs(state.settings.request_body_timeout_secs));
    if let (false, Some(limit)) = (upgrade, limit) {
        let deadline = tokio::time::Instant::now() + limit;
        let payload = request.take_payload();
        let timed = futures_util::stream::unfold(Some(payload), move |payload| async move {
            let mut payload = payload?;
            match tokio::time::timeout_at(deadline, payload.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(payload))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "request body timed out",
                    ))),
                    None,
                )),
            }
        })
        // Readers (multipart) poll again after the end; a bare `unfold` would panic.
        .fuse();
        let boxed: std::pin::Pin<
            Box<dyn futures_util::Stream<Item = Result<actix_web::web::Bytes, PayloadError>>>,
        > = Box::pin(timed);
        request.set_payload(actix_web::dev::Payload::from(boxed));
    }
    next.call(request).await
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let settings = state.settings.clone();
    let json_limit = settings.json_body_limit_bytes;
    let factory_state = state.clone();
    // Over TLS, browsers are told to use nothing else for a year.
    let hsts = settings.tls_cert_path.is_some();
    let app = move || {
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
            .wrap(from_fn(body_deadline))
            .wrap(Condition::new(
                hsts,
                DefaultHeaders::new().add((
                    header::STRICT_TRANSPORT_SECURITY,
                    "max-age=31536000; includeSubDomains",
                )),
            ))
            .wrap(from_fn(observe))
            .configure(routes::configure)
    };
    let tls = match (&settings.tls_cert_path, &settings.tls_key_path) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
        _ => None,
    };
    // actix-web's `HttpServer`, assembled from its parts (actix-server, actix-http's
    // `HttpService`) so that each connection's stream is wrapped in `JsonProtocolErrors`:
    // the answers actix-http writes itself get the JSON body every other error has.
    // Signals are ours (`run_until_signalled`): interviews drain before the listener closes.
    let mut builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(10);
    if let Some(workers) = settings.workers {
        builder = builder.workers(workers.max(1));
    }
    let shutdown = builder.graceful_shutdown_signal();
    let request_timeout = Duration::from_secs(settings.request_header_timeout_secs);
    let address = listener.local_addr()?;
    // One HTTP service per worker and stream type (plain or TLS): a macro, as a closure would fix
    // the stream type at its first use.
    macro_rules! http_service {
        () => {{
            let shutdown = shutdown.clone();
            // Slow clients: the head must arrive within the header timeout (actix answers 408),
            // the body within the body timeout (`body_deadline`), and a closing connection is
            // dropped after a few seconds.
            HttpService::build()
                .keep_alive(Duration::from_secs(30))
                .client_request_timeout(request_timeout)
                .client_disconnect_timeout(Duration::from_secs(5))
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .finish(map_config(
                    app()
                        .into_factory()
                        .map_err(|error: actix_web::Error| error.error_response()),
                    // The request's own Host header and peer address are what the routes read.
                    |_| AppConfig::default(),
                ))
        }};
    }
    let name = format!("interviewcraft-{address}");
    let builder = match tls {
        Some(mut config) => {
            // As actix-web offers it: HTTP/2 or HTTP/1.1, by ALPN.
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            builder.listen(name, listener, move || {
                Acceptor::new(config.clone())
                    .map_init_err(|_| ())
                    .map_err(|_| ())
                    .and_then(|io: TlsStream<tokio::net::TcpStream>| async move {
                        let h2 = io.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                        let protocol = if h2 { Protocol::Http2 } else { Protocol::Http1 };
                        let peer = io.get_ref().0.peer_addr().ok();
                        Ok((JsonProtocolErrors::new(io), protocol, peer))
                    })
                    .and_then(http_service!().map_err(|_| ()))
            })?
        }
        None => builder.listen(name, listener, move || {
            fn_service(|io: tokio::net::TcpStream| async move {
                let peer = io.peer_addr().ok();
                Ok((JsonProtocolErrors::new(io), Protocol::Http1, peer))
            })
            .and_then(http_service!())
        })?,
    };
    Ok(builder.run())
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
