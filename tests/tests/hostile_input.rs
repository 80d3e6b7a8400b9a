//! Protects the server from hostile input outside uploads: out-of-range query numbers answer
//! 422 JSON instead of panicking a worker, an admin action and its audit row commit or fail
//! together, and slow clients (slow-loris heads, bodies that never finish) are cut off.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseBackend};
use tests::{Backend, assert_json_error, db_tests, spawn_app, spawn_app_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

db_tests!(
    admin_list_numbers_out_of_range_are_422_and_the_server_keeps_serving,
    an_erasure_whose_audit_row_cannot_be_written_is_rolled_back,
    a_request_body_that_never_finishes_is_cut_off,
    a_request_head_that_never_finishes_is_cut_off,
    answers_the_http_parser_writes_itself_have_json_bodies,
    sdp_errors_do_not_echo_the_offer,
    over_tls_every_answer_carries_hsts_and_plain_http_none,
);

/// Sends `prefix` and then nothing; returns what the server answered and when.
async fn stall_after(port: u16, prefix: &[u8]) -> (String, Duration) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(prefix).await.expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // Until the server closes the connection (or a generous bound, which fails the test).
    while let Ok(Ok(read)) =
        tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buffer)).await
    {
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// Sends `request` and reads the answer until the server closes the connection.
async fn answer_until_closed(port: u16, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads one answer with a `content-length` from a connection that stays open.
async fn read_one_answer(stream: &mut tokio::net::TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer")
            .expect("read");
        assert!(read > 0, "closed early: {answer:?}");
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|value| value.trim().parse::<usize>().ok())
                .expect("a content-length");
            if body.len() >= length {
                return text;
            }
        }
    }
}

/// A whole answer with status `status` and the JSON error body with `code`.
fn assert_json_answer(answer: &str, status: u16, code: &str) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status} ")),
        "answer: {answer:?}"
    );
    // Each header line with its CRLF.
    let head = format!("{}\r\n", head.to_ascii_lowercase());
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string());
}

/// actix-http answers what it cannot parse, heads with too many headers and heads too slow
/// itself, before any middleware: those answers carry the same JSON error body as the rest.
async fn answers_the_http_parser_writes_itself_have_json_bodies(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.request_header_timeout_secs = 2).await;
    let answer =
        answer_until_closed(app.port, b"GET /health HTTP/1.1\r\nHost localhost\r\n\r\n").await;
    assert_json_answer(&answer, 400, "bad_request");
    let many: String = (0..120).map(|i| format!("X-Header-{i}: {i}\r\n")).collect();
    let request = format!("GET /health HTTP/1.1\r\nHost: localhost\r\n{many}\r\n");
    let answer = answer_until_closed(app.port, request.as_bytes()).await;
    assert_json_answer(&answer, 431, "request_header_fields_too_large");
    let answer =
        answer_until_closed(app.port, b"GET /health HTTP/1.1\r\nHost: localhost\r\n").await;
    assert_json_answer(&answer, 408, "request_timeout");
    // The wrapper leaves every other answer alone, a keep-alive connection included.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    for _ in 0..2 {
        stream
            .write_all(b"GET /api/v1/no-such-route HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let answer = read_one_answer(&mut stream).await;
        assert_json_answer(&answer, 404, "not_found");
    }
    assert!(app.get("/health").await.status().is_success());
}

async fn a_request_body_that_never_finishes_is_cut_off(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.request_body_timeout_secs = 2).await;
    let (answer, took) = stall_after(
        app.port,
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"email\": ",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 4"), "answer: {answer:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // The server still serves others.
    assert!(app.get("/health").await.status().is_success());
}

async fn a_request_head_that_never_finishes_is_cut_off(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.request_header_timeout_secs = 2).await;
    let (answer, took) = stall_after(
        app.port,
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(app.get("/health").await.status().is_success());
}

async fn admin_list_numbers_out_of_range_are_422_and_the_server_keeps_serving(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in_admin().await;
    for list in ["/api/v1/admin/users", "/api/v1/admin/audit"] {
        for query in [
            "offset=9223372036854775808",
            "offset=18446744073709551615",
            "offset=99999999999999999999999",
            "offset=-1",
            "limit=18446744073709551616",
            "limit=abc",
            "offset=1000001",
        ] {
            let path = format!("{list}?{query}");
            let code = assert_json_error(app.get_as(&path, &admin.access_token).await, 422).await;
            assert_eq!(code, "validation_failed", "{path}");
        }
        let response = app
            .get_as(&format!("{list}?offset=1000000"), &admin.access_token)
            .await;
        assert_eq!(response.status(), 200, "{list} at the deepest offset");
    }
}

/// The audit row is part of the erasure: when it cannot be written (a trigger refuses it here),
/// the account must still exist, not be erased unaudited.
async fn an_erasure_whose_audit_row_cannot_be_written_is_rolled_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in_admin().await;
    let user = app.signed_in_user().await;
    let user_id = app.account_id(&user).await;
    let refuse = match app.db.get_database_backend() {
        DatabaseBackend::Postgres => vec![
            "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END; $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON admin_audit FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ],
        _ => vec![
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON admin_audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        ],
    };
    // DDL: as the schema's owner (the server's own role may only read and write rows).
    for statement in refuse {
        app.owner_db
            .execute_unprepared(statement)
            .await
            .expect("install the trigger");
    }
    let response = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/users/{user_id}"),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_json_error(response, 500).await;
    assert_eq!(
        app.me(&user.access_token).await.status(),
        200,
        "the account survived the failed, unaudited erasure"
    );
}

async fn sdp_errors_do_not_echo_the_offer(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.signed_in_user().await;
    let created: serde_json::Value = app
        .call(
            reqwest::Method::POST,
            "/api/v1/interviews",
            Some(&user.access_token),
            Some(&serde_json::json!({"kind": "behavioral"})),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("interview id").to_owned();
    let marker = format!("m{}", uuid::Uuid::new_v4().simple());
    for sdp in [
        format!("v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns={marker}\r\nbogus line {marker}\r\n"),
        marker.clone(),
        format!(
            "v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na={marker}\r\n"
        ),
    ] {
        let response = app
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/interviews/{id}/offer"),
                Some(&user.access_token),
                Some(&serde_json::json!({"type": "offer", "sdp": sdp})),
            )
            .await;
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        assert!((400..500).contains(&status), "{status}: {body}");
        assert!(!body.contains(&marker), "the offer was echoed: {body}");
        assert!(!body.contains("10.1.2.3"), "the offer was echoed: {body}");
    }
}

async fn over_tls_every_answer_carries_hsts_and_plain_http_none(backend: Backend) {
    let plain = spawn_app(backend.clone()).await;
    let response = plain.get("/health").await;
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none(),
        "no HSTS over plain HTTP"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let app = spawn_app_with(backend, |settings| {
        settings.tls_cert_path = Some(cert.clone());
        settings.tls_key_path = Some(key.clone());
    })
    .await;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    for path in ["/health", "/api/v1/me", "/no-such-route"] {
        let response = client
            .get(format!("https://localhost:{}{path}", app.port))
            .send()
            .await
            .expect("TLS request");
        let hsts = response
            .headers()
            .get("strict-transport-security")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        assert_eq!(
            hsts.as_deref(),
            Some("max-age=31536000; includeSubDomains"),
            "{path} ({})",
            response.status()
        );
    }
}
