//! Protects the sign-in flow: registration rules, login, the refresh cookie's flags, rotation and
//! reuse detection, logout, token validation, lockout and per-IP rate limits.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use entities::{accounts, refresh_tokens};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tests::{
    Backend, PASSWORD, assert_json_error, db_tests, refresh_cookie, spawn_app, spawn_app_with,
    unique_email,
};

db_tests!(
    register_returns_201_and_normalizes_the_email,
    register_rejects_a_duplicate_email_case_insensitively,
    register_requires_age_confirmation,
    register_rejects_weak_passwords_and_bad_emails,
    password_is_stored_only_as_a_bcrypt_hash,
    new_account_gets_default_settings_and_free_quota,
    second_account_for_one_mailbox_gets_no_free_interviews,
    login_returns_a_bearer_token_and_a_locked_down_refresh_cookie,
    login_with_wrong_password_or_unknown_email_is_the_same_401,
    me_returns_the_profile_for_a_valid_token,
    me_rejects_missing_tampered_alg_none_wrong_audience_and_expired_tokens,
    refresh_rotates_the_cookie_and_issues_a_new_access_token,
    reusing_a_rotated_refresh_token_revokes_the_whole_family,
    a_second_exchange_within_the_reuse_window_gets_the_same_successor,
    two_concurrent_refreshes_with_one_cookie_keep_the_user_signed_in,
    refresh_without_or_with_unknown_or_expired_cookie_is_401,
    logout_revokes_the_session_and_clears_the_cookie,
    repeated_failures_make_that_client_wait_without_locking_out_the_owner_or_revealing_the_email,
    password_rechecks_on_me_are_limited_per_account_and_client,
    auth_routes_are_rate_limited_per_client_ip,
    disabled_account_cannot_sign_in,
    production_marks_the_refresh_cookie_secure,
);

async fn register_returns_201_and_normalizes_the_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let local = format!("Mixed.Case-{}", uuid::Uuid::new_v4().simple());
    let response = app
        .register(&format!("  {local}@Example.COM "), PASSWORD)
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["email"],
        format!("{}@example.com", local.to_lowercase())
    );
    assert!(body["id"].as_str().is_some());
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
}

async fn register_rejects_a_duplicate_email_case_insensitively(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    assert_eq!(app.register(&email, PASSWORD).await.status(), 201);
    let code = assert_json_error(app.register(&email.to_uppercase(), PASSWORD).await, 409).await;
    assert_eq!(code, "email_taken");
    assert_eq!(app.count_rows("accounts").await, 1);
}

async fn register_requires_age_confirmation(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": unique_email(), "password": PASSWORD, "age_confirmed": false}),
        )
        .await;
    assert_eq!(assert_json_error(response, 422).await, "validation_failed");
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": unique_email(), "password": PASSWORD}),
        )
        .await;
    assert_eq!(assert_json_error(response, 422).await, "validation_failed");
    assert_eq!(app.count_rows("accounts").await, 0);
}

async fn register_rejects_weak_passwords_and_bad_emails(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    for password in ["short", "123456789", email.as_str(), &"x".repeat(100)] {
        let response = app.register(&email, password).await;
        assert_eq!(
            assert_json_error(response, 422).await,
            "validation_failed",
            "{password:?}"
        );
    }
    for bad_email in [
        "",
        "no-at-sign",
        "a@b",
        "two@@example.com",
        "sp ace@example.com",
    ] {
        let response = app.register(bad_email, PASSWORD).await;
        assert_eq!(
            assert_json_error(response, 422).await,
            "validation_failed",
            "{bad_email:?}"
        );
    }
    assert_eq!(app.count_rows("accounts").await, 0);
}

async fn password_is_stored_only_as_a_bcrypt_hash(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    assert_eq!(app.register(&email, PASSWORD).await.status(), 201);
    let account = accounts::Entity::find()
        .filter(accounts::Column::Email.eq(email.as_str()))
        .one(&app.db)
        .await
        .expect("query")
        .expect("account exists");
    assert!(
        account.password_hash.starts_with("$2b$04$"),
        "bcrypt with the configured cost"
    );
    assert!(!account.password_hash.contains(PASSWORD));
    assert!(bcrypt::verify(PASSWORD, &account.password_hash).expect("valid hash"));
}

async fn new_account_gets_default_settings_and_free_quota(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let account = accounts::Entity::find()
        .filter(accounts::Column::Email.eq(session.email.as_str()))
        .one(&app.db)
        .await
        .expect("query")
        .expect("account");
    let settings = entities::account_settings::Entity::find_by_id(account.id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("settings row");
    assert!(!settings.digest_opt_in, "digest is opt-in");
    assert!(!settings.training_opt_in, "training use is opt-in");
    assert!(
        settings.skill_tracking,
        "skill tracking is on until objected to"
    );
    let quota = entities::interview_quotas::Entity::find_by_id(account.id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("quota row");
    assert_eq!(quota.free_interviews_granted, 3);
    assert_eq!(quota.free_interviews_used, 0);
}

async fn second_account_for_one_mailbox_gets_no_free_interviews(backend: Backend) {
    let app = spawn_app(backend).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    assert_eq!(
        app.register(&format!("jane.doe{tag}@gmail.com"), PASSWORD)
            .await
            .status(),
        201
    );
    let response = app
        .register(&format!("janedoe{tag}+again@gmail.com"), PASSWORD)
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    let id: uuid::Uuid = body["id"].as_str().expect("id").parse().expect("uuid");
    let quota = entities::interview_quotas::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("quota row");
    assert_eq!(quota.free_interviews_granted, 0);
    assert_eq!(app.count_rows("abuse_signals").await, 1);
}

async fn login_returns_a_bearer_token_and_a_locked_down_refresh_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let response = app.login(&email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    assert_eq!(
        cookies.len(),
        1,
        "only the refresh cookie is set: {cookies:?}"
    );
    let cookie = refresh_cookie(response.headers()).expect("refresh cookie");
    assert!(cookie.has("HttpOnly"));
    assert_eq!(cookie.attribute("SameSite").as_deref(), Some("Lax"));
    assert_eq!(cookie.attribute("Path").as_deref(), Some("/api/v1/auth"));
    assert!(!cookie.has("Secure"), "plain HTTP in development");
    assert!(cookie.value.len() >= 40);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(token.split('.').count(), 3, "a JWT");
    assert!(
        !cookies[0].contains(token),
        "the access token is never in a cookie"
    );
    assert_eq!(app.me(token).await.status(), 200);
}

async fn login_with_wrong_password_or_unknown_email_is_the_same_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let wrong = app.login(&email, "not the right password").await;
    assert!(refresh_cookie(wrong.headers()).is_none());
    let wrong: Value = {
        assert_eq!(wrong.status(), 401);
        wrong.json().await.expect("json")
    };
    let unknown = app.login(&unique_email(), PASSWORD).await;
    assert_eq!(unknown.status(), 401);
    let unknown: Value = unknown.json().await.expect("json");
    assert_eq!(wrong, unknown, "no hint whether the account exists");
    assert_eq!(wrong["error"]["code"], "invalid_credentials");
}

async fn me_returns_the_profile_for_a_valid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let response = app.me(&session.access_token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["email"], session.email);
    assert_eq!(body["role"], "user");
    assert!(body.get("password_hash").is_none());
}

fn forge(claims: &Value, secret: &str, alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

async fn me_rejects_missing_tampered_alg_none_wrong_audience_and_expired_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let secret = secrecy::ExposeSecret::expose_secret(
        app.settings.jwt_secret.as_ref().expect("test secret"),
    )
    .to_owned();
    let parts: Vec<&str> = session.access_token.split('.').collect();
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64"))
        .expect("claims json");
    let now = Utc::now().timestamp();

    // No header at all, and a non-Bearer scheme.
    let response = app.get("/api/v1/me").await;
    assert!(response.headers().get("www-authenticate").is_some());
    assert_json_error(response, 401).await;
    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .header("authorization", format!("Basic {}", session.access_token))
        .send()
        .await
        .expect("send");
    assert_json_error(response, 401).await;

    // A flipped signature character and a changed payload.
    let mut tampered_signature = parts[2].to_owned();
    let last = tampered_signature.pop().expect("non-empty");
    tampered_signature.push(if last == 'A' { 'B' } else { 'A' });
    let tampered = format!("{}.{}.{}", parts[0], parts[1], tampered_signature);
    assert_json_error(app.me(&tampered).await, 401).await;
    let mut elevated = payload.clone();
    elevated["role"] = json!("admin");
    let elevated_payload = URL_SAFE_NO_PAD.encode(elevated.to_string());
    let tampered = format!("{}.{}.{}", parts[0], elevated_payload, parts[2]);
    assert_json_error(app.me(&tampered).await, 401).await;

    // alg: none.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    assert_json_error(app.me(&format!("{none_header}.{}.", parts[1])).await, 401).await;

    // Right secret, wrong audience / issuer / expired / other algorithm.
    let mut wrong_audience = payload.clone();
    wrong_audience["aud"] = json!("another-service");
    let token = forge(&wrong_audience, &secret, jsonwebtoken::Algorithm::HS256);
    assert_json_error(app.me(&token).await, 401).await;
    let mut wrong_issuer = payload.clone();
    wrong_issuer["iss"] = json!("someone-else");
    let token = forge(&wrong_issuer, &secret, jsonwebtoken::Algorithm::HS256);
    assert_json_error(app.me(&token).await, 401).await;
    let mut expired = payload.clone();
    expired["iat"] = json!(now - 3600);
    expired["exp"] = json!(now - 600);
    let token = forge(&expired, &secret, jsonwebtoken::Algorithm::HS256);
    assert_json_error(app.me(&token).await, 401).await;
    let token = forge(&payload, &secret, jsonwebtoken::Algorithm::HS512);
    assert_json_error(app.me(&token).await, 401).await;
    // The same claims re-signed correctly are accepted: the checks above failed for their reason.
    let token = forge(&payload, &secret, jsonwebtoken::Algorithm::HS256);
    assert_eq!(app.me(&token).await.status(), 200);
}

async fn refresh_rotates_the_cookie_and_issues_a_new_access_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let response = app.refresh(Some(&session.refresh_token)).await;
    assert_eq!(response.status(), 200);
    let rotated = refresh_cookie(response.headers()).expect("a new refresh cookie");
    assert_ne!(rotated.value, session.refresh_token);
    assert!(rotated.has("HttpOnly"));
    assert_eq!(rotated.attribute("Path").as_deref(), Some("/api/v1/auth"));
    let body: Value = response.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(app.me(token).await.status(), 200);
    // The new token works in turn.
    assert_eq!(app.refresh(Some(&rotated.value)).await.status(), 200);
    // Stored hashed only.
    let stored = refresh_tokens::Entity::find()
        .all(&app.db)
        .await
        .expect("query");
    assert_eq!(stored.len(), 3);
    assert!(
        stored
            .iter()
            .all(|row| row.token_hash != rotated.value && row.token_hash.len() == 64)
    );
}

/// Moves every exchange of the account's tokens `seconds` into the past.
async fn backdate_exchanges(app: &tests::TestApp, seconds: i64) {
    refresh_tokens::Entity::update_many()
        .col_expr(
            refresh_tokens::Column::RotatedAt,
            Expr::value(Some(Utc::now() - chrono::Duration::seconds(seconds))),
        )
        .filter(refresh_tokens::Column::RotatedAt.is_not_null())
        .exec(&app.db)
        .await
        .expect("backdate");
}

async fn reusing_a_rotated_refresh_token_revokes_the_whole_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let response = app.refresh(Some(&session.refresh_token)).await;
    let successor = refresh_cookie(response.headers()).expect("rotated").value;
    // Past the reuse window (10 s by default).
    backdate_exchanges(&app, 60).await;

    // A thief replays the old token: refused, and the family is revoked.
    let response = app.refresh(Some(&session.refresh_token)).await;
    let cleared = refresh_cookie(response.headers()).expect("cookie cleared");
    assert!(cleared.value.is_empty());
    assert_eq!(
        assert_json_error(response, 401).await,
        "refresh_token_reused"
    );
    // So the legitimate successor no longer works either.
    let response = app.refresh(Some(&successor)).await;
    assert_eq!(
        assert_json_error(response, 401).await,
        "refresh_token_reused"
    );
    // Other sign-ins of the same account are separate families and keep working.
    let other = app.login(&session.email, PASSWORD).await;
    let other = refresh_cookie(other.headers()).expect("cookie").value;
    assert_eq!(app.refresh(Some(&other)).await.status(), 200);
}

async fn a_second_exchange_within_the_reuse_window_gets_the_same_successor(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let first = app.refresh(Some(&session.refresh_token)).await;
    assert_eq!(first.status(), 200);
    let successor = refresh_cookie(first.headers()).expect("rotated").value;
    // The answer was lost (or a second tab asked): the same token again, moments later.
    let again = app.refresh(Some(&session.refresh_token)).await;
    assert_eq!(again.status(), 200, "inside the window it is not reuse");
    assert_eq!(
        refresh_cookie(again.headers()).expect("cookie").value,
        successor,
        "the same successor, not a second branch"
    );
    let body: Value = again.json().await.expect("json");
    assert_eq!(
        app.me(body["access_token"].as_str().expect("token"))
            .await
            .status(),
        200
    );
    // One successor row, and it keeps working.
    let rows = refresh_tokens::Entity::find()
        .all(&app.db)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let next = app.refresh(Some(&successor)).await;
    assert_eq!(next.status(), 200);
    let newest = refresh_cookie(next.headers()).expect("cookie").value;
    // Once the successor has itself been exchanged, the old token is reuse even in the window.
    let late = app.refresh(Some(&session.refresh_token)).await;
    assert_eq!(assert_json_error(late, 401).await, "refresh_token_reused");
    assert_eq!(
        assert_json_error(app.refresh(Some(&newest)).await, 401).await,
        "refresh_token_reused",
        "and the family is revoked"
    );
}

async fn two_concurrent_refreshes_with_one_cookie_keep_the_user_signed_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let (a, b) = tokio::join!(
        app.refresh(Some(&session.refresh_token)),
        app.refresh(Some(&session.refresh_token))
    );
    assert_eq!(
        (a.status().as_u16(), b.status().as_u16()),
        (200, 200),
        "both tabs stay signed in"
    );
    let (a, b) = (
        refresh_cookie(a.headers()).expect("cookie").value,
        refresh_cookie(b.headers()).expect("cookie").value,
    );
    assert_eq!(a, b, "one successor");
    assert_eq!(app.refresh(Some(&a)).await.status(), 200);
}

async fn refresh_without_or_with_unknown_or_expired_cookie_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        assert_json_error(app.refresh(None).await, 401).await,
        "missing_refresh_token"
    );
    let code = assert_json_error(app.refresh(Some("made-up-token")).await, 401).await;
    assert_eq!(code, "invalid_refresh_token");
    let session = app.signed_in_user().await;
    refresh_tokens::Entity::update_many()
        .col_expr(
            refresh_tokens::Column::ExpiresAt,
            Expr::value(Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(refresh_tokens::Column::AccountId.is_not_null())
        .exec(&app.db)
        .await
        .expect("expire tokens");
    let code = assert_json_error(app.refresh(Some(&session.refresh_token)).await, 401).await;
    assert_eq!(code, "refresh_token_expired");
}

async fn logout_revokes_the_session_and_clears_the_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    let response = app.logout(Some(&session.refresh_token)).await;
    assert_eq!(response.status(), 204);
    let cleared = refresh_cookie(response.headers()).expect("cookie cleared");
    assert!(cleared.value.is_empty());
    assert_eq!(cleared.attribute("Max-Age").as_deref(), Some("0"));
    assert_eq!(cleared.attribute("Path").as_deref(), Some("/api/v1/auth"));
    assert_json_error(app.refresh(Some(&session.refresh_token)).await, 401).await;
    // Logging out without a cookie is harmless.
    assert_eq!(app.logout(None).await.status(), 204);
}

/// A request from client `ip` (behind the one trusted proxy the test settings declare).
fn from_client(
    app: &tests::TestApp,
    method: reqwest::Method,
    path: &str,
    ip: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .header("x-forwarded-for", ip)
}

async fn login_from(
    app: &tests::TestApp,
    ip: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    from_client(app, reqwest::Method::POST, "/api/v1/auth/login", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login")
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds")
}

async fn repeated_failures_make_that_client_wait_without_locking_out_the_owner_or_revealing_the_email(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |settings| {
        settings.login_max_failures = 3;
        settings.login_lockout_secs = 2;
        settings.trust_forwarded_for = true;
    })
    .await;
    let (attacker, owner) = ("198.51.100.7", "198.51.100.8");
    let email = unique_email();
    let bystander = unique_email();
    let nobody = unique_email();
    app.register(&email, PASSWORD).await;
    app.register(&bystander, PASSWORD).await;
    for _ in 0..2 {
        assert_json_error(
            login_from(&app, attacker, &email, "wrong password!!").await,
            401,
        )
        .await;
    }
    let response = login_from(&app, attacker, &email, "wrong password!!").await;
    assert!((1..=2).contains(&retry_after(&response)));
    assert_eq!(assert_json_error(response, 429).await, "too_many_attempts");
    // That client waits, even with the right password ...
    let response = login_from(&app, attacker, &email, PASSWORD).await;
    assert!(retry_after(&response) >= 1);
    assert_eq!(assert_json_error(response, 429).await, "too_many_attempts");
    // ... but the owner, on another client, is not locked out, nor is anyone else.
    assert_eq!(
        login_from(&app, owner, &email, PASSWORD).await.status(),
        200
    );
    assert_eq!(
        login_from(&app, attacker, &bystander, PASSWORD)
            .await
            .status(),
        200
    );
    // An e-mail without an account answers exactly the same: nothing is revealed.
    for _ in 0..2 {
        assert_json_error(
            login_from(&app, attacker, &nobody, "wrong password!!").await,
            401,
        )
        .await;
    }
    let response = login_from(&app, attacker, &nobody, "wrong password!!").await;
    assert!((1..=2).contains(&retry_after(&response)));
    assert_eq!(assert_json_error(response, 429).await, "too_many_attempts");
    // After the wait the right password works again from that client too.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(
        login_from(&app, attacker, &email, PASSWORD).await.status(),
        200
    );
}

async fn password_rechecks_on_me_are_limited_per_account_and_client(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.login_max_failures = 3;
        settings.login_lockout_secs = 60;
        settings.trust_forwarded_for = true;
    })
    .await;
    let session = app.signed_in_user().await;
    let (thief, owner) = ("198.51.100.9", "198.51.100.10");
    let erase = |ip: &'static str, password: &'static str| {
        from_client(&app, reqwest::Method::DELETE, "/api/v1/me", ip)
            .bearer_auth(&session.access_token)
            .json(&json!({"password": password}))
            .send()
    };
    // Someone with a stolen access token guesses the password to erase the account.
    for _ in 0..2 {
        let response = erase(thief, "wrong password!!").await.expect("delete");
        assert_json_error(response, 403).await;
    }
    let response = erase(thief, "wrong password!!").await.expect("delete");
    assert!(retry_after(&response) >= 1);
    assert_eq!(assert_json_error(response, 429).await, "too_many_attempts");
    // Their guesses stop there, whatever they try: erasure and the password change alike.
    let response = erase(thief, PASSWORD).await.expect("delete");
    assert_eq!(assert_json_error(response, 429).await, "too_many_attempts");
    let response = from_client(&app, reqwest::Method::PATCH, "/api/v1/me", thief)
        .bearer_auth(&session.access_token)
        .json(&json!({"current_password": PASSWORD, "new_password": "another long passphrase"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(assert_json_error(response, 429).await, "too_many_attempts");
    assert_eq!(
        app.get_as("/api/v1/me", &session.access_token)
            .await
            .status(),
        200,
        "nothing was erased"
    );
    // The owner, on their own client, is not held up.
    let response = erase(owner, PASSWORD).await.expect("delete");
    assert_eq!(response.status(), 200);
}

async fn auth_routes_are_rate_limited_per_client_ip(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.auth_rate_limit_per_minute = 5).await;
    for _ in 0..5 {
        let status = app.login(&unique_email(), PASSWORD).await.status();
        assert_eq!(status, 401);
    }
    let response = app.login(&unique_email(), PASSWORD).await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry_after));
    assert_eq!(assert_json_error(response, 429).await, "rate_limited");
    // Routes outside /api/v1/auth are not limited by it.
    assert_eq!(app.get("/health").await.status(), 200);
}

async fn disabled_account_cannot_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in_user().await;
    accounts::Entity::update_many()
        .col_expr(accounts::Column::DisabledAt, Expr::value(Some(Utc::now())))
        .filter(accounts::Column::Email.eq(session.email.as_str()))
        .exec(&app.db)
        .await
        .expect("disable");
    assert_eq!(
        assert_json_error(app.login(&session.email, PASSWORD).await, 403).await,
        "forbidden"
    );
    assert_json_error(app.refresh(Some(&session.refresh_token)).await, 401).await;
    assert_json_error(app.me(&session.access_token).await, 401).await;
}

async fn production_marks_the_refresh_cookie_secure(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.environment = api::configuration::Environment::Production;
        settings.bcrypt_cost = 12;
        settings.abuse_ledger_key = Some("test-ledger-key-of-at-least-32-bytes".to_owned().into());
    })
    .await;
    let email = unique_email();
    assert_eq!(app.register(&email, PASSWORD).await.status(), 201);
    let response = app.login(&email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookie = refresh_cookie(response.headers()).expect("cookie");
    assert!(cookie.has("Secure"));
    assert!(cookie.has("HttpOnly"));
}
