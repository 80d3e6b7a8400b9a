//! Protects what reaches the disk: the data directory is owner-only (0700), the SQLite database
//! and its WAL owner-only (0600), and after an erasure (by the user or an admin) the raw
//! database files no longer hold the account's e-mail, display name, resume text, password
//! hash or BYOK key ciphertext (secure_delete plus a WAL checkpoint).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use tests::{Backend, spawn_app_with};

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

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Who erases the account.
#[derive(Clone, Copy, Debug)]
enum Eraser {
    TheUser,
    AnAdmin,
}

/// Fills an account with personal data (profile, resume, a BYOK key), erases it as `eraser`
/// says, and checks that none of it (nor its password hash or key ciphertext) is left in the
/// raw database files.
async fn erase_and_scan(eraser: Eraser) {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let admin = match eraser {
        Eraser::AnAdmin => Some(app.signed_in_admin().await),
        Eraser::TheUser => None,
    };
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
    let resume = format!("Jane Doe\nBackend engineer\n{resume_word} in Rust and Go.\n");
    let response = app
        .upload_resume(&token, "cv.txt", "text/plain", resume.as_bytes())
        .await;
    assert_eq!(response.status(), 201);
    let response = app
        .call(
            Method::PUT,
            "/api/v1/settings/keys/anthropic",
            Some(&token),
            Some(&json!({"api_key": format!("sk-ant-{marker}-erase-me")})),
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    let account = entities::accounts::Entity::find()
        .filter(entities::accounts::Column::Email.eq(email.as_str()))
        .one(&app.db)
        .await
        .expect("query")
        .expect("the account");
    let ciphertext = entities::byok_keys::Entity::find()
        .filter(entities::byok_keys::Column::AccountId.eq(account.id))
        .one(&app.db)
        .await
        .expect("query")
        .expect("the key")
        .ciphertext;
    let dir = app.settings.data_dir.clone();
    let before = database_files(&dir);
    for (what, needle) in [
        ("e-mail", email.as_bytes()),
        ("password hash", account.password_hash.as_bytes()),
        ("key ciphertext", ciphertext.as_slice()),
    ] {
        assert!(
            before.iter().any(|(_, bytes)| contains(bytes, needle)),
            "the scan sees the {what} before erasure"
        );
    }
    let response = match (eraser, &admin) {
        (Eraser::TheUser, _) => {
            app.call(
                Method::DELETE,
                "/api/v1/me",
                Some(&token),
                Some(&json!({"password": password})),
            )
            .await
        }
        (Eraser::AnAdmin, Some(admin)) => {
            app.call(
                Method::DELETE,
                &format!("/api/v1/admin/users/{}", account.id),
                Some(&admin.access_token),
                None,
            )
            .await
        }
        (Eraser::AnAdmin, None) => unreachable!("an admin was signed in above"),
    };
    assert!(response.status().is_success(), "{}", response.status());
    for (file, bytes) in database_files(&dir) {
        for (what, needle) in [
            ("e-mail", email.as_bytes()),
            ("display name", display_name.as_bytes()),
            ("resume text", resume_word.as_bytes()),
            ("marker", marker.as_bytes()),
            ("password hash", account.password_hash.as_bytes()),
            ("key ciphertext", ciphertext.as_slice()),
        ] {
            assert!(
                !contains(&bytes, needle),
                "{eraser:?}: the {what} is still in {file}"
            );
        }
    }
}

#[actix_web::test]
async fn after_erasure_the_raw_sqlite_files_hold_none_of_the_accounts_data() {
    erase_and_scan(Eraser::TheUser).await;
}

#[actix_web::test]
async fn after_an_admin_erasure_the_raw_sqlite_files_hold_none_of_the_accounts_data() {
    erase_and_scan(Eraser::AnAdmin).await;
}
