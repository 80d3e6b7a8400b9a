//! Protects what happens when the server process itself stops, run against the real binary:
//! a server killed mid-interview (SIGKILL, a crash) leaves no interview `live` once it starts
//! again (they end as `node_restarted`, their stored transcript kept, the account free to start
//! another), and SIGTERM drains: new offers get 503, live interviews end gracefully with their
//! end stored, and the process exits on its own with success.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::transport::{MediaSession, SessionDescription, WebRtcClient, WebRtcConfig};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// The server binary running on a data directory, with its log collected.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the binary on `data_dir` (embedded SQLite, keyless local mode) on a free port.
    fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    /// Like [`Self::start`], with more environment (set after the defaults, so it wins).
    fn start_with(data_dir: &Path, extra: &[(&str, &std::ffi::OsStr)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_interviewcraft"));
        for variable in [
            "DATABASE_URL",
            "APP_ENV",
            "RUST_LOG",
            "CONFIG_FILE",
            "ANTHROPIC_API_KEY",
            "DEEPGRAM_API_KEY",
            "ELEVENLABS_API_KEY",
            "TLS_CERT_PATH",
            "TLS_KEY_PATH",
            // The offline recognizer is not what these tests are about.
            "LOCAL_SPEECH_DIR",
        ] {
            command.env_remove(variable);
        }
        let mut child = command
            .env("DATA_DIR", data_dir)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            // Never a background download of the recognizer from a test.
            .env("LOCAL_SPEECH_AUTO_SETUP", "false")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info")
            .env("BCRYPT_COST", "4")
            .env("WEBRTC_LOOPBACK_ONLY", "true")
            .env("SHUTDOWN_DRAIN_SECS", "20")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let log = Arc::clone(&log);
            let port_tx = port_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(event) = serde_json::from_str::<Value>(&line)
                        && event["message"] == "InterviewCraft is listening"
                        && let Some(port) = event["port"].as_u64()
                    {
                        let _ = port_tx.send(port);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let port = port_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server never listened: {:?}", log.lock().unwrap()));
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_child(&self.child)
    }

    /// Waits for the process to exit by itself within `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {timeout:?}: {:?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_contains(&self, needle: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(needle))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed-in account on a running server.
struct Account {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Account {
    async fn register(server: &Server, email: &str) -> Account {
        let http = reqwest::Client::new();
        let base = server.base.clone();
        let response = http
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD, "age_confirmed": true}))
            .send()
            .await
            .expect("register");
        assert_eq!(response.status(), 201);
        Account::login(server, email).await
    }

    async fn login(server: &Server, email: &str) -> Account {
        let http = reqwest::Client::new();
        let base = server.base.clone();
        let response = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        let token = body["access_token"].as_str().expect("token").to_owned();
        Account { http, base, token }
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("request reaches the server")
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request reaches the server");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json")
    }

    async fn create_interview(&self) -> String {
        let response = self
            .post("/api/v1/interviews", &json!({"kind": "behavioral"}))
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Joins the interview with the Rust WebRTC client; the session must be kept alive.
    async fn join(&self, id: &str) -> MediaSession {
        let (pending, offer) = WebRtcClient::offer(&WebRtcConfig::loopback())
            .await
            .expect("the client offers");
        let response = self
            .post(
                &format!("/api/v1/interviews/{id}/offer"),
                &serde_json::to_value(&offer).expect("offer json"),
            )
            .await;
        assert_eq!(response.status(), 200, "the offer is answered");
        let answer: SessionDescription = response.json().await.expect("answer");
        let session = pending
            .accept_answer(&answer)
            .await
            .expect("answer applies");
        session
            .control
            .wait_connected(Duration::from_secs(20))
            .await
            .expect("the call connects over loopback");
        session
    }

    /// Polls the interview until `condition` holds on its detail.
    async fn wait_for(&self, id: &str, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let detail = self.get(&format!("/api/v1/interviews/{id}")).await;
            if condition(&detail) {
                return detail;
            }
            assert!(Instant::now() < deadline, "{what}: {detail}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn stored_segments(detail: &Value) -> usize {
    detail["transcript"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarts_with_no_interview_left_live() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    let email = "killed@example.com";
    let account = Account::register(&server, email).await;
    let id = account.create_interview().await;
    let _call = account.join(&id).await;
    // Live, with the greeting stored: the node now holds state that a kill would strand.
    account
        .wait_for(&id, "the greeting is stored while live", |detail| {
            detail["interview"]["status"] == "live" && stored_segments(detail) >= 1
        })
        .await;
    let stored = stored_segments(&account.get(&format!("/api/v1/interviews/{id}")).await);

    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    drop(server);

    let server = Server::start(dir.path());
    let account = Account::login(&server, email).await;
    let detail = account.get(&format!("/api/v1/interviews/{id}")).await;
    assert_eq!(detail["interview"]["status"], "ended", "{detail}");
    assert_eq!(detail["interview"]["end_reason"], "node_restarted");
    assert!(detail["interview"]["ended_at"].is_string());
    assert!(
        stored_segments(&detail) >= stored,
        "the transcript stored before the kill is kept: {detail}"
    );
    assert!(server.log_contains("ended the interviews this node left live"));
    // The account is not stuck with "already live": a new interview starts.
    let next = account.create_interview().await;
    let _call = account.join(&next).await;
    account
        .wait_for(&next, "the new interview goes live", |detail| {
            detail["interview"]["status"] == "live"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_refuses_new_offers_ends_live_interviews_and_exits() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    let account = Account::register(&server, "drained@example.com").await;
    let id = account.create_interview().await;
    let waiting = account.create_interview().await;
    let _call = account.join(&id).await;
    account
        .wait_for(&id, "the interview goes live", |detail| {
            detail["interview"]["status"] == "live"
        })
        .await;

    rustix::process::kill_process(server.pid(), rustix::process::Signal::TERM).expect("SIGTERM");
    // While the live interview drains, an offer is refused with a clear 503 (the listener stays
    // open until the drain is over).
    let (_pending, offer) = WebRtcClient::offer(&WebRtcConfig::loopback())
        .await
        .expect("the client offers");
    let response = account
        .post(
            &format!("/api/v1/interviews/{waiting}/offer"),
            &serde_json::to_value(&offer).expect("offer json"),
        )
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("a JSON error");
    assert!(body["error"]["code"].is_string(), "{body}");

    let status = server.wait_exit(Duration::from_secs(40));
    assert!(
        status.success(),
        "a drained shutdown exits with success: {status:?}"
    );
    assert!(server.log_contains("shutting down: no new interviews"));

    // Nothing was left live: a restart has nothing to recover, and the interview's end says why.
    drop(server);
    let server = Server::start(dir.path());
    assert!(!server.log_contains("ended the interviews this node left live"));
    let account = Account::login(&server, "drained@example.com").await;
    let detail = account.get(&format!("/api/v1/interviews/{id}")).await;
    assert_eq!(detail["interview"]["status"], "ended", "{detail}");
    assert_eq!(detail["interview"]["end_reason"], "server_shutdown");
}

#[test]
fn a_bad_threshold_in_the_environment_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_interviewcraft"))
        .env_remove("DATABASE_URL")
        .env_remove("CONFIG_FILE")
        .env("DATA_DIR", dir.path())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        // Never a background download of the recognizer from a test.
        .env("LOCAL_SPEECH_AUTO_SETUP", "false")
        .env("INTERVIEW__TURN__MIN_QUIET", "0ms")
        .env("PRICES__STT__nova-3__PER_MINUTE", "0.02")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    assert!(!output.status.success(), "a zero quiet window is refused");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        printed.contains("turn.min_quiet must be positive"),
        "{printed}"
    );
}

/// Prices and feedback thresholds come from the environment too (`PRICES__…`, `FEEDBACK__…`,
/// over the embedded price table), and a bad one stops the start with one line naming it.
#[test]
fn prices_and_feedback_thresholds_from_the_environment_are_checked_at_start() {
    for (name, value, expected) in [
        (
            "PRICES__LLM__claude-haiku-4-5__INPUT_PER_MTOK",
            "-1",
            "prices.llm.\"claude-haiku-4-5\".input_per_mtok must be a number of dollars",
        ),
        ("FEEDBACK__WEAK_SHARE", "3", "feedback.weak_share must be"),
        (
            "ANTHROPIC_FALLBACK_MODEL",
            "claude-unpriced",
            "no price for the llm model \"claude-unpriced\" (ANTHROPIC_FALLBACK_MODEL)",
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = Command::new(env!("CARGO_BIN_EXE_interviewcraft"))
            .env_remove("DATABASE_URL")
            .env_remove("CONFIG_FILE")
            .env("DATA_DIR", dir.path())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("LOCAL_SPEECH_AUTO_SETUP", "false")
            .env(name, value)
            .stdin(Stdio::null())
            .output()
            .expect("the binary runs");
        assert!(!output.status.success(), "{name}={value} is refused");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(printed.contains(expected), "{name}: {printed}");
    }
}

/// `GET /health` of a running server.
async fn health(server: &Server) -> Value {
    reqwest::get(format!("{}/health", server.base))
        .await
        .expect("health answers")
        .json()
        .await
        .expect("json")
}

/// The first start in keyless local mode on a machine where nobody prepared the recognizer:
/// the server serves at once with speech recognition simulated and says so (log, `/health`),
/// prepares the recognizer in the background, and switches to it without a restart. The
/// set-up's own download from PyPI is CI's `setup` step; so that no test reaches PyPI, a
/// stand-in `python3` first on PATH does what the set-up leaves behind (the recognizer CI
/// prepared, linked in), and only once the test lets it.
#[test]
fn first_start_prepares_the_recognizer_in_the_background_and_switches_to_it() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(prepared) = std::env::var_os("LOCAL_SPEECH_DIR").map(std::path::PathBuf::from) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI prepares the recognizer and sets LOCAL_SPEECH_DIR"
        );
        eprintln!("skipped: LOCAL_SPEECH_DIR is not set (run worker.py setup first)");
        return;
    };
    let prepared = prepared.canonicalize().expect("LOCAL_SPEECH_DIR exists");
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let release = dir.path().join("release-setup");
    let stand_in = bin.join("python3");
    // Called as `python3 <worker.py> setup <dir>`, as the server calls the real one.
    std::fs::write(
        &stand_in,
        format!(
            "#!/bin/sh\n\
             [ \"$2\" = setup ] || exit 64\n\
             echo 'creating a virtual environment' >&2\n\
             while [ ! -e '{release}' ]; do sleep 0.1; done\n\
             ln -s '{prepared}/venv' \"$3/venv\"\n\
             mkdir -p \"$3/model\"\n\
             ln -s '{prepared}/model/{model}' \"$3/model/{model}\"\n\
             echo 'ready' >&2\n",
            release = release.display(),
            prepared = prepared.display(),
            model = engine::vendors::local_stt::MODEL_NAME,
        ),
    )
    .expect("write the stand-in");
    std::fs::set_permissions(
        &stand_in,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let data = dir.path().join("data");
    let server = Server::start_with(
        &data,
        &[
            ("LOCAL_SPEECH_AUTO_SETUP", "true".as_ref()),
            ("PATH", path.as_os_str()),
        ],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Before the set-up finishes: served, simulated, and said so.
        let before = health(&server).await;
        let notes = before["local_notes"].as_array().expect("notes").clone();
        let stt_note = notes
            .iter()
            .find(|note| note["kind"] == "stt")
            .unwrap_or_else(|| panic!("a note says recognition is simulated: {before}"));
        assert!(
            stt_note["message"]
                .as_str()
                .is_some_and(|m| m.contains("being prepared") && m.contains("simulated")),
            "{before}"
        );
        assert!(server.log_contains("being prepared"));
        assert_eq!(
            before["vendors"]["stt"], "fake",
            "simulated, not local: {before}"
        );

        std::fs::write(&release, b"go").expect("release the set-up");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let now = health(&server).await;
            let stt_notes = now["local_notes"]
                .as_array()
                .expect("notes")
                .iter()
                .filter(|note| note["kind"] == "stt")
                .count();
            if stt_notes == 0 {
                assert_eq!(now["vendors"]["stt"], "local", "{now}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the recognizer never became ready: {now} {:?}",
                server.log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(server.log_contains("the offline speech recognizer is ready"));
    });
    // It was prepared where the server keeps it, so the next start uses it at once.
    assert!(data.join("local-speech").join("venv").exists());
}
