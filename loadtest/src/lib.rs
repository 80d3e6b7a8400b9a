//! The InterviewCraft load harness: N simulated candidates hold spoken interviews over WebRTC
//! against a server whose vendors are the fakes, and the run is summarised in one line.
//!
//! - [`harness`]: options, the in-process server (`--spawn`) or a running one (`--url`,
//!   loopback only), scheduling (concurrency, ramp-up, hard timeout) and the report.
//! - [`candidate`]: one simulated candidate (HTTP sign-up, WebRTC join, real-time answers).
//! - [`report`]: percentiles, the summary line and its parser (used by the tests).
//! - [`procstat`]: CPU time per thread group and peak RSS from `/proc/self`.
//!
//! Everything is bounded: a fixed number of interviews and answers, a per-answer deadline
//! and a hard `--timeout` for the whole run. Network traffic only goes to 127.0.0.1.

pub mod candidate;
pub mod harness;
pub mod procstat;
pub mod report;
