//! Protects policy versioning (a current version, acceptance at sign-up, changes announced in
//! `/api/v1/me` at least 14 days ahead) and the admin API: admin-only (403 for users, role checked
//! against the database), every action audited with ids only, and the account actions themselves.

use chrono::{Duration, Utc};
use engine::AccountId;
use entities::admin_audit;
use reqwest::Method;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use tests::{Backend, PASSWORD, TestApp, assert_json_error, db_tests, spawn_app};

db_tests!(
    a_fresh_server_has_a_policy_in_force_and_sign_up_accepts_it,
    policy_changes_need_fourteen_days_notice_and_are_announced_in_me,
    every_admin_route_is_forbidden_to_users_and_unauthorized_without_a_token,
    a_demoted_admin_loses_admin_access_at_once,
    admin_can_search_view_export_disable_enable_and_erase,
    admin_actions_are_audited_with_ids_only,
);

async fn a_fresh_server_has_a_policy_in_force_and_sign_up_accepts_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/api/v1/policy").await;
    assert_eq!(response.status(), 200);
    let policy: Value = response.json().await.expect("json");
    assert_eq!(policy["current"]["version"]["version"], "2026-11-01");
    assert!(
        policy["current"]["body"]
            .as_str()
            .expect("body")
            .contains("14 days")
    );
    // The policy says that a keyed hash of the mailbox outlives an erasure, and why.
    assert!(
        policy["current"]["body"]
            .as_str()
            .expect("body")
            .contains("Preventing abuse of the free interviews")
    );
    assert_eq!(policy["notice_days"], 14);
    let session = app.signed_in_user().await;
    let me: Value = app
        .me(&session.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["policy"]["current_version"], "2026-11-01");
    assert_eq!(me["policy"]["accepted_current"], true);
    assert_eq!(me["policy"]["upcoming"], json!([]));
}

async fn publish(app: &TestApp, token: &str, version: &str, days_ahead: i64) -> reqwest::Response {
    app.call(
        Method::POST,
        "/api/v1/admin/policies",
        Some(token),
        Some(&json!({
            "version": version,
            "title": "InterviewCraft privacy policy",
            "summary": "We now delete word timestamps after 7 days.",
            "body": "The full text.",
            "effective_at": Utc::now() + Duration::days(days_ahead),
        })),
    )
    .await
}

async fn policy_changes_need_fourteen_days_notice_and_are_announced_in_me(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in_admin().await;
    let user = app.signed_in_user().await;
    assert_json_error(publish(&app, &admin.access_token, "2027-01", 13).await, 422).await;
    let response = publish(&app, &admin.access_token, "2027-01", 15).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        assert_json_error(publish(&app, &admin.access_token, "2027-01", 30).await, 409).await,
        "policy_version_exists"
    );
    let me: Value = app.me(&user.access_token).await.json().await.expect("json");
    assert_eq!(
        me["policy"]["current_version"], "2026-11-01",
        "not in force yet"
    );
    assert_eq!(me["policy"]["upcoming"][0]["version"], "2027-01");
    assert_eq!(
        me["policy"]["upcoming"][0]["summary"],
        "We now delete word timestamps after 7 days."
    );
    let policy: Value = app.get("/api/v1/policy").await.json().await.expect("json");
    assert_eq!(policy["upcoming"][0]["version"]["version"], "2027-01");
    // Accepting records the acceptance; an unknown version is 404.
    let response = app
        .call(
            Method::POST,
            "/api/v1/policy/accept",
            Some(&user.access_token),
            Some(&json!({"version": "2027-01"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.count_rows("policy_acceptances").await,
        3,
        "two sign-ups + one acceptance"
    );
    let response = app
        .call(
            Method::POST,
            "/api/v1/policy/accept",
            Some(&user.access_token),
            Some(&json!({"version": "1999"})),
        )
        .await;
    assert_json_error(response, 404).await;
}

/// Every admin route with a method and body.
fn admin_routes(target: AccountId) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::GET,
            "/api/v1/admin/users?query=example".into(),
            None,
        ),
        (Method::GET, format!("/api/v1/admin/users/{target}"), None),
        (
            Method::GET,
            format!("/api/v1/admin/users/{target}/export"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/users/{target}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{target}/disable"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{target}/enable"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{target}/abuse-decision"),
            Some(json!({"decision": "allow", "note": "looks fine"})),
        ),
        (Method::GET, "/api/v1/admin/audit".into(), None),
        (Method::GET, "/api/v1/admin/usage?days=7".into(), None),
        (
            Method::POST,
            "/api/v1/admin/policies".into(),
            Some(
                json!({"version": "x", "title": "t", "body": "b", "effective_at": Utc::now() + Duration::days(30)}),
            ),
        ),
    ]
}

async fn every_admin_route_is_forbidden_to_users_and_unauthorized_without_a_token(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let user = app.signed_in_user().await;
    let victim = app.signed_in_user().await;
    let victim_id = app.account_id(&victim).await;
    for (method, path, body) in admin_routes(victim_id) {
        let response = app
            .call(
                method.clone(),
                &path,
                Some(&user.access_token),
                body.as_ref(),
            )
            .await;
        assert_eq!(
            assert_json_error(response, 403).await,
            "forbidden",
            "{method} {path}"
        );
        let response = app.call(method.clone(), &path, None, body.as_ref()).await;
        assert_json_error(response, 401).await;
    }
    // Nothing happened to the victim, and nothing was audited.
    assert_eq!(app.me(&victim.access_token).await.status(), 200);
    assert_eq!(app.count_rows("admin_audit").await, 0);
    assert_eq!(app.count_rows("policy_versions").await, 1);
}

async fn a_demoted_admin_loses_admin_access_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in_admin().await;
    assert_eq!(
        app.get_as("/api/v1/admin/audit", &admin.access_token)
            .await
            .status(),
        200
    );
    let admin_id = app.account_id(&admin).await;
    let mut row: entities::accounts::ActiveModel = entities::accounts::Entity::find_by_id(admin_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("row")
        .into();
    row.role = sea_orm::ActiveValue::Set(entities::accounts::Role::User);
    sea_orm::ActiveModelTrait::update(row, &app.db)
        .await
        .expect("demote");
    // The access token still says admin, but the database decides.
    assert_json_error(
        app.get_as("/api/v1/admin/audit", &admin.access_token).await,
        403,
    )
    .await;
}

async fn admin_can_search_view_export_disable_enable_and_erase(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in_admin().await;
    let token = Some(admin.access_token.as_str());
    let user = app.signed_in_user().await;
    let user_id = app.account_id(&user).await;

    let local_part = user.email.split('@').next().expect("local part");
    let response = app
        .get_as(
            &format!(
                "/api/v1/admin/users?query={}",
                &local_part[..12].to_uppercase()
            ),
            &admin.access_token,
        )
        .await;
    let found: Value = response.json().await.expect("json");
    let users = found["users"].as_array().expect("users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["id"], user_id.to_string());
    // LIKE wildcards in the query are literal.
    let found: Value = app
        .get_as("/api/v1/admin/users?query=%25", &admin.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(found["users"], json!([]));
    assert_json_error(
        app.get_as("/api/v1/admin/users?limit=0", &admin.access_token)
            .await,
        422,
    )
    .await;

    let summary: Value = app
        .get_as(
            &format!("/api/v1/admin/users/{user_id}"),
            &admin.access_token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(summary["counts"]["interviews"], 0);
    assert_eq!(summary["abuse_signals"], json!([]));
    assert_eq!(summary["live_interviews"], json!([]));
    assert!(summary.get("transcripts").is_none());
    let response = app
        .get_as(
            &format!("/api/v1/admin/users/{user_id}/export"),
            &admin.access_token,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-disposition").is_some());
    let export: Value = response.json().await.expect("json");
    assert_eq!(export["account_id"], user_id.to_string());

    let response = app
        .call(
            Method::POST,
            &format!("/api/v1/admin/users/{user_id}/disable"),
            token,
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_json_error(app.login(&user.email, PASSWORD).await, 403).await;
    // A disabled account's still-unexpired access token is refused at once, on every route.
    assert_json_error(
        app.get_as("/api/v1/settings", &user.access_token).await,
        401,
    )
    .await;
    assert_json_error(
        app.get_as("/api/v1/privacy/export", &user.access_token)
            .await,
        401,
    )
    .await;
    assert_json_error(app.refresh(Some(&user.refresh_token)).await, 401).await;
    let response = app
        .call(
            Method::POST,
            &format!("/api/v1/admin/users/{user_id}/enable"),
            token,
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), 200);

    let admin_id = app.account_id(&admin).await;
    let response = app
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/users/{admin_id}"),
            token,
            None,
        )
        .await;
    assert_json_error(response, 422).await;
    let response = app
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/users/{user_id}"),
            token,
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_json_error(app.login(&user.email, PASSWORD).await, 401).await;
    let response = app
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/users/{user_id}"),
            token,
            None,
        )
        .await;
    assert_json_error(response, 404).await;
    let response = app
        .get_as("/api/v1/admin/users/not-a-uuid", &admin.access_token)
        .await;
    assert_json_error(response, 404).await;
}

async fn admin_actions_are_audited_with_ids_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.signed_in_admin().await;
    let admin_id = app.account_id(&admin).await;
    let user = app.signed_in_user().await;
    let user_id = app.account_id(&user).await;
    let token = Some(admin.access_token.as_str());
    let local_part = user.email.split('@').next().expect("local part").to_owned();
    app.get_as(
        &format!("/api/v1/admin/users?query={local_part}"),
        &admin.access_token,
    )
    .await;
    app.get_as(
        &format!("/api/v1/admin/users/{user_id}"),
        &admin.access_token,
    )
    .await;
    app.get_as(
        &format!("/api/v1/admin/users/{user_id}/export"),
        &admin.access_token,
    )
    .await;
    app.call(
        Method::POST,
        &format!("/api/v1/admin/users/{user_id}/disable"),
        token,
        None,
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/api/v1/admin/users/{user_id}"),
        token,
        None,
    )
    .await;

    let rows = admin_audit::Entity::find()
        .all(&app.db)
        .await
        .expect("rows");
    let mut actions: Vec<&str> = rows.iter().map(|row| row.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "user.disable",
            "user.erase",
            "user.export",
            "user.view",
            "users.search"
        ]
    );
    assert!(rows.iter().all(|row| row.admin_id == admin_id));
    assert!(
        rows.iter()
            .filter(|row| row.action != "users.search")
            .all(|row| row.target_id == Some(user_id.into()))
    );
    // The audit read back over the API holds no e-mail or search term.
    let response = app.get_as("/api/v1/admin/audit", &admin.access_token).await;
    let text = response.text().await.expect("body");
    assert!(!text.contains(&local_part));
    assert!(!text.contains("example.com"));
    let audit: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(audit["entries"].as_array().expect("entries").len(), 5);
}
