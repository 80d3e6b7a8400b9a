//! Free interviews: who is charged and when (see `api::free_interviews`).
//!
//! "Platform keys" here are the server's own Anthropic key, pointed at a fake Anthropic this
//! test starts; speech-to-text and the voice are keyless (the server's local fakes). So an
//! interview of an account without keys runs its language model on the platform key and
//! counts; with the account's own Anthropic key it runs on BYOK and local fakes and is free.

use engine::InterviewId;
use std::time::{Duration, Instant};
use tests::{client_offer, post_offer};

use engine::transport::{MediaSession, SessionDescription};
use fakes::FakeVendors;
use reqwest::Method;
use serde_json::{Value, json};
use tests::{Backend, Session, TestApp, assert_json_error, db_tests, spawn_app_with};
use uuid::Uuid;

db_tests!(
    an_interview_on_platform_keys_is_charged_when_it_starts_and_keeps_the_charge_once_audio_arrived,
    an_interview_that_never_gets_audio_gives_its_free_interview_back,
    out_of_allocation_the_offer_is_refused_but_byok_and_local_mode_interviews_still_start,
    concurrent_starts_on_two_nodes_cannot_both_take_the_last_free_interview,
    concurrent_takes_never_exceed_the_allocation,
);

const BYOK_ANTHROPIC: &str = "sk-ant-api03-THISISAFAKEKEYFORTESTS-0123456789-QWER";

/// A server whose language model runs on a platform key (at `fakes`).
async fn platform_app(backend: Backend, fakes: &FakeVendors, free: u32) -> TestApp {
    let url = fakes.anthropic.base_url();
    spawn_app_with(backend, move |settings| {
        settings.anthropic_api_key = Some("sk-ant-test-platform-key".to_owned().into());
        settings.anthropic_base_url = url;
        settings.free_interviews = free;
    })
    .await
}

async fn create(app: &TestApp, session: &Session) -> InterviewId {
    let response = app
        .call(
            Method::POST,
            "/api/v1/interviews",
            Some(&session.access_token),
            Some(&json!({"kind": "behavioral", "length_minutes": 5})),
        )
        .await;
    assert_eq!(
        response.status(),
        201,
        "creating never takes the allocation"
    );
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").parse().expect("uuid")
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

/// `free_interviews` of `GET /api/v1/me`.
async fn allocation(app: &TestApp, session: &Session) -> (i64, i64, i64) {
    let me: Value = app
        .me(&session.access_token)
        .await
        .json()
        .await
        .expect("json");
    let free = &me["free_interviews"];
    (
        free["granted"].as_i64().expect("granted"),
        free["used"].as_i64().expect("used"),
        free["remaining"].as_i64().expect("remaining"),
    )
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the give-back watcher's verdict on an interview (logged with its id only).
async fn wait_verdict(id: InterviewId) -> &'static str {
    let id = id.to_string();
    let mut verdict = "";
    wait_until(
        "the free-interview verdict",
        Duration::from_secs(30),
        async || {
            let logs = tests::captured_logs();
            let lines: Vec<&str> = logs.lines().filter(|line| line.contains(&id)).collect();
            if lines
                .iter()
                .any(|l| l.contains("its free interview stays used"))
            {
                verdict = "kept";
            } else if lines
                .iter()
                .any(|l| l.contains("its free interview is given back"))
            {
                verdict = "given_back";
            }
            !verdict.is_empty()
        },
    )
    .await;
    verdict
}

async fn an_interview_on_platform_keys_is_charged_when_it_starts_and_keeps_the_charge_once_audio_arrived(
    backend: Backend,
) {
    let fakes = FakeVendors::start_default().await.expect("fakes");
    let app = platform_app(backend, &fakes, 2).await;
    let alice = app.signed_in_user().await;
    assert_eq!(allocation(&app, &alice).await, (2, 0, 2));
    let id = create(&app, &alice).await;
    assert_eq!(allocation(&app, &alice).await, (2, 0, 2), "not at creation");

    let (pending, offer) = client_offer().await;
    let response = post_offer(&app, &alice, id, &offer).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        allocation(&app, &alice).await,
        (2, 1, 1),
        "taken at the start"
    );

    // The client connects and its microphone sends (silent) audio.
    let answer: SessionDescription = response.json().await.expect("answer");
    let MediaSession {
        inbound: _inbound,
        mut outbound,
        local_candidates: _,
        control,
    } = pending
        .accept_answer(&answer)
        .await
        .expect("answer applies");
    control
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("ICE and DTLS connect over loopback");
    let microphone = tokio::spawn(async move {
        let silence = vec![0i16; engine::transport::OpusRate::Hz48000.frame_samples()];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if outbound
                .send_frame(&silence, engine::transport::OpusRate::Hz48000)
                .is_err()
            {
                break;
            }
        }
    });
    let stt = &app
        .state
        .local_vendors
        .as_ref()
        .expect("keyless STT")
        .deepgram;
    wait_until("audio at the server", Duration::from_secs(20), async || {
        stt.counters().audio_seconds > 0.0
    })
    .await;
    end(&app, &alice, id).await;
    assert_eq!(wait_verdict(id).await, "kept");
    assert_eq!(allocation(&app, &alice).await, (2, 1, 1));
    microphone.abort();
}

async fn an_interview_that_never_gets_audio_gives_its_free_interview_back(backend: Backend) {
    let fakes = FakeVendors::start_default().await.expect("fakes");
    let app = platform_app(backend, &fakes, 2).await;
    let alice = app.signed_in_user().await;

    // Offer accepted, the client never applies the answer: no audio ever arrives.
    let id = create(&app, &alice).await;
    let (pending, offer) = client_offer().await;
    assert_eq!(post_offer(&app, &alice, id, &offer).await.status(), 200);
    assert_eq!(allocation(&app, &alice).await, (2, 1, 1));

    // A second start while the first is live is refused (409) and charges nothing.
    let second = create(&app, &alice).await;
    let (_other, other_offer) = client_offer().await;
    assert_json_error(post_offer(&app, &alice, second, &other_offer).await, 409).await;
    assert_eq!(allocation(&app, &alice).await, (2, 1, 1));

    pending.abandon().await;
    end(&app, &alice, id).await;
    assert_eq!(wait_verdict(id).await, "given_back");
    assert_eq!(allocation(&app, &alice).await, (2, 0, 2));
}

async fn out_of_allocation_the_offer_is_refused_but_byok_and_local_mode_interviews_still_start(
    backend: Backend,
) {
    let fakes = FakeVendors::start_default().await.expect("fakes");
    let app = platform_app(backend.clone(), &fakes, 1).await;
    let alice = app.signed_in_user().await;
    let alice_id = app.account_id(&alice).await;
    assert!(
        api::free_interviews::take(&app.db, alice_id)
            .await
            .expect("take")
    );
    assert_eq!(allocation(&app, &alice).await, (1, 1, 0));

    let id = create(&app, &alice).await;
    let (_pending, offer) = client_offer().await;
    let code = assert_json_error(post_offer(&app, &alice, id, &offer).await, 402).await;
    assert_eq!(code, "free_interviews_exhausted");
    assert!(
        !app.state.engine.is_live(id),
        "a refused start runs nothing"
    );
    let detail: Value = app
        .get_as(&format!("/api/v1/interviews/{id}"), &alice.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["interview"]["status"], "created");
    assert_eq!(allocation(&app, &alice).await, (1, 1, 0));

    // With her own Anthropic key nothing runs on a platform key: it starts, and is free.
    let response = app
        .call(
            Method::PUT,
            "/api/v1/settings/keys/anthropic",
            Some(&alice.access_token),
            Some(&json!({"api_key": BYOK_ANTHROPIC})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (_pending, offer) = client_offer().await;
    assert_eq!(post_offer(&app, &alice, id, &offer).await.status(), 200);
    assert_eq!(allocation(&app, &alice).await, (1, 1, 0));
    end(&app, &alice, id).await;

    // Keyless local mode (no platform key at all) is free too.
    let local = spawn_app_with(backend, |settings| settings.free_interviews = 1).await;
    let bob = local.signed_in_user().await;
    let bob_id = local.account_id(&bob).await;
    assert!(
        api::free_interviews::take(&local.db, bob_id)
            .await
            .expect("take")
    );
    let id = create(&local, &bob).await;
    let (_pending, offer) = client_offer().await;
    assert_eq!(post_offer(&local, &bob, id, &offer).await.status(), 200);
    assert_eq!(allocation(&local, &bob).await, (1, 1, 0));
}

async fn concurrent_starts_on_two_nodes_cannot_both_take_the_last_free_interview(backend: Backend) {
    let fakes = FakeVendors::start_default().await.expect("fakes");
    let first = platform_app(backend.clone(), &fakes, 1).await;
    // A second node on the same database, signing the same tokens.
    let (database_url, jwt, kek) = (
        first.settings.database_url.clone(),
        first.settings.jwt_secret.clone(),
        first.settings.key_encryption_key.clone(),
    );
    let anthropic_url = fakes.anthropic.base_url();
    let second = spawn_app_with(backend, move |settings| {
        settings.database_url = database_url;
        settings.jwt_secret = jwt;
        settings.key_encryption_key = kek;
        settings.node_id = "second-node".into();
        settings.anthropic_api_key = Some("sk-ant-test-platform-key".to_owned().into());
        settings.anthropic_base_url = anthropic_url;
        settings.free_interviews = 1;
    })
    .await;
    let alice = first.signed_in_user().await;
    let (a, b) = (create(&first, &alice).await, create(&first, &alice).await);
    let ((_pa, offer_a), (_pb, offer_b)) = (client_offer().await, client_offer().await);
    let (ra, rb) = tokio::join!(
        post_offer(&first, &alice, a, &offer_a),
        post_offer(&second, &alice, b, &offer_b)
    );
    let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 402], "exactly one start takes the last one");
    assert_eq!(allocation(&first, &alice).await, (1, 1, 0));
}

async fn concurrent_takes_never_exceed_the_allocation(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.free_interviews = 3).await;
    let alice = app.signed_in_user().await;
    let id = app.account_id(&alice).await;
    let takes = (0..10).map(|_| {
        let db = app.db.clone();
        tokio::spawn(async move { api::free_interviews::take(&db, id).await })
    });
    let mut taken = 0;
    for take in futures_util::future::join_all(takes).await {
        if take.expect("task").expect("take") {
            taken += 1;
        }
    }
    assert_eq!(taken, 3);
    assert_eq!(allocation(&app, &alice).await, (3, 3, 0));
    // Giving back never goes below zero.
    for _ in 0..4 {
        api::free_interviews::give_back(&app.db, id)
            .await
            .expect("give back");
    }
    assert_eq!(allocation(&app, &alice).await, (3, 0, 3));
    assert!(
        !api::free_interviews::take(&app.db, Uuid::new_v4().into())
            .await
            .expect("take"),
        "no allocation row, nothing to take"
    );
}
