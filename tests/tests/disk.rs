//! Protects what reaches the disk: the data directory is owner-only (0700), the SQLite database
//! and its WAL owner-only (0600), and after an erasure the raw database files no longer hold
//! the account's e-mail, display name or resume text (secure_delete plus a WAL checkpoint).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use reqwest::Method;
use serde_json::json;
use tests::{Backend, TestApp, spawn_app_with};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[actix_web::test]
async fn the_data_directory_is_0700_and_the_database_files_0600() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        // The embedded default: a database file the server creates in a directory it creates.
        settings.data_dir = settings.data_dir.join("fresh").join("data");
        settings.database_url = None;
    })
    .await;
    let data_dir = app.settings.data_dir.clone();
    // Something written, so the WAL exists.
    let _ = app.signed_in_user().await;
    assert_eq!(mode(&data_dir), 0o700, "data directory");
    let database = data_dir.join("interviewcraft.db");
    assert_eq!(mode(&database), 0o600, "database file");
    let wal = data_dir.join("interviewcraft.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "WAL file");
    }
    for secret in ["jwt_secret", "key_encryption_key"] {
        let path = data_dir.join(secret);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{secret}");
        }
    }
    // Not set by the test settings: generated on first start, owner-only.
    assert_eq!(
        mode(&data_dir.join("abuse_ledger_key")),
        0o600,
        "abuse_ledger_key"
    );
}

async fn upload_text_resume(app: &TestApp, token: &str, text: &str) {
    let boundary = format!("----ic{}", uuid::Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cv.txt\"\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(text.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = app
        .client
        .post(app.url("/api/v1/resume"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 201);
}

/// Every SQLite file of the test database (main file, WAL, shared memory), as raw bytes.
fn database_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("test.db"))
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap_or_default(),
            )
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[actix_web::test]
async fn after_erasure_the_raw_sqlite_files_hold_none_of_the_accounts_data() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let email = format!("erased.{marker}@example.com");
    let display_name = format!("Name{marker}");
    let resume_word = format!("Resumeword{marker}");
    let password = "correct-horse-battery";
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password, "age_confirmed": true, "display_name": display_name}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let login: serde_json::Value = app
        .login(&email, password)
        .await
        .json()
        .await
        .expect("json");
    let token = login["access_token"].as_str().expect("token").to_owned();
    upload_text_resume(
        &app,
        &token,
        &format!("Jane Doe\nBackend engineer\n{resume_word} in Rust and Go.\n"),
    )
    .await;
    let dir = app.settings.data_dir.clone();
    let before = database_files(&dir);
    assert!(
        before.iter().any(|(_, bytes)| contains(bytes, &email)),
        "the scan sees the data before erasure"
    );
    let response = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&token),
            Some(&json!({"password": password})),
        )
        .await;
    assert_eq!(response.status(), 200);
    for (file, bytes) in database_files(&dir) {
        for (what, needle) in [
            ("e-mail", email.as_str()),
            ("display name", display_name.as_str()),
            ("resume text", resume_word.as_str()),
            ("marker", marker.as_str()),
        ] {
            assert!(!contains(&bytes, needle), "the {what} is still in {file}");
        }
    }
}
