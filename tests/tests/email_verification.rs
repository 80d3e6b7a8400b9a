//! Protects mailbox verification before the first free interview (issue 12), against a loopback
//! SMTP sink: with `SMTP_URL` set, sign-up mails a single-use, expiring link; following it
//! verifies the mailbox; until then an offer on platform keys is refused (BYOK is not); a new
//! link can be asked for at a limited rate; an e-mail change needs the new address verified;
//! neither the address nor the token reaches the logs. Without SMTP nothing is required.

use engine::InterviewId;
use std::time::Duration;

use chrono::Utc;
use engine::transport::{WebRtcClient, WebRtcConfig};
use entities::email_verifications;
use fakes::FakeVendors;
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tests::smtp_sink::{ReceivedMail, SmtpSink};
use tests::{
    Backend, PASSWORD, Session, TestApp, assert_json_error, db_tests, post_offer, spawn_app_with,
};
use uuid::Uuid;

db_tests!(
    sign_up_mails_a_single_use_link_that_verifies_the_mailbox,
    an_unverified_mailbox_cannot_start_a_platform_key_interview_but_byok_can,
    an_expired_link_is_refused_and_a_new_one_comes_at_a_limited_rate,
    an_email_change_needs_the_new_address_verified,
    without_smtp_nothing_is_mailed_and_no_verification_is_needed,
    an_unreachable_smtp_server_never_fails_the_sign_up,
);

const BYOK_ANTHROPIC: &str = "sk-ant-api03-THISISAFAKEKEYFORTESTS-0123456789-QWER";
const SUBJECT: &str = "Confirm your e-mail address for InterviewCraft";

/// A server whose language model runs on a platform key (at `fakes`), mailing through `sink`
/// when given one.
async fn platform_app(backend: Backend, fakes: &FakeVendors, sink: Option<&SmtpSink>) -> TestApp {
    let anthropic = fakes.anthropic.base_url();
    let smtp = sink.map(SmtpSink::url);
    spawn_app_with(backend, move |settings| {
        settings.anthropic_api_key = Some("sk-ant-test-platform-key".to_owned().into());
        settings.anthropic_base_url = anthropic;
        settings.smtp_url = smtp.map(Into::into);
    })
    .await
}

/// The verification mails to `address` once `count` have arrived.
async fn links_to(sink: &SmtpSink, address: &str, count: usize) -> Vec<ReceivedMail> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mails: Vec<ReceivedMail> = sink
            .mails_to(address)
            .into_iter()
            .filter(|mail| mail.header("Subject").as_deref() == Some(SUBJECT))
            .collect();
        if mails.len() >= count {
            return mails;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {count} verification mails arrived",
            mails.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The link's path and query (`/api/v1/auth/verify-email?token=…`) and its token.
fn link_in(mail: &ReceivedMail, app: &TestApp) -> (String, String) {
    let text = mail.text();
    let line = text
        .lines()
        .find(|line| line.contains("/api/v1/auth/verify-email?token="))
        .expect("the mail holds the link")
        .trim();
    let path = line
        .strip_prefix(&app.address)
        .expect("the link points at this server");
    let token = path.split("token=").nth(1).expect("token").to_owned();
    (path.to_owned(), token)
}

async fn follow(app: &TestApp, path: &str, accept: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("accept", accept)
        .send()
        .await
        .expect("the server answers")
}

async fn me(app: &TestApp, session: &Session) -> Value {
    app.me(&session.access_token)
        .await
        .json()
        .await
        .expect("json")
}

async fn offer(app: &TestApp, session: &Session, id: InterviewId) -> reqwest::Response {
    let (_pending, offer) = WebRtcClient::offer(&WebRtcConfig::loopback())
        .await
        .expect("the client offers");
    let offer = serde_json::to_value(&offer).expect("offer json");
    post_offer(app, session, id, &offer).await
}

async fn end(app: &TestApp, session: &Session, id: InterviewId) {
    let response = app
        .call(
            Method::POST,
            &format!("/api/v1/interviews/{id}/end"),
            Some(&session.access_token),
            None,
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
}

async fn resend(app: &TestApp, session: &Session) -> reqwest::Response {
    app.call(
        Method::POST,
        "/api/v1/auth/verification",
        Some(&session.access_token),
        None,
    )
    .await
}

async fn sign_up_mails_a_single_use_link_that_verifies_the_mailbox(backend: Backend) {
    let sink = SmtpSink::start().await.expect("sink");
    let fakes = FakeVendors::start_default().await.expect("fakes");
    let app = platform_app(backend, &fakes, Some(&sink)).await;
    let alice = app.signed_in_user().await;
    let profile = me(&app, &alice).await;
    assert_eq!(profile["email_verified"], false);
    assert_eq!(profile["email_verification_required"], true);

    let mails = links_to(&sink, &alice.email, 1).await;
    assert_eq!(mails[0].to, vec![alice.email.clone()]);
    let (path, token) = link_in(&mails[0], &app);
    assert_eq!(token.len(), 43);
    // Only the token's hash is stored.
    let stored = email_verifications::Entity::find()
        .all(&app.db)
        .await
        .expect("links");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].token_hash, token);
    assert!(stored[0].expires_at <= Utc::now() + chrono::Duration::hours(24));

    // A browser following the link gets a page; the mailbox is verified.
    let response = follow(&app, &path, "text/html,application/xhtml+xml").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(response.text().await.expect("page").contains("confirmed"));
    let profile = me(&app, &alice).await;
    assert_eq!(profile["email_verified"], true);
    assert_eq!(profile["email_verification_required"], false);

    // Single use: the second time is a 410, as JSON.
    let code = assert_json_error(follow(&app, &path, "application/json").await, 410).await;
    assert_eq!(code, "verification_link_expired");
    let code = assert_json_error(
        app.post_json(
            "/api/v1/auth/verify-email",
            &json!({"token": "A".repeat(43)}),
        )
        .await,
        410,
    )
    .await;
    assert_eq!(code, "verification_link_invalid");
    for bad in ["/api/v1/auth/verify-email", "/api/v1/auth/verify-email?x=1"] {
        assert_json_error(follow(&app, bad, "application/json").await, 422).await;
    }
    assert_json_error(
        app.post_json("/api/v1/auth/verify-email", &json!({"token": "<script>"}))
            .await,
        410,
    )
    .await;
    // Verified, a new link is refused.
    let code = assert_json_error(resend(&app, &alice).await, 409).await;
    assert_eq!(code, "email_already_verified");

    let logs = tests::captured_logs();
    assert!(!logs.contains(&token), "the token never reaches the logs");
    assert!(
        !logs.contains(&alice.email),
        "the address never reaches the logs"
    );
}

async fn an_unverified_mailbox_cannot_start_a_platform_key_interview_but_byok_can(
    backend: Backend,
) {
    let sink = SmtpSink::start().await.expect("sink");
    let fakes = FakeVendors::start_default().await.expect("fakes");
    let app = platform_app(backend, &fakes, Some(&sink)).await;
    let alice = app.signed_in_user().await;
    let id = app.create_interview(&alice).await;
    let code = assert_json_error(offer(&app, &alice, id).await, 403).await;
    assert_eq!(code, "email_not_verified");
    assert!(
        !app.state.engine.is_live(id),
        "a refused start runs nothing"
    );
    assert_eq!(
        me(&app, &alice).await["free_interviews"],
        json!({"granted": 3, "used": 0, "remaining": 3}),
        "nothing taken"
    );

    // Verified, the same interview starts on the platform key and takes one free interview.
    let (path, _) = link_in(&links_to(&sink, &alice.email, 1).await[0], &app);
    let response = follow(&app, &path, "application/json").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"verified": true}));
    assert_eq!(offer(&app, &alice, id).await.status(), 200);
    assert_eq!(me(&app, &alice).await["free_interviews"]["used"], 1);
    end(&app, &alice, id).await;

    // An unverified account on its own key is never blocked, and is not charged.
    let bob = app.signed_in_user().await;
    let response = app
        .call(
            Method::PUT,
            "/api/v1/settings/keys/anthropic",
            Some(&bob.access_token),
            Some(&json!({"api_key": BYOK_ANTHROPIC})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let id = app.create_interview(&bob).await;
    assert_eq!(offer(&app, &bob, id).await.status(), 200);
    assert_eq!(me(&app, &bob).await["free_interviews"]["used"], 0);
    end(&app, &bob, id).await;
}

async fn an_expired_link_is_refused_and_a_new_one_comes_at_a_limited_rate(backend: Backend) {
    let sink = SmtpSink::start().await.expect("sink");
    let fakes = FakeVendors::start_default().await.expect("fakes");
    let app = platform_app(backend, &fakes, Some(&sink)).await;
    let alice = app.signed_in_user().await;
    let (old_path, _) = link_in(&links_to(&sink, &alice.email, 1).await[0], &app);

    // Just sent at sign-up: a new one waits a minute.
    let response = resend(&app, &alice).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        assert_json_error(response, 429).await,
        "verification_resend_limited"
    );

    // The link expires (its day is over), and was sent long enough ago for a new one.
    email_verifications::Entity::update_many()
        .col_expr(
            email_verifications::Column::ExpiresAt,
            Expr::value(Utc::now() - chrono::Duration::minutes(1)),
        )
        .col_expr(
            email_verifications::Column::CreatedAt,
            Expr::value(Utc::now() - chrono::Duration::hours(24)),
        )
        .filter(email_verifications::Column::UsedAt.is_null())
        .exec(&app.db)
        .await
        .expect("age the link");
    let code = assert_json_error(follow(&app, &old_path, "text/html").await, 410).await;
    assert_eq!(code, "verification_link_expired");
    assert_eq!(me(&app, &alice).await["email_verified"], false);

    let response = resend(&app, &alice).await;
    assert_eq!(response.status(), 202);
    let mails = links_to(&sink, &alice.email, 2).await;
    let (new_path, _) = link_in(&mails[1], &app);
    assert_ne!(new_path, old_path);
    assert_eq!(resend(&app, &alice).await.status(), 429, "a minute apart");
    assert_eq!(
        follow(&app, &new_path, "application/json").await.status(),
        200
    );
    assert_eq!(me(&app, &alice).await["email_verified"], true);

    // Five a day: four more links of the last day make a sixth wait for the oldest to age out.
    let bob = app.signed_in_user().await;
    let bob_id = app.account_id(&bob).await;
    let now = Utc::now();
    for minutes in [90, 80, 70, 60] {
        email_verifications::Entity::insert(email_verifications::ActiveModel {
            token_hash: sea_orm::ActiveValue::Set(format!("{:064x}", Uuid::new_v4().as_u128())),
            account_id: sea_orm::ActiveValue::Set(bob_id),
            created_at: sea_orm::ActiveValue::Set(now - chrono::Duration::minutes(minutes)),
            expires_at: sea_orm::ActiveValue::Set(now + chrono::Duration::hours(20)),
            used_at: sea_orm::ActiveValue::Set(None),
        })
        .exec_without_returning(&app.db)
        .await
        .expect("an earlier link");
    }
    email_verifications::Entity::update_many()
        .col_expr(
            email_verifications::Column::CreatedAt,
            Expr::value(now - chrono::Duration::minutes(30)),
        )
        .filter(email_verifications::Column::AccountId.eq(bob_id))
        .filter(email_verifications::Column::CreatedAt.gt(now - chrono::Duration::minutes(5)))
        .exec(&app.db)
        .await
        .expect("age bob's sign-up link");
    let response = resend(&app, &bob).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        retry_after > 3600,
        "{retry_after}: the oldest of the day ages out first"
    );
}

async fn an_email_change_needs_the_new_address_verified(backend: Backend) {
    let sink = SmtpSink::start().await.expect("sink");
    let fakes = FakeVendors::start_default().await.expect("fakes");
    let app = platform_app(backend, &fakes, Some(&sink)).await;
    let alice = app.signed_in_user().await;
    let (path, _) = link_in(&links_to(&sink, &alice.email, 1).await[0], &app);
    assert_eq!(follow(&app, &path, "application/json").await.status(), 200);

    // An unused link to the old address is withdrawn by the change.
    let bob = app.signed_in_user().await;
    let (bob_old_path, _) = link_in(&links_to(&sink, &bob.email, 1).await[0], &app);
    let new_address = format!("moved-{}@example.com", Uuid::new_v4().simple());
    for (session, address) in [
        (&alice, format!("alice-{new_address}")),
        (&bob, new_address.clone()),
    ] {
        let response = app
            .call(
                Method::PATCH,
                "/api/v1/me",
                Some(&session.access_token),
                Some(&json!({"email": address, "current_password": PASSWORD})),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let profile = me(&app, &alice).await;
    assert_eq!(profile["email_verified"], false, "the new address is not");
    assert_eq!(profile["email_verification_required"], true);
    let code = assert_json_error(follow(&app, &bob_old_path, "application/json").await, 410).await;
    assert_eq!(code, "verification_link_invalid");

    let mails = links_to(&sink, &format!("alice-{new_address}"), 1).await;
    let (path, _) = link_in(&mails[0], &app);
    assert_eq!(follow(&app, &path, "application/json").await.status(), 200);
    assert_eq!(me(&app, &alice).await["email_verified"], true);
    let mails = links_to(&sink, &new_address, 1).await;
    let (path, _) = link_in(&mails[0], &app);
    assert_eq!(follow(&app, &path, "application/json").await.status(), 200);
    assert_eq!(me(&app, &bob).await["email_verified"], true);
}

async fn without_smtp_nothing_is_mailed_and_no_verification_is_needed(backend: Backend) {
    let fakes = FakeVendors::start_default().await.expect("fakes");
    let app = platform_app(backend.clone(), &fakes, None).await;
    let alice = app.signed_in_user().await;
    let profile = me(&app, &alice).await;
    assert_eq!(profile["email_verified"], false);
    assert_eq!(profile["email_verification_required"], false);
    assert_eq!(app.count_rows("email_verifications").await, 0);
    let code = assert_json_error(resend(&app, &alice).await, 409).await;
    assert_eq!(code, "email_verification_off");
    let id = app.create_interview(&alice).await;
    assert_eq!(offer(&app, &alice, id).await.status(), 200);
    assert_eq!(me(&app, &alice).await["free_interviews"]["used"], 1);
    end(&app, &alice, id).await;

    // Keyless local mode: sign-up, then an interview, with nothing else.
    let local = spawn_app_with(backend, |_| {}).await;
    let bob = local.signed_in_user().await;
    let id = local.create_interview(&bob).await;
    assert_eq!(offer(&local, &bob, id).await.status(), 200);
    end(&local, &bob, id).await;
}

async fn an_unreachable_smtp_server_never_fails_the_sign_up(backend: Backend) {
    // A port nothing listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let app = spawn_app_with(backend, move |settings| {
        settings.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
    })
    .await;
    let started = std::time::Instant::now();
    let alice = app.signed_in_user().await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the sign-up does not wait for the mail"
    );
    let id = app.account_id(&alice).await.to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let logs = tests::captured_logs();
        if logs.lines().any(|line| {
            line.contains(&id) && line.contains("a mailbox verification link could not be sent")
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the failed send is logged with the account id"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!tests::captured_logs().contains(&alice.email));
    assert_eq!(me(&app, &alice).await["email_verification_required"], true);
}
