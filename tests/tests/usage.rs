//! Protects usage and cost reporting: an account sees only its own usage rows, summed per
//! interview and provider, with calls on its own keys marked as billed to it and local-mode calls
//! as billed to nobody; the admin report sums every account by day and provider with no account
//! ids, is audited, and validates its window. On SQLite and PostgreSQL (whose `SUM` types differ).

use chrono::{Duration, Utc};
use engine::{AccountId, InterviewId};
use entities::usage_log;
use reqwest::Method;
use sea_orm::ActiveValue::Set;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use tests::{Backend, Session, TestApp, assert_json_error, db_tests, spawn_app};
use uuid::Uuid;

db_tests!(
    an_account_sees_its_own_usage_per_interview_and_provider,
    the_admin_report_sums_every_account_by_day_and_provider,
);

async fn interview(app: &TestApp, session: &Session) -> InterviewId {
    let response = app
        .call(
            Method::POST,
            "/api/v1/interviews",
            Some(&session.access_token),
            Some(&json!({"kind": "behavioral"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().parse().unwrap()
}

/// One usage row as the meter writes it.
#[allow(clippy::too_many_arguments)]
fn row(
    account: AccountId,
    interview: Option<InterviewId>,
    provider: &str,
    key_source: &str,
    tokens: (i64, i64),
    audio_seconds: f64,
    characters: i64,
    latency_ms: f64,
    cost_micro_usd: i64,
    age: Duration,
) -> usage_log::ActiveModel {
    usage_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(Some(account)),
        interview_id: Set(interview),
        provider: Set(provider.into()),
        model: Set("m".into()),
        operation: Set("op".into()),
        key_source: Set(key_source.into()),
        input_tokens: Set(tokens.0),
        output_tokens: Set(tokens.1),
        cache_read_tokens: Set(0),
        cache_creation_tokens: Set(0),
        audio_seconds: Set(audio_seconds),
        characters: Set(characters),
        latency_ms: Set(latency_ms),
        cost_micro_usd: Set(cost_micro_usd),
        created_at: Set(Utc::now() - age),
    }
}

async fn an_account_sees_its_own_usage_per_interview_and_provider(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let bob = app.signed_in_user().await;
    let (alice_id, bob_id) = (app.account_id(&alice).await, app.account_id(&bob).await);
    let first = interview(&app, &alice).await;
    let second = interview(&app, &alice).await;
    let bobs = interview(&app, &bob).await;
    let now = Duration::zero();
    let rows = vec![
        row(
            alice_id,
            Some(first),
            "anthropic",
            "platform",
            (100, 20),
            0.0,
            0,
            300.0,
            1_000,
            now,
        ),
        row(
            alice_id,
            Some(first),
            "anthropic",
            "platform",
            (50, 10),
            0.0,
            0,
            100.0,
            500,
            now,
        ),
        row(
            alice_id,
            Some(first),
            "deepgram",
            "byok",
            (0, 0),
            60.0,
            0,
            0.0,
            7_700,
            now,
        ),
        row(
            alice_id,
            Some(second),
            "local",
            "fake",
            (0, 0),
            0.0,
            120,
            10.0,
            0,
            now,
        ),
        row(
            alice_id,
            None,
            "anthropic",
            "platform",
            (400, 80),
            0.0,
            0,
            900.0,
            800,
            now,
        ),
        row(
            bob_id,
            Some(bobs),
            "anthropic",
            "platform",
            (9_999, 9_999),
            0.0,
            0,
            1.0,
            99_999,
            now,
        ),
    ];
    usage_log::Entity::insert_many(rows)
        .exec(&app.state.db)
        .await
        .expect("usage rows");

    assert_json_error(app.get("/api/v1/usage").await, 401).await;
    let response = app.get_as("/api/v1/usage", &alice.access_token).await;
    assert_eq!(response.status(), 200);
    let usage: Value = response.json().await.unwrap();
    assert_eq!(usage["retention_days"], 90);
    let text = usage.to_string();
    assert!(
        !text.contains(&bobs.to_string()) && !text.contains("99999"),
        "{usage}"
    );
    assert_eq!(usage["totals"]["calls"], 5);
    assert_eq!(usage["totals"]["input_tokens"], 550);
    assert_eq!(usage["totals"]["cost_micro_usd"], 10_000);
    assert_eq!(
        usage["platform_cost_micro_usd"], 2_300,
        "the BYOK minute is not the platform's"
    );

    let interviews = usage["interviews"].as_array().expect("interviews");
    assert_eq!(
        interviews.len(),
        3,
        "two interviews and calls outside any: {usage}"
    );
    let of = |id: Option<InterviewId>| {
        interviews
            .iter()
            .find(|i| i["interview_id"] == json!(id))
            .unwrap_or_else(|| panic!("{id:?} in {usage}"))
    };
    let first_usage = of(Some(first));
    assert_eq!(first_usage["totals"]["calls"], 3);
    assert_eq!(first_usage["totals"]["cost_micro_usd"], 9_200);
    let providers = first_usage["providers"].as_array().unwrap();
    let claude = providers
        .iter()
        .find(|p| p["provider"] == "anthropic")
        .unwrap();
    assert_eq!(claude["calls"], 2);
    assert_eq!(claude["input_tokens"], 150);
    assert_eq!(claude["output_tokens"], 30);
    assert_eq!(claude["avg_latency_ms"], 200.0);
    assert_eq!(claude["billed_to"], "platform");
    let deepgram = providers
        .iter()
        .find(|p| p["provider"] == "deepgram")
        .unwrap();
    assert_eq!(deepgram["billed_to"], "your_own_key");
    assert_eq!(deepgram["audio_seconds"], 60.0);
    let local = &of(Some(second))["providers"][0];
    assert_eq!(local["billed_to"], "nobody");
    assert_eq!(local["characters"], 120);
    assert_eq!(of(None)["totals"]["input_tokens"], 400);

    // Bob sees only Bob's.
    let usage: Value = app
        .get_as("/api/v1/usage", &bob.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["totals"]["calls"], 1);
    assert_eq!(usage["interviews"][0]["interview_id"], json!(bobs));
}

async fn the_admin_report_sums_every_account_by_day_and_provider(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in_admin().await;
    let alice = app.signed_in_user().await;
    let bob = app.signed_in_user().await;
    let (alice_id, bob_id) = (app.account_id(&alice).await, app.account_id(&bob).await);
    let yesterday = Duration::days(1);
    let rows = vec![
        row(
            alice_id,
            None,
            "anthropic",
            "platform",
            (100, 10),
            0.0,
            0,
            100.0,
            1_000,
            Duration::zero(),
        ),
        row(
            bob_id,
            None,
            "anthropic",
            "platform",
            (200, 20),
            0.0,
            0,
            300.0,
            2_000,
            Duration::zero(),
        ),
        row(
            bob_id,
            None,
            "elevenlabs",
            "byok",
            (0, 0),
            0.0,
            500,
            50.0,
            25_000,
            Duration::zero(),
        ),
        row(
            alice_id,
            None,
            "anthropic",
            "platform",
            (1, 1),
            0.0,
            0,
            1.0,
            7,
            yesterday,
        ),
        // Outside a 7-day window.
        row(
            alice_id,
            None,
            "anthropic",
            "platform",
            (5, 5),
            0.0,
            0,
            1.0,
            5,
            Duration::days(20),
        ),
    ];
    usage_log::Entity::insert_many(rows)
        .exec(&app.state.db)
        .await
        .expect("usage rows");

    assert_json_error(
        app.get_as("/api/v1/admin/usage", &alice.access_token).await,
        403,
    )
    .await;
    for days in ["0", "91", "-3", "soon", "99999999999999999999"] {
        let response = app
            .get_as(
                &format!("/api/v1/admin/usage?days={days}"),
                &admin.access_token,
            )
            .await;
        assert!(
            [400, 422].contains(&response.status().as_u16()),
            "days={days}: {}",
            response.status()
        );
    }
    let response = app
        .get_as("/api/v1/admin/usage?days=7", &admin.access_token)
        .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    let text = report.to_string();
    assert!(
        !text.contains(&alice_id.to_string()) && !text.contains(&bob_id.to_string()),
        "no account ids: {report}"
    );
    assert_eq!(report["days"], 7);
    assert_eq!(
        report["totals"]["calls"], 4,
        "the 20-day-old row is outside: {report}"
    );
    let daily = report["daily"].as_array().unwrap();
    let today = Utc::now().date_naive().to_string();
    let day_before = (Utc::now() - yesterday).date_naive().to_string();
    assert_eq!(daily[0]["day"], today, "newest day first: {report}");
    let claude_today = daily
        .iter()
        .find(|d| d["day"] == today && d["provider"] == "anthropic")
        .expect("anthropic today");
    assert_eq!(claude_today["calls"], 2);
    assert_eq!(claude_today["input_tokens"], 300);
    assert_eq!(claude_today["cost_micro_usd"], 3_000);
    assert_eq!(claude_today["avg_latency_ms"], 200.0);
    let voice = daily
        .iter()
        .find(|d| d["provider"] == "elevenlabs")
        .expect("elevenlabs");
    assert_eq!(voice["key_source"], "byok");
    assert_eq!(voice["characters"], 500);
    assert!(
        daily
            .iter()
            .any(|d| d["day"] == day_before && d["cost_micro_usd"] == 7),
        "{report}"
    );
    // The view is audited (ids only).
    let audit: Value = app
        .get_as("/api/v1/admin/audit", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "usage.view"),
        "{audit}"
    );
}
