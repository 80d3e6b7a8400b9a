//! Protects the server from hostile resume uploads: decompression bombs, CPU bombs, deep
//! nesting, huge page trees and zip bombs are refused with 422 `resume_too_complex` (or another
//! 4xx) within seconds, the server's own memory stays under a stated cap, and it keeps serving.
//! The bombs are built here, in code.
//!
//! The server runs inside this test process, so its peak resident memory is this process's
//! `VmHWM`. Only hostile-upload tests live in this binary, so nothing else inflates it.

use std::io::Write;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::ZlibEncoder;
use serde_json::Value;
use tests::{Backend, TestApp, db_tests, spawn_app_with};

db_tests!(
    an_object_stream_bomb_is_refused_within_the_memory_cap,
    a_content_stream_cpu_bomb_is_refused_quickly,
    deeply_nested_arrays_and_dictionaries_are_refused,
    a_huge_page_tree_is_refused_as_too_complex,
    a_docx_zip_bomb_is_refused_as_too_complex,
    a_worker_over_its_cpu_time_is_stopped,
    a_worker_past_its_wall_clock_deadline_is_killed,
    one_account_has_one_extraction_in_flight,
    the_node_runs_a_bounded_number_of_workers_at_a_lower_priority,
);

/// The most resident memory the server (this test process) may ever reach. The bombs below
/// would take several GiB if parsed in process.
const SERVER_MEMORY_CAP_BYTES: u64 = 768 * 1024 * 1024;
/// How long a refusal may take on a loaded 2-core machine (the worker deadline is 8 s).
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

const RESUME_TEXT: &str = "Jane Doe\nSenior Backend Engineer\nRust, PostgreSQL, Kafka.\n";

async fn hostile_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |settings| {
        // Low enough that the memory cap, not the CPU cap, stops the object-stream bomb.
        settings.resume_worker_memory_bytes = 128 * 1024 * 1024;
        settings.resume_worker_cpu_secs = 5;
        settings.resume_worker_timeout_secs = 8;
    })
    .await
}

/// Uploads `bytes` and returns the status, the error code (if any) and how long it took.
async fn upload(
    app: &TestApp,
    token: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (u16, Option<String>, Duration) {
    let started = Instant::now();
    let response = app
        .upload_resume(token, filename, content_type, bytes)
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().map(str::to_owned);
    (status, code, started.elapsed())
}

/// Peak resident memory of this process (the server's), from `/proc/self/status`.
fn peak_resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

/// Uploads a bomb and checks the refusal: `expected` codes, in time, memory under the cap, and
/// the server still healthy and able to read a normal resume for the same account.
async fn assert_refused(
    app: &TestApp,
    filename: &str,
    content_type: &str,
    bomb: &[u8],
    expected: &[&str],
) {
    let session = app.signed_in_user().await;
    let token = session.access_token.as_str();
    let (status, code, took) = upload(app, token, filename, content_type, bomb).await;
    assert_eq!(status, 422, "code {code:?}");
    let code = code.expect("a JSON error body");
    assert!(expected.contains(&code.as_str()), "unexpected code {code}");
    assert!(took < ANSWER_WITHIN, "the refusal took {took:?}");
    let peak = peak_resident_bytes();
    assert!(
        peak < SERVER_MEMORY_CAP_BYTES,
        "the server reached {} MiB of resident memory",
        peak / (1024 * 1024)
    );
    let health = app.get("/health").await;
    assert!(health.status().is_success(), "{}", health.status());
    let (status, code, _) =
        upload(app, token, "cv.txt", "text/plain", RESUME_TEXT.as_bytes()).await;
    assert_eq!(status, 201, "a normal resume after the bomb: {code:?}");
}

// ---------------------------------------------------------------------------------------------
// PDF construction

fn zlib(chunks: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    for chunk in chunks {
        encoder.write_all(&chunk).expect("in memory");
    }
    encoder.finish().expect("in memory")
}

/// `count` copies of `unit`, in chunks of at most a MiB (never the whole expansion at once).
fn repeated(unit: &str, count: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    let per_chunk = (1024 * 1024 / unit.len()).max(1);
    (0..count.div_ceil(per_chunk)).map(move |chunk| {
        let n = per_chunk.min(count - chunk * per_chunk);
        unit.repeat(n).into_bytes()
    })
}

fn stream_object(dictionary: &str, data: &[u8]) -> Vec<u8> {
    let mut object = format!("<< /Length {} {dictionary} >>\nstream\n", data.len()).into_bytes();
    object.extend_from_slice(data);
    object.extend_from_slice(b"\nendstream");
    object
}

/// A PDF with a correct cross-reference table; object `n` is `objects[n - 1]`, the catalog is 1.
fn pdf(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (index, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Objects 1-5: catalog, page tree, one page showing a line of text, its content, its font.
fn base_objects(kids: &str, count: usize) -> Vec<Vec<u8>> {
    let content = b"BT /F1 12 Tf 72 720 Td (Jane Doe, Backend Engineer) Tj ET";
    vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!("<< /Type /Pages /Kids [{kids}] /Count {count} >>").into_bytes(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
        stream_object("", content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ]
}

/// Object streams that each inflate to ~7.5 MB (under the per-stream limit) holding one array
/// of ~3.9 million integers; parsed, every stream costs hundreds of MB.
fn object_stream_bomb() -> Vec<u8> {
    let mut objects = base_objects("3 0 R", 1);
    for stream in 0..6 {
        let header = format!("{} 0 ", 1000 + stream);
        let body = std::iter::once(format!("{header}[").into_bytes())
            .chain(repeated("0 ", 3_900_000))
            .chain(std::iter::once(b"]".to_vec()));
        let data = zlib(body);
        objects.push(stream_object(
            &format!(
                "/Type /ObjStm /N 1 /First {} /Filter /FlateDecode",
                header.len()
            ),
            &data,
        ));
    }
    pdf(&objects)
}

/// One compressed content stream of a million text moves, shown by 50 pages.
fn content_stream_bomb() -> Vec<u8> {
    let kids: Vec<String> = (0..50).map(|page| format!("{} 0 R", 7 + page)).collect();
    let mut objects = base_objects(&kids.join(" "), kids.len());
    objects.push(stream_object(
        "/Filter /FlateDecode",
        &zlib(repeated("0 0 Td\n", 1_100_000)),
    ));
    objects.push(b"<< >>".to_vec());
    for _ in 0..50 {
        objects.push(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
                .to_vec(),
        );
    }
    pdf(&objects)
}

/// Arrays and dictionaries nested 100 000 deep, in the body and in the page's content.
fn nesting_bomb() -> Vec<u8> {
    let depth = 100_000;
    let mut objects = base_objects("3 0 R", 1);
    objects[3] = stream_object(
        "/Filter /FlateDecode",
        &zlib(
            repeated("[", depth)
                .chain(repeated("]", depth))
                .chain(repeated("<< /A ", depth))
                .chain(repeated(">> ", depth))
                .chain(std::iter::once(b" Tj".to_vec())),
        ),
    );
    objects.push(format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes());
    objects.push(format!("{}1{}", "<< /A ".repeat(depth), " >>".repeat(depth)).into_bytes());
    pdf(&objects)
}

/// A page tree listing 60 000 distinct pages, the pages packed in one compressed object stream.
fn page_tree_bomb() -> Vec<u8> {
    let pages = 60_000usize;
    let first_page = 10usize;
    let kids: Vec<String> = (0..pages)
        .map(|page| format!("{} 0 R", first_page + page))
        .collect();
    let mut objects = base_objects(&kids.join(" "), pages);
    let page = "<< /Type /Page /Parent 2 0 R >>\n";
    let mut header = String::new();
    for index in 0..pages {
        header.push_str(&format!("{} {} ", first_page + index, index * page.len()));
    }
    let data = zlib(std::iter::once(header.clone().into_bytes()).chain(repeated(page, pages)));
    objects.push(stream_object(
        &format!(
            "/Type /ObjStm /N {pages} /First {} /Filter /FlateDecode",
            header.len()
        ),
        &data,
    ));
    pdf(&objects)
}

/// A DOCX whose `word/document.xml` inflates to 200 MB of empty paragraphs.
fn docx_zip_bomb() -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9));
    writer
        .start_file("[Content_Types].xml", options)
        .expect("zip entry");
    writer
        .write_all(b"<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>")
        .expect("in memory");
    writer
        .start_file("word/document.xml", options)
        .expect("zip entry");
    writer
        .write_all(b"<?xml version=\"1.0\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>")
        .expect("in memory");
    for chunk in repeated("<w:p/>", 200 * 1024 * 1024 / 6) {
        writer.write_all(&chunk).expect("in memory");
    }
    writer
        .write_all(b"</w:body></w:document>")
        .expect("in memory");
    writer.finish().expect("in memory").into_inner()
}

// ---------------------------------------------------------------------------------------------
// Tests

async fn an_object_stream_bomb_is_refused_within_the_memory_cap(backend: Backend) {
    let bomb = object_stream_bomb();
    assert!(bomb.len() < 256 * 1024, "{} bytes", bomb.len());
    let app = hostile_app(backend).await;
    assert_refused(
        &app,
        "cv.pdf",
        "application/pdf",
        &bomb,
        &["resume_too_complex"],
    )
    .await;
}

async fn a_content_stream_cpu_bomb_is_refused_quickly(backend: Backend) {
    let bomb = content_stream_bomb();
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let app = hostile_app(backend).await;
    assert_refused(
        &app,
        "cv.pdf",
        "application/pdf",
        &bomb,
        &["resume_too_complex"],
    )
    .await;
}

async fn deeply_nested_arrays_and_dictionaries_are_refused(backend: Backend) {
    let app = hostile_app(backend).await;
    // A damaged structure or a limit: either is a 422, neither may hurt the server.
    assert_refused(
        &app,
        "cv.pdf",
        "application/pdf",
        &nesting_bomb(),
        &["resume_too_complex", "validation_failed"],
    )
    .await;
}

async fn a_huge_page_tree_is_refused_as_too_complex(backend: Backend) {
    let bomb = page_tree_bomb();
    let app = hostile_app(backend).await;
    assert_refused(
        &app,
        "cv.pdf",
        "application/pdf",
        &bomb,
        &["resume_too_complex"],
    )
    .await;
}

async fn a_docx_zip_bomb_is_refused_as_too_complex(backend: Backend) {
    let bomb = docx_zip_bomb();
    assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
    let app = hostile_app(backend).await;
    assert_refused(
        &app,
        "cv.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        &bomb,
        &["resume_too_complex"],
    )
    .await;
}

/// The CPU cap does not rely on the worker's cooperation: a worker that spins forever (here a
/// shell loop) is stopped by its CPU-time limit long before the generous wall-clock deadline.
async fn a_worker_over_its_cpu_time_is_stopped(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.resume_worker_path = Some("/bin/sh".into());
        settings.resume_worker_args = vec!["-c".into(), "while :; do :; done".into()];
        settings.resume_worker_cpu_secs = 1;
        settings.resume_worker_timeout_secs = 120;
    })
    .await;
    let session = app.signed_in_user().await;
    let (status, code, took) = upload(
        &app,
        &session.access_token,
        "cv.txt",
        "text/plain",
        RESUME_TEXT.as_bytes(),
    )
    .await;
    assert_eq!((status, code.as_deref()), (422, Some("resume_too_complex")));
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

async fn a_worker_past_its_wall_clock_deadline_is_killed(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.resume_worker_path = Some("/bin/sleep".into());
        settings.resume_worker_args = vec!["600".into()];
        settings.resume_worker_timeout_secs = 2;
    })
    .await;
    let session = app.signed_in_user().await;
    let (status, code, took) = upload(
        &app,
        &session.access_token,
        "cv.txt",
        "text/plain",
        RESUME_TEXT.as_bytes(),
    )
    .await;
    assert_eq!((status, code.as_deref()), (422, Some("resume_too_complex")));
    assert!(took < ANSWER_WITHIN, "took {took:?}");
}

/// Two uploads of one account at once: one is read (here: runs into the deadline), the other is
/// refused with 429 at once; another account is not affected.
async fn one_account_has_one_extraction_in_flight(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.resume_worker_path = Some("/bin/sleep".into());
        settings.resume_worker_args = vec!["600".into()];
        settings.resume_worker_timeout_secs = 4;
        settings.resume_worker_concurrency = 4;
    })
    .await;
    let first = app.signed_in_user().await;
    let second = app.signed_in_user().await;
    let text = RESUME_TEXT.as_bytes();
    let (a, b, other) = tokio::join!(
        upload(&app, &first.access_token, "cv.txt", "text/plain", text),
        upload(&app, &first.access_token, "cv.txt", "text/plain", text),
        upload(&app, &second.access_token, "cv.txt", "text/plain", text),
    );
    let mut same_account = [
        (a.0, a.1.unwrap_or_default()),
        (b.0, b.1.unwrap_or_default()),
    ];
    same_account.sort();
    assert_eq!(
        same_account,
        [
            (422, "resume_too_complex".to_owned()),
            (429, "resume_upload_in_progress".to_owned())
        ]
    );
    assert_eq!(
        (other.0, other.1.as_deref()),
        (422, Some("resume_too_complex"))
    );
}

/// The nice values of the `/bin/sleep` workers this process started (their parent is us).
fn sleeping_workers_nice() -> Vec<i64> {
    let me = std::process::id().to_string();
    let mut nice = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("procfs").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ... : fields after the command name, which may hold spaces.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if head.ends_with("(sleep") && fields.get(1) == Some(&me.as_str()) {
            // Field 19 of the whole line (nice) is index 16 after the state field.
            if let Some(value) = fields.get(16).and_then(|v| v.parse().ok()) {
                nice.push(value);
            }
        }
    }
    nice
}

/// With every worker busy, an upload waits at most `RESUME_WORKER_QUEUE_SECS` and is refused
/// with 503, whoever else it belongs to; workers run below the server's priority, so hostile
/// uploads leave the cores to live interviews first.
async fn the_node_runs_a_bounded_number_of_workers_at_a_lower_priority(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.resume_worker_path = Some("/bin/sleep".into());
        settings.resume_worker_args = vec!["600".into()];
        settings.resume_worker_concurrency = 1;
        settings.resume_worker_queue_secs = 1;
        settings.resume_worker_timeout_secs = 10;
    })
    .await;
    let first = app.signed_in_user().await;
    let second = app.signed_in_user().await;
    let text = RESUME_TEXT.as_bytes();
    let watch_priority = async {
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let nice = sleeping_workers_nice();
            if !nice.is_empty() {
                return nice;
            }
            assert!(Instant::now() < deadline, "a worker started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (a, b, nice) = tokio::join!(
        upload(&app, &first.access_token, "cv.txt", "text/plain", text),
        upload(&app, &second.access_token, "cv.txt", "text/plain", text),
        watch_priority,
    );
    assert_eq!(nice, vec![i64::from(api::resume::worker::WORKER_NICENESS)]);
    let mut outcomes = [
        (a.0, a.1.unwrap_or_default()),
        (b.0, b.1.unwrap_or_default()),
    ];
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            (422, "resume_too_complex".to_owned()),
            (503, "unavailable".to_owned())
        ],
        "one ran into its deadline, the other found no free worker"
    );
    let refused = if a.0 == 503 { a.2 } else { b.2 };
    assert!(
        refused < Duration::from_secs(8),
        "the busy answer took {refused:?}"
    );
}
