//! Protects the BYOK lease promise ("only decrypted in memory for the duration of your active
//! session, then discarded") on every path that withdraws a user's keys: deleting or replacing
//! a key, a password change, erasure (own and by an admin), an admin disable and `rotate-keys`
//! each revoke the account's live lease at once; the interview then continues on the platform
//! key or ends with `byok_key_revoked`. `/metrics` and the admin user summary show live leases
//! without account ids or key material.

use engine::{AccountId, InterviewId};
use std::time::{Duration, Instant};

use engine::byok_cipher::{KeyRing, MasterKey};
use engine::conversation::{InterviewKind, InterviewPlan};
use engine::media::{MemoryPeer, memory_transport};
use entities::interviews;
use fakes::{FakeVendors, FakeVendorsConfig};
use reqwest::Method;
use sea_orm::EntityTrait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tests::{Backend, PASSWORD, Session, TestApp, db_tests, spawn_app_with};

db_tests!(
    deleting_the_key_revokes_the_lease_and_ends_the_interview,
    replacing_the_key_fails_over_to_the_platform_key,
    a_password_change_revokes_the_lease,
    erasing_the_account_revokes_the_lease,
    an_admin_erasure_revokes_the_lease,
    an_admin_disable_revokes_the_lease,
    rotate_keys_from_another_process_revokes_the_lease,
    metrics_and_the_admin_summary_show_live_leases_without_ids_or_keys,
);

const OWN_DEEPGRAM: &str = "dg-own-key-of-the-user-000000000001";

/// A server whose "real" vendors are fakes on loopback, so BYOK and platform keys reach them.
/// `check_every` is long unless a test needs the reconcile: only the hooks can revoke.
async fn app_with(
    backend: Backend,
    platform_deepgram: bool,
    check_every: Duration,
) -> (TestApp, FakeVendors) {
    let fakes = FakeVendors::start_all(FakeVendorsConfig::default())
        .await
        .expect("fakes start");
    let (deepgram, anthropic) = (fakes.deepgram.base_url(), fakes.anthropic.base_url());
    let (tts_ws, tts_http) = (fakes.elevenlabs.ws_base_url(), fakes.elevenlabs.base_url());
    let app = spawn_app_with(backend, move |settings| {
        settings.deepgram_base_url = deepgram;
        settings.anthropic_base_url = anthropic;
        settings.elevenlabs_ws_base_url = tts_ws;
        settings.elevenlabs_http_base_url = tts_http;
        if platform_deepgram {
            settings.deepgram_api_key = Some(SecretString::from("dg-platform-key-0000-PLAT"));
        }
        settings.key_lease.check_every = check_every;
    })
    .await;
    (app, fakes)
}

async fn app(backend: Backend) -> (TestApp, FakeVendors) {
    app_with(backend, false, Duration::from_secs(3600)).await
}

async fn put_key(app: &TestApp, session: &Session, provider: &str, key: &str) {
    let response = app
        .call(
            Method::PUT,
            &format!("/api/v1/settings/keys/{provider}"),
            Some(&session.access_token),
            Some(&json!({"api_key": key})),
        )
        .await;
    assert_eq!(response.status(), 200);
}

/// A live interview of `session`'s account (with its own Deepgram key) on the server's
/// engine, over an in-memory transport; the peer is kept so the interview stays connected.
struct Live {
    id: InterviewId,
    account: AccountId,
    _peer: MemoryPeer,
}

async fn live_interview(app: &TestApp, session: &Session) -> Live {
    put_key(app, session, "deepgram", OWN_DEEPGRAM).await;
    let response = app
        .call(
            Method::POST,
            "/api/v1/interviews",
            Some(&session.access_token),
            Some(&json!({"kind": "behavioral"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    let id: InterviewId = body["id"].as_str().expect("id").parse().expect("uuid");
    let account = app.account_id(session).await;
    let (link, peer) = memory_transport();
    let plan = InterviewPlan {
        kind: InterviewKind::Behavioral,
        target_role: None,
        company: None,
        planned: Duration::from_secs(20 * 60),
        profile: None,
        focus_skill: None,
    };
    app.state
        .engine
        .start_interview(id, account, plan, link)
        .await
        .expect("the interview starts");
    let status = app.state.engine.lease_status(account).await;
    assert!(status.live && status.own_keys, "{status:?}");
    Live {
        id,
        account,
        _peer: peer,
    }
}

/// Right after the HTTP response: the lease holds none of the account's keys any more.
async fn assert_revoked_at_once(app: &TestApp, live: &Live) {
    let status = app.state.engine.lease_status(live.account).await;
    assert!(!status.own_keys, "revoked at once: {status:?}");
}

async fn wait_until_ended(app: &TestApp, live: &Live) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.state.engine.is_live(live.id) {
        assert!(Instant::now() < deadline, "the interview did not end");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.engine.lease_status(live.account).await.live {
        assert!(
            Instant::now() < deadline,
            "the lease outlived the interview"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn end_reason(app: &TestApp, id: InterviewId) -> Option<String> {
    interviews::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .expect("read")
        .and_then(|row| row.end_reason)
}

async fn deleting_the_key_revokes_the_lease_and_ends_the_interview(backend: Backend) {
    let (app, _fakes) = app(backend).await;
    let alice = app.signed_in_user().await;
    let live = live_interview(&app, &alice).await;
    let response = app
        .call(
            Method::DELETE,
            "/api/v1/settings/keys/deepgram",
            Some(&alice.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_revoked_at_once(&app, &live).await;
    // No platform key: the open speech-to-text stream fails with the revoked key.
    wait_until_ended(&app, &live).await;
    assert_eq!(
        end_reason(&app, live.id).await.as_deref(),
        Some("byok_key_revoked")
    );
}

async fn replacing_the_key_fails_over_to_the_platform_key(backend: Backend) {
    let (app, fakes) = app_with(backend, true, Duration::from_secs(3600)).await;
    let alice = app.signed_in_user().await;
    let live = live_interview(&app, &alice).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while fakes.deepgram.counters().connections == 0 {
        assert!(Instant::now() < deadline, "the stream never opened");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let connections = fakes.deepgram.counters().connections;
    put_key(
        &app,
        &alice,
        "deepgram",
        "dg-replacement-key-of-the-user-0002",
    )
    .await;
    assert_revoked_at_once(&app, &live).await;
    // The stream reconnects on the platform key: the interview goes on, its lease too.
    while fakes.deepgram.counters().connections == connections {
        assert!(Instant::now() < deadline, "the stream did not reconnect");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        app.state.engine.is_live(live.id),
        "still live on the platform key"
    );
    let status = app.state.engine.lease_status(live.account).await;
    assert!(status.live && !status.own_keys, "{status:?}");
    assert!(app.state.engine.end_interview(
        live.id,
        engine::actors::interview::EndReason::CandidateEnded,
        engine::actors::interview::StopMode::CancelNow
    ));
    wait_until_ended(&app, &live).await;
}

async fn a_password_change_revokes_the_lease(backend: Backend) {
    let (app, _fakes) = app(backend).await;
    let alice = app.signed_in_user().await;
    let live = live_interview(&app, &alice).await;
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&alice.access_token),
            Some(&json!({
                "current_password": PASSWORD,
                "new_password": "a different horse battery staple",
            })),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_revoked_at_once(&app, &live).await;
    wait_until_ended(&app, &live).await;
    assert_eq!(
        end_reason(&app, live.id).await.as_deref(),
        Some("byok_key_revoked")
    );
}

async fn erasing_the_account_revokes_the_lease(backend: Backend) {
    let (app, _fakes) = app(backend).await;
    let alice = app.signed_in_user().await;
    let live = live_interview(&app, &alice).await;
    let response = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&alice.access_token),
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_revoked_at_once(&app, &live).await;
    wait_until_ended(&app, &live).await;
}

async fn an_admin_erasure_revokes_the_lease(backend: Backend) {
    let (app, _fakes) = app(backend).await;
    let admin = app.signed_in_admin().await;
    let alice = app.signed_in_user().await;
    let live = live_interview(&app, &alice).await;
    let response = app
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/users/{}", live.account),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_revoked_at_once(&app, &live).await;
    wait_until_ended(&app, &live).await;
}

async fn an_admin_disable_revokes_the_lease(backend: Backend) {
    let (app, _fakes) = app(backend).await;
    let admin = app.signed_in_admin().await;
    let alice = app.signed_in_user().await;
    let live = live_interview(&app, &alice).await;
    let response = app
        .call(
            Method::POST,
            &format!("/api/v1/admin/users/{}/disable", live.account),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_revoked_at_once(&app, &live).await;
    wait_until_ended(&app, &live).await;
}

async fn rotate_keys_from_another_process_revokes_the_lease(backend: Backend) {
    // `rotate-keys` is a command of its own process: the server learns of it by reconciling
    // its leases with the stored rows every `check_every`.
    let (app, _fakes) = app_with(backend, false, Duration::from_millis(100)).await;
    let alice = app.signed_in_user().await;
    let live = live_interview(&app, &alice).await;
    let old_master = MasterKey::from_base64(
        app.settings
            .key_encryption_key
            .as_ref()
            .expect("key")
            .expose_secret(),
    )
    .expect("valid");
    let rotating = KeyRing::new(MasterKey::from_bytes([42; 32]), vec![old_master]);
    let report = api::admin::rotate_keys(&app.db, &rotating)
        .await
        .expect("rotation");
    assert_eq!(report.rotated, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.engine.lease_status(live.account).await.own_keys {
        assert!(Instant::now() < deadline, "the rotation did not revoke");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_until_ended(&app, &live).await;
    assert_eq!(
        end_reason(&app, live.id).await.as_deref(),
        Some("byok_key_revoked")
    );
}

fn gauge(metrics: &str, name: &str) -> Option<f64> {
    let lines = metrics.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("parses");
    scrape
        .samples
        .iter()
        .find(|sample| sample.metric == name)
        .map(|sample| match sample.value {
            prometheus_parse::Value::Gauge(value) | prometheus_parse::Value::Untyped(value) => {
                value
            }
            ref other => panic!("{name} is not a gauge: {other:?}"),
        })
}

async fn summary(app: &TestApp, admin: &Session, account: AccountId) -> Value {
    let response = app
        .get_as(
            &format!("/api/v1/admin/users/{account}"),
            &admin.access_token,
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

async fn metrics_and_the_admin_summary_show_live_leases_without_ids_or_keys(backend: Backend) {
    let (app, _fakes) = app(backend).await;
    let admin = app.signed_in_admin().await;
    let alice = app.signed_in_user().await;
    let before = app.get("/metrics").await.text().await.expect("body");
    assert_eq!(gauge(&before, "interviewcraft_key_leases_live"), Some(0.0));
    let live = live_interview(&app, &alice).await;

    let during = app.get("/metrics").await.text().await.expect("body");
    assert_eq!(gauge(&during, "interviewcraft_key_leases_live"), Some(1.0));
    assert_eq!(
        gauge(&during, "interviewcraft_key_leases_own_keys_live"),
        Some(1.0)
    );
    assert!(!during.contains(&live.account.to_string()), "no account id");
    assert!(!during.contains(OWN_DEEPGRAM), "no key");
    let body = summary(&app, &admin, live.account).await;
    assert_eq!(body["live_key_lease"], true, "{body}");
    assert_eq!(body["live_key_lease_own_keys"], true, "{body}");
    assert!(
        !body.to_string().contains(&OWN_DEEPGRAM[3..]),
        "no key material"
    );

    assert!(app.state.engine.end_interview(
        live.id,
        engine::actors::interview::EndReason::CandidateEnded,
        engine::actors::interview::StopMode::CancelNow
    ));
    wait_until_ended(&app, &live).await;
    let after = app.get("/metrics").await.text().await.expect("body");
    assert_eq!(gauge(&after, "interviewcraft_key_leases_live"), Some(0.0));
    let body = summary(&app, &admin, live.account).await;
    assert_eq!(body["live_key_lease"], false, "{body}");
}
