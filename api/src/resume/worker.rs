//! Resume extraction in a sandboxed child process.
//!
//! A hostile PDF or DOCX can cost gigabytes of memory (object streams that each inflate to
//! hundreds of megabytes of parsed objects) or minutes of CPU (a small content stream shared by
//! every page) inside the parsers, whatever limits we pass them. So the server never parses an
//! upload itself: [`ExtractionSandbox::extract`] starts a worker process, writes the upload to its
//! standard input, reads the text back from its standard output and waits at most a wall-clock
//! deadline. Nothing touches the disk.
//!
//! The worker ([`run_worker`]; the server binary's hidden `resume-worker` command) first caps
//! itself, before it reads a byte of the upload:
//!
//! | limit | how | when exceeded |
//! |---|---|---|
//! | memory | `RLIMIT_AS` = address space at start + [`WorkerLimits::memory_bytes`] | allocation fails, the worker aborts |
//! | CPU time | `RLIMIT_CPU` = [`WorkerLimits::cpu_secs`] (hard limit one second later) | `SIGXCPU`, then `SIGKILL` |
//! | files | `RLIMIT_FSIZE` = 0, `RLIMIT_CORE` = 0 | no file and no core dump can be written |
//! | wall clock | the server kills the worker after [`WorkerLimits::wall`] | killed |
//! | output | the server reads at most [`MAX_OUTPUT_BYTES`] | refused as too much text |
//!
//! Any of these ends as [`ResumeError::TooComplex`] (422 `resume_too_complex`). The worker runs
//! with an empty environment (no secrets are inherited) and its standard error discarded.
//!
//! Concurrency: at most [`WorkerLimits::concurrency`] workers run at once for the whole server
//! (a request waits up to the wall-clock deadline for a slot, then gets 503), and each account has
//! at most one extraction in flight (a second one gets 429).
//!
//! The wire format is internal and versionless (both ends are the same build): standard input is
//! one JSON header line ([`WorkerRequest`]) followed by exactly `len` bytes of the upload; standard
//! output is one JSON document ([`WorkerReply`]).

use std::collections::HashSet;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::AccountId;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Semaphore;

use super::{ExtractedResume, MAX_TEXT_CHARS, ResumeError, ResumeFormat};

/// The hidden command of the server binary that runs [`run_worker`].
pub const WORKER_COMMAND: &str = "resume-worker";
/// The most bytes read from a worker: the longest accepted text, every character four bytes
/// and JSON-escaped, plus the envelope.
pub const MAX_OUTPUT_BYTES: usize = MAX_TEXT_CHARS * 4 * 2 + 1024;
/// The longest header line a worker accepts.
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// The largest upload a worker accepts (the route's own limit is lower).
const MAX_INPUT_BYTES: usize = 256 * 1024 * 1024;
/// Exit code of a worker that could not read its request.
const EXIT_BAD_REQUEST: i32 = 2;
/// Exit code of a worker that could not cap itself; the server treats it as a failure, never
/// as a result.
const EXIT_NO_LIMITS: i32 = 3;

/// The caps on one extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerLimits {
    /// Address space the worker may add to what it had at start (bytes).
    pub memory_bytes: u64,
    /// CPU seconds the worker may use.
    pub cpu_secs: u64,
    /// How long the server waits for the worker before killing it.
    #[serde(skip, default = "default_wall")]
    pub wall: Duration,
    /// Workers running at once, server-wide.
    #[serde(skip, default = "default_concurrency")]
    pub concurrency: usize,
    /// How long an extraction waits for a free worker before it is refused (busy).
    #[serde(skip, default = "default_queue")]
    pub queue: Duration,
}

fn default_queue() -> Duration {
    WorkerLimits::default().queue
}

fn default_wall() -> Duration {
    WorkerLimits::default().wall
}

fn default_concurrency() -> usize {
    WorkerLimits::default().concurrency
}

impl Default for WorkerLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 512 * 1024 * 1024,
            cpu_secs: 10,
            wall: Duration::from_secs(15),
            concurrency: 2,
            queue: Duration::from_secs(15),
        }
    }
}

/// The scheduling priority (nice value) of a worker: below the server's, so that workers busy
/// with hostile uploads (up to their CPU limit each) leave the cores to live interviews first.
pub const WORKER_NICENESS: i32 = 10;

/// The header line the server sends before the upload's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRequest {
    pub limits: WorkerLimits,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    /// The number of upload bytes that follow the header line.
    pub len: usize,
}

/// What a worker writes to its standard output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerReply {
    Text { format: ResumeFormat, text: String },
    Rejected { code: String },
}

/// Why an extraction produced no text.
#[derive(Debug, thiserror::Error)]
pub enum ExtractionError {
    /// The file is the client's to fix (including [`ResumeError::TooComplex`]).
    #[error("{0}")]
    Rejected(ResumeError),
    /// This account already has an extraction running.
    #[error("a resume upload of this account is already being processed")]
    InProgress,
    /// Every worker slot stayed taken for the whole deadline.
    #[error("every resume worker is busy")]
    Busy,
    /// The worker could not be started or broke the protocol without exceeding a limit.
    #[error("resume worker failed: {0}")]
    Failed(String),
}

/// Runs extractions in worker processes, under the limits above. Cheap to share.
pub struct ExtractionSandbox {
    program: PathBuf,
    args: Vec<String>,
    limits: WorkerLimits,
    slots: Arc<Semaphore>,
    in_flight: Arc<Mutex<HashSet<AccountId>>>,
}

/// Removes an account from the in-flight set when its extraction ends, however it ends.
struct InFlight {
    account: AccountId,
    set: Arc<Mutex<HashSet<AccountId>>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.account);
    }
}

impl ExtractionSandbox {
    /// A sandbox starting `program args...` as the worker.
    pub fn new(program: PathBuf, args: Vec<String>, limits: WorkerLimits) -> Self {
        Self {
            program,
            args,
            slots: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            limits,
            in_flight: Arc::default(),
        }
    }

    /// The worker this sandbox starts by default: this very executable's hidden command.
    pub fn current_executable(limits: WorkerLimits) -> std::io::Result<Self> {
        Ok(Self::new(
            std::env::current_exe()?,
            vec![WORKER_COMMAND.to_owned()],
            limits,
        ))
    }

    pub fn limits(&self) -> WorkerLimits {
        self.limits
    }

    /// Extracts the text of `bytes` for `account` in a worker process.
    pub async fn extract(
        &self,
        account: AccountId,
        bytes: Vec<u8>,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> Result<ExtractedResume, ExtractionError> {
        let _in_flight = {
            let mut set = self
                .in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !set.insert(account) {
                return Err(ExtractionError::InProgress);
            }
            InFlight {
                account,
                set: self.in_flight.clone(),
            }
        };
        let _slot = tokio::time::timeout(self.limits.queue, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| ExtractionError::Busy)?
            .map_err(|_| ExtractionError::Failed("worker slots closed".into()))?;
        let request = WorkerRequest {
            limits: self.limits,
            content_type,
            filename,
            len: bytes.len(),
        };
        self.run(&request, bytes).await
    }

    async fn run(
        &self,
        request: &WorkerRequest,
        bytes: Vec<u8>,
    ) -> Result<ExtractedResume, ExtractionError> {
        let mut header = serde_json::to_vec(request)
            .map_err(|error| ExtractionError::Failed(format!("header: {error}")))?;
        header.push(b'\n');
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                ExtractionError::Failed(format!("cannot start {}: {error}", self.program.display()))
            })?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ExtractionError::Failed("worker pipes missing".into()));
        };
        // The worker caps itself too, but the CPU, file and core limits do not depend on it:
        // they are set from here before it receives a byte (the address-space cap needs the
        // worker's own start size, so only the worker sets that one).
        if let Err(error) = cap_child(child.id(), &self.limits) {
            return Err(ExtractionError::Failed(format!(
                "cannot cap the worker: {error}"
            )));
        }
        // A worker that dies early closes the pipe; the write error is then expected and its
        // exit status tells why.
        let feed = async move {
            let _ = stdin.write_all(&header).await;
            let _ = stdin.write_all(&bytes).await;
            let _ = stdin.shutdown().await;
        };
        let collect = async move {
            let mut output = Vec::new();
            let read = stdout
                .take(MAX_OUTPUT_BYTES as u64 + 1)
                .read_to_end(&mut output)
                .await;
            (read, output)
        };
        let outcome = tokio::time::timeout(self.limits.wall, async {
            let ((), (read, output)) = tokio::join!(feed, collect);
            if output.len() > MAX_OUTPUT_BYTES {
                // It would block writing the rest; the answer is known already.
                let _ = child.start_kill();
            }
            let status = child.wait().await;
            (read, output, status)
        })
        .await;
        let Ok((read, output, status)) = outcome else {
            // Over the wall-clock limit: kill_on_drop ends the worker; reap it here as well.
            let _ = child.start_kill();
            let _ = child.wait().await;
            tracing::debug!("resume worker killed after its wall-clock limit");
            return Err(ExtractionError::Rejected(ResumeError::TooComplex));
        };
        if output.len() > MAX_OUTPUT_BYTES {
            return Err(ExtractionError::Rejected(ResumeError::TooMuchText));
        }
        let status =
            status.map_err(|error| ExtractionError::Failed(format!("waiting: {error}")))?;
        if !status.success() {
            return Err(match status.code() {
                Some(EXIT_BAD_REQUEST) | Some(EXIT_NO_LIMITS) => {
                    ExtractionError::Failed(format!("worker refused to run: {status}"))
                }
                // Killed by a signal (CPU limit, abort on a failed allocation, stack overflow)
                // or any other crash: the file took more than a resume may.
                _ => {
                    tracing::debug!(%status, "resume worker exceeded a limit");
                    ExtractionError::Rejected(ResumeError::TooComplex)
                }
            });
        }
        read.map_err(|error| ExtractionError::Failed(format!("reading: {error}")))?;
        match serde_json::from_slice::<WorkerReply>(&output) {
            Ok(WorkerReply::Text { format, text }) => {
                if text.chars().count() > MAX_TEXT_CHARS {
                    return Err(ExtractionError::Rejected(ResumeError::TooMuchText));
                }
                Ok(ExtractedResume { format, text })
            }
            Ok(WorkerReply::Rejected { code }) => ResumeError::from_code(&code)
                .map(ExtractionError::Rejected)
                .ok_or_else(|| ExtractionError::Failed("unknown rejection code".into()))
                .and_then(Err),
            Err(_) => Err(ExtractionError::Failed("unreadable worker reply".into())),
        }
    }
}

/// The worker's entry point: caps itself, reads one request from standard input, writes one
/// reply to standard output and returns the process exit code. Must run before anything else
/// in the process (no runtime, no logging: standard output carries the reply).
pub fn run_worker() -> i32 {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let request = match read_header(&mut input) {
        Some(request) => request,
        None => return EXIT_BAD_REQUEST,
    };
    if apply_limits(&request.limits).is_err() {
        return EXIT_NO_LIMITS;
    }
    if request.len > MAX_INPUT_BYTES {
        return EXIT_BAD_REQUEST;
    }
    let mut bytes = Vec::with_capacity(request.len);
    if input
        .take(request.len as u64)
        .read_to_end(&mut bytes)
        .is_err()
        || bytes.len() != request.len
    {
        return EXIT_BAD_REQUEST;
    }
    let reply = match super::extract(
        &bytes,
        request.content_type.as_deref(),
        request.filename.as_deref(),
    ) {
        Ok(extracted) => WorkerReply::Text {
            format: extracted.format,
            text: extracted.text,
        },
        Err(error) => WorkerReply::Rejected {
            code: error.code().to_owned(),
        },
    };
    drop(bytes);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match serde_json::to_writer(&mut out, &reply).map(|()| out.flush()) {
        Ok(Ok(())) => 0,
        _ => EXIT_BAD_REQUEST,
    }
}

/// Reads and parses the header line, refusing one longer than [`MAX_HEADER_BYTES`].
pub(crate) fn read_header(input: &mut impl BufRead) -> Option<WorkerRequest> {
    let mut line = Vec::new();
    input
        .take(MAX_HEADER_BYTES as u64)
        .read_until(b'\n', &mut line)
        .ok()?;
    if line.last() != Some(&b'\n') {
        return None;
    }
    serde_json::from_slice(&line).ok()
}

/// The limits that do not depend on the worker's start size: CPU seconds (`SIGXCPU` at the
/// soft limit, `SIGKILL` a second later), no file writes, no core dumps.
fn fixed_limits(limits: &WorkerLimits) -> [(rustix::process::Resource, u64, u64); 3] {
    use rustix::process::Resource;
    let cpu = limits.cpu_secs.max(1);
    [
        (Resource::Core, 0, 0),
        (Resource::Fsize, 0, 0),
        (Resource::Cpu, cpu, cpu + 1),
    ]
}

fn rlimit(current: u64, maximum: u64) -> rustix::process::Rlimit {
    rustix::process::Rlimit {
        current: Some(current),
        maximum: Some(maximum),
    }
}

/// Sets the fixed limits on a started worker.
#[cfg(target_os = "linux")]
fn cap_child(id: Option<u32>, limits: &WorkerLimits) -> std::io::Result<()> {
    let pid = id
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::other("the worker has no process id"))?;
    for (resource, current, maximum) in fixed_limits(limits) {
        rustix::process::prlimit(Some(pid), resource, rlimit(current, maximum))?;
    }
    rustix::process::setpriority_process(Some(pid), WORKER_NICENESS)?;
    Ok(())
}

/// Elsewhere only the worker's own limits apply.
#[cfg(not(target_os = "linux"))]
fn cap_child(_id: Option<u32>, _limits: &WorkerLimits) -> std::io::Result<()> {
    Ok(())
}

/// Caps this process: address space, CPU time, no files, no core dumps.
fn apply_limits(limits: &WorkerLimits) -> std::io::Result<()> {
    use rustix::process::{Resource, setrlimit};
    rustix::process::setpriority_process(None, WORKER_NICENESS)?;
    let set = |resource, value: u64, hard: u64| setrlimit(resource, rlimit(value, hard));
    for (resource, current, maximum) in fixed_limits(limits) {
        set(resource, current, maximum)?;
    }
    // The executable and its libraries are already mapped; the budget is what comes on top.
    let memory = current_address_space()
        .unwrap_or(0)
        .saturating_add(limits.memory_bytes);
    set(Resource::As, memory, memory)?;
    Ok(())
}

/// This process's virtual memory size (`VmSize` in `/proc/self/status`), in bytes.
fn current_address_space() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmSize:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header_line(request: &WorkerRequest) -> Vec<u8> {
        let mut line = serde_json::to_vec(request).expect("serializable");
        line.push(b'\n');
        line
    }

    #[test]
    fn a_header_line_round_trips_and_leaves_the_upload_unread() {
        let request = WorkerRequest {
            limits: WorkerLimits::default(),
            content_type: Some("application/pdf".into()),
            filename: Some("cv.pdf".into()),
            len: 3,
        };
        let mut input = header_line(&request);
        input.extend_from_slice(b"abc");
        let mut reader = std::io::Cursor::new(input);
        let parsed = read_header(&mut reader).expect("parses");
        assert_eq!(parsed.content_type, request.content_type);
        assert_eq!(parsed.len, 3);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut rest).expect("in memory");
        assert_eq!(rest, b"abc");
    }

    #[test]
    fn a_header_without_a_newline_within_the_cap_is_refused() {
        let long = vec![b' '; MAX_HEADER_BYTES + 10];
        assert!(read_header(&mut std::io::Cursor::new(long)).is_none());
        assert!(read_header(&mut std::io::Cursor::new(b"{}".to_vec())).is_none());
    }

    #[test]
    fn every_rejection_code_maps_back_to_its_error() {
        for error in [
            ResumeError::UnsupportedType,
            ResumeError::Corrupt,
            ResumeError::Encrypted,
            ResumeError::Empty,
            ResumeError::TooMuchText,
            ResumeError::TooComplex,
        ] {
            assert_eq!(ResumeError::from_code(error.code()), Some(error));
        }
        assert_eq!(ResumeError::from_code("nope"), None);
    }

    #[actix_web::test]
    async fn a_missing_worker_executable_is_a_failure_not_a_rejection() {
        let sandbox = ExtractionSandbox::new(
            PathBuf::from("/nonexistent/resume-worker"),
            Vec::new(),
            WorkerLimits::default(),
        );
        let result = sandbox
            .extract(AccountId::now_v7(), b"hello".to_vec(), None, None)
            .await;
        assert!(
            matches!(result, Err(ExtractionError::Failed(_))),
            "{result:?}"
        );
    }

    proptest! {
        #[test]
        fn reading_a_header_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_header(&mut std::io::Cursor::new(bytes));
        }
    }
}
