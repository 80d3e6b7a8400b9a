//! Protects the retention promises with a fake clock: word-level timestamps older than 14 days
//! and usage rows older than 90 days are deleted, in batches, and nothing younger is touched;
//! so are abuse-ledger hashes past their period, sign-up counts of days that are over, and
//! expired verification links.

mod support;

use chrono::{Duration, Utc};
use entities::{
    abuse_ledger, email_verifications, signup_ip_counts, transcript_segments, transcript_words,
    usage_log,
};
use sea_orm::ActiveValue::Set;
use sea_orm::{EntityTrait, PaginatorTrait};
use support::Harness;
use uuid::Uuid;

#[actix::test]
async fn the_sweeper_deletes_exactly_the_expired_rows() {
    let harness =
        Harness::start_with(&[], &["Hi."], |_, config| config.retention.batch_size = 7).await;
    let (account_id, interview_id) = harness.create_interview().await;
    let now = Utc::now();
    // The sweeper's own first sweep (at start) is over once this one returns.
    let _ = harness.engine.sweep_now(now).await;
    let segment_id = Uuid::now_v7();
    transcript_segments::Entity::insert(transcript_segments::ActiveModel {
        id: Set(segment_id),
        interview_id: Set(interview_id),
        seq: Set(0),
        speaker: Set(transcript_segments::Speaker::Candidate),
        text: Set("words".into()),
        start_ms: Set(0),
        end_ms: Set(1),
        interrupted: Set(false),
        created_at: Set(now),
    })
    .exec(&harness.db)
    .await
    .expect("segment");
    // 20 words at each of: 20 days, 14 days + 1 minute (expired), 13 days 23 h (kept), now.
    let ages = [
        Duration::days(20),
        Duration::days(14) + Duration::minutes(1),
        Duration::days(14) - Duration::hours(1),
        Duration::zero(),
    ];
    for age in ages {
        let rows = (0..20).map(|i| transcript_words::ActiveModel {
            id: Set(Uuid::now_v7()),
            segment_id: Set(segment_id),
            interview_id: Set(interview_id),
            word: Set(format!("w{i}")),
            start_ms: Set(i),
            end_ms: Set(i + 1),
            confidence: Set(0.9),
            created_at: Set(now - age),
        });
        transcript_words::Entity::insert_many(rows)
            .exec(&harness.db)
            .await
            .expect("words");
    }
    let usage_ages = [
        Duration::days(91),
        Duration::days(90) + Duration::minutes(1),
        Duration::days(89),
        Duration::zero(),
    ];
    for age in usage_ages {
        let rows = (0..10).map(|_| usage_log::ActiveModel {
            id: Set(Uuid::now_v7()),
            account_id: Set(Some(account_id)),
            interview_id: Set(Some(interview_id)),
            provider: Set("fake".into()),
            model: Set("m".into()),
            operation: Set("llm_stream".into()),
            key_source: Set("fake".into()),
            input_tokens: Set(1),
            output_tokens: Set(1),
            cache_read_tokens: Set(0),
            cache_creation_tokens: Set(0),
            audio_seconds: Set(0.0),
            characters: Set(0),
            latency_ms: Set(1.0),
            cost_micro_usd: Set(1),
            created_at: Set(now - age),
        });
        usage_log::Entity::insert_many(rows)
            .exec(&harness.db)
            .await
            .expect("usage");
    }
    // A sweep as of now: 40 words and 20 usage rows are past their retention.
    let report = harness
        .engine
        .sweep_now(now)
        .await
        .expect("sweep")
        .expect("lock taken");
    assert_eq!(report.transcript_words, 40);
    assert_eq!(report.usage_rows, 20);
    assert!(
        report.batches >= 40 / 7,
        "deleted in batches of 7: {report:?}"
    );
    assert_eq!(
        transcript_words::Entity::find()
            .count(&harness.db)
            .await
            .expect("count"),
        40
    );
    assert_eq!(
        usage_log::Entity::find()
            .count(&harness.db)
            .await
            .expect("count"),
        20
    );
    // The segment text itself stays (only word timestamps expire).
    assert_eq!(
        transcript_segments::Entity::find()
            .count(&harness.db)
            .await
            .expect("count"),
        1
    );
    // Two hours later the 13 d 23 h words have expired too; the usage rows have not.
    let later = harness
        .engine
        .sweep_now(now + Duration::hours(2))
        .await
        .expect("sweep")
        .expect("lock");
    assert_eq!((later.transcript_words, later.usage_rows), (20, 0));
    // Sweeping again finds nothing.
    let again = harness
        .engine
        .sweep_now(now + Duration::hours(2))
        .await
        .expect("sweep")
        .expect("lock");
    assert_eq!((again.transcript_words, again.usage_rows), (0, 0));
}

/// A node restarted more often than the sweep interval must still sweep: the first sweep runs
/// when the sweeper starts, not one interval later.
#[actix::test]
async fn the_first_sweep_runs_when_the_sweeper_starts() {
    use actix::Actor;
    let harness = Harness::start_with(&[], &["Hi."], |_, _| {}).await;
    let (account_id, interview_id) = harness.create_interview().await;
    let old = Utc::now() - Duration::days(120);
    let rows = (0..5).map(|_| usage_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(Some(account_id)),
        interview_id: Set(Some(interview_id)),
        provider: Set("fake".into()),
        model: Set("m".into()),
        operation: Set("llm_stream".into()),
        key_source: Set("fake".into()),
        input_tokens: Set(1),
        output_tokens: Set(1),
        cache_read_tokens: Set(0),
        cache_creation_tokens: Set(0),
        audio_seconds: Set(0.0),
        characters: Set(0),
        latency_ms: Set(1.0),
        cost_micro_usd: Set(1),
        created_at: Set(old),
    });
    usage_log::Entity::insert_many(rows)
        .exec(&harness.db)
        .await
        .expect("usage");
    let _sweeper = engine::actors::retention_sweeper::RetentionSweeper::new(
        harness.db.clone(),
        engine::retention::RetentionPolicy::default(),
        std::time::Duration::from_secs(3600),
    )
    .start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = usage_log::Entity::find()
            .count(&harness.db)
            .await
            .expect("count");
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} expired usage rows left 30 s after the sweeper started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[actix::test]
async fn ledger_hashes_day_counts_and_expired_links_go_exactly_when_their_time_is_over() {
    let harness = Harness::start_with(&[], &["Hi."], |_, config| {
        config.retention.batch_size = 3;
        config.retention.abuse_ledger = Duration::days(30);
    })
    .await;
    let (account_id, _) = harness.create_interview().await;
    let now = Utc::now();
    let _ = harness.engine.sweep_now(now).await;
    // 4 ledger rows each at: 31 days, 30 days + 1 minute (expired), 29 days, now.
    let mut n = 0u32;
    for age in [
        Duration::days(31),
        Duration::days(30) + Duration::minutes(1),
        Duration::days(29),
        Duration::zero(),
    ] {
        for _ in 0..4 {
            n += 1;
            abuse_ledger::Entity::insert(abuse_ledger::ActiveModel {
                mailbox_hash: Set(format!("{n:064x}")),
                recorded_at: Set(now - age),
            })
            .exec_without_returning(&harness.db)
            .await
            .expect("ledger row");
        }
    }
    // Sign-up counts of a day that began 25 hours ago (over) and 23 hours ago (still counting).
    for (hash, age) in [("a", 25), ("b", 23)] {
        signup_ip_counts::Entity::insert(signup_ip_counts::ActiveModel {
            ip_hash: Set(hash.repeat(64)),
            day_start: Set(now - Duration::hours(age)),
            signups: Set(2),
        })
        .exec_without_returning(&harness.db)
        .await
        .expect("count");
    }
    // One expired link, one still valid.
    for (hash, expires) in [("c", -1), ("d", 1)] {
        email_verifications::Entity::insert(email_verifications::ActiveModel {
            token_hash: Set(hash.repeat(64)),
            account_id: Set(account_id),
            created_at: Set(now - Duration::hours(23)),
            expires_at: Set(now + Duration::minutes(expires)),
            used_at: Set(None),
        })
        .exec_without_returning(&harness.db)
        .await
        .expect("link");
    }
    let report = harness
        .engine
        .sweep_now(now)
        .await
        .expect("sweep")
        .expect("lock");
    assert_eq!(
        (
            report.ledger_rows,
            report.signup_ip_rows,
            report.verification_links
        ),
        (8, 1, 1)
    );
    assert_eq!(report.rows(), 10);
    assert_eq!(
        abuse_ledger::Entity::find()
            .count(&harness.db)
            .await
            .expect("count"),
        8
    );
    assert_eq!(
        signup_ip_counts::Entity::find()
            .count(&harness.db)
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        email_verifications::Entity::find()
            .count(&harness.db)
            .await
            .expect("count"),
        1
    );
    // A day and a half later the 29-day rows have gone too, and the other day's count.
    let later = harness
        .engine
        .sweep_now(now + Duration::hours(36))
        .await
        .expect("sweep")
        .expect("lock");
    assert_eq!(
        (
            later.ledger_rows,
            later.signup_ip_rows,
            later.verification_links
        ),
        (4, 1, 1)
    );
}
