//! Protects the BYOK promise during an interview: the user's own key is decrypted only for the
//! interview, used for the vendor calls (usage rows say `byok`), and never appears in any log
//! line, at the most verbose level of every crate.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use entities::usage_log;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use support::{Candidate, Harness};

fn buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

#[derive(Clone)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        buffer()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix::test]
async fn the_users_own_key_is_used_and_never_logged() {
    // Installed before the harness, so this capture (TRACE, every crate) is the subscriber.
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(|| Capture)
        .try_init()
        .expect("the only subscriber of this test binary");
    let harness = Harness::start(
        &["Yes, I did."],
        &["Hi! Did you prepare?", "Great, goodbye. [END]"],
    )
    .await;
    let marker = format!("SECRETMARK{}", uuid::Uuid::new_v4().simple());
    let anthropic = format!("sk-ant-api03-{marker}-a");
    let deepgram = format!("dg{marker}b");
    let elevenlabs = format!("xi{marker}c");
    let (id, mut run) = harness
        .start_interview_with_keys(
            Candidate::answers(1),
            &[
                ("anthropic", &anthropic),
                ("deepgram", &deepgram),
                ("elevenlabs", &elevenlabs),
            ],
        )
        .await;
    assert_eq!(run.wait_for_end(Duration::from_secs(60)).await, "completed");
    harness.engine.flush_usage().await.expect("flush");
    let usage = usage_log::Entity::find()
        .filter(usage_log::Column::InterviewId.eq(id))
        .all(&harness.db)
        .await
        .expect("usage");
    assert!(!usage.is_empty());
    assert!(
        usage.iter().all(|row| row.key_source == "byok"),
        "{usage:#?}"
    );
    let logs =
        String::from_utf8_lossy(&buffer().lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(
        logs.len() > 10_000,
        "TRACE logging captured the interview ({} bytes)",
        logs.len()
    );
    assert!(
        logs.contains("interview ending"),
        "the capture saw the interview"
    );
    assert!(!logs.contains(&marker), "a key reached the logs");
}
