//! Protects the resume promise: an upload (PDF, DOCX or text) is parsed in memory, only the
//! extracted text and a derived profile are stored, the file itself never touches the disk, bad
//! files get clear 4xx errors, and the profile can be rectified and deleted.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Backend, TestApp, assert_json_error, db_tests, spawn_app, spawn_app_with};

db_tests!(
    text_resume_is_parsed_and_a_profile_derived,
    pdf_resume_is_parsed_in_memory_and_never_written_to_disk,
    bad_files_get_clear_errors,
    oversized_uploads_are_413,
    profile_can_be_rectified_and_the_resume_deleted,
);

const RESUME_TEXT: &str = "Jane Doe\nSenior Backend Engineer\n\nSummary\nBackend engineer with 8 years of experience building payment systems in Rust and Go.\n\nExperience\nAcme Pay, Senior Engineer, 2019 - present\nBuilt a ledger service in Rust on PostgreSQL and Kafka.\n";

/// A multipart/form-data body with one file field.
async fn upload(
    app: &TestApp,
    token: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> reqwest::Response {
    app.upload_resume(token, filename, content_type, bytes)
        .await
}

/// A minimal one-page PDF showing `lines`, with `comment` in a PDF comment (never extracted).
fn minimal_pdf(lines: &[&str], comment: &str, encrypted: bool) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td ");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            content.push_str("0 -16 Td ");
        }
        content.push_str(&format!(
            "({}) Tj ",
            line.replace('(', "\\(").replace(')', "\\)")
        ));
    }
    content.push_str("ET");
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
    ];
    if encrypted {
        objects.push("<< /Filter /Standard /V 1 /R 2 /O (xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx) /U (xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx) /P -4 >>".to_owned());
    }
    let mut pdf = format!("%PDF-1.4\n%{comment}\n").into_bytes();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    let encrypt = if encrypted {
        format!(" /Encrypt {} 0 R /ID [<00> <00>]", objects.len())
    } else {
        String::new()
    };
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R{encrypt} >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

async fn text_resume_is_parsed_and_a_profile_derived(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let response = upload(
        &app,
        &session.access_token,
        "cv.txt",
        "text/plain",
        RESUME_TEXT.as_bytes(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["source_kind"], "text");
    assert!(
        body["extracted_text"]
            .as_str()
            .expect("text")
            .contains("ledger service in Rust")
    );
    let skills: Vec<&str> = body["profile"]["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for skill in ["Rust", "Go", "PostgreSQL", "Kafka"] {
        assert!(skills.contains(&skill), "{skill} in {skills:?}");
    }
    assert_eq!(body["profile"]["years_experience"], 8);
    let stored: Value = app
        .get_as("/api/v1/resume", &session.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(stored["profile"], body["profile"]);
    // A second upload replaces the first.
    let response = upload(
        &app,
        &session.access_token,
        "cv2.txt",
        "text/plain",
        b"Staff Data Engineer. Python and Spark for 12 years.",
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(app.count_rows("resume_profiles").await, 1);
}

/// Every file under `dir` (bounded depth) modified at or after `since` whose bytes contain
/// `needle`. Only files written during the test can hold a marker made for it, so older files
/// are skipped unread: the scan stays quick however large the shared temp dir is.
fn files_containing(
    dir: &std::path::Path,
    needle: &[u8],
    depth: u32,
    since: std::time::SystemTime,
    found: &mut Vec<std::path::PathBuf>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            if depth > 0 {
                files_containing(&path, needle, depth - 1, since, found);
            }
        } else if meta.is_file()
            && meta.modified().is_ok_and(|modified| modified >= since)
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path);
        }
    }
}

async fn pdf_resume_is_parsed_in_memory_and_never_written_to_disk(backend: Backend) {
    // Filesystem times can be coarser than the clock: start the window a little early.
    let started = std::time::SystemTime::now() - Duration::from_secs(2);
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let marker = format!("FILE-ONLY-MARKER-{}", uuid::Uuid::new_v4().simple());
    let pdf = minimal_pdf(
        &[
            "Principal Software Engineer",
            "Kubernetes and Terraform on AWS",
        ],
        &marker,
        false,
    );
    let response = upload(
        &app,
        &session.access_token,
        "cv.pdf",
        "application/pdf",
        &pdf,
    )
    .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["source_kind"], "pdf");
    let text = body["extracted_text"].as_str().expect("text");
    assert!(text.contains("Kubernetes and Terraform on AWS"), "{text}");
    assert!(!text.contains(&marker), "the comment is not text");
    // Nor the database (asked before the disk scan, so no pooled connection idles through it).
    let export = app
        .get_as("/api/v1/privacy/export", &session.access_token)
        .await
        .text()
        .await
        .expect("body");
    assert!(!export.contains(&marker));
    // The marker exists only in the uploaded bytes: no file on disk may contain it.
    let mut found = Vec::new();
    files_containing(
        &std::env::temp_dir(),
        marker.as_bytes(),
        4,
        started,
        &mut found,
    );
    files_containing(
        &app.settings.data_dir,
        marker.as_bytes(),
        4,
        started,
        &mut found,
    );
    assert!(found.is_empty(), "the upload reached the disk: {found:?}");
}

async fn bad_files_get_clear_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let token = session.access_token.as_str();
    let png = [
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    assert_json_error(upload(&app, token, "me.png", "image/png", &png).await, 415).await;
    let encrypted = minimal_pdf(&["Secret resume"], "x", true);
    let code = assert_json_error(
        upload(&app, token, "cv.pdf", "application/pdf", &encrypted).await,
        422,
    )
    .await;
    assert_eq!(code, "validation_failed");
    let mut corrupt = minimal_pdf(&["Engineer"], "x", false);
    corrupt.truncate(60);
    assert_json_error(
        upload(&app, token, "cv.pdf", "application/pdf", &corrupt).await,
        422,
    )
    .await;
    assert_json_error(upload(&app, token, "cv.txt", "text/plain", b"").await, 422).await;
    // No `file` field, and not multipart at all.
    let (header, body) =
        tests::multipart_file("document", "cv.txt", "text/plain", RESUME_TEXT.as_bytes());
    let response = app
        .client
        .post(app.url("/api/v1/resume"))
        .bearer_auth(token)
        .header("content-type", header)
        .body(body)
        .send()
        .await
        .expect("send");
    assert_json_error(response, 422).await;
    let response = app
        .call(
            Method::POST,
            "/api/v1/resume",
            Some(token),
            Some(&json!({"file": "x"})),
        )
        .await;
    let status = response.status().as_u16();
    assert!(status == 400 || status == 415, "{status}");
    assert_json_error(response, status).await;
    // Without a token.
    let (header, body) =
        tests::multipart_file("file", "cv.txt", "text/plain", RESUME_TEXT.as_bytes());
    let response = app
        .client
        .post(app.url("/api/v1/resume"))
        .header("content-type", header)
        .body(body)
        .send()
        .await
        .expect("send");
    assert_json_error(response, 401).await;
    assert_eq!(app.count_rows("resume_profiles").await, 0);
}

async fn oversized_uploads_are_413(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.resume_max_bytes = 2_000).await;
    let session = app.signed_in_user().await;
    let big = "Rust engineer. ".repeat(200);
    let response = upload(
        &app,
        &session.access_token,
        "cv.txt",
        "text/plain",
        big.as_bytes(),
    )
    .await;
    assert_eq!(assert_json_error(response, 413).await, "payload_too_large");
    assert_eq!(app.count_rows("resume_profiles").await, 0);
}

async fn profile_can_be_rectified_and_the_resume_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let token = Some(session.access_token.as_str());
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/resume",
            token,
            Some(&json!({"role": "x"})),
        )
        .await;
    assert_json_error(response, 404).await;
    upload(
        &app,
        &session.access_token,
        "cv.txt",
        "text/plain",
        RESUME_TEXT.as_bytes(),
    )
    .await;
    let patch = json!({"role": "Engineering Manager", "skills": ["Leadership", "Rust"], "years_experience": 9});
    let response = app
        .call(Method::PATCH, "/api/v1/resume", token, Some(&patch))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["profile"]["role"], "Engineering Manager");
    assert_eq!(body["profile"]["skills"], json!(["Leadership", "Rust"]));
    assert_eq!(body["profile"]["years_experience"], 9);
    for bad in [
        json!({"years_experience": 500}),
        json!({"skills": vec!["x"; 101]}),
        json!({"text": "new"}),
    ] {
        let response = app
            .call(Method::PATCH, "/api/v1/resume", token, Some(&bad))
            .await;
        assert_json_error(response, 422).await;
    }
    let response = app
        .call(Method::DELETE, "/api/v1/resume", token, None)
        .await;
    assert_eq!(response.status(), 204);
    assert_json_error(
        app.get_as("/api/v1/resume", &session.access_token).await,
        404,
    )
    .await;
    assert_eq!(app.count_rows("resume_profiles").await, 0);
}

/// The fake Anthropic on loopback, replying `reply` to every request.
async fn fake_claude(reply: &str) -> fakes::FakeAnthropic {
    let config = fakes::AnthropicConfig {
        replies: vec![reply.to_owned()],
        time_to_message_start: std::time::Duration::from_millis(5),
        time_to_first_text: std::time::Duration::from_millis(5),
        inter_delta: std::time::Duration::from_millis(1),
        ..fakes::AnthropicConfig::default()
    };
    fakes::FakeAnthropic::start(config)
        .await
        .expect("fake starts")
}

async fn claude_app(backend: Backend, claude: &fakes::FakeAnthropic) -> TestApp {
    let base_url = claude.base_url();
    spawn_app_with(backend, move |settings| {
        settings.anthropic_api_key = Some(secrecy::SecretString::from(
            "sk-ant-test-platform-key".to_owned(),
        ));
        settings.anthropic_base_url = base_url;
    })
    .await
}

db_tests!(
    profile_is_derived_by_claude_when_a_key_is_configured,
    an_unusable_model_reply_falls_back_to_the_local_extractor,
);

async fn profile_is_derived_by_claude_when_a_key_is_configured(backend: Backend) {
    let claude = fake_claude(
        "Here is the profile:\n```json\n{\"role\": \"Staff Payments Engineer\", \"skills\": [\"Rust\", \"Ledgers\"], \"experience_summary\": \"Builds payment systems.\", \"years_experience\": 8}\n```",
    )
    .await;
    let app = claude_app(backend, &claude).await;
    let session = app.signed_in_user().await;
    let response = upload(
        &app,
        &session.access_token,
        "cv.txt",
        "text/plain",
        RESUME_TEXT.as_bytes(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["profile"]["role"], "Staff Payments Engineer");
    assert_eq!(body["profile"]["skills"], json!(["Rust", "Ledgers"]));
    let requests = claude.requests();
    assert_eq!(requests.len(), 1, "one call to the model");
    assert!(
        requests[0]
            .body
            .to_string()
            .contains("ledger service in Rust"),
        "the resume text went to the model"
    );
}

async fn an_unusable_model_reply_falls_back_to_the_local_extractor(backend: Backend) {
    let claude = fake_claude("I cannot help with that.").await;
    let app = claude_app(backend, &claude).await;
    let session = app.signed_in_user().await;
    let response = upload(
        &app,
        &session.access_token,
        "cv.txt",
        "text/plain",
        RESUME_TEXT.as_bytes(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    let skills: Vec<&str> = body["profile"]["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        skills.contains(&"Kafka"),
        "the local extractor's profile: {skills:?}"
    );
    assert_eq!(claude.requests().len(), 1);
}
