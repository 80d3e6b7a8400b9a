//! The load harness end to end (the CI smoke run; no timing assertions): `loadtest run` with
//! the server in process and with the server binary as a child process; the summary line
//! parses, every interview completes with recorded overhead, and the JSON report has every
//! stable key, the server's own CPU and memory, the barge-in and pause measurements, and no
//! actor left live.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use loadtest::report::parse_summary;
use serde_json::Value;

/// The report's stable keys (loadtest/README.md), as JSON pointers.
const STABLE_KEYS: [&str; 27] = [
    "/interviews/started",
    "/interviews/completed",
    "/interviews/failed",
    "/turns",
    "/v2v_client_ms/p50",
    "/v2v_client_ms/p95",
    "/v2v_client_ms/p99",
    "/v2v_client_ms/max",
    "/v2v_server_ms/p50",
    "/breakdown_ms/ingress/p50",
    "/breakdown_ms/egress/p99",
    "/engine_overhead_ms/p50",
    "/engine_overhead_ms/p95",
    "/engine_overhead_ms/p99",
    "/engine_overhead_ms/max",
    "/barge_in_ms/p50",
    "/barge_in_ms/p95",
    "/barge_in_server_ms",
    "/stalls",
    "/turn_cut_rate",
    "/server/cpu_seconds",
    "/server/cores_avg",
    "/server/peak_rss_mib",
    "/server/cpu_per_interview_pct",
    "/server/rss_per_interview_mib",
    "/live_actors_after",
    "/rss_timeline",
];

fn assert_stable_keys(report: &Value) {
    for key in STABLE_KEYS {
        assert!(report.pointer(key).is_some(), "the report has {key}");
    }
    let parts = report["breakdown_ms"].as_object().expect("the breakdown");
    assert_eq!(parts.len(), 8, "{parts:?}");
    for (part, p) in parts {
        for key in ["p50", "p99"] {
            assert!(p.get(key).is_some(), "breakdown_ms.{part}.{key}");
        }
    }
}

/// The server binary cargo built next to this package's (the api package's integration test
/// needs it, so `cargo test --workspace` builds it).
fn server_binary() -> Option<PathBuf> {
    let loadtest = PathBuf::from(env!("CARGO_BIN_EXE_loadtest"));
    let server = loadtest.with_file_name(format!("interviewcraft{}", std::env::consts::EXE_SUFFIX));
    server.is_file().then_some(server)
}

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
            "--pauses",
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
    // Client-observed: a number, or `-` when every answer's pause was cut into (a reply
    // that cuts in is not a gap after the answer).
    assert!(summary["gap_p50_ms"] == "-" || summary["gap_p50_ms"].parse::<f64>().is_ok());
    let cpu: f64 = summary["cpu_s"].parse().expect("cpu_s");
    let rss: f64 = summary["rss_mb"].parse().expect("rss_mb");
    assert!(cpu > 0.0 && rss > 0.0);

    let report: Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("the JSON file")).expect("JSON");
    assert_stable_keys(&report);
    assert_eq!(report["mode"], "spawn");
    assert_eq!(report["interviews"]["started"], 2);
    assert_eq!(report["interviews"]["completed"], 2);
    assert_eq!(report["server"]["source"], "in_process_estimate");
    assert_eq!(report["live_actors_after"], 0, "every actor ended");
    // Each answer paused once; whether the server cut in is what is measured.
    assert_eq!(report["pauses"], 2);
    assert!(
        report["turn_cut_rate"]
            .as_f64()
            .is_some_and(|r| (0.0..=1.0).contains(&r))
    );
    let interviews = report["outcomes"].as_array().expect("outcomes");
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
        let gaps = interview["gaps_ms"].as_array().map_or(0, Vec::len);
        let cuts = interview["turn_cuts"].as_u64().expect("turn_cuts");
        assert_eq!(
            gaps as u64 + cuts,
            1,
            "the answer was followed or cut: {interview}"
        );
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

#[test]
fn the_server_binary_as_a_child_reports_its_own_cpu_memory_and_barge_ins() {
    let Some(server) = server_binary() else {
        assert!(
            std::env::var("CI").is_err(),
            "the interviewcraft binary is not built next to loadtest"
        );
        eprintln!("skipped: build it first (cargo build -p api --bin interviewcraft)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "run",
            "--interviews",
            "2",
            "--answers",
            "2",
            "--barge-in",
            "--timeout",
            "120",
        ])
        .arg("--server-bin")
        .arg(&server)
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
    let summary = parse_summary(stdout.lines().last().expect("a line")).expect("parses");
    assert_eq!(summary["mode"], "server_bin");
    assert_eq!(summary["server"], "process");
    assert_eq!(summary["live_actors_after"], "0");

    let report: Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("the JSON file")).expect("JSON");
    assert_stable_keys(&report);
    let server = &report["server"];
    assert_eq!(server["source"], "process");
    assert!(server["pid"].as_u64().is_some());
    assert_eq!(server["clean_exit"], true, "SIGTERM drained it");
    for key in [
        "cpu_seconds",
        "cores_avg",
        "cpu_per_interview_pct",
        "peak_rss_mib",
    ] {
        assert!(
            server[key].as_f64().is_some_and(|v| v > 0.0),
            "server.{key}: {server}"
        );
    }
    assert!(server["idle_rss_mib"].as_f64().is_some_and(|v| v > 0.0));
    assert!(
        server["peak_live"]
            .as_u64()
            .is_some_and(|n| (1..=2).contains(&n))
    );
    assert!(server["rss_per_interview_mib"].as_f64().is_some());
    // The harness's own CPU is not the server's: the candidates' threads are counted apart.
    assert!(
        report["client"]["cpu_seconds"]
            .as_f64()
            .is_some_and(|v| v > 0.0)
    );
    assert_eq!(report["live_actors_after"], 0);
    // The second answer of each interview talked over the reply.
    assert_eq!(report["barge_in"]["attempts"], 2, "{}", report["barge_in"]);
    let measured = report["barge_in"]["measured"].as_u64().expect("measured");
    assert_eq!(measured, 2, "both replies stopped: {}", report["barge_in"]);
    assert!(report["barge_in_ms"]["p95"].as_f64().is_some());
    assert!(
        report["v2v_client_ms"]["p50"].as_f64().is_some(),
        "the replies after the answers"
    );
    let server_part = &report["barge_in_server_ms"];
    assert!(
        server_part["count"].as_u64().is_some_and(|n| n >= 2),
        "the server observed the barge-ins: {server_part}"
    );
    assert!(server_part["p95"].as_f64().is_some());
    assert!(
        !report["rss_timeline"]
            .as_array()
            .expect("timeline")
            .is_empty()
    );
    // The server's log was kept next to the report.
    let log = server["log"].as_str().expect("the log's path");
    assert!(std::path::Path::new(log).is_file());
}

#[test]
fn a_soak_starts_a_new_interview_as_each_ends_until_its_duration() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("soak.json");
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "run",
            "--duration",
            "8s",
            "--concurrency",
            "1",
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
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("the JSON file")).expect("JSON");
    assert_stable_keys(&report);
    assert_eq!(report["candidates"]["duration_s"], 8.0);
    let started = report["interviews"]["started"].as_u64().expect("started");
    // One at a time: each interview that ended within the 8 s started the next one, and none
    // started after. (How many fit depends on the machine's load, so the count is not fixed.)
    let outcomes = report["outcomes"].as_array().expect("outcomes");
    let ended_in_time = outcomes
        .iter()
        .filter(|o| o["ended_s"].as_f64().expect("ended_s") < 8.0)
        .count() as u64;
    assert_eq!(
        started,
        ended_in_time + 1,
        "a new interview as each ended within the duration: {outcomes:?}"
    );
    assert_eq!(report["interviews"]["completed"], started);
    assert!(
        report["server"]["peak_live"].as_u64() == Some(1),
        "one at a time"
    );
    assert!(
        report["rss_timeline"]
            .as_array()
            .is_some_and(|t| t.len() > 5)
    );
}

#[test]
fn a_sweep_writes_its_chart_table_and_reports() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["run", "--sweep", "1", "--answers", "1", "--timeout", "60"])
        .arg("--out")
        .arg(dir.path())
        .env("RUST_LOG", "error")
        .output()
        .expect("the harness runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "one summary line per level");
    for name in ["sweep.svg", "sweep.md", "sweep.json", "level-1.json"] {
        assert!(dir.path().join(name).is_file(), "{name}");
    }
    let table = std::fs::read_to_string(dir.path().join("sweep.md")).expect("the table");
    assert!(table.contains("| 1 | 3 / 3 |"), "{table}");
    let svg = std::fs::read_to_string(dir.path().join("sweep.svg")).expect("the chart");
    assert!(svg.contains("concurrent interviews"));
    let level: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("level-1.json")).expect("read"))
            .expect("JSON");
    assert_stable_keys(&level);
}
