//! Protects the usage log from one unwritable row: a record whose account or interview was erased
//! after it was made can never be stored (its foreign key fails); the meter drops and counts it
//! and keeps writing every other row, instead of retrying the whole batch forever. Each row is
//! priced by the model it used: a call the fallback model answered costs the fallback's prices.

mod support;

use std::time::Duration;

use actix::Actor;
use engine::actors::usage_meter::{Flush, Record, UsageMeter};
use std::collections::BTreeMap;

use engine::metering::{KeySource, LlmPrice, PriceTable, SttPrice, UsageRecord, micro_usd};
use engine::vendors::usage::{LlmUsage, TokenPrices};
use engine::{AccountId, InterviewId};
use entities::usage_log;
use fakes::{Fault, fault_key};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use support::{Candidate, Harness};

fn record(account_id: AccountId, interview_id: InterviewId, characters: i64) -> UsageRecord {
    UsageRecord {
        account_id: Some(account_id),
        interview_id: Some(interview_id),
        provider: engine::vendors::Vendor::Fake,
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
    let (gone_account, gone_interview) = (AccountId::now_v7(), InterviewId::now_v7());
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

fn llm_price(input_per_mtok: f64, output_per_mtok: f64) -> LlmPrice {
    LlmPrice {
        input_per_mtok,
        output_per_mtok,
        cache_write_5m_per_mtok: None,
        cache_write_1h_per_mtok: None,
        cache_read_per_mtok: None,
    }
}

/// What a row's tokens cost at `prices` (the client's own formula, rounded as rows are).
fn cost_at(row: &usage_log::Model, prices: &TokenPrices) -> i64 {
    let usage = LlmUsage {
        input_tokens: row.input_tokens as u64,
        output_tokens: row.output_tokens as u64,
        cache_read_input_tokens: row.cache_read_tokens as u64,
        cache_creation_input_tokens: row.cache_creation_tokens as u64,
        ..LlmUsage::default()
    };
    micro_usd(usage.cost_usd(prices))
}

#[actix::test]
async fn a_call_the_fallback_model_answered_is_priced_by_the_fallbacks_own_entry() {
    let primary = "claude-haiku-4-5";
    let fallback = "claude-sonnet-4-5";
    let harness = Harness::start_with(
        &["Yes."],
        // The fake serves replies in turn: the failed first request takes the first entry,
        // the fallback's the second, the primary's next reply the third.
        &[
            "Hi there, tell me about a project.",
            "Hi there, tell me about a project.",
            "Thanks, bye. [END]",
        ],
        |_, config| {
            config.prices = PriceTable {
                llm: BTreeMap::from([
                    (primary.to_owned(), llm_price(1.0, 5.0)),
                    // Far apart, so a row priced by the wrong entry cannot match.
                    (fallback.to_owned(), llm_price(30.0, 150.0)),
                ]),
                stt: BTreeMap::from([("nova-3".to_owned(), SttPrice { per_minute: 0.0077 })]),
                tts: BTreeMap::new(),
            };
            config.vendors.anthropic_fallback_model = Some(fallback.to_owned());
        },
    )
    .await;
    // The first reply fails before any text (overloaded): it is tried on the fallback model.
    let key = fault_key(
        "sk-ant-user-000000000000",
        &[Fault::MidStreamError { after: 0 }],
    );
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(1), &[("anthropic", &key)])
        .await;
    assert_eq!(run.wait_for_end(Duration::from_secs(60)).await, "completed");
    harness.engine.flush_usage().await.expect("flush");
    let rows = usage_log::Entity::find()
        .filter(usage_log::Column::InterviewId.eq(id))
        .filter(usage_log::Column::Operation.eq("llm_stream"))
        .all(&harness.db)
        .await
        .expect("usage");
    let table = PriceTable {
        llm: BTreeMap::from([
            (primary.to_owned(), llm_price(1.0, 5.0)),
            (fallback.to_owned(), llm_price(30.0, 150.0)),
        ]),
        ..PriceTable::default()
    };
    let by_fallback: Vec<_> = rows.iter().filter(|r| r.model == fallback).collect();
    assert!(!by_fallback.is_empty(), "the fallback answered: {rows:#?}");
    // The primary's failed first attempt is billed by the vendor, so it is metered too (a row
    // of its own), beside the primary's later reply.
    assert!(
        rows.iter().filter(|r| r.model == primary).count() >= 2,
        "the failed attempt and the primary's later reply: {rows:#?}"
    );
    for row in &rows {
        let own = table.llm_prices(&row.model).expect("a configured model");
        assert_eq!(row.cost_micro_usd, cost_at(row, &own), "{row:#?}");
    }
    let answered = by_fallback
        .iter()
        .find(|r| r.output_tokens > 0)
        .expect("the fallback's reply has output tokens");
    let at_primary = table.llm_prices(primary).expect("priced");
    assert!(
        answered.cost_micro_usd > cost_at(answered, &at_primary),
        "not priced at the primary's prices: {answered:#?}"
    );
}
