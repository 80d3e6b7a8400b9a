//! The InterviewCraft load harness: N simulated candidates hold spoken interviews over WebRTC
//! against a server whose vendors are the fakes, and the run is summarised in one line.
//!
//! - [`harness`]: options, the server under test (in process, the server binary as a child
//!   process, or a running one; loopback only), scheduling (concurrency, ramp-up, soak, hard
//!   timeout), the sweep and the report.
//! - [`candidate`]: one simulated candidate (HTTP sign-up, WebRTC join, real-time audio).
//! - [`conversation`]: what the candidate says when (answers, barge-ins, pauses), sans-IO.
//! - [`server`]: the server binary as a child process; reading `/metrics`.
//! - [`report`]: percentiles, the JSON report, the summary line and its parser.
//! - [`chart`]: the sweep's SVG chart and Markdown table.
//! - [`procstat`]: CPU time and memory from `/proc` (a process, or this one's threads).
//!
//! Everything is bounded: a fixed number of interviews and answers, a per-answer deadline
//! and a hard `--timeout` for the whole run. Network traffic only goes to 127.0.0.1.

pub mod candidate;
pub mod chart;
pub mod conversation;
pub mod harness;
pub mod procstat;
pub mod report;
pub mod server;
