//! Protects the rights of access, portability, rectification and erasure: the export holds every
//! table of the account (so a new table cannot be forgotten) and no secrets; profile, e-mail and
//! password can be corrected under the right checks; erasure removes every row of the account
//! and nothing of anyone else.

use api::accounts::tables;
use engine::{AccountId, InterviewId};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::fixtures::{FIXTURE_RESUME_TEXT, FIXTURE_SEGMENT_TEXT, populate_every_table};
use tests::{
    Backend, PASSWORD, TestApp, assert_json_error, db_tests, refresh_cookie, spawn_app,
    unique_email,
};
use uuid::Uuid;

db_tests!(
    export_contains_every_table_and_no_secrets,
    export_is_a_download_with_a_filename,
    display_name_can_be_corrected,
    email_change_needs_the_current_password_and_stays_unique,
    password_change_needs_the_current_password_and_revokes_every_session,
    erasure_deletes_every_row_of_the_account_and_nothing_else,
    erasure_with_a_wrong_password_deletes_nothing,
);

/// A statement with one positional parameter per `$n`, in the backend's placeholder syntax.
fn statement(app: &TestApp, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let backend = app.db.get_database_backend();
    let sql = if backend == sea_orm::DatabaseBackend::Sqlite {
        (1..=values.len()).fold(sql.to_owned(), |sql, n| sql.replace(&format!("${n}"), "?"))
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Registers through the API, then gives that account rows in every table: the fixture fills
/// every table for a twin account, and the twin's rows are moved over where a column names the
/// account (rows keyed by the account id, which the real account already has, stay the twin's).
async fn user_with_data_everywhere(app: &TestApp) -> (tests::Session, AccountId) {
    let session = app.signed_in_user().await;
    let account_id = app.account_id(&session).await;
    let twin = AccountId::now_v7();
    populate_every_table(&app.db, twin).await;
    for table in &tables::names() {
        for column in ["account_id", "target_id"] {
            let sql = format!("UPDATE {table} SET {column} = $1 WHERE {column} = $2");
            // Fails harmlessly where the table has no such column or the account has its row.
            let _ = app
                .db
                .execute_raw(statement(app, &sql, vec![account_id.into(), twin.into()]))
                .await;
        }
    }
    (session, account_id)
}

async fn export_contains_every_table_and_no_secrets(backend: Backend) {
    let app = spawn_app(backend).await;
    let (session, account_id) = user_with_data_everywhere(&app).await;
    let response = app
        .get_as("/api/v1/privacy/export", &session.access_token)
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    let export: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(export["format"], "interviewcraft.export.v1");
    assert_eq!(export["account_id"], account_id.to_string());
    let tables = export["tables"].as_object().expect("tables object");
    let mut exported: Vec<&str> = tables.keys().map(String::as_str).collect();
    exported.sort();
    // Every table but the retained ones that name no account (keyed hashes of the abuse ledger
    // and the sign-up counts): nothing in them can be tied to the account.
    let mut expected: Vec<&str> = tables::exported_names();
    expected.sort();
    assert_eq!(
        exported, expected,
        "the export has exactly one section per table"
    );
    for unlinked in tables::UNLINKED {
        assert!(
            !tables.contains_key(*unlinked),
            "{unlinked} is not exported"
        );
    }
    for table in &tables::exported_names() {
        let rows = tables[*table].as_array().expect("array");
        assert!(!rows.is_empty(), "the export's {table} section is empty");
    }
    assert!(
        text.contains(FIXTURE_SEGMENT_TEXT),
        "transcripts are exported"
    );
    assert!(
        text.contains(FIXTURE_RESUME_TEXT),
        "resume text is exported"
    );
    assert!(text.contains(&session.email));
    for secret_field in ["password_hash", "token_hash", "ciphertext", "\"nonce\""] {
        assert!(
            !text.contains(secret_field),
            "{secret_field} must not be exported"
        );
    }
    assert!(!text.contains(&session.refresh_token));
}

async fn export_is_a_download_with_a_filename(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let response = app
        .get_as("/api/v1/privacy/export", &session.access_token)
        .await;
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .expect("Content-Disposition")
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(
        disposition.contains("filename=\"interviewcraft-export-"),
        "{disposition}"
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_json_error(app.get("/api/v1/privacy/export").await, 401).await;
}

async fn display_name_can_be_corrected(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let token = Some(session.access_token.as_str());
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            token,
            Some(&json!({"display_name": "  Ada L. "})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["display_name"], "Ada L.");
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            token,
            Some(&json!({"display_name": "x".repeat(101)})),
        )
        .await;
    assert_json_error(response, 422).await;
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            token,
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_json_error(response, 422).await;
    let me: Value = app
        .me(&session.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "user");
}

async fn email_change_needs_the_current_password_and_stays_unique(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let other = app.signed_in_user().await;
    let token = Some(session.access_token.as_str());
    let new_email = unique_email();
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            token,
            Some(&json!({"email": new_email})),
        )
        .await;
    assert_json_error(response, 422).await;
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            token,
            Some(&json!({"email": new_email, "current_password": "not my password"})),
        )
        .await;
    assert_json_error(response, 403).await;
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            token,
            Some(&json!({"email": other.email.to_uppercase(), "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(assert_json_error(response, 409).await, "email_taken");
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            token,
            Some(&json!({"email": new_email, "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.login(&new_email, PASSWORD).await.status(), 200);
    assert_json_error(app.login(&session.email, PASSWORD).await, 401).await;
}

async fn password_change_needs_the_current_password_and_revokes_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let second = app.login(&session.email, PASSWORD).await;
    let second_refresh = refresh_cookie(second.headers()).expect("cookie").value;
    let token = Some(session.access_token.as_str());
    let new_password = "a brand new passphrase";
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            token,
            Some(&json!({"new_password": new_password, "current_password": "wrong one!!"})),
        )
        .await;
    assert_json_error(response, 403).await;
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            token,
            Some(&json!({"new_password": "short", "current_password": PASSWORD})),
        )
        .await;
    assert_json_error(response, 422).await;
    let response = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            token,
            Some(&json!({"new_password": new_password, "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), 200);
    for refresh in [&session.refresh_token, &second_refresh] {
        assert_json_error(app.refresh(Some(refresh)).await, 401).await;
    }
    assert_json_error(app.login(&session.email, PASSWORD).await, 401).await;
    assert_eq!(app.login(&session.email, new_password).await.status(), 200);
    // The access token issued before the change no longer works anywhere.
    assert_json_error(
        app.get_as("/api/v1/settings", &session.access_token).await,
        401,
    )
    .await;
}

/// Every row, in any table, that names `ids` in a column that can reference an account or an
/// interview: `(table.column, count)` for each non-zero count.
async fn rows_referencing(app: &TestApp, ids: &[Uuid]) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    for table in &tables::names() {
        for column in ["id", "account_id", "target_id", "interview_id"] {
            for id in ids {
                let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = $1");
                let Ok(Some(row)) = app
                    .db
                    .query_one_raw(statement(app, &sql, vec![(*id).into()]))
                    .await
                else {
                    continue; // the table has no such column
                };
                let count: i64 = row.try_get("", "n").expect("count");
                if count > 0 {
                    found.push((format!("{table}.{column}"), count));
                }
            }
        }
    }
    found
}

async fn interview_ids(app: &TestApp, account_id: AccountId) -> Vec<InterviewId> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    entities::interviews::Entity::find()
        .filter(entities::interviews::Column::AccountId.eq(account_id))
        .all(&app.db)
        .await
        .expect("query")
        .into_iter()
        .map(|interview| interview.id)
        .collect()
}

async fn erasure_deletes_every_row_of_the_account_and_nothing_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let (session, account_id) = user_with_data_everywhere(&app).await;
    let (_bystander, bystander_id) = user_with_data_everywhere(&app).await;
    let mut doomed_ids = vec![account_id.as_uuid()];
    doomed_ids.extend(
        interview_ids(&app, account_id)
            .await
            .into_iter()
            .map(Uuid::from),
    );
    assert!(doomed_ids.len() > 1, "the account has interviews");
    let mut before = std::collections::HashMap::new();
    for table in &tables::names() {
        before.insert(*table, app.count_rows(table).await);
    }
    let response = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&session.access_token),
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let cleared = refresh_cookie(response.headers()).expect("cookie cleared");
    assert!(cleared.value.is_empty());
    // Nothing of the account remains, except the id-only audit trail of staff actions on it.
    let remaining: Vec<(String, i64)> = rows_referencing(&app, &doomed_ids)
        .await
        .into_iter()
        .filter(|(column, _)| column != "admin_audit.target_id")
        .collect();
    assert!(remaining.is_empty(), "left behind: {remaining:?}");
    for table in &tables::names() {
        let after = app.count_rows(table).await;
        if tables::retained_names().contains(table) {
            assert_eq!(after, before[table], "{table} is not account data");
        } else {
            assert!(
                after < before[table],
                "{table} lost the erased account's rows"
            );
            assert!(after > 0, "{table} kept the bystander's rows");
        }
    }
    assert!(
        !rows_referencing(&app, &[bystander_id.into()])
            .await
            .is_empty()
    );
    // The erased account can no longer do anything.
    assert_json_error(app.login(&session.email, PASSWORD).await, 401).await;
    assert_json_error(app.refresh(Some(&session.refresh_token)).await, 401).await;
    assert_json_error(app.me(&session.access_token).await, 401).await;
    assert_json_error(
        app.get_as("/api/v1/privacy/export", &session.access_token)
            .await,
        401,
    )
    .await;
}

async fn erasure_with_a_wrong_password_deletes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    for body in [json!({"password": "not my password"}), json!({})] {
        let response = app
            .call(
                Method::DELETE,
                "/api/v1/me",
                Some(&session.access_token),
                Some(&body),
            )
            .await;
        let status = response.status().as_u16();
        assert!(status == 403 || status == 422, "{status}");
        assert_json_error(response, status).await;
    }
    assert_eq!(app.count_rows("accounts").await, 1);
    assert_eq!(app.me(&session.access_token).await.status(), 200);
}
