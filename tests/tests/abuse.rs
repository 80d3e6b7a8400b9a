//! Protects the free allocation against abuse (issue 12): the abuse ledger of keyed mailbox
//! hashes outlives erasure and e-mail changes for its stated period and makes the grant atomic
//! under concurrency; flagged sign-ups (a reused mailbox, a disposable domain, too many from one
//! address in a day) get no free interviews until an admin decides, and the decision is audited
//! with ids only.

use chrono::Utc;
use engine::AccountId;
use engine::transport::{WebRtcClient, WebRtcConfig};
use entities::{abuse_ledger, abuse_signals, interview_quotas, signup_ip_counts};
use fakes::FakeVendors;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tests::{
    Backend, PASSWORD, Session, TestApp, assert_json_error, db_tests, post_offer, spawn_app,
    spawn_app_with,
};
use uuid::Uuid;

db_tests!(
    an_erased_accounts_mailbox_gets_no_free_interviews_when_it_signs_up_again,
    after_an_email_change_the_old_mailbox_gets_no_free_interviews,
    twenty_parallel_sign_ups_of_one_mailbox_grant_one_allocation,
    the_ledger_is_swept_after_its_period_and_sign_up_counts_after_their_day,
    the_ledger_holds_keyed_hashes_only_and_is_neither_exported_nor_erased,
    a_disposable_domain_waits_for_an_admin_who_can_allow_and_deny,
    too_many_sign_ups_from_one_address_in_a_day_are_flagged,
    abuse_decisions_are_validated_and_audited_with_ids_only,
    a_flagged_account_is_told_its_free_interviews_wait_for_a_review,
);

/// Registers `email` (optionally from a forwarded client address) and returns its id and the
/// free interviews it was granted.
async fn register_from(app: &TestApp, email: &str, client: Option<&str>) -> (AccountId, i32) {
    let mut request = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({
            "email": email, "password": PASSWORD, "age_confirmed": true
        }));
    if let Some(client) = client {
        request = request.header("x-forwarded-for", client);
    }
    let response = request.send().await.expect("the server answers");
    assert_eq!(response.status(), 201, "{email}");
    let body: Value = response.json().await.expect("json");
    let id: AccountId = body["id"].as_str().expect("id").parse().expect("uuid");
    (id, granted(app, id).await)
}

async fn register(app: &TestApp, email: &str) -> (AccountId, i32) {
    register_from(app, email, None).await
}

async fn granted(app: &TestApp, id: AccountId) -> i32 {
    interview_quotas::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("quota row")
        .free_interviews_granted
}

async fn signals(app: &TestApp, id: AccountId) -> Vec<String> {
    abuse_signals::Entity::find()
        .filter(abuse_signals::Column::AccountId.eq(id))
        .all(&app.db)
        .await
        .expect("query")
        .into_iter()
        .map(|signal| signal.kind)
        .collect()
}

async fn sign_in(app: &TestApp, email: &str) -> Session {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let refresh = tests::refresh_cookie(response.headers()).expect("cookie");
    let body: Value = response.json().await.expect("json");
    Session {
        email: email.to_owned(),
        password: PASSWORD.to_owned(),
        access_token: body["access_token"].as_str().expect("token").to_owned(),
        refresh_token: refresh.value,
    }
}

async fn erase(app: &TestApp, session: &Session) {
    let response = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&session.access_token),
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), 200);
}

fn tag() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

async fn an_erased_accounts_mailbox_gets_no_free_interviews_when_it_signs_up_again(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let tag = tag();
    let first = format!("jane.doe.{tag}@gmail.com");
    let (_, free) = register(&app, &first).await;
    assert_eq!(free, 3);
    erase(&app, &sign_in(&app, &first).await).await;
    assert_eq!(app.count_rows("accounts").await, 0);
    assert_eq!(
        app.count_rows("abuse_ledger").await,
        1,
        "kept after erasure"
    );

    // The same address, and an alias of it, get nothing and are flagged.
    let (again, free) = register(&app, &first).await;
    assert_eq!(free, 0);
    assert_eq!(signals(&app, again).await, ["canonical_email_reuse"]);
    erase(&app, &sign_in(&app, &first).await).await;
    let (alias, free) = register(&app, &format!("janedoe{tag}+cv@googlemail.com")).await;
    assert_eq!(free, 0);
    assert_eq!(signals(&app, alias).await, ["canonical_email_reuse"]);

    // An admin's erasure keeps the mailbox in the ledger too.
    let admin = app.signed_in_admin().await;
    let other = format!("other-{tag}@example.org");
    let (other_id, free) = register(&app, &other).await;
    assert_eq!(free, 3);
    let response = app
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/users/{other_id}"),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let (_, free) = register(&app, &format!("other-{tag}+2@example.org")).await;
    assert_eq!(free, 0);
}

async fn after_an_email_change_the_old_mailbox_gets_no_free_interviews(backend: Backend) {
    let app = spawn_app(backend).await;
    let tag = tag();
    let old = format!("old-{tag}@example.com");
    let new = format!("new-{tag}@example.com");
    let (_, free) = register(&app, &old).await;
    assert_eq!(free, 3);
    let session = sign_in(&app, &old).await;
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&session.access_token),
            Some(&json!({"email": new, "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count_rows("abuse_ledger").await, 2, "both mailboxes");

    // The old mailbox is not free again, and neither is an alias of the new one.
    let (old_again, free) = register(&app, &old).await;
    assert_eq!(free, 0);
    assert_eq!(signals(&app, old_again).await, ["canonical_email_reuse"]);
    let (_, free) = register(&app, &format!("new-{tag}+x@example.com")).await;
    assert_eq!(free, 0);
}

async fn twenty_parallel_sign_ups_of_one_mailbox_grant_one_allocation(backend: Backend) {
    let app = spawn_app(backend).await;
    let tag = tag();
    // Twenty different addresses, one mailbox: Gmail ignores dots and `+tags`, and
    // googlemail.com is gmail.com.
    let emails: Vec<String> = (0..20)
        .map(|i| match i % 3 {
            0 => format!("a.b{tag}+{i}@gmail.com"),
            1 => format!("ab{tag}+{i}@googlemail.com"),
            _ => format!("a.b.{tag}+{i}@gmail.com"),
        })
        .collect();
    let sign_ups = emails.iter().map(|email| register(&app, email));
    let results = futures_util::future::join_all(sign_ups).await;
    let total: i32 = results.iter().map(|(_, free)| free).sum();
    assert_eq!(total, 3, "one allocation between them: {results:?}");
    assert_eq!(results.iter().filter(|(_, free)| *free == 3).count(), 1);
    for (id, free) in &results {
        let expected: &[&str] = if *free == 3 {
            &[]
        } else {
            &["canonical_email_reuse"]
        };
        assert_eq!(signals(&app, *id).await, expected);
    }
    assert_eq!(app.count_rows("accounts").await, 20);
    assert_eq!(app.count_rows("abuse_ledger").await, 1);
}

async fn the_ledger_is_swept_after_its_period_and_sign_up_counts_after_their_day(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.abuse_ledger_days = 30).await;
    let email = format!("swept-{}@example.com", tag());
    register(&app, &email).await;
    erase(&app, &sign_in(&app, &email).await).await;
    let now = Utc::now();
    let sweep = |at| {
        let engine = app.state.engine.clone();
        async move {
            engine
                .sweep_now(at)
                .await
                .expect("the sweep runs")
                .expect("one node")
        }
    };
    let report = sweep(now).await;
    assert_eq!((report.ledger_rows, report.signup_ip_rows), (0, 0));
    assert_eq!(app.count_rows("abuse_ledger").await, 1);
    assert_eq!(app.count_rows("signup_ip_counts").await, 1, "today's");

    // A day later the count is gone; the ledger row stays for its 30 days.
    let report = sweep(now + chrono::Duration::days(2)).await;
    assert_eq!((report.ledger_rows, report.signup_ip_rows), (0, 1));
    sweep(now + chrono::Duration::days(29)).await;
    assert_eq!(app.count_rows("abuse_ledger").await, 1);
    let report = sweep(now + chrono::Duration::days(31)).await;
    assert_eq!(report.ledger_rows, 1);
    assert_eq!(app.count_rows("abuse_ledger").await, 0);

    // The period is over: the mailbox's free interviews are granted again.
    let (_, free) = register(&app, &email).await;
    assert_eq!(free, 3);
}

async fn the_ledger_holds_keyed_hashes_only_and_is_neither_exported_nor_erased(backend: Backend) {
    use sha2::Digest as _;
    let app = spawn_app(backend).await;
    let local = format!("private.person.{}", tag());
    let email = format!("{local}@example.com");
    register(&app, &email).await;
    let rows = abuse_ledger::Entity::find()
        .all(&app.db)
        .await
        .expect("ledger");
    assert_eq!(rows.len(), 1);
    let hash = rows[0].mailbox_hash.clone();
    assert_eq!(hash.len(), 64);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!hash.contains(&local));
    // Keyed: not the plain SHA-256 of the address, which anyone could compute.
    let plain = hex::encode(sha2::Sha256::digest(email.as_bytes()));
    assert_ne!(hash, plain);

    let session = sign_in(&app, &email).await;
    let export = app
        .get_as("/api/v1/privacy/export", &session.access_token)
        .await
        .text()
        .await
        .expect("export");
    assert!(!export.contains("abuse_ledger") && !export.contains("signup_ip_counts"));
    assert!(!export.contains(&hash));
    erase(&app, &session).await;
    let after = abuse_ledger::Entity::find()
        .all(&app.db)
        .await
        .expect("ledger");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].mailbox_hash, hash);
}

/// `POST /api/v1/admin/users/{id}/abuse-decision`.
async fn decide(app: &TestApp, admin: &Session, id: AccountId, body: Value) -> reqwest::Response {
    app.call(
        Method::POST,
        &format!("/api/v1/admin/users/{id}/abuse-decision"),
        Some(&admin.access_token),
        Some(&body),
    )
    .await
}

async fn admin_view(app: &TestApp, admin: &Session, id: AccountId) -> Value {
    let response = app
        .get_as(&format!("/api/v1/admin/users/{id}"), &admin.access_token)
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

async fn a_disposable_domain_waits_for_an_admin_who_can_allow_and_deny(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in_admin().await;
    let email = format!("throwaway-{}@mailinator.com", tag());
    let (id, free) = register(&app, &email).await;
    assert_eq!(free, 0);
    assert_eq!(signals(&app, id).await, ["disposable_domain"]);
    // A subdomain of a listed domain is flagged too.
    let (sub, free) = register(&app, &format!("x-{}@eu.mailinator.com", tag())).await;
    assert_eq!((free, signals(&app, sub).await.len()), (0, 1));

    let user = sign_in(&app, &email).await;
    let me: Value = app.me(&user.access_token).await.json().await.expect("json");
    assert_eq!(me["free_interviews_review"], "pending");
    assert_eq!(me["free_interviews"]["granted"], 0);
    let view = admin_view(&app, &admin, id).await;
    assert_eq!(view["abuse_signals"], json!(["disposable_domain"]));
    assert_eq!(view["abuse_review"]["state"], "pending");
    assert_eq!(view["abuse_review"]["flagged"], true);
    assert_eq!(view["abuse_review"]["decision"], Value::Null);

    // Allowed: the allocation, once, however often (and concurrently) it is allowed.
    let response = decide(
        &app,
        &admin,
        id,
        json!({"decision": "allow", "note": "a student; checked"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["decision"], "allow");
    assert_eq!(body["free_interviews"]["granted"], 3);
    let again = (0..5).map(|_| decide(&app, &admin, id, json!({"decision": "allow"})));
    for response in futures_util::future::join_all(again).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(granted(&app, id).await, 3);
    let me: Value = app.me(&user.access_token).await.json().await.expect("json");
    assert_eq!(me["free_interviews_review"], "allowed");
    assert_eq!(me["free_interviews"]["remaining"], 3);
    let view = admin_view(&app, &admin, id).await;
    assert_eq!(view["abuse_review"]["state"], "allowed");
    assert_eq!(view["abuse_review"]["decision"]["decision"], "allow");
    assert_eq!(view["free_interviews"]["granted"], 3);

    // Denied after one was used: nothing left, the used one stays counted; allowing again
    // restores the one allocation, never a second.
    assert!(api::free_interviews::take(&app.db, id).await.expect("take"));
    let response = decide(
        &app,
        &admin,
        id,
        json!({"decision": "deny", "note": "same person as before"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["free_interviews"],
        json!({"granted": 1, "used": 1, "remaining": 0})
    );
    let me: Value = app.me(&user.access_token).await.json().await.expect("json");
    assert_eq!(me["free_interviews_review"], "denied");
    let response = decide(&app, &admin, id, json!({"decision": "allow"})).await;
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["free_interviews"],
        json!({"granted": 3, "used": 1, "remaining": 2})
    );
}

async fn too_many_sign_ups_from_one_address_in_a_day_are_flagged(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.signups_per_ip_per_day = 2;
        settings.trust_forwarded_for = true;
    })
    .await;
    let from = |client: &'static str| {
        let app = &app;
        async move {
            let email = format!("u-{}@example.com", tag());
            let (id, free) = register_from(app, &email, Some(client)).await;
            (free, signals(app, id).await)
        }
    };
    assert_eq!(from("203.0.113.7").await, (3, vec![]));
    assert_eq!(from("203.0.113.7").await, (3, vec![]));
    assert_eq!(
        from("203.0.113.7").await,
        (0, vec!["signup_ip_burst".to_owned()])
    );
    assert_eq!(from("198.51.100.1").await, (3, vec![]), "another address");
    // IPv6 clients count by their /64.
    assert_eq!(from("2001:db8:1:2::1").await.0, 3);
    assert_eq!(from("2001:db8:1:2:ffff::2").await.0, 3);
    assert_eq!(from("2001:db8:1:2:aaaa:bbbb:cccc:3").await.0, 0);
    assert_eq!(from("2001:db8:1:3::1").await.0, 3);

    // Only keyed hashes are stored, one row per address and day.
    let rows = signup_ip_counts::Entity::find()
        .all(&app.db)
        .await
        .expect("counts");
    assert_eq!(rows.len(), 4);
    let mut counts: Vec<i32> = rows.iter().map(|row| row.signups).collect();
    counts.sort_unstable();
    assert_eq!(counts, [1, 1, 3, 3]);
    for row in &rows {
        assert_eq!(row.ip_hash.len(), 64);
        for text in ["203.0.113.7", "198.51.100.1", "2001:db8"] {
            assert!(!row.ip_hash.contains(text));
        }
    }
    let logs = tests::captured_logs();
    assert!(
        !logs.contains("203.0.113.7"),
        "no client address in the logs"
    );
}

async fn abuse_decisions_are_validated_and_audited_with_ids_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in_admin().await;
    let admin_id = app.account_id(&admin).await;
    let email = format!("flagged-{}@yopmail.com", tag());
    let (id, _) = register(&app, &email).await;
    for body in [
        json!({"decision": "maybe"}),
        json!({}),
        json!({"decision": "allow", "note": "x".repeat(501)}),
        json!({"decision": "allow", "note": "bad\u{7}bell"}),
        json!({"decision": "allow", "extra": true}),
    ] {
        let code = assert_json_error(decide(&app, &admin, id, body.clone()).await, 422).await;
        assert_eq!(code, "validation_failed", "{body}");
    }
    assert_json_error(
        decide(
            &app,
            &admin,
            AccountId::now_v7(),
            json!({"decision": "allow"}),
        )
        .await,
        404,
    )
    .await;
    assert_json_error(
        decide(&app, &admin, admin_id, json!({"decision": "allow"})).await,
        422,
    )
    .await;
    assert_eq!(granted(&app, id).await, 0, "nothing was decided");

    let note = format!("called them at +1 555 {}", tag());
    let response = decide(&app, &admin, id, json!({"decision": "allow", "note": note})).await;
    assert_eq!(response.status(), 200);
    // The note is the account's: in the admin view, and in the account's own export.
    let view = admin_view(&app, &admin, id).await;
    assert_eq!(view["abuse_review"]["decision"]["note"], note.as_str());
    assert_eq!(
        view["abuse_review"]["decision"]["decided_by"],
        admin_id.to_string()
    );
    let export = app
        .get_as(
            "/api/v1/privacy/export",
            &sign_in(&app, &email).await.access_token,
        )
        .await
        .text()
        .await
        .expect("export");
    assert!(export.contains(&note));
    assert!(
        !export.contains(&admin_id.to_string()),
        "the deciding admin is not the account's data"
    );
    let response = decide(&app, &admin, id, json!({"decision": "deny"})).await;
    assert_eq!(response.status(), 200);
    let audit: Value = app
        .get_as("/api/v1/admin/audit?limit=200", &admin.access_token)
        .await
        .json()
        .await
        .expect("json");
    let decisions: Vec<&Value> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| {
            entry["action"]
                .as_str()
                .is_some_and(|action| action.starts_with("abuse."))
        })
        .collect();
    assert_eq!(decisions.len(), 2, "the refused ones were not audited");
    let actions: Vec<&str> = decisions
        .iter()
        .map(|entry| entry["action"].as_str().expect("action"))
        .collect();
    assert!(actions.contains(&"abuse.allow") && actions.contains(&"abuse.deny"));
    for entry in &decisions {
        assert_eq!(entry["target_id"], id.to_string());
        assert_eq!(entry["admin_id"], admin_id.to_string());
    }
    let audit_text = audit.to_string();
    assert!(!audit_text.contains(&note), "the note is never audited");
    assert!(!tests::captured_logs().contains(&note), "nor logged");
    let view = admin_view(&app, &admin, id).await;
    assert_eq!(view["abuse_review"]["decision"]["decision"], "deny");
    assert_eq!(view["abuse_review"]["decision"]["note"], Value::Null);
}

async fn a_flagged_account_is_told_its_free_interviews_wait_for_a_review(backend: Backend) {
    let fakes = FakeVendors::start_default().await.expect("fakes");
    let url = fakes.anthropic.base_url();
    let app = spawn_app_with(backend, move |settings| {
        settings.anthropic_api_key = Some("sk-ant-test-platform-key".to_owned().into());
        settings.anthropic_base_url = url;
    })
    .await;
    let admin = app.signed_in_admin().await;
    let email = format!("flagged-{}@guerrillamail.com", tag());
    let (id, _) = register(&app, &email).await;
    let user = sign_in(&app, &email).await;
    let interview = app.create_interview(&user).await;
    let (_pending, offer) = WebRtcClient::offer(&WebRtcConfig::loopback())
        .await
        .expect("the client offers");
    let offer = serde_json::to_value(&offer).expect("offer json");
    let code = assert_json_error(post_offer(&app, &user, interview, &offer).await, 402).await;
    assert_eq!(code, "free_interviews_under_review");

    // Allowed, the next offer starts on the platform key and takes one.
    assert_eq!(
        decide(&app, &admin, id, json!({"decision": "allow"}))
            .await
            .status(),
        200
    );
    let (_pending, offer) = WebRtcClient::offer(&WebRtcConfig::loopback())
        .await
        .expect("the client offers");
    let offer = serde_json::to_value(&offer).expect("offer json");
    let response = post_offer(&app, &user, interview, &offer).await;
    assert_eq!(response.status(), 200);
    let me: Value = app.me(&user.access_token).await.json().await.expect("json");
    assert_eq!(me["free_interviews"]["used"], 1);
    let response = app
        .call(
            Method::POST,
            &format!("/api/v1/interviews/{interview}/end"),
            Some(&user.access_token),
            None,
        )
        .await;
    assert!(response.status().is_success());
}
