//! Protects the usage log from one unwritable row: a record whose account or interview was erased
//! after it was made can never be stored (its foreign key fails); the meter drops and counts it
//! and keeps writing every other row, instead of retrying the whole batch forever.

mod support;

use std::time::Duration;

use actix::Actor;
use engine::actors::usage_meter::{Flush, Record, UsageMeter};
use engine::metering::{KeySource, UsageRecord};
use entities::usage_log;
use sea_orm::{EntityTrait, PaginatorTrait};
use support::Harness;
use uuid::Uuid;

fn record(account_id: Uuid, interview_id: Uuid, characters: i64) -> UsageRecord {
    UsageRecord {
        account_id: Some(account_id),
        interview_id: Some(interview_id),
        provider: "fake",
        model: "m".into(),
        operation: "tts_stream",
        key_source: KeySource::Fake,
        input_tokens: 0,
        output_tokens: 0,
        cache_read_tokens: 0,
        cache_creation_tokens: 0,
        audio_seconds: 0.0,
        characters,
        latency_ms: 1.0,
        cost_micro_usd: 0,
    }
}

#[actix::test]
async fn a_row_of_an_erased_account_is_dropped_and_never_blocks_later_rows() {
    let harness = Harness::start(&[], &["Hi."]).await;
    let (account_id, interview_id) = harness.create_interview().await;
    let meter = UsageMeter::new(harness.db.clone());
    let dropped = meter.dropped();
    let meter = meter.start();
    let (gone_account, gone_interview) = (Uuid::now_v7(), Uuid::now_v7());
    // One batch mixing rows that can be stored with rows of an account that no longer exists.
    for n in 0..6 {
        let row = if n % 3 == 1 {
            record(gone_account, gone_interview, n)
        } else {
            record(account_id, interview_id, n)
        };
        meter.do_send(Record(row));
    }
    let stored = || async {
        usage_log::Entity::find()
            .count(&harness.db)
            .await
            .expect("count")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stored().await < 4 || dropped.get() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the good rows of the batch were never written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dropped.get(), 2, "the erased rows are counted");
    // Later rows go through at once: nothing is left retrying.
    meter.do_send(Record(record(account_id, interview_id, 99)));
    let written = meter
        .send(Flush)
        .await
        .expect("meter alive")
        .expect("flush");
    assert_eq!(written, 1);
    assert_eq!(stored().await, 5);
    let mut characters: Vec<i64> = usage_log::Entity::find()
        .all(&harness.db)
        .await
        .expect("rows")
        .into_iter()
        .map(|row| row.characters)
        .collect();
    characters.sort_unstable();
    assert_eq!(characters, vec![0, 2, 3, 5, 99]);
}
