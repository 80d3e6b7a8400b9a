//! The load harness end to end: `loadtest run` with the server in process, 2 interviews of 1
//! answer each; the summary line parses and every interview completed with recorded overhead.

use std::process::Command;
use std::time::{Duration, Instant};

use loadtest::report::parse_summary;
use serde_json::Value;

#[test]
fn two_interviews_in_process_complete_with_recorded_overhead() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("details.json");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "run",
            "--interviews",
            "2",
            "--answers",
            "1",
            "--timeout",
            "60",
        ])
        .arg("--json")
        .arg(&json_path)
        .env("RUST_LOG", "error")
        .output()
        .expect("the harness runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    assert!(started.elapsed() < Duration::from_secs(60));

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one summary line: {stdout}");
    let summary = parse_summary(lines[0]).expect("the summary parses");
    assert_eq!(summary["mode"], "spawn");
    assert_eq!(summary["interviews"], "2");
    assert_eq!(summary["ok"], "2");
    assert_eq!(summary["failed"], "0");
    assert_eq!(summary["verdict"], "pass");
    let turns: usize = summary["turns"].parse().expect("turns is a number");
    assert!(turns >= 2, "{turns} turns");
    for key in [
        "overhead_p50_ms",
        "overhead_p99_ms",
        "v2v_p50_ms",
        "gap_p50_ms",
        "ingress_p50_ms",
        "stt_final_p50_ms",
        "turn_wait_p50_ms",
        "dispatch_p50_ms",
        "llm_ttft_p50_ms",
        "tts_buffering_p50_ms",
        "tts_ttfa_p50_ms",
        "egress_p99_ms",
    ] {
        let value: f64 = summary[key]
            .parse()
            .unwrap_or_else(|_| panic!("{key} is a number"));
        assert!(value >= 0.0, "{key}={value}");
    }
    let cpu: f64 = summary["cpu_s"].parse().expect("cpu_s");
    let rss: f64 = summary["rss_mb"].parse().expect("rss_mb");
    assert!(cpu > 0.0 && rss > 0.0);

    let details: Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("the JSON file")).expect("JSON");
    let breakdown = details["summary"]["breakdown_ms"]
        .as_object()
        .expect("the breakdown per part");
    assert_eq!(breakdown.len(), 8, "{breakdown:?}");
    let interviews = details["interviews"].as_array().expect("interviews");
    assert_eq!(interviews.len(), 2);
    for interview in interviews {
        assert_eq!(interview["ok"], true, "{interview}");
        let overheads: Vec<f64> = interview["turns"]
            .as_array()
            .expect("turns")
            .iter()
            .filter_map(|t| t["engine_overhead_ms"].as_f64())
            .collect();
        assert!(!overheads.is_empty(), "{interview}");
        // The stored parts add up to the stored v2v, turn by turn.
        for turn in interview["turns"].as_array().expect("turns") {
            let parts: f64 = [
                "ingress_ms",
                "stt_final_ms",
                "turn_wait_ms",
                "dispatch_ms",
                "llm_ttft_ms",
                "tts_buffering_ms",
                "tts_ttfa_ms",
                "egress_ms",
            ]
            .iter()
            .map(|key| {
                turn[*key]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{key}: {turn}"))
            })
            .sum();
            let v2v = turn["v2v_ms"].as_f64().expect("v2v");
            assert!(
                (parts - v2v).abs() < 0.01,
                "parts {parts} v2v {v2v}: {turn}"
            );
        }
        assert_eq!(interview["gaps_ms"].as_array().map(Vec::len), Some(1));
        assert!(interview["frames_sent"].as_u64() > Some(50));
        assert!(interview["frames_received"].as_u64() > Some(0));
    }
}

#[test]
fn local_mode_interviews_complete_and_report_cpu_per_interview() {
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "run",
            "--local",
            "--interviews",
            "1",
            "--answers",
            "1",
            "--timeout",
            "90",
        ])
        .env("RUST_LOG", "error")
        .output()
        .expect("the harness runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let line = stdout.lines().last().expect("a summary line");
    let summary = parse_summary(line).expect("the summary parses");
    assert_eq!(summary["local"], "true");
    assert_eq!(summary["ok"], "1", "{line}");
    // The espeak-ng children's CPU is counted, and the per-interview share is reported.
    let children: f64 = summary["child_cpu_s"].parse().expect("child_cpu_s");
    assert!(children > 0.0, "{line}");
    let cores: f64 = summary["server_cores_per_interview"]
        .parse()
        .expect("server_cores_per_interview");
    assert!(cores > 0.0 && cores < 2.0, "{line}");
}
