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

        let cost = settings.bcrypt_cost;
        let dummy_password_hash = web::block(move || password_hash::dummy_hash(cost))
            .await
            .context("blocking pool")?
            .context("bcrypt")?;
        let local_vendors = if crate::local_vendors::needs_fakes(&settings) {
            let fakes = crate::local_vendors::start(&settings)
                .await
                .context("starting the local fake vendors")?;
            tracing::warn!(
                stt = settings.deepgram_api_key.is_none(),
                llm = settings.anthropic_api_key.is_none(),
                tts = settings.elevenlabs_api_key.is_none(),
                "keyless local mode: vendors without a key are served by in-process fakes \
                 (simulated speech recognition, scripted interviewer, synthetic voice)"
            );
            Some(std::sync::Arc::new(fakes))
        } else {
            None
        };
        let engine = engine::engine::EngineHandle::start(
            db.clone(),
            crate::interviews::engine_config(&settings, local_vendors.as_deref()),
            engine::key_lease::PlatformKeys {
                anthropic: settings.anthropic_api_key.clone(),
                deepgram: settings.deepgram_api_key.clone(),
                elevenlabs: settings.elevenlabs_api_key.clone(),
            },
            secrets.key_ring.clone(),
        );
        let webrtc = crate::interviews::webrtc_config(&settings);
        let feedback_config = engine::feedback::FeedbackConfig::default();
        let scoring = crate::feedback::job::ScoringQueue::start(
            db.clone(),
            feedback_config.clone(),
            crate::feedback::job::scorer(&settings, &feedback_config),
        );
        engine.on_interview_ended(scoring.listener());
        let state = web::Data::new(AppState {
            scoring,
            engine,
            local_vendors,
            webrtc,
            db,
            jwt: JwtKeys::new(&secrets.jwt_secret, settings.access_token_ttl_secs),
            key_ring: secrets.key_ring,
            auth_rate_limiter: RateLimiter::new(
                settings.auth_rate_limit_per_minute,
                Duration::from_secs(60),
            ),
            metrics: Arc::new(Metrics::new()),
            dummy_password_hash,
            settings: Arc::new(settings),
        });

        let listener = TcpListener::bind(state.settings.listen_addr)
            .with_context(|| format!("binding {}", state.settings.listen_addr))?;
        let port = listener.local_addr()?.port();
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
