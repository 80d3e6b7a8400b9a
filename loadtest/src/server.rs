//! The server under test when it is another process, and what the harness reads from any
//! server: `/metrics` (live actors, the barge-in reaction histogram).
//!
//! `--server-bin PATH` starts the real server binary (`PATH serve`) as a child process on
//! 127.0.0.1 with a fresh data directory, SQLite, its vendors pointed at the harness's fakes and
//! WebRTC on loopback only; the harness then reads that pid's `/proc` for CPU and memory, so
//! neither the candidates nor the fakes are counted in the server's figures. The child is
//! stopped with SIGTERM (it drains) and killed if it has not exited 30 s later.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

/// The log lines kept for an error report.
const LOG_TAIL: usize = 40;
/// Longest wait for the child to listen (it migrates a fresh SQLite database first).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the child to exit after SIGTERM (its drain) before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The server binary running as a child process.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    base: String,
    log_path: PathBuf,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl ChildServer {
    /// Starts `bin serve` with exactly `env` (nothing inherited but `PATH`), its log (JSON
    /// lines) written to `log_path`; returns once it listens.
    pub fn start(bin: &Path, env: &[(String, String)], log_path: &Path) -> anyhow::Result<Self> {
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .env_clear()
            .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let log = std::fs::File::create(log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let log = Arc::new(Mutex::new(std::io::LineWriter::new(log)));
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let streams: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().context("the child's stdout")?),
            Box::new(child.stderr.take().context("the child's stderr")?),
        ];
        for stream in streams {
            let (log, tail, port_tx) = (log.clone(), tail.clone(), port_tx.clone());
            std::thread::Builder::new()
                .name("lt-server-log".into())
                .spawn(move || {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        if let Some(port) = listening_port(&line) {
                            let _ = port_tx.send(port);
                        }
                        if let Ok(mut log) = log.lock() {
                            let _ = writeln!(log, "{line}");
                        }
                        if let Ok(mut tail) = tail.lock() {
                            if tail.len() == LOG_TAIL {
                                tail.pop_front();
                            }
                            tail.push_back(line);
                        }
                    }
                })
                .context("the log reader thread")?;
        }
        let mut server = Self {
            child,
            base: String::new(),
            log_path: log_path.to_owned(),
            tail,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match port_rx.recv_timeout(Duration::from_millis(200)) {
                Ok(port) => {
                    server.base = format!("http://127.0.0.1:{port}");
                    return Ok(server);
                }
                Err(_) if Instant::now() >= deadline => {
                    let tail = server.tail();
                    server.kill();
                    bail!("the server did not listen within {START_TIMEOUT:?}; its log:\n{tail}");
                }
                Err(_) => {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        bail!(
                            "the server exited ({status}) before listening; its log:\n{}",
                            server.tail()
                        );
                    }
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of its log.
    pub fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// SIGTERM, then waits (its drain); kills it after [`STOP_TIMEOUT`]. Returns whether it
    /// exited by itself with success.
    pub fn stop(mut self) -> bool {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break,
            }
        }
        self.kill();
        false
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// The port of the server's "InterviewCraft is listening" JSON log line.
fn listening_port(line: &str) -> Option<u16> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event["message"] != "InterviewCraft is listening" {
        return None;
    }
    u16::try_from(event["port"].as_u64()?).ok()
}

/// A cumulative histogram read from `/metrics`: `(upper bound in seconds, count ≤ it)`, the
/// last bound `+Inf`, and the sum of the observations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
}

impl Histogram {
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |(_, c)| *c)
    }

    /// `self − earlier` (the observations made in between; same buckets).
    pub fn since(&self, earlier: Option<&Histogram>) -> Histogram {
        let Some(earlier) = earlier.filter(|e| e.buckets.len() == self.buckets.len()) else {
            return self.clone();
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|((bound, c), (_, e))| (*bound, (c - e).max(0.0)))
                .collect(),
            sum: (self.sum - earlier.sum).max(0.0),
        }
    }

    /// The upper bound of the bucket holding the `p`-th percentile (nearest rank), seconds: the
    /// true value is at most this. `None` without observations; `+Inf` past the last bound.
    pub fn percentile_bound(&self, p: f64) -> Option<f64> {
        let count = self.count();
        if count <= 0.0 {
            return None;
        }
        let rank = ((p / 100.0) * count).ceil().max(1.0);
        self.buckets
            .iter()
            .find(|(_, c)| *c >= rank)
            .map(|(bound, _)| *bound)
    }
}

/// What the harness reads from `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsReading {
    /// `interviewcraft_live_actors`, summed over actor kinds.
    pub live_actors: Option<i64>,
    pub live_interviews: Option<i64>,
    /// `interviewcraft_live_media_sessions`: peer connections the server still holds.
    pub live_media_sessions: Option<i64>,
    /// `interviewcraft_barge_in_seconds`.
    pub barge_in: Option<Histogram>,
}

/// Parses the server's exposition (a real Prometheus text parser).
pub fn parse_metrics(text: &str) -> anyhow::Result<MetricsReading> {
    use prometheus_parse::{Scrape, Value};
    let scrape =
        Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).context("parsing /metrics")?;
    let mut reading = MetricsReading::default();
    let mut barge_in_sum = None;
    for sample in &scrape.samples {
        match (sample.metric.as_str(), &sample.value) {
            ("interviewcraft_live_actors", Value::Gauge(v)) => {
                *reading.live_actors.get_or_insert(0) += *v as i64;
            }
            ("interviewcraft_live_interviews", Value::Gauge(v)) => {
                reading.live_interviews = Some(*v as i64);
            }
            ("interviewcraft_live_media_sessions", Value::Gauge(v)) => {
                reading.live_media_sessions = Some(*v as i64);
            }
            ("interviewcraft_barge_in_seconds", Value::Histogram(buckets)) => {
                let mut buckets: Vec<(f64, f64)> =
                    buckets.iter().map(|b| (b.less_than, b.count)).collect();
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                reading.barge_in = Some(Histogram { buckets, sum: 0.0 });
            }
            (
                "interviewcraft_barge_in_seconds_sum",
                Value::Untyped(v) | Value::Counter(v) | Value::Gauge(v),
            ) => barge_in_sum = Some(*v),
            _ => {}
        }
    }
    if let (Some(histogram), Some(sum)) = (reading.barge_in.as_mut(), barge_in_sum) {
        histogram.sum = sum;
    }
    Ok(reading)
}

/// Reads `/metrics` from `base`.
pub async fn scrape(http: &reqwest::Client, base: &str) -> anyhow::Result<MetricsReading> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .context("GET /metrics")?
        .error_for_status()
        .context("GET /metrics")?
        .text()
        .await
        .context("reading /metrics")?;
    parse_metrics(&text)
}

/// The server's part of the barge-in reaction over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BargeInServer {
    pub count: u64,
    /// Upper bounds of the buckets holding p50 and p95 (the true values are at most these).
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub mean: Option<f64>,
}

impl BargeInServer {
    /// From the histogram's observations during the run, in milliseconds.
    pub fn from_histogram(h: &Histogram) -> Self {
        let count = h.count();
        let ms = |s: f64| {
            if s.is_finite() {
                s * 1e3
            } else {
                f64::INFINITY
            }
        };
        Self {
            count: count as u64,
            p50: h.percentile_bound(50.0).map(ms),
            p95: h.percentile_bound(95.0).map(ms),
            mean: (count > 0.0).then(|| h.sum / count * 1e3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "# HELP interviewcraft_live_actors Live actors by type.
# TYPE interviewcraft_live_actors gauge
interviewcraft_live_actors{kind=\"interview\"} 2
interviewcraft_live_actors{kind=\"playback\"} 1
# HELP interviewcraft_live_interviews Live interviews on this node.
# TYPE interviewcraft_live_interviews gauge
interviewcraft_live_interviews 2
# HELP interviewcraft_live_media_sessions Media sessions held.
# TYPE interviewcraft_live_media_sessions gauge
interviewcraft_live_media_sessions 3
# HELP interviewcraft_barge_in_seconds Per barge-in.
# TYPE interviewcraft_barge_in_seconds histogram
interviewcraft_barge_in_seconds_sum 0.012
interviewcraft_barge_in_seconds_count 4
interviewcraft_barge_in_seconds_bucket{le=\"0.001\"} 1
interviewcraft_barge_in_seconds_bucket{le=\"0.002\"} 3
interviewcraft_barge_in_seconds_bucket{le=\"0.005\"} 3
interviewcraft_barge_in_seconds_bucket{le=\"+Inf\"} 4
# EOF
";

    #[test]
    fn the_metrics_the_harness_reads_parse() {
        let reading = parse_metrics(EXPOSITION).expect("parses");
        assert_eq!(reading.live_actors, Some(3));
        assert_eq!(reading.live_interviews, Some(2));
        assert_eq!(reading.live_media_sessions, Some(3));
        let h = reading.barge_in.expect("the histogram");
        assert_eq!(h.count(), 4.0);
        assert!((h.sum - 0.012).abs() < 1e-12);
        assert_eq!(h.percentile_bound(50.0), Some(0.002));
        assert_eq!(h.percentile_bound(95.0), Some(f64::INFINITY));
        let server = BargeInServer::from_histogram(&h);
        assert_eq!(server.count, 4);
        assert_eq!(server.p50, Some(2.0));
        assert!((server.mean.expect("mean") - 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_histograms_run_is_the_difference_of_two_readings() {
        let before = Histogram {
            buckets: vec![(0.001, 1.0), (0.01, 2.0), (f64::INFINITY, 2.0)],
            sum: 0.004,
        };
        let after = Histogram {
            buckets: vec![(0.001, 1.0), (0.01, 5.0), (f64::INFINITY, 6.0)],
            sum: 0.1,
        };
        let run = after.since(Some(&before));
        assert_eq!(run.count(), 4.0);
        assert_eq!(run.percentile_bound(50.0), Some(0.01));
        assert_eq!(after.since(None), after);
        assert_eq!(Histogram::default().percentile_bound(50.0), None);
    }

    #[test]
    fn only_the_listening_line_gives_the_port() {
        assert_eq!(
            listening_port(r#"{"message":"InterviewCraft is listening","port":4123}"#),
            Some(4123)
        );
        assert_eq!(listening_port(r#"{"message":"other","port":1}"#), None);
        assert_eq!(listening_port("not json"), None);
    }
}
