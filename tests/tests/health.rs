//! Protects the operational endpoints: `/health` reports database reachability, `/metrics`
//! exposes Prometheus counters, and every response carries a request id.

use serde_json::Value;
use tests::{Backend, db_tests, spawn_app, spawn_app_with};

db_tests!(
    health_reports_the_database_as_reachable,
    metrics_count_requests_by_route_pattern,
    every_response_carries_a_request_id,
    metrics_come_from_one_registry_and_parse_as_prometheus_text,
    health_names_what_serves_each_vendor_kind,
    local_mode_without_espeak_falls_back_to_the_synthetic_voice_and_says_so,
);

async fn local_mode_without_espeak_falls_back_to_the_synthetic_voice_and_says_so(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.local_vendors = api::configuration::LocalVendorsMode::Local;
        settings.espeak_ng_program = "/nonexistent/espeak-ng".into();
    })
    .await;
    let body: Value = app.get("/health").await.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["vendors"]["llm"], "local", "{body}");
    assert_eq!(body["vendors"]["tts"], "fake", "{body}");
    let notes = body["local_notes"].as_array().expect("notes");
    let tts = notes
        .iter()
        .find(|note| note["kind"] == "tts")
        .expect("a note on the voice");
    assert_eq!(tts["package"], "espeak-ng", "{body}");
    assert!(
        tts["message"]
            .as_str()
            .is_some_and(|m| m.contains("synthetic tone")),
        "{body}"
    );
    let logs = tests::captured_logs();
    assert!(
        logs.contains("install the Debian package `espeak-ng`"),
        "the log names the package"
    );
}

async fn health_names_what_serves_each_vendor_kind(backend: Backend) {
    // Tests run keyless kinds on the protocol fakes.
    let app = spawn_app(backend.clone()).await;
    let body: Value = app.get("/health").await.json().await.expect("json");
    assert_eq!(
        body["vendors"],
        serde_json::json!({"stt": "fake", "llm": "fake", "tts": "fake"})
    );
    assert_eq!(body["local_notes"], serde_json::json!([]));
    // Keyless local mode proper, with a platform Claude key: mixing is allowed.
    let app = spawn_app_with(backend, |settings| {
        settings.local_vendors = api::configuration::LocalVendorsMode::Local;
        settings.anthropic_api_key = Some("sk-ant-test-platform-key".to_owned().into());
    })
    .await;
    let body: Value = app.get("/health").await.json().await.expect("json");
    assert_eq!(body["vendors"]["llm"], "anthropic", "{body}");
    // espeak-ng is installed here (CI installs it): the voice is local.
    assert_eq!(body["vendors"]["tts"], "local", "{body}");
    // No local recognizer yet: simulated, and said so.
    assert_eq!(body["vendors"]["stt"], "fake", "{body}");
    let notes = body["local_notes"].as_array().expect("notes");
    assert!(notes.iter().any(|note| note["kind"] == "stt"), "{body}");
    // The start-up log names the address to open and what serves each kind.
    let logs = tests::captured_logs();
    assert!(
        logs.contains(&format!("open http://127.0.0.1:{}/ in a browser", app.port)),
        "{logs}"
    );
}

async fn health_reports_the_database_as_reachable(backend: Backend) {
    let is_postgres = matches!(backend, Backend::Postgres { .. });
    let app = spawn_app(backend).await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"]["reachable"], true);
    assert_eq!(
        body["database"]["backend"],
        if is_postgres { "postgres" } else { "sqlite" }
    );
}

async fn metrics_count_requests_by_route_pattern(backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..3 {
        app.get("/health").await;
    }
    app.me("not-a-token").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.expect("body");
    assert!(
        text.contains(
            r#"interviewcraft_http_requests_total{method="GET",route="/health",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/me",status="401""#),
        "{text}"
    );
    assert!(text.contains("interviewcraft_http_request_duration_seconds_bucket"));
    assert!(text.contains("interviewcraft_database_up 1"));
    assert!(text.trim_end().ends_with("# EOF"));
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.get("/health").await;
    let second = app.get("/does-not-exist").await;
    let id = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<uuid::Uuid>().ok())
            .expect("x-request-id is a UUID")
    };
    assert_ne!(id(&first), id(&second));
}

async fn metrics_come_from_one_registry_and_parse_as_prometheus_text(backend: Backend) {
    let app = spawn_app(backend).await;
    app.get("/health").await;
    let text = app.get("/metrics").await.text().await.expect("body");
    // One exposition: every family declared once, one `# EOF`, and it is the last line.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "{text}");
    assert_eq!(lines.iter().filter(|l| **l == "# EOF").count(), 1);
    let mut types: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let declared = types.len();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types.len(), declared, "a family declared twice: {text}");

    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the exposition parses");
    let sample = |name: &str| {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .collect::<Vec<_>>()
    };
    // The engine's per-turn histograms, with buckets fine enough to see 25 ms changes.
    for part in [
        "v2v",
        "engine_overhead",
        "stt_final",
        "llm_ttft",
        "tts_ttfa",
    ] {
        let name = format!("interviewcraft_turn_{part}_seconds");
        let found = sample(&name);
        let Some(prometheus_parse::Value::Histogram(buckets)) = found.first().map(|s| &s.value)
        else {
            panic!("{name} is a histogram: {text}");
        };
        let bounds: Vec<f64> = buckets.iter().map(|b| b.less_than).collect();
        for ms in [25, 50, 475, 500, 525, 1000, 1975, 2000] {
            let seconds = f64::from(ms) / 1e3;
            assert!(
                bounds.iter().any(|b| (b - seconds).abs() < 1e-9),
                "{name} has a {ms} ms bucket: {bounds:?}"
            );
        }
    }
    // The barge-in reaction (decision → playback stopped), resolving its 20 ms target.
    let name = "interviewcraft_barge_in_seconds";
    let Some(prometheus_parse::Value::Histogram(buckets)) =
        sample(name).first().map(|s| s.value.clone())
    else {
        panic!("{name} is a histogram: {text}");
    };
    let under_target = buckets.iter().filter(|b| b.less_than <= 0.02).count();
    assert!(under_target >= 10, "{name} resolves 20 ms: {buckets:?}");
    // Live actors by type and live interviews, as gauges of the same registry.
    let actors = sample("interviewcraft_live_actors");
    for kind in ["interview", "ingress", "stt", "llm", "playback"] {
        assert!(
            actors.iter().any(|s| s.labels.get("kind") == Some(kind)
                && matches!(s.value, prometheus_parse::Value::Gauge(_))),
            "live actors of kind {kind}: {text}"
        );
    }
    assert!(
        matches!(
            sample("interviewcraft_live_interviews").first().map(|s| &s.value),
            Some(prometheus_parse::Value::Gauge(v)) if *v == 0.0
        ),
        "{text}"
    );
    // Media sessions still held (process-wide: other tests may hold some): a gauge.
    assert!(
        matches!(
            sample("interviewcraft_live_media_sessions").first().map(|s| &s.value),
            Some(prometheus_parse::Value::Gauge(v)) if *v >= 0.0
        ),
        "{text}"
    );
    assert!(
        !sample("interviewcraft_usage_rows_dropped_total").is_empty(),
        "dropped usage rows are counted: {text}"
    );
    // Process-wide counts (other tests of the process may have stalled a socket): present.
    for counter in [
        "interviewcraft_stt_stalled_sockets_total",
        "interviewcraft_tts_stalled_sockets_total",
        "interviewcraft_llm_stalled_streams_total",
        "interviewcraft_inbound_opus_packets_wideband_total",
        "interviewcraft_inbound_opus_packets_above_wideband_total",
    ] {
        assert!(!sample(counter).is_empty(), "{counter}: {text}");
    }
    for counter in [
        "interviewcraft_transcript_rows_queued_total",
        "interviewcraft_transcript_rows_written_total",
        "interviewcraft_transcript_write_retries_total",
        "interviewcraft_transcript_rows_dropped_total",
    ] {
        assert!(
            matches!(
                sample(counter).first().map(|s| &s.value),
                Some(prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v))
                    if *v == 0.0
            ),
            "the transcript writer's {counter}: {text}"
        );
    }
}
