//! The supervised recognizer process: `python3 worker.py serve MODEL_DIR` from the prepared
//! virtual environment, PCM in on stdin and JSON lines out (the protocol is in the script's
//! docstring). One [`WorkerPool`] serves every session of a [`super::LocalStt`]; each of its
//! processes decodes one utterance at a time.
//!
//! | channel | capacity | when full |
//! |---|---|---|
//! | decode jobs (sessions → pool) | [`DECODE_QUEUE`] | interim jobs are skipped (`try_send`); final jobs wait for room |
//!
//! Supervision: a process that exits, breaks the protocol or stays silent past
//! [`DECODE_TIMEOUT`] is killed; the job in hand fails (its session emits no text for that
//! utterance and goes on) and the next job starts a fresh process. Audio only ever travels
//! through the pipe; nothing is written to disk.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Decode jobs queued towards the worker processes.
pub const DECODE_QUEUE: usize = 64;
/// Longest a model load may take before the worker is declared broken.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest one decode may take (a 25 s utterance takes a few seconds on one core).
pub const DECODE_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start a worker process.
#[derive(Debug, Clone)]
pub(crate) struct WorkerCommand {
    pub python: PathBuf,
    pub script: PathBuf,
    pub model_dir: PathBuf,
    pub threads: u32,
}

/// One recognized word, times in seconds from the start of the decoded audio.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodedWord {
    pub word: String,
    pub start: f64,
    pub end: f64,
    pub probability: f64,
}

/// What a decode produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Decoded {
    pub text: String,
    pub words: Vec<DecodedWord>,
}

/// A decode request: the audio, and where to send the result.
#[derive(Debug)]
pub(crate) struct DecodeJob {
    pub pcm: Vec<i16>,
    /// Beam search width: 1 (greedy) for interims, wider for finals.
    pub beam: u32,
    pub reply: oneshot::Sender<Result<Decoded, String>>,
}

#[derive(Deserialize)]
struct Ready {
    ready: bool,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Response {
    id: Option<u64>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    words: Vec<(String, f64, f64, f64)>,
    #[serde(default)]
    error: Option<String>,
}

struct Process {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Process {
    /// Starts the worker and waits for its ready line.
    async fn start(command: &WorkerCommand) -> Result<Self, String> {
        let mut child = Command::new(&command.python)
            .arg(&command.script)
            .arg("serve")
            .arg(&command.model_dir)
            .env("HF_HUB_OFFLINE", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("LOCAL_STT_THREADS", command.threads.to_string())
            .env("OMP_NUM_THREADS", command.threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", command.python.display()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("the worker's pipes are missing".into());
        };
        // Python's own diagnostics (never audio or text: the worker prints neither).
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line: String = line.chars().take(200).collect();
                tracing::debug!(target: "local_stt", "worker: {line}");
            }
        });
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(READY_TIMEOUT, stdout.read_line(&mut line)).await;
        match read {
            Err(_) => return Err("the model did not load within two minutes".into()),
            Ok(Err(e)) => return Err(format!("reading the worker: {e}")),
            Ok(Ok(0)) => {
                let status = child.wait().await.ok();
                return Err(format!(
                    "the worker exited before it was ready ({status:?})"
                ));
            }
            Ok(Ok(_)) => {}
        }
        let ready: Ready = serde_json::from_str(&line)
            .map_err(|_| "the worker's first line is not its ready line".to_string())?;
        if !ready.ready {
            return Err(ready
                .error
                .unwrap_or_else(|| "the model failed to load".into()));
        }
        Ok(Self {
            child,
            stdin,
            stdout,
            next_id: 0,
        })
    }

    async fn decode(&mut self, pcm: &[i16], beam: u32) -> Result<Decoded, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = format!(
            "{{\"id\":{id},\"samples\":{},\"beam\":{beam}}}\n",
            pcm.len()
        )
        .into_bytes();
        message.reserve(pcm.len() * 2);
        for s in pcm {
            message.extend_from_slice(&s.to_le_bytes());
        }
        self.stdin
            .write_all(&message)
            .await
            .map_err(|e| format!("writing to the worker: {e}"))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| format!("writing to the worker: {e}"))?;
        let mut line = String::new();
        match tokio::time::timeout(DECODE_TIMEOUT, self.stdout.read_line(&mut line)).await {
            Err(_) => return Err("the decode timed out".into()),
            Ok(Err(e)) => return Err(format!("reading the worker: {e}")),
            Ok(Ok(0)) => return Err("the worker exited".into()),
            Ok(Ok(_)) => {}
        }
        let response: Response = serde_json::from_str(&line)
            .map_err(|_| "the worker answered something that is not a response".to_string())?;
        if response.id != Some(id) {
            return Err("the worker answered out of step".into());
        }
        if let Some(error) = response.error {
            return Err(format!("the worker failed to decode: {error}"));
        }
        Ok(Decoded {
            text: response.text,
            words: response
                .words
                .into_iter()
                .filter(|(w, start, end, _)| !w.is_empty() && start.is_finite() && end.is_finite())
                .map(|(word, start, end, probability)| DecodedWord {
                    word,
                    start: start.max(0.0),
                    end: end.max(start),
                    probability: probability.clamp(0.0, 1.0),
                })
                .collect(),
        })
    }
}

/// Worker processes sharing one job queue.
#[derive(Debug, Clone)]
pub(crate) struct WorkerPool {
    jobs: mpsc::Sender<DecodeJob>,
}

impl WorkerPool {
    /// Starts `workers` processes and waits until the first is ready; its failure is the
    /// reason the recognizer is unavailable.
    pub async fn start(command: WorkerCommand, workers: usize) -> Result<Self, String> {
        let first = Process::start(&command).await?;
        let (jobs, rx) = mpsc::channel(DECODE_QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let command = Arc::new(command);
        tokio::spawn(serve(command.clone(), rx.clone(), Some(first)));
        for _ in 1..workers.max(1) {
            tokio::spawn(serve(command.clone(), rx.clone(), None));
        }
        Ok(Self { jobs })
    }

    /// Queues a job that may be skipped: `false` when the queue is full or the pool is gone.
    pub fn try_submit(&self, job: DecodeJob) -> bool {
        self.jobs.try_send(job).is_ok()
    }

    /// Queues a job, waiting for room: `false` when the pool is gone.
    pub async fn submit(&self, job: DecodeJob) -> bool {
        self.jobs.send(job).await.is_ok()
    }
}

/// One worker slot: takes jobs off the shared queue and runs them on its process, restarting
/// the process when it breaks. Ends when every sender is gone (the recognizer was dropped).
async fn serve(
    command: Arc<WorkerCommand>,
    jobs: Arc<Mutex<mpsc::Receiver<DecodeJob>>>,
    mut process: Option<Process>,
) {
    loop {
        let job = { jobs.lock().await.recv().await };
        let Some(job) = job else { break };
        if job.reply.is_closed() {
            continue; // the session ended or moved on
        }
        if process.is_none() {
            match Process::start(&command).await {
                Ok(p) => process = Some(p),
                Err(e) => {
                    tracing::warn!(target: "local_stt", error = %e, "the recognizer worker did not restart");
                    let _ = job.reply.send(Err(e));
                    // Do not spin on a broken installation.
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            }
        }
        let Some(p) = process.as_mut() else { continue };
        let result = p.decode(&job.pcm, job.beam).await;
        if let Err(e) = &result {
            tracing::warn!(target: "local_stt", error = %e, "the recognizer worker broke; restarting it");
            if let Some(mut broken) = process.take() {
                let _ = broken.child.start_kill();
                let _ = broken.child.wait().await;
            }
        }
        let _ = job.reply.send(result);
    }
    if let Some(mut p) = process {
        drop(p.stdin); // end of input: the worker exits
        let _ = tokio::time::timeout(Duration::from_secs(5), p.child.wait()).await;
    }
}
