//! Protects consent and objection (settings with change times and an auditable history) and the
//! BYOK key promises: keys are encrypted with AES-256-GCM bound to the account, shown only by their
//! last four characters, never in a response, log or database column in plaintext, and the master
//! key can be rotated.

use engine::AccountId;
use engine::byok_cipher::{EncryptedKey, KeyRing, MasterKey};
use entities::{byok_keys, consent_events, skill_history};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tests::fixtures::populate_every_table;
use tests::{Backend, assert_json_error, captured_logs, db_tests, spawn_app};

db_tests!(
    settings_default_to_no_digest_no_training_and_skill_tracking_on,
    changing_a_consent_records_when_and_appends_to_the_history,
    objecting_to_skill_tracking_deletes_the_skill_history,
    settings_reject_unknown_voices_and_fields,
    byok_key_is_stored_encrypted_and_shown_only_by_its_last_four,
    byok_plaintext_never_reaches_responses_logs_or_the_database,
    byok_keys_can_be_replaced_and_deleted,
    byok_rejects_unknown_providers_and_implausible_keys,
    rotate_keys_reencrypts_every_row_under_the_new_master_key,
);

async fn settings_default_to_no_digest_no_training_and_skill_tracking_on(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let response = app.get_as("/api/v1/settings", &session.access_token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["digest_opt_in"], false);
    assert_eq!(body["training_opt_in"], false);
    assert_eq!(body["skill_tracking"], true);
    assert_eq!(body["interviewer_voice"], "default");
    assert_json_error(app.get("/api/v1/settings").await, 401).await;
}

async fn changing_a_consent_records_when_and_appends_to_the_history(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let before: Value = app
        .get_as("/api/v1/settings", &session.access_token)
        .await
        .json()
        .await
        .expect("json");
    let patch =
        json!({"digest_opt_in": true, "training_opt_in": true, "interviewer_voice": "warm"});
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/settings",
            Some(&session.access_token),
            Some(&patch),
        )
        .await;
    assert_eq!(response.status(), 200);
    let after: Value = response.json().await.expect("json");
    assert_eq!(after["digest_opt_in"], true);
    assert_eq!(after["training_opt_in"], true);
    assert_eq!(after["interviewer_voice"], "warm");
    assert_ne!(
        after["digest_opt_in_changed_at"],
        before["digest_opt_in_changed_at"]
    );
    assert_ne!(
        after["training_opt_in_changed_at"],
        before["training_opt_in_changed_at"]
    );
    assert_eq!(
        after["skill_tracking_changed_at"],
        before["skill_tracking_changed_at"]
    );
    // Withdrawing one consent and repeating an unchanged value.
    let patch = json!({"training_opt_in": false, "digest_opt_in": true});
    app.call(
        Method::PATCH,
        "/api/v1/settings",
        Some(&session.access_token),
        Some(&patch),
    )
    .await;
    let account_id = app.account_id(&session).await;
    let events = consent_events::Entity::find()
        .filter(consent_events::Column::AccountId.eq(account_id))
        .all(&app.db)
        .await
        .expect("query");
    let mut history: Vec<(String, bool)> = events
        .iter()
        .map(|e| (e.purpose.clone(), e.granted))
        .collect();
    history.sort();
    assert_eq!(
        history,
        vec![
            ("digest".to_owned(), true),
            ("training".to_owned(), false),
            ("training".to_owned(), true)
        ]
    );
    // The history is part of the export.
    let export: Value = app
        .get_as("/api/v1/privacy/export", &session.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        export["tables"]["consent_events"]
            .as_array()
            .expect("array")
            .len(),
        3
    );
}

async fn objecting_to_skill_tracking_deletes_the_skill_history(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let account_id = app.account_id(&session).await;
    let other = AccountId::now_v7();
    populate_every_table(&app.db, other).await;
    // Give our account skill history too.
    let sample = skill_history::Entity::find()
        .one(&app.db)
        .await
        .expect("query")
        .expect("fixture row");
    let mut row: skill_history::ActiveModel = sample.into();
    row.id = sea_orm::ActiveValue::Set(uuid::Uuid::now_v7());
    row.account_id = sea_orm::ActiveValue::Set(account_id);
    row.interview_id = sea_orm::ActiveValue::Set(None);
    sea_orm::ActiveModelTrait::insert(row, &app.db)
        .await
        .expect("insert");

    let patch = json!({"skill_tracking": false});
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/settings",
            Some(&session.access_token),
            Some(&patch),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mine = skill_history::Entity::find()
        .filter(skill_history::Column::AccountId.eq(account_id))
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(mine, 0, "the objecting account's history is gone");
    let theirs = skill_history::Entity::find()
        .filter(skill_history::Column::AccountId.eq(other))
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(theirs, 1, "other accounts keep theirs");
}

async fn settings_reject_unknown_voices_and_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    for patch in [
        json!({"interviewer_voice": "robot"}),
        json!({"digest_opt_in": "yes"}),
        json!({"account_id": uuid::Uuid::new_v4()}),
    ] {
        let response = app
            .call(
                Method::PATCH,
                "/api/v1/settings",
                Some(&session.access_token),
                Some(&patch),
            )
            .await;
        assert_json_error(response, 422).await;
    }
}

const ANTHROPIC_KEY: &str = "sk-ant-api03-THISISAFAKEKEYFORTESTS-0123456789-QWER";

async fn byok_key_is_stored_encrypted_and_shown_only_by_its_last_four(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let account_id = app.account_id(&session).await;
    let response = app
        .call(
            Method::PUT,
            "/api/v1/settings/keys/anthropic",
            Some(&session.access_token),
            Some(&json!({"api_key": ANTHROPIC_KEY})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({
            "provider": "anthropic",
            "last_four": "QWER",
            "created_at": body["created_at"],
            "updated_at": body["updated_at"],
        })
    );
    let listed: Value = app
        .get_as("/api/v1/settings/keys", &session.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["keys"][0]["provider"], "anthropic");
    assert_eq!(listed["keys"][0]["last_four"], "QWER");

    let row = byok_keys::Entity::find()
        .filter(byok_keys::Column::AccountId.eq(account_id))
        .one(&app.db)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.nonce.len(), 12, "96-bit nonce");
    assert_eq!(
        row.ciphertext.len(),
        ANTHROPIC_KEY.len() + 16,
        "ciphertext plus GCM tag"
    );
    // The decrypt API the engine's key lease will call gives the key back, for this account only.
    let ring = app_key_ring(&app);
    let stored = EncryptedKey {
        ciphertext: row.ciphertext.clone(),
        nonce: row.nonce.clone(),
        key_id: row.key_id.clone(),
    };
    let secret = ring
        .decrypt(account_id, "anthropic", &stored)
        .expect("decrypts");
    assert_eq!(secret.expose_secret(), ANTHROPIC_KEY);
    assert!(
        ring.decrypt(uuid::Uuid::new_v4().into(), "anthropic", &stored)
            .is_err()
    );
}

fn app_key_ring(app: &tests::TestApp) -> KeyRing {
    let secret = app
        .settings
        .key_encryption_key
        .as_ref()
        .expect("test settings carry a master key");
    KeyRing::new(
        MasterKey::from_base64(secret.expose_secret()).expect("valid"),
        vec![],
    )
}

async fn byok_plaintext_never_reaches_responses_logs_or_the_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let key = format!("dg-{}-{}", uuid::Uuid::new_v4().simple(), "PLAINTEXTMARK");
    let put = app
        .call(
            Method::PUT,
            "/api/v1/settings/keys/deepgram",
            Some(&session.access_token),
            Some(&json!({"api_key": key})),
        )
        .await
        .text()
        .await
        .expect("body");
    let list = app
        .get_as("/api/v1/settings/keys", &session.access_token)
        .await
        .text()
        .await
        .expect("body");
    let export = app
        .get_as("/api/v1/privacy/export", &session.access_token)
        .await
        .text()
        .await
        .expect("body");
    // A bad request carrying the key in a wrong-typed field must not echo it either.
    let bad = app
        .call(
            Method::PUT,
            "/api/v1/settings/keys/deepgram",
            Some(&session.access_token),
            Some(&json!({"api_key": key, "extra": key})),
        )
        .await
        .text()
        .await
        .expect("body");
    let stored = byok_keys::Entity::find().all(&app.db).await.expect("rows");
    let stored_bytes: Vec<u8> = stored
        .iter()
        .flat_map(|row| {
            [
                row.ciphertext.clone(),
                row.nonce.clone(),
                row.last_four.clone().into_bytes(),
            ]
        })
        .flatten()
        .collect();
    let logs = captured_logs();
    assert!(
        logs.contains("API key stored"),
        "the capture saw the request"
    );
    for (where_, text) in [
        ("PUT response", &put),
        ("list", &list),
        ("export", &export),
        ("error", &bad),
        ("logs", &logs),
    ] {
        assert!(!text.contains(&key), "the key appeared in the {where_}");
        assert!(
            !text.contains("PLAINTEXTMARK"),
            "part of the key appeared in the {where_}"
        );
    }
    assert!(
        !stored_bytes
            .windows(13)
            .any(|window| window == b"PLAINTEXTMARK")
    );
}

async fn byok_keys_can_be_replaced_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let token = Some(session.access_token.as_str());
    for (key, last_four) in [
        ("first-elevenlabs-key-000000-AAAA", "AAAA"),
        ("second-elevenlabs-key-00000-BBBB", "BBBB"),
    ] {
        let response = app
            .call(
                Method::PUT,
                "/api/v1/settings/keys/elevenlabs",
                token,
                Some(&json!({"api_key": key})),
            )
            .await;
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["last_four"], last_four);
    }
    assert_eq!(
        app.count_rows("byok_keys").await,
        1,
        "replaced, not duplicated"
    );
    let response = app
        .call(
            Method::DELETE,
            "/api/v1/settings/keys/elevenlabs",
            token,
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.count_rows("byok_keys").await, 0);
    let response = app
        .call(
            Method::DELETE,
            "/api/v1/settings/keys/elevenlabs",
            token,
            None,
        )
        .await;
    assert_json_error(response, 404).await;
}

async fn byok_rejects_unknown_providers_and_implausible_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let token = Some(session.access_token.as_str());
    let cases = [
        (
            "/api/v1/settings/keys/openai",
            json!({"api_key": ANTHROPIC_KEY}),
        ),
        (
            "/api/v1/settings/keys/anthropic",
            json!({"api_key": "too-short"}),
        ),
        (
            "/api/v1/settings/keys/anthropic",
            json!({"api_key": "has spaces inside the key value ok"}),
        ),
        ("/api/v1/settings/keys/anthropic", json!({"api_key": 12345})),
        ("/api/v1/settings/keys/anthropic", json!({})),
    ];
    for (path, body) in cases {
        let response = app.call(Method::PUT, path, token, Some(&body)).await;
        assert_json_error(response, 422).await;
    }
    assert_eq!(app.count_rows("byok_keys").await, 0);
}

async fn rotate_keys_reencrypts_every_row_under_the_new_master_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in_user().await;
    let bob = app.signed_in_user().await;
    for (session, provider) in [
        (&alice, "anthropic"),
        (&bob, "deepgram"),
        (&bob, "elevenlabs"),
    ] {
        let response = app
            .call(
                Method::PUT,
                &format!("/api/v1/settings/keys/{provider}"),
                Some(&session.access_token),
                Some(&json!({"api_key": format!("{provider}-key-{}", uuid::Uuid::new_v4().simple())})),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let old = app_key_ring(&app);
    let old_master = MasterKey::from_base64(
        app.settings
            .key_encryption_key
            .as_ref()
            .expect("key")
            .expose_secret(),
    )
    .expect("valid");
    let new_master = MasterKey::from_bytes([42; 32]);
    let rotating = KeyRing::new(new_master.clone(), vec![old_master]);
    let report = api::admin::rotate_keys(&app.db, &rotating)
        .await
        .expect("rotation");
    assert_eq!(
        report,
        api::admin::RotationReport {
            rotated: 3,
            current: 0
        }
    );
    let again = api::admin::rotate_keys(&app.db, &rotating)
        .await
        .expect("idempotent");
    assert_eq!(
        again,
        api::admin::RotationReport {
            rotated: 0,
            current: 3
        }
    );
    let after = KeyRing::new(new_master, vec![]);
    for row in byok_keys::Entity::find().all(&app.db).await.expect("rows") {
        assert_eq!(row.key_id, after.current_key_id());
        let stored = EncryptedKey {
            ciphertext: row.ciphertext,
            nonce: row.nonce,
            key_id: row.key_id,
        };
        assert!(
            after
                .decrypt(row.account_id, &row.provider, &stored)
                .is_ok()
        );
        assert!(old.decrypt(row.account_id, &row.provider, &stored).is_err());
    }
}
