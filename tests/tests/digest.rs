//! The weekly digest (`api::digest`) against a loopback SMTP sink (`tests::smtp_sink`): what
//! the e-mail says, who gets one (opted-in accounts only, once per ISO week, none after opting
//! out), a failed send retried, and the server's own job.

use engine::AccountId;
use std::time::Duration;

use api::digest::{Mailer, run_once, week_of};
use chrono::{DateTime, Utc};
use entities::interviews::InterviewKind;
use entities::transcript_segments::Speaker;
use entities::{digest_marks, skill_levels};
use reqwest::Method;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, EntityTrait};
use serde_json::json;
use tests::smtp_sink::SmtpSink;
use tests::{Backend, Session, TestApp, db_tests, spawn_app, spawn_app_with};
use uuid::Uuid;

db_tests!(
    opted_in_accounts_get_one_digest_a_week_with_their_week_and_none_after_opting_out,
    a_failed_send_is_retried_at_the_next_run,
    two_runs_at_once_send_one_digest,
    the_server_sends_digests_itself_when_smtp_url_is_set,
);

fn mailer(app: &TestApp, url: String) -> Mailer {
    let mut settings = app.settings.clone();
    settings.smtp_url = Some(url.into());
    Mailer::from_settings(&settings)
        .expect("valid settings")
        .expect("a mailer with SMTP_URL")
}

async fn set_digest(app: &TestApp, session: &Session, on: bool) {
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/settings",
            Some(&session.access_token),
            Some(&json!({"digest_opt_in": on})),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

async fn skill(
    app: &TestApp,
    account_id: AccountId,
    name: &str,
    level: f64,
    best: f64,
    trend: &str,
) {
    let now = Utc::now();
    skill_levels::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        skill: Set(name.into()),
        level: Set(level),
        best_level: Set(best),
        trend: Set(trend.into()),
        updates: Set(3),
        next_review_at: Set(now - chrono::Duration::days(1)),
        updated_at: Set(now),
    }
    .insert(&app.db)
    .await
    .expect("skill level");
}

async fn run(app: &TestApp, mailer: &Mailer, now: DateTime<Utc>) -> api::digest::DigestReport {
    run_once(&app.db, mailer, now)
        .await
        .expect("the run")
        .expect("nobody else holds the lock")
}

async fn opted_in_accounts_get_one_digest_a_week_with_their_week_and_none_after_opting_out(
    backend: Backend,
) {
    let sink = SmtpSink::start().await.expect("sink");
    let app = spawn_app(backend).await;
    let mailer = mailer(&app, sink.url());
    let alice = app.signed_in_user().await;
    let bob = app.signed_in_user().await;
    let alice_id = app.account_id(&alice).await;
    let bob_id = app.account_id(&bob).await;
    set_digest(&app, &alice, true).await;
    tests::feedback::ended_interview_with_transcript(
        &app,
        alice_id,
        InterviewKind::Behavioral,
        &[(Speaker::Candidate, "I led the migration")],
    )
    .await;
    skill(&app, alice_id, "star_structure", 62.0, 70.0, "improving").await;
    skill(&app, alice_id, "quantified_impact", 41.0, 55.0, "declining").await;
    // Bob has a week too, but never opted in.
    tests::feedback::ended_interview_with_transcript(
        &app,
        bob_id,
        InterviewKind::Technical,
        &[(Speaker::Candidate, "I wrote the parser")],
    )
    .await;

    let now = Utc::now();
    let report = run(&app, &mailer, now).await;
    assert_eq!((report.sent, report.failed), (1, 0));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "only the opted-in account: {mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.to, vec![alice.email.clone()]);
    assert!(sink.mails_to(&bob.email).is_empty());
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Your InterviewCraft week")
    );
    assert!(
        mail.header("From")
            .is_some_and(|from| from.contains("digest@interviewcraft.invalid")),
        "{mail:?}"
    );
    let body = mail.body();
    assert!(body.contains("Interviews this week: 1"), "{body}");
    assert!(body.contains("behavioral, 20 minutes"), "{body}");
    assert!(!body.contains("technical"), "not Bob's interview: {body}");
    assert!(
        body.contains("star_structure: 62 (improving, best 70)"),
        "{body}"
    );
    assert!(
        body.contains("quantified_impact: 41 (slipping, best 55)"),
        "{body}"
    );
    // The next drills are the planner's, for her levels.
    let skills = api::feedback::store::skill_states(&app.db, alice_id)
        .await
        .expect("skills");
    let plan = engine::feedback::drills::plan(
        &engine::feedback::FeedbackConfig::default(),
        &skills,
        now.date_naive(),
        None,
    );
    let first = plan.slots.first().expect("a drill slot");
    let drills = body.split("Next drills:").nth(1).expect("a drills section");
    assert!(
        drills.contains(&format!("{} ({}", first.skill, first.focus)),
        "{body}"
    );

    // Only the week marker is recorded, nothing of the content.
    let marks = digest_marks::Entity::find()
        .all(&app.db)
        .await
        .expect("marks");
    assert_eq!(
        marks,
        vec![digest_marks::Model {
            account_id: alice_id,
            last_week: week_of(now),
        }]
    );

    // Once a week: a second run this week sends nothing; next week's does.
    let again = run(&app, &mailer, now).await;
    assert_eq!((again.sent, again.already_sent), (0, 1));
    assert_eq!(sink.mails().len(), 1);
    let next_week = now + chrono::Duration::days(7);
    assert_eq!(run(&app, &mailer, next_week).await.sent, 1);
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    assert!(
        mails[1].body().contains("Interviews this week: none"),
        "{}",
        mails[1].body()
    );

    // Opting out stops the next one.
    set_digest(&app, &alice, false).await;
    assert_eq!(
        run(&app, &mailer, now + chrono::Duration::days(14))
            .await
            .sent,
        0
    );
    assert_eq!(sink.mails().len(), 2);

    let logs = tests::captured_logs();
    assert!(!logs.contains(&alice.email), "an e-mail address was logged");
    assert!(!logs.contains(&bob.email), "an e-mail address was logged");
}

async fn a_failed_send_is_retried_at_the_next_run(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    set_digest(&app, &alice, true).await;
    // A port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let unreachable = mailer(&app, format!("smtp://127.0.0.1:{closed}"));
    let now = Utc::now();
    let report = run(&app, &unreachable, now).await;
    assert_eq!((report.sent, report.failed), (0, 1));
    assert_eq!(
        app.count_rows("digest_marks").await,
        0,
        "the claim is given back"
    );

    let sink = SmtpSink::start().await.expect("sink");
    let report = run(&app, &mailer(&app, sink.url()), now).await;
    assert_eq!((report.sent, report.failed), (1, 0));
    assert_eq!(sink.mails_to(&alice.email).len(), 1);
    assert!(!tests::captured_logs().contains(&alice.email));
}

async fn two_runs_at_once_send_one_digest(backend: Backend) {
    let sink = SmtpSink::start().await.expect("sink");
    let app = spawn_app(backend).await;
    let mailer = mailer(&app, sink.url());
    let alice = app.signed_in_user().await;
    set_digest(&app, &alice, true).await;
    let now = Utc::now();
    let (a, b) = tokio::join!(
        run_once(&app.db, &mailer, now),
        run_once(&app.db, &mailer, now)
    );
    let sent: usize = [a.expect("run"), b.expect("run")]
        .into_iter()
        .flatten()
        .map(|report| report.sent)
        .sum();
    assert_eq!(sent, 1);
    assert_eq!(sink.mails().len(), 1);
}

async fn the_server_sends_digests_itself_when_smtp_url_is_set(backend: Backend) {
    let sink = SmtpSink::start().await.expect("sink");
    let url = sink.url();
    let app = spawn_app_with(backend.clone(), move |settings| {
        settings.smtp_url = Some(url.into());
        settings.digest_interval_secs = 1;
    })
    .await;
    let alice = app.signed_in_user().await;
    set_digest(&app, &alice, true).await;
    // With SMTP_URL the sign-up also mails a verification link: count the digests only.
    let digests = || {
        sink.mails()
            .into_iter()
            .filter(|mail| mail.header("Subject").as_deref() == Some("Your InterviewCraft week"))
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while digests().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no digest arrived");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(digests()[0].to, vec![alice.email.clone()]);
    // Once this week, however often the job runs.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(digests().len(), 1);

    // Without SMTP_URL the log says so.
    let _without = spawn_app(backend).await;
    assert!(
        tests::captured_logs().contains("SMTP_URL is not set: no weekly digests are sent"),
        "the start-up log says digests are off"
    );
}
