//! Protects "audio stays in memory": during a whole spoken interview in keyless local mode (the
//! espeak-ng voice, the offline recognizer when prepared, the local interviewer, the scoring
//! after the end), nothing but the database's own files is written in the data directory or
//! in the temp directory the server and its child processes use. Watched with inotify, so a
//! file written and deleted again is caught too. The test runs again in a process of its own
//! whose TMPDIR is a directory nobody else writes to.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::configuration::LocalVendorsMode;
use engine::actors::interview::InterviewEvent;
use engine::interview_core::Phase;
use engine::transport::OpusRate;
use inotify::{Inotify, WatchMask};
use serde_json::{Value, json};
use tests::{Backend, spawn_app_with};

const ANSWER: &str = "I led the migration of our billing service to a new database and \
    reduced invoice latency by forty percent.";

/// 48 kHz mono PCM of `text` spoken by espeak-ng, through pipes only (nothing on disk).
fn speech(text: &str) -> Vec<i16> {
    let mut espeak = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "--stdout", text])
        .stdout(Stdio::piped())
        .spawn()
        .expect("espeak-ng (apt-get install espeak-ng)");
    let sox = Command::new("sox")
        .args([
            "-t", "wav", "-", "-t", "raw", "-r", "48000", "-c", "1", "-b", "16",
        ])
        .args(["-e", "signed-integer", "-", "pad", "0.3", "0.2"])
        .stdin(espeak.stdout.take().expect("espeak's stdout"))
        .output()
        .expect("sox (apt-get install sox)");
    assert!(
        espeak.wait().expect("espeak-ng ends").success(),
        "espeak-ng failed"
    );
    assert!(sox.status.success(), "sox failed");
    sox.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Every file name written (created, modified, closed after writing, moved in) in the watched
/// directories, until `stop` is written in each.
struct Watch {
    seen: Arc<Mutex<Vec<(PathBuf, OsString)>>>,
    dirs: Vec<PathBuf>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const STOP: &str = "inotify-watch-stop";

impl Watch {
    fn start(dirs: &[&Path]) -> Self {
        let mut inotify = Inotify::init().expect("inotify");
        let mut watched = std::collections::HashMap::new();
        for dir in dirs {
            let wd = inotify
                .watches()
                .add(
                    dir,
                    WatchMask::CREATE
                        | WatchMask::MODIFY
                        | WatchMask::CLOSE_WRITE
                        | WatchMask::MOVED_TO,
                )
                .expect("watch");
            watched.insert(wd, dir.to_path_buf());
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let mut stopped = 0;
        let total = dirs.len();
        let thread = std::thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            while stopped < total {
                let events = inotify
                    .read_events_blocking(&mut buffer)
                    .expect("inotify read");
                for event in events {
                    let Some(name) = event.name else { continue };
                    if name == STOP {
                        stopped += 1;
                        continue;
                    }
                    let dir = watched.get(&event.wd).cloned().unwrap_or_default();
                    sink.lock().unwrap().push((dir, name.to_owned()));
                }
            }
        });
        Self {
            seen,
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<(PathBuf, OsString)> {
        for dir in &self.dirs {
            std::fs::write(dir.join(STOP), b"").expect("stop marker");
        }
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("watch thread");
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// Set in the re-run of this test that does the work: its temp directory.
const CHILD: &str = "DISK_WATCH_TEMP";

#[test]
fn a_spoken_local_interview_writes_no_file_but_the_databases() {
    let Some(temp) = std::env::var_os(CHILD).map(PathBuf::from) else {
        // The server and its child processes (espeak-ng, the recognizer, the resume worker)
        // take their temp directory from TMPDIR: this test runs again in a process of its own
        // that has it set to a directory nobody else writes to.
        let temp = tempfile::tempdir().expect("temp dir");
        let status = Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "--exact",
                "a_spoken_local_interview_writes_no_file_but_the_databases",
            ])
            .arg("--nocapture")
            .env("TMPDIR", temp.path())
            .env(CHILD, temp.path())
            .status()
            .expect("the test runs again");
        assert!(status.success(), "the watched interview failed (see above)");
        return;
    };
    let answer = speech(ANSWER);
    actix_web::rt::System::new().block_on(interview_under_watch(temp, answer));
}

async fn interview_under_watch(temp: PathBuf, answer: Vec<i16>) {
    let recognizer = std::env::var_os("LOCAL_SPEECH_DIR").map(PathBuf::from);
    assert!(
        recognizer.is_some() || std::env::var_os("CI").is_none(),
        "CI prepares the recognizer and sets LOCAL_SPEECH_DIR"
    );
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.local_vendors = LocalVendorsMode::Local;
        settings.local_speech_dir = recognizer.clone();
    })
    .await;
    let alice = app.signed_in_user().await;
    let watch = Watch::start(&[&app.settings.data_dir, &temp]);

    let (id, session) = app
        .join_interview(&alice, &json!({"kind": "behavioral", "length_minutes": 5}))
        .await;
    let mut events = app.state.engine.subscribe(id).expect("live");
    let mut inbound = session.inbound;
    let heard = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = heard.clone();
    tokio::spawn(async move {
        while let Some(frame) = inbound.recv().await {
            if frame.rms() > 0.01 {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let mut outbound = session.outbound;
    let silence = vec![0i16; OpusRate::Hz48000.frame_samples()];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut speaking: Option<std::slice::ChunksExact<'_, i16>> = None;
    let mut answered = false;
    let mut phase = Phase::Greeting;
    let deadline = Instant::now() + Duration::from_secs(120);
    // The greeting, the answer when the interviewer listens, then the follow-up's start.
    loop {
        tick.tick().await;
        while let Ok(event) = events.try_recv() {
            if let InterviewEvent::State { phase: now } = event {
                phase = now;
            }
        }
        if !answered && phase == Phase::Listening {
            speaking = Some(answer.chunks_exact(OpusRate::Hz48000.frame_samples()));
            answered = true;
        }
        let frame = speaking.as_mut().and_then(Iterator::next);
        if answered && frame.is_none() && matches!(phase, Phase::Speaking) {
            break;
        }
        outbound
            .send_frame(frame.unwrap_or(&silence), OpusRate::Hz48000)
            .expect("the call is up");
        assert!(
            Instant::now() < deadline,
            "the interviewer answered in time"
        );
    }
    let response = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/interviews/{id}/end"),
            Some(&alice.access_token),
            None,
        )
        .await;
    assert!(response.status().is_success());
    session.control.close().await;
    // The scoring after the end runs too.
    let scores = tests::feedback::wait_scored(&app, &alice, id).await;
    assert!(
        heard.load(std::sync::atomic::Ordering::Relaxed) > 25,
        "the voice was heard"
    );
    let detail: Value = app
        .get_as(&format!("/api/v1/interviews/{id}"), &alice.access_token)
        .await
        .json()
        .await
        .expect("json");
    let said: String = detail["transcript"]
        .as_array()
        .expect("transcript")
        .iter()
        .filter(|s| s["speaker"] == "candidate")
        .filter_map(|s| s["text"].as_str())
        .collect();
    assert!(!said.is_empty(), "the answer was heard: {detail}");
    // The watch sees the temp directory: a file the test writes there is reported.
    std::fs::write(temp.join("canary"), b"written by the test").expect("canary");
    let written = watch.stop();
    assert!(
        written
            .iter()
            .any(|(dir, name)| dir == &temp && name == "canary"),
        "the watch reports files written in the temp directory"
    );
    let database =
        |name: &str| ["test.db", "test.db-wal", "test.db-shm", "test.db-journal"].contains(&name);
    let strays: Vec<String> = written
        .iter()
        .filter(|(dir, name)| !(dir == &app.settings.data_dir && database(&name.to_string_lossy())))
        .filter(|(dir, name)| !(dir == &temp && name == "canary"))
        .map(|(dir, name)| format!("{}/{}", dir.display(), name.to_string_lossy()))
        .collect();
    assert!(
        strays.is_empty(),
        "files written during the interview besides the database's own: {strays:?} (scores: {})",
        scores["state"]
    );
    assert!(
        written
            .iter()
            .any(|(_, name)| database(&name.to_string_lossy())),
        "the watch saw the database being written (it works)"
    );
}
