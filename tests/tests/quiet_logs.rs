//! Protects the meaning of a warning: a normal session (sign-up, an interview over WebRTC with
//! an answer and a reply, the end) logs no WARN or ERROR line from any target, ours or a
//! dependency's, so an operator who sees one knows something is wrong. Its own test binary, so
//! the captured log holds this session only.

use std::time::Duration;

use engine::transport::{OpusRate, ToneGenerator};
use serde_json::{Value, json};
use tests::{Backend, captured_logs, spawn_app};

#[actix_web::test]
async fn a_normal_interview_logs_no_warning_or_error() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.signed_in_user().await;
    let (id, session) = app
        .join_interview(&alice, &json!({"kind": "behavioral"}))
        .await;
    let mut outbound = session.outbound;
    let mut inbound = session.inbound;
    tokio::spawn(async move { while inbound.recv().await.is_some() {} });
    // The greeting plays; then 1.6 s of voiced tone (the answer), then silence for the reply.
    let mut tone = ToneGenerator::new(OpusRate::Hz48000, 180.0, 0.3);
    let silence = vec![0i16; tone.rate().frame_samples()];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for frame in 0..500 {
        tick.tick().await;
        let pcm = if (150..230).contains(&frame) {
            tone.next_frame()
        } else {
            silence.clone()
        };
        outbound
            .send_frame(&pcm, tone.rate())
            .expect("the call is up");
    }
    let detail: Value = app
        .get_as(&format!("/api/v1/interviews/{id}"), &alice.access_token)
        .await
        .json()
        .await
        .expect("json");
    let transcript = detail["transcript"].as_array().expect("transcript");
    assert!(
        transcript.iter().any(|s| s["speaker"] == "candidate"),
        "the answer was heard: {transcript:?}"
    );
    let response = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/interviews/{id}/end"),
            Some(&alice.access_token),
            None,
        )
        .await;
    assert!(response.status().is_success());
    session.control.close().await;
    // Until the interview is stored as ended (its actors stopped, the peer connection closed).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let detail: Value = app
            .get_as(&format!("/api/v1/interviews/{id}"), &alice.access_token)
            .await
            .json()
            .await
            .expect("json");
        if detail["interview"]["status"] == "ended" && app.state.engine.live().is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the interview ends");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let logs = captured_logs();
    let loud: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect();
    assert!(
        loud.is_empty(),
        "a normal session logged {} warning or error lines:\n{}",
        loud.len(),
        loud.join("\n")
    );
}
