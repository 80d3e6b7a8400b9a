//! Process CPU time and memory from `/proc` (Linux), no `unsafe`.
//!
//! - The server as another process (`--server-bin`, or `--url` with `--server-pid`):
//!   [`ProcessSample::of`] reads its own CPU time, its children's (espeak-ng, the recognizer's
//!   worker) and its resident memory, so the server's figures are its own.
//! - The server in process (`--spawn`): CPU time is read per thread (`/proc/self/task/*/stat`,
//!   user + system ticks) so the harness can tell the server's share from its own: the
//!   simulated candidates run on threads named [`CLIENT_THREAD`], the fake vendors on
//!   [`FAKES_THREAD`], everything else is the server. Memory is the whole process's.

use std::collections::BTreeMap;

/// Thread name of the candidates' runtime (at most 15 bytes: the kernel truncates `comm`).
pub const CLIENT_THREAD: &str = "lt-client";
/// Thread name of the fake vendors' runtime.
pub const FAKES_THREAD: &str = "lt-fakes";

/// CPU seconds (user + system) by thread group, and in total.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub client_s: f64,
    pub fakes_s: f64,
    pub server_s: f64,
}

impl CpuTimes {
    pub fn total_s(&self) -> f64 {
        self.client_s + self.fakes_s + self.server_s
    }

    /// `self - earlier`, per group (threads that ended in between are lost from both sides
    /// only if they ended before `earlier`; the process total is used for the headline).
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            client_s: (self.client_s - earlier.client_s).max(0.0),
            fakes_s: (self.fakes_s - earlier.fakes_s).max(0.0),
            server_s: (self.server_s - earlier.server_s).max(0.0),
        }
    }
}

/// `(comm, utime + stime ticks)` from one `stat` line; `comm` may contain spaces and parens.
fn parse_stat(line: &str) -> Option<(String, u64)> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_owned();
    // After ") ": state is field 3; utime and stime are fields 14 and 15.
    let rest: Vec<&str> = line.get(close + 2..)?.split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// Whole-process CPU seconds (user + system, all threads, living and ended).
pub fn process_cpu_s() -> Option<f64> {
    let line = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, ticks) = parse_stat(&line)?;
    Some(ticks as f64 / ticks_per_second())
}

/// CPU seconds (user + system) of this process's ended and waited-for children (the local
/// voice's espeak-ng processes).
pub fn children_cpu_s() -> Option<f64> {
    let line = std::fs::read_to_string("/proc/self/stat").ok()?;
    let close = line.rfind(')')?;
    let rest: Vec<&str> = line.get(close + 2..)?.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17.
    let cutime: u64 = rest.get(13)?.parse().ok()?;
    let cstime: u64 = rest.get(14)?.parse().ok()?;
    Some((cutime + cstime) as f64 / ticks_per_second())
}

/// CPU seconds of the children still running (e.g. the offline recognizer's worker, which
/// lives as long as the server, so [`children_cpu_s`] never sees it), with what their own
/// waited-for children used.
pub fn living_children_cpu_s() -> f64 {
    living_children_cpu_s_of(std::process::id())
}

/// [`living_children_cpu_s`] of process `pid`.
pub fn living_children_cpu_s_of(pid: u32) -> f64 {
    let me = pid.to_string();
    let mut ticks = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Ok(line) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some(close) = line.rfind(')') else {
                continue;
            };
            let rest: Vec<&str> = line
                .get(close + 2..)
                .unwrap_or("")
                .split_whitespace()
                .collect();
            // ppid is field 4; utime, stime, cutime, cstime fields 14 to 17.
            if rest.get(1) != Some(&me.as_str()) {
                continue;
            }
            ticks += rest
                .get(11..15)
                .into_iter()
                .flatten()
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    ticks as f64 / ticks_per_second()
}

fn ticks_per_second() -> f64 {
    (rustix::param::clock_ticks_per_second().max(1)) as f64
}

/// CPU seconds since the process started of the living threads, summed by thread name.
pub fn cpu_by_thread_name() -> BTreeMap<String, f64> {
    let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
    let hz = ticks_per_second();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            if let Ok(line) = std::fs::read_to_string(entry.path().join("stat"))
                && let Some((comm, ticks)) = parse_stat(&line)
            {
                *by_name.entry(comm).or_default() += ticks as f64 / hz;
            }
        }
    }
    by_name
}

/// CPU seconds of the living threads, grouped (see the module docs).
pub fn cpu_by_group() -> CpuTimes {
    let mut times = CpuTimes::default();
    for (name, s) in cpu_by_thread_name() {
        if name.starts_with(CLIENT_THREAD) {
            times.client_s += s;
        } else if name.starts_with(FAKES_THREAD) {
            times.fakes_s += s;
        } else {
            times.server_s += s;
        }
    }
    times
}

/// Peak resident set size (`VmHWM`) in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_kib(&status, "VmHWM:").map(|kib| kib / 1024.0)
}

/// A `kB` field of `/proc/*/status`.
fn status_kib(status: &str, field: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One reading of a process: CPU time so far and memory now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    /// User + system seconds of the process itself (all its threads, living and ended).
    pub cpu_s: f64,
    /// Of its ended and waited-for children, and of those still running.
    pub children_cpu_s: f64,
    /// Resident set size now (`VmRSS`), MiB.
    pub rss_mib: f64,
    /// Its peak (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
}

impl ProcessSample {
    /// Reads process `pid`; `None` once it is gone.
    pub fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let close = stat.rfind(')')?;
        let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
        // utime, stime, cutime, cstime: fields 14 to 17.
        let field =
            |i: usize| -> Option<f64> { rest.get(i)?.parse::<u64>().ok().map(|t| t as f64) };
        let hz = ticks_per_second();
        Some(Self {
            cpu_s: (field(11)? + field(12)?) / hz,
            children_cpu_s: (field(13)? + field(14)?) / hz + living_children_cpu_s_of(pid),
            rss_mib: status_kib(&status, "VmRSS:")? / 1024.0,
            peak_rss_mib: status_kib(&status, "VmHWM:")? / 1024.0,
        })
    }

    /// CPU seconds of the process and its children.
    pub fn total_cpu_s(&self) -> f64 {
        self.cpu_s + self.children_cpu_s
    }
}

/// Resets this process's peak RSS (`VmHWM`) to its current RSS (Linux ≥ 4.0), so a run's
/// peak is its own when several runs share the process (a sweep in spawn mode). Best effort.
pub fn reset_own_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_in_the_name() {
        let line = "1234 (actix-rt|system:0 x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0";
        assert_eq!(
            parse_stat(line),
            Some(("actix-rt|system:0 x".to_owned(), 300))
        );
    }

    #[test]
    fn reads_this_process() {
        assert!(process_cpu_s().is_some());
        assert!(children_cpu_s().is_some_and(|s| s >= 0.0));
        assert!(living_children_cpu_s() >= 0.0);
        assert!(peak_rss_mb().is_some_and(|mb| mb > 0.0));
        let me = ProcessSample::of(std::process::id()).expect("this process");
        assert!(me.rss_mib > 0.0 && me.peak_rss_mib >= me.rss_mib * 0.5);
        assert!(me.cpu_s >= 0.0 && me.children_cpu_s >= 0.0);
        assert!(ProcessSample::of(u32::MAX).is_none(), "no such process");
    }
}
