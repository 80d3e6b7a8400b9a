//! Protects the promise that personal data never reaches the logs: passwords, e-mail addresses,
//! access and refresh tokens, BYOK keys and resume text stay out of every log line, with every
//! target at TRACE, through successful and failed sign-ins, bad input and errors; and what
//! dependency crates print at DEBUG/TRACE (vendor frames with transcripts, raw PCM) is capped.

use serde_json::json;
use tests::{Backend, assert_json_error, captured_logs, db_tests, refresh_cookie, spawn_app_with};

db_tests!(passwords_emails_and_tokens_never_reach_the_logs);

/// Dependencies print frames at TRACE (tungstenite: whole WebSocket messages with transcripts;
/// WebRTC: RTP payloads). Emitted here under their targets, at every level below the cap, they
/// must not reach the log, while our own TRACE lines do.
#[actix_web::test]
async fn dependency_trace_output_with_audio_and_transcripts_never_reaches_the_logs() {
    let _app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let transcript = format!("my previous employer fired me {marker}");
    let pcm: Vec<u8> = (0..=255u8).cycle().skip(7).take(960).collect();
    let pcm_debug = format!("{:?}", &pcm[..48]);
    tracing::trace!(target: "tungstenite::protocol", "received frame: Text({transcript:?})");
    tracing::debug!(target: "tokio_tungstenite", "message {transcript}");
    tracing::info!(target: "webrtc::track", "rtp payload {pcm:?}");
    tracing::trace!(target: "rtc_srtp::session", "decrypted {pcm:?}");
    tracing::debug!(target: "reqwest::connect", "body {transcript}");
    let canary = format!("own-trace-canary-{marker}");
    tracing::trace!(target: "api::telemetry", "{canary}");
    let logs = captured_logs();
    assert!(logs.contains(&canary), "our own TRACE lines are captured");
    assert!(!logs.contains(&transcript), "a transcript reached the logs");
    assert!(!logs.contains(&pcm_debug), "audio bytes reached the logs");
    assert!(
        !logs
            .lines()
            .any(|line| line.contains(&marker) && !line.contains(&canary)),
        "a dependency's line with the marker reached the logs"
    );
}

async fn passwords_emails_and_tokens_never_reach_the_logs(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.login_max_failures = 2).await;
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let email = format!("private.person.{marker}@example.com");
    let password = format!("Secret-Pass-{marker}");
    let wrong_password = format!("Wrong-Pass-{marker}");

    assert_eq!(app.register(&email, &password).await.status(), 201);
    // Duplicate registration, bad JSON and wrong types carrying the secrets.
    assert_json_error(app.register(&email, &password).await, 409).await;
    let garbled = format!("{{\"email\": \"{email}\", \"password\": \"{password}\"");
    let response = app
        .post_raw(
            "/api/v1/auth/login",
            "application/json",
            garbled.into_bytes(),
        )
        .await;
    assert_json_error(response, 400).await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": [password], "age_confirmed": true}),
        )
        .await;
    assert_json_error(response, 422).await;

    // A successful sign-in, refresh, profile read and sign-out.
    let response = app.login(&email, &password).await;
    assert_eq!(response.status(), 200);
    let refresh = refresh_cookie(response.headers()).expect("cookie").value;
    let body: serde_json::Value = response.json().await.expect("json");
    let access = body["access_token"].as_str().expect("token").to_owned();
    assert_eq!(app.me(&access).await.status(), 200);
    let response = app.refresh(Some(&refresh)).await;
    let rotated = refresh_cookie(response.headers()).expect("rotated").value;
    assert_eq!(app.logout(Some(&rotated)).await.status(), 204);
    // The reuse detection path: the exchanged token again, its family revoked by the sign-out.
    assert_json_error(app.refresh(Some(&refresh)).await, 401).await;

    // Failed sign-ins up to the lockout.
    for _ in 0..3 {
        let _ = app.login(&email, &wrong_password).await;
    }

    // A BYOK key and a resume, on another account.
    let other = app.signed_in_user().await;
    let byok_key = format!("sk-ant-api03-{marker}-QWER");
    let response = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/settings/keys/anthropic",
            Some(&other.access_token),
            Some(&json!({"api_key": byok_key})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let resume_word = format!("Resumeword{marker}");
    let boundary = format!("----ic{marker}");
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cv.txt\"\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(
        format!("Jane Doe\nBackend engineer\n{resume_word} in Rust.\n").as_bytes(),
    );
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = app
        .client
        .post(app.url("/api/v1/resume"))
        .bearer_auth(&other.access_token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 201);

    let logs = captured_logs();
    assert!(
        logs.contains("request finished"),
        "the capture works and saw the requests"
    );
    assert!(
        logs.contains("too many wrong passwords from one client"),
        "the wait after repeated wrong passwords was logged"
    );
    for (what, secret) in [
        ("e-mail", email.as_str()),
        ("e-mail marker", marker.as_str()),
        ("password", password.as_str()),
        ("wrong password", wrong_password.as_str()),
        ("access token", access.as_str()),
        ("refresh token", refresh.as_str()),
        ("rotated refresh token", rotated.as_str()),
        ("BYOK key", byok_key.as_str()),
        ("resume text", resume_word.as_str()),
        ("other access token", other.access_token.as_str()),
    ] {
        assert!(!logs.contains(secret), "the {what} reached the logs");
    }
}
