//! Protects the promise that personal data never reaches the logs: passwords, e-mail addresses,
//! access and refresh tokens stay out of every log line, at the most verbose level, through
//! successful and failed sign-ins, bad input and errors.

use serde_json::json;
use tests::{Backend, assert_json_error, captured_logs, db_tests, refresh_cookie, spawn_app_with};

db_tests!(passwords_emails_and_tokens_never_reach_the_logs);

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
    assert_json_error(app.refresh(Some(&refresh)).await, 401).await; // reuse detection path
    assert_eq!(app.logout(Some(&rotated)).await.status(), 204);

    // Failed sign-ins up to the lockout.
    for _ in 0..3 {
        let _ = app.login(&email, &wrong_password).await;
    }

    let logs = captured_logs();
    assert!(
        logs.contains("request finished"),
        "the capture works and saw the requests"
    );
    assert!(
        logs.contains("account locked"),
        "the lockout path was logged"
    );
    for (what, secret) in [
        ("e-mail", email.as_str()),
        ("e-mail marker", marker.as_str()),
        ("password", password.as_str()),
        ("wrong password", wrong_password.as_str()),
        ("access token", access.as_str()),
        ("refresh token", refresh.as_str()),
        ("rotated refresh token", rotated.as_str()),
    ] {
        assert!(!logs.contains(secret), "the {what} reached the logs");
    }
}
