//! Black-box test harness: `spawn_app()` starts the real server on port 0 with a fresh migrated
//! database, and `TestApp` has one helper per endpoint.
//!
//! Every test runs on SQLite; with `TEST_DATABASE_URL` set (a PostgreSQL URL) it also runs on
//! PostgreSQL, each test in a database of its own that is dropped afterwards. Under CI
//! (`CI=true`) a missing `TEST_DATABASE_URL` fails the PostgreSQL variants instead of skipping.

pub mod browser;
pub mod feedback;
pub mod fixtures;
pub mod smtp_sink;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use api::configuration::{LogFormat, Settings};
use api::startup::Application;
use base64::Engine as _;
use engine::{AccountId, InterviewId};
use reqwest::header::{HeaderMap, SET_COOKIE};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

/// Generates, for each named `async fn name(backend: Backend)`, a module `name` with two tests:
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[actix_web::test]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await;
                }

                #[actix_web::test]
                async fn postgres() {
                    if let Some(backend) = $crate::Backend::postgres() {
                        super::$name(backend).await;
                    }
                }
            }
        )*
    };
}

/// Which database a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

impl Backend {
    /// PostgreSQL when `TEST_DATABASE_URL` is set; `None` (skip) otherwise, except under CI.
    pub fn postgres() -> Option<Self> {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres { admin_url: url }),
            _ => {
                assert!(
                    std::env::var("CI").is_err(),
                    "TEST_DATABASE_URL must be set under CI so PostgreSQL tests run"
                );
                None
            }
        }
    }
}

/// Log lines of every server started by this test process (one capture per test binary).
pub fn captured_logs() -> String {
    let buffer = log_buffer().lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(&buffer).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

#[derive(Clone)]
struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let writer = BufferWriter(log_buffer().clone());
        // Everything, at the most verbose level, goes to the capture (dependencies are capped
        // by the server's own filter, as in production).
        api::telemetry::init(LogFormat::Text, "trace", move || writer.clone(), false);
    });
}

/// A running server and a client for it.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub settings: Settings,
    /// The server's shared state: the engine, and in keyless local mode the in-process fake
    /// vendors (`state.local_vendors`, with `counters()` on each fake).
    pub state: actix_web::web::Data<api::state::AppState>,
    /// A connection as the schema's owner, for what the server's role may not do (DDL such as
    /// a test trigger). On SQLite, the same database as `db`.
    pub owner_db: DatabaseConnection,
    _data_dir: tempfile::TempDir,
    cleanup: Option<PostgresCleanup>,
}

struct PostgresCleanup {
    admin_url: String,
    database: String,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            // Drop the per-test database from a thread of its own (Drop cannot be async).
            let _ = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async move {
                    if let Ok(admin) = Database::connect(&cleanup.admin_url).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                                cleanup.database
                            ))
                            .await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Settings for a test server: port 0, low bcrypt cost, fresh secrets, one worker.
pub fn test_settings(data_dir: &std::path::Path) -> Settings {
    let mut kek = [0u8; 32];
    kek.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i as u8).wrapping_mul(37) ^ 0x5a);
    Settings {
        listen_addr: "127.0.0.1:0".parse().expect("literal address"),
        data_dir: data_dir.to_path_buf(),
        jwt_secret: Some(SecretString::from(format!(
            "test-jwt-secret-{}",
            Uuid::new_v4()
        ))),
        key_encryption_key: Some(SecretString::from(
            base64::engine::general_purpose::STANDARD.encode(kek),
        )),
        bcrypt_cost: 4,
        workers: Some(1),
        // Network tests only ever target loopback.
        webrtc_loopback_only: true,
        // Keyless kinds are served by the protocol fakes (scripted, countable); a test that
        // wants the local interviewer and voice sets `LocalVendorsMode::Local`.
        local_vendors: api::configuration::LocalVendorsMode::Fakes,
        // Never a background download of the recognizer from a test.
        local_speech_auto_setup: false,
        database_max_connections: 5,
        resume_worker_path: Some(resume_worker_executable()),
        resume_worker_args: Vec::new(),
        // Every test signs up from loopback, many times a day: the per-address limit is tested
        // on its own (`abuse`), with its own low value.
        signups_per_ip_per_day: 1_000_000,
        ..Settings::default()
    }
}

/// This package's `resume-worker` binary, which cargo builds next to the test executables'
/// `deps/` directory (integration tests see it as `CARGO_BIN_EXE_resume-worker`; this library
/// is compiled without that variable, so it looks where cargo puts it).
pub fn resume_worker_executable() -> std::path::PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_resume-worker") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let name = format!("resume-worker{}", std::env::consts::EXE_SUFFIX);
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join(&name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} not built next to {}", exe.display()))
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server whose settings `configure` may adjust.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    api::install_crypto_provider();
    init_logging();
    let data_dir = tempfile::tempdir().expect("temp dir for the test server");
    let mut settings = test_settings(data_dir.path());
    let mut cleanup = None;
    let mut owner_url = None;
    settings.database_url = Some(match &backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            data_dir.path().join("test.db").display()
        ),
        Backend::Postgres { admin_url } => {
            let database = format!("ic_test_{}", Uuid::new_v4().simple());
            let admin = Database::connect(admin_url)
                .await
                .expect("TEST_DATABASE_URL must point at a reachable PostgreSQL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{database}\""))
                .await
                .expect("creating the per-test database");
            admin.close().await.expect("closing the admin connection");
            cleanup = Some(PostgresCleanup {
                admin_url: admin_url.clone(),
                database: database.clone(),
            });
            // As in production: the owner migrates, the server runs as a role that can only
            // read and write rows (README "PostgreSQL role for production").
            let owner = with_database_name(admin_url, &database);
            let role = least_privilege_role(admin_url).await;
            grant_rows_only(&owner, role).await;
            settings.migrate_on_start = false;
            owner_url = Some(owner.clone());
            with_user(&owner, role)
        }
    });
    configure(&mut settings);
    let application = Application::build(settings.clone())
        .await
        .expect("the test server builds");
    let port = application.port();
    let state = application.state();
    let db = state.db.clone();
    let owner_db = match owner_url {
        Some(url) => Database::connect(url.as_str())
            .await
            .expect("the owner connects to the test database"),
        None => db.clone(),
    };
    actix_web::rt::spawn(application.run_until_stopped());
    // A test's own rows must never race the server's start-up scoring sweep (it would score an
    // interview the test is still writing, or claim a job the test drives itself).
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        state.scoring.start_up_sweep_done(),
    )
    .await
    .expect("the scoring sweep runs at start");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client,
        db,
        settings,
        state,
        owner_db,
        _data_dir: data_dir,
        cleanup,
    }
}

/// The role test servers run as on PostgreSQL: it may log in, and nothing else until a
/// database grants it rows (created once per cluster; concurrent test processes may race).
pub const APP_ROLE: &str = "interviewcraft_test_app";

async fn least_privilege_role(admin_url: &str) -> &'static str {
    let admin = Database::connect(admin_url)
        .await
        .expect("TEST_DATABASE_URL must point at a reachable PostgreSQL");
    admin
        .execute_unprepared(&format!(
            "DO $$ BEGIN CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ))
        .await
        .expect("creating the least-privilege role");
    let _ = admin.close().await;
    APP_ROLE
}

/// Migrates the database at `owner_url` as its owner, then grants `role` rows only: read and
/// write every table, nothing on the schema (no CREATE, DROP or ALTER).
async fn grant_rows_only(owner_url: &str, role: &str) {
    use sea_orm_migration::MigratorTrait;
    let owner = Database::connect(owner_url)
        .await
        .expect("the owner connects to the test database");
    migrations::Migrator::up(&owner, None)
        .await
        .expect("the owner migrates the test database");
    for grant in [
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
    ] {
        owner
            .execute_unprepared(&grant)
            .await
            .unwrap_or_else(|error| panic!("{grant}: {error}"));
    }
    let _ = owner.close().await;
}

/// The URL with its user replaced by `user` (no password: the test cluster trusts loopback).
pub fn with_user(url: &str, user: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{}{user}@{host}", &url[..scheme_end])
}

/// Replaces the database name (the last path segment) of a PostgreSQL URL.
pub fn with_database_name(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].rfind('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// A signed-in user.
pub struct Session {
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// A `Set-Cookie` header, parsed.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub attributes: Vec<String>,
}

impl SetCookie {
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }
    pub fn attribute(&self, name: &str) -> Option<String> {
        self.attributes.iter().find_map(|a| {
            let (key, value) = a.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// The `refresh_token` cookie set by a response, if any.
pub fn refresh_cookie(headers: &HeaderMap) -> Option<SetCookie> {
    headers.get_all(SET_COOKIE).iter().find_map(|value| {
        let text = value.to_str().ok()?;
        let mut parts = text.split(';').map(str::trim);
        let (name, value) = parts.next()?.split_once('=')?;
        (name == "refresh_token").then(|| SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes: parts.map(str::to_owned).collect(),
        })
    })
}

/// A unique e-mail address for a test.
pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A `multipart/form-data` body holding one file part named `field`: the `Content-Type`
/// header value (with its boundary) and the body.
pub fn multipart_file(
    field: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let boundary = format!("----ic{}", Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl TestApp {
    /// `POST /api/v1/resume` with `bytes` as the `file` part (2 minutes at most).
    pub async fn upload_resume(
        &self,
        token: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> reqwest::Response {
        let (header, body) = multipart_file("file", filename, content_type, bytes);
        self.client
            .post(self.url("/api/v1/resume"))
            .bearer_auth(token)
            .header("content-type", header)
            .body(body)
            .timeout(std::time::Duration::from_secs(120))
            .send()
            .await
            .expect("the server answers")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request reaches the server")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request reaches the server")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request reaches the server")
    }

    pub async fn register(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password, "age_confirmed": true}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// `POST /api/v1/auth/refresh` with the given refresh cookie value (or none).
    pub async fn refresh(&self, refresh_token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url("/api/v1/auth/refresh"));
        if let Some(token) = refresh_token {
            request = request.header("cookie", format!("refresh_token={token}"));
        }
        request.send().await.expect("request reaches the server")
    }

    pub async fn logout(&self, refresh_token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url("/api/v1/auth/logout"));
        if let Some(token) = refresh_token {
            request = request.header("cookie", format!("refresh_token={token}"));
        }
        request.send().await.expect("request reaches the server")
    }

    /// Any request with a Bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        access_token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = access_token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request reaches the server")
    }

    pub async fn get_as(&self, path: &str, access_token: &str) -> reqwest::Response {
        self.call(reqwest::Method::GET, path, Some(access_token), None)
            .await
    }

    /// The account id behind a session.
    pub async fn account_id(&self, session: &Session) -> AccountId {
        let body: Value = self
            .me(&session.access_token)
            .await
            .json()
            .await
            .expect("json");
        body["id"].as_str().expect("id").parse().expect("uuid")
    }

    /// Registers and signs in a user, promotes it to admin, and returns its session.
    pub async fn signed_in_admin(&self) -> Session {
        let session = self.signed_in_user().await;
        let email = api::domain::Email::parse(&session.email).expect("valid email");
        api::admin::create_admin(&self.db, &email, None, 4)
            .await
            .expect("promote to admin");
        session
    }

    pub async fn me(&self, access_token: &str) -> reqwest::Response {
        self.client
            .get(self.url("/api/v1/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request reaches the server")
    }

    /// Registers a fresh account and signs it in.
    pub async fn signed_in_user(&self) -> Session {
        let email = unique_email();
        let response = self.register(&email, PASSWORD).await;
        assert_eq!(response.status(), 201, "registration succeeds");
        let response = self.login(&email, PASSWORD).await;
        assert_eq!(response.status(), 200, "login succeeds");
        let refresh = refresh_cookie(response.headers()).expect("login sets the refresh cookie");
        let body: Value = response.json().await.expect("json body");
        Session {
            email,
            password: PASSWORD.to_owned(),
            access_token: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh_token: refresh.value,
        }
    }

    /// Rows in a table (direct database check).
    pub async fn count_rows(&self, table: &str) -> i64 {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count query")
            .expect("one row");
        row.try_get::<i64>("", "n").expect("count column")
    }
}

/// Asserts a response is a JSON error with the given status, and returns its `error.code`.
pub async fn assert_json_error(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "JSON body, got {content_type:?}"
    );
    let body: Value = response.json().await.expect("error body is JSON");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error.message"
    );
    code
}

/// `POST /api/v1/interviews/{id}/offer` with `offer` (an SDP offer as JSON) as `session`.
impl TestApp {
    /// Creates an interview as `session` (`body` as `POST /api/v1/interviews` takes it; it
    /// must be answered 201): its id.
    pub async fn create_interview_with(&self, session: &Session, body: &Value) -> InterviewId {
        let response = self
            .call(
                reqwest::Method::POST,
                "/api/v1/interviews",
                Some(&session.access_token),
                Some(body),
            )
            .await;
        assert_eq!(response.status(), 201, "the interview is created");
        let created: Value = response.json().await.expect("json");
        created["id"].as_str().expect("id").parse().expect("uuid")
    }

    /// A 5-minute behavioral interview, created as `session`: its id.
    pub async fn create_interview(&self, session: &Session) -> InterviewId {
        self.create_interview_with(
            session,
            &serde_json::json!({"kind": "behavioral", "length_minutes": 5}),
        )
        .await
    }

    /// Creates an interview (`body` as `POST /api/v1/interviews` takes it) and joins it with the
    /// Rust WebRTC client on loopback: its id and the connected media session.
    pub async fn join_interview(
        &self,
        session: &Session,
        body: &Value,
    ) -> (InterviewId, engine::transport::MediaSession) {
        let id = self.create_interview_with(session, body).await;
        let (pending, offer) = client_offer().await;
        let response = post_offer(self, session, id, &offer).await;
        assert_eq!(response.status(), 200, "the offer is answered");
        let answer: engine::transport::SessionDescription = response.json().await.expect("answer");
        let media = pending
            .accept_answer(&answer)
            .await
            .expect("answer applies");
        media
            .control
            .wait_connected(std::time::Duration::from_secs(10))
            .await
            .expect("connects over loopback");
        (id, media)
    }
}

/// A real offer from the Rust WebRTC client (host candidates on 127.0.0.1), as JSON.
pub async fn client_offer() -> (engine::transport::PendingClient, Value) {
    let (pending, offer) =
        engine::transport::WebRtcClient::offer(&engine::transport::WebRtcConfig::loopback())
            .await
            .expect("the client offers");
    (pending, serde_json::to_value(&offer).expect("offer json"))
}

pub async fn post_offer(
    app: &TestApp,
    session: &Session,
    id: InterviewId,
    offer: &Value,
) -> reqwest::Response {
    app.call(
        reqwest::Method::POST,
        &format!("/api/v1/interviews/{id}/offer"),
        Some(&session.access_token),
        Some(offer),
    )
    .await
}
