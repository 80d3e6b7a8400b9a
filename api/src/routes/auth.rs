//! `/api/v1/auth/*`: register, login, refresh (rotation with reuse detection), logout, and
//! mailbox verification (following the e-mailed link, asking for a new one).
//!
//! The access token travels only in JSON bodies; the refresh token only in the `refresh_token`
//! cookie (HttpOnly, SameSite=Lax, scoped to this path, Secure over TLS and in production).

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use engine::AccountId;
use entities::accounts::{self, Role};
use entities::refresh_tokens;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    SqlErr,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{password_hash, refresh};
use crate::domain::{Email, Password, ValidationError};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// `POST /api/v1/auth/register`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(format = Email, max_length = 254, example = "ada@example.com")]
    email: String,
    /// At least 10 characters, at most 72 bytes, not the e-mail.
    #[schema(min_length = 10, max_length = 72)]
    password: String,
    /// The service is for people aged 16 and over; this must be `true`.
    #[schema(value_type = bool, example = true)]
    age_confirmed: bool,
    #[serde(default)]
    #[schema(max_length = 100)]
    display_name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisteredAccount {
    #[schema(value_type = Uuid)]
    id: AccountId,
    email: String,
    display_name: Option<String>,
    created_at: chrono::DateTime<Utc>,
}

/// Validates a display name: trimmed, 1 to 100 characters, no control characters.
pub fn parse_display_name(raw: Option<String>) -> Result<Option<String>, ValidationError> {
    let Some(raw) = raw else { return Ok(None) };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > 100 {
        return Err(ValidationError::new(
            "display_name",
            "must be at most 100 characters",
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "display_name",
            "must not contain control characters",
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

/// Sign-up. The free allocation is decided in the sign-up's transaction (`crate::abuse`): only
/// a sign-up that is its mailbox's first in the abuse ledger, from a client address under the
/// day's limit and at a non-disposable domain gets `FREE_INTERVIEWS`; a flagged one gets none
/// until an admin decides. With `SMTP_URL` set, a verification link is mailed.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = RegisteredAccount), (status = 409, description = "E-mail taken", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn register(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let RegisterRequest {
        email,
        password,
        age_confirmed,
        display_name,
    } = body.into_inner();
    let email = Email::parse(&email)?;
    let password = Password::parse(password, &email)?;
    if !age_confirmed {
        return Err(ValidationError::new(
            "age_confirmed",
            "you must confirm that you are at least 16 years old",
        )
        .into());
    }
    let display_name = parse_display_name(display_name)?;

    let existing = accounts::Entity::find()
        .filter(accounts::Column::Email.eq(email.as_str()))
        .one(&state.db)
        .await?;
    if existing.is_some() {
        return Err(email_taken());
    }
    let password_hash = password_hash::hash(&password, state.settings.bcrypt_cost).await?;

    let now = Utc::now();
    let client = client_of(&request, &state);
    let txn = engine::database::begin_write(&state.db).await?;
    let decision = crate::abuse::ledger::screen_signup(
        &txn,
        &state.ledger_key,
        state.signup_rules(),
        &email,
        client,
        now,
    )
    .await?;
    let registration = crate::accounts::Registration {
        email,
        display_name,
        password_hash,
        role: Role::User,
        free_interviews: decision.free_interviews,
        email_verified: false,
    };
    let account = crate::accounts::create(&txn, registration, now)
        .await
        .map_err(|error| match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => email_taken(),
            _ => error.into(),
        })?;
    let id = account.id;
    crate::abuse::ledger::store_signals(&txn, id, &decision.signals, now).await?;
    // Signing up accepts the policy in force.
    if let Some(version) = crate::policy::current(&txn, now).await? {
        crate::policy::accept(&txn, id, &version).await?;
    }
    let link = match &state.mailer {
        Some(_) => Some(crate::verification::issue(&txn, id, now).await?),
        None => None,
    };
    txn.commit().await?;
    if decision.signals.is_empty() {
        tracing::info!(account_id = %id, "account registered");
    } else {
        let signals: Vec<&str> = decision.signals.iter().map(|s| s.code()).collect();
        tracing::info!(account_id = %id, ?signals, "account registered, flagged for review");
    }
    if let (Some(mailer), Some(token)) = (state.mailer.clone(), link) {
        crate::verification::send_in_background(
            mailer,
            &state.public_url,
            id,
            account.email.clone(),
            token,
        );
    }

    Ok(HttpResponse::Created().json(RegisteredAccount {
        id,
        email: account.email,
        display_name: account.display_name,
        created_at: account.created_at,
    }))
}

/// `POST /api/v1/auth/verify-email`, and the `GET` of the e-mailed link.
#[derive(Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyEmail {
    /// The token of the e-mailed link.
    token: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Verified {
    verified: bool,
}

/// Follows a link's token: the account's mailbox is verified, or the 410 of why not.
async fn follow_link(state: &AppState, token: &str) -> Result<(), ApiError> {
    // Tokens are 43 URL-safe characters; anything else cannot be one (and is not looked up).
    let plausible = (20..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let outcome = if plausible {
        let txn = engine::database::begin_write(&state.db).await?;
        let outcome = crate::verification::follow(&txn, token, Utc::now()).await?;
        txn.commit().await?;
        outcome
    } else {
        crate::verification::Outcome::Unknown
    };
    match outcome {
        crate::verification::Outcome::Verified { account_id } => {
            tracing::info!(%account_id, "mailbox verified");
            Ok(())
        }
        crate::verification::Outcome::Used | crate::verification::Outcome::Expired => {
            Err(ApiError::Gone {
                code: "verification_link_expired",
                message: "this link was already used or has expired; sign in and ask for a new one",
            })
        }
        crate::verification::Outcome::Unknown => Err(ApiError::Gone {
            code: "verification_link_invalid",
            message: "this link is not valid (a newer one may have replaced it); sign in and ask for a new one",
        }),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = VerifyEmail,
    responses((status = 200, description = "The mailbox is verified", body = Verified),
        (status = 410, description = "The link was used, has expired (`verification_link_expired`) or is not valid (`verification_link_invalid`)", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn verify_email(
    state: web::Data<AppState>,
    body: web::Json<VerifyEmail>,
) -> Result<HttpResponse, ApiError> {
    follow_link(&state, &body.token).await?;
    Ok(HttpResponse::Ok().json(Verified { verified: true }))
}

/// The link in the e-mail: answers a short page to a browser (`Accept: text/html`), JSON
/// otherwise; a used, expired or unknown link is a 410 JSON error either way.
#[utoipa::path(get, path = "/api/v1/auth/verify-email", tag = "auth", params(VerifyEmail),
    responses((status = 200, description = "The mailbox is verified (an HTML page for browsers)", body = Verified),
        (status = 410, description = "The link was used, has expired (`verification_link_expired`) or is not valid (`verification_link_invalid`)", body = ErrorBody),
        (status = 422, description = "No token", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn verify_email_link(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<VerifyEmail>,
) -> Result<HttpResponse, ApiError> {
    follow_link(&state, &query.token).await?;
    let browser = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if browser {
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            // The page's URL holds the (now used) token: never pass it on.
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .body(VERIFIED_PAGE));
    }
    Ok(HttpResponse::Ok().json(Verified { verified: true }))
}

/// The page a browser gets after following a link.
const VERIFIED_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>E-mail address confirmed - InterviewCraft</title></head>\
<body><main><h1>Your e-mail address is confirmed</h1>\
<p>Thank you. <a href=\"/\">Open InterviewCraft</a>.</p></main></body></html>\n";

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerificationSent {
    sent: bool,
}

/// `POST /api/v1/auth/verification`: mails a new link to the signed-in account's address.
#[utoipa::path(post, path = "/api/v1/auth/verification", tag = "auth", security(("bearer" = [])),
    responses((status = 202, description = "A new link is on its way", body = VerificationSent),
        (status = 401, description = "Missing or invalid access token", body = ErrorBody),
        (status = 409, description = "Already verified (`email_already_verified`), or this server sends no mail (`email_verification_off`)", body = ErrorBody),
        (status = 429, description = "One link a minute, five a day (`verification_resend_limited`); see Retry-After", body = ErrorBody)))]
pub async fn resend_verification(
    state: web::Data<AppState>,
    caller: crate::auth::AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let Some(mailer) = state.mailer.clone() else {
        return Err(ApiError::Conflict {
            code: "email_verification_off",
            message: "this server sends no e-mail, so no verification is needed",
        });
    };
    let now = Utc::now();
    let txn = engine::database::begin_write(&state.db).await?;
    let account = accounts::Entity::find_by_id(caller.id)
        .one(&txn)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if account.email_verified_at.is_some() {
        return Err(ApiError::Conflict {
            code: "email_already_verified",
            message: "this e-mail address is already verified",
        });
    }
    let sent = crate::verification::recent_links(&txn, account.id, now).await?;
    if let Some(wait) = crate::verification::resend_wait(&sent, now) {
        return Err(ApiError::TooManyRequests {
            code: "verification_resend_limited",
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let token = crate::verification::issue(&txn, account.id, now).await?;
    txn.commit().await?;
    crate::verification::send_in_background(
        mailer,
        &state.public_url,
        account.id,
        account.email,
        token,
    );
    Ok(HttpResponse::Accepted().json(VerificationSent { sent: true }))
}

fn email_taken() -> ApiError {
    ApiError::Conflict {
        code: "email_taken",
        message: "an account with this email already exists",
    }
}

/// `POST /api/v1/auth/login`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized {
        code: "invalid_credentials",
        message: "email or password is incorrect",
    }
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "Access token; sets the refresh_token cookie", body = TokenResponse),
        (status = 401, description = "Wrong e-mail or password", body = ErrorBody), (status = 403, description = "Disabled", body = ErrorBody),
        (status = 429, description = "Locked or rate limited; see Retry-After", body = ErrorBody)))]
pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { email, password } = body.into_inner();
    let password = SecretString::from(password);
    let parsed = Email::parse(&email).ok();
    // Counted by what was typed, found or not: the answer never tells whether it exists.
    let subject = format!(
        "login:{}",
        parsed
            .as_ref()
            .map_or_else(|| email.trim().to_lowercase(), |e| e.as_str().to_owned())
    );
    let client = client_of(&request, &state);
    if let Some(wait) = state
        .failed_attempts
        .wait(&subject, client, std::time::Instant::now())
    {
        return Err(too_many_attempts(wait));
    }
    let account = match &parsed {
        Some(email) => {
            accounts::Entity::find()
                .filter(accounts::Column::Email.eq(email.as_str()))
                .one(&state.db)
                .await?
        }
        None => None,
    };
    let matched = password_hash::verify(
        password,
        account.as_ref().map(|a| a.password_hash.clone()),
        &state.dummy_password_hash,
    )
    .await?;
    let account = match account {
        Some(account) if matched => account,
        found => {
            if let Some(account) = &found {
                tracing::info!(account_id = %account.id, "failed sign-in");
            }
            return Err(failed_check(
                &state,
                &subject,
                client,
                invalid_credentials(),
            ));
        }
    };
    state.failed_attempts.succeeded(&subject, client);
    if account.disabled_at.is_some() {
        return Err(ApiError::Forbidden("this account is disabled"));
    }
    let refresh_token = refresh::generate();
    store_refresh_token(&state, account.id, Uuid::now_v7(), &refresh_token).await?;
    tracing::info!(account_id = %account.id, "signed in");
    token_response(&state, &account, &refresh_token)
}

/// The client address the failed-attempt counts are kept under (the unspecified address when
/// the connection has none, e.g. in-process tests).
pub(crate) fn client_of(request: &HttpRequest, state: &AppState) -> std::net::IpAddr {
    crate::middleware::client_ip(request, &state.settings)
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Counts a failed password check for `subject` from `client`: `otherwise` while under the
/// limit, the 429 of the wait from the failure that reaches it.
pub(crate) fn failed_check(
    state: &AppState,
    subject: &str,
    client: std::net::IpAddr,
    otherwise: ApiError,
) -> ApiError {
    match state
        .failed_attempts
        .failed(subject, client, std::time::Instant::now())
    {
        Some(wait) => {
            // What kind of check only: the subject (an e-mail) and the client stay out of logs.
            let check = subject.split(':').next().unwrap_or("password");
            tracing::warn!(
                check,
                wait_secs = wait.as_secs(),
                "too many wrong passwords from one client: it waits"
            );
            too_many_attempts(wait)
        }
        None => otherwise,
    }
}

/// Too many failed password checks from this client for this subject.
pub(crate) fn too_many_attempts(wait: std::time::Duration) -> ApiError {
    ApiError::TooManyRequests {
        code: "too_many_attempts",
        retry_after_secs: std::cmp::max(wait.as_secs(), 1),
    }
}

async fn store_refresh_token(
    state: &AppState,
    account_id: AccountId,
    family_id: Uuid,
    token: &str,
) -> Result<(), ApiError> {
    insert_refresh_token(&state.db, state, account_id, family_id, token).await
}

async fn insert_refresh_token(
    db: &impl ConnectionTrait,
    state: &AppState,
    account_id: AccountId,
    family_id: Uuid,
    token: &str,
) -> Result<(), ApiError> {
    let now = Utc::now();
    let ttl = Duration::seconds(
        i64::try_from(state.settings.refresh_token_ttl_secs).unwrap_or(i64::MAX / 4),
    );
    refresh_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        family_id: Set(family_id),
        token_hash: Set(refresh::hash(token)),
        created_at: Set(now),
        expires_at: Set(now + ttl),
        rotated_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The 200 response with a new access token and the refresh cookie.
fn token_response(
    state: &AppState,
    account: &accounts::Model,
    refresh_token: &str,
) -> Result<HttpResponse, ApiError> {
    let access_token = state
        .jwt
        .issue(
            account.id,
            account.role,
            account.password_changed_at.timestamp_millis(),
        )
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("signing access token: {error}")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(refresh_cookie(state, refresh_token.to_owned()))
        .json(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: state.jwt.ttl_secs(),
        }))
}

fn refresh_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let max_age = i64::try_from(state.settings.refresh_token_ttl_secs).unwrap_or(i64::MAX / 4);
    Cookie::build(refresh::COOKIE_NAME, value)
        .path(refresh::COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.secure_cookies())
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

/// A cookie that makes the browser forget the refresh token.
pub fn cleared_refresh_cookie(state: &AppState) -> Cookie<'static> {
    let mut cookie = refresh_cookie(state, String::new());
    cookie.make_removal();
    cookie
}

fn refresh_failed(state: &AppState, code: &'static str, message: &'static str) -> HttpResponse {
    let mut response =
        actix_web::ResponseError::error_response(&ApiError::Unauthorized { code, message });
    // Best effort: if the cookie cannot be attached the client still gets the 401.
    let _ = response.add_cookie(&cleared_refresh_cookie(state));
    response
}

/// `POST /api/v1/auth/refresh`: exchanges the refresh cookie for a new access token and a new
/// refresh cookie. Presenting a token that was already exchanged revokes its whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    responses((status = 200, description = "New access token; rotates the refresh_token cookie", body = TokenResponse),
        (status = 401, description = "Missing, unknown, expired or reused refresh token", body = ErrorBody)))]
pub async fn refresh(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some(cookie) = request.cookie(refresh::COOKIE_NAME) else {
        return Ok(refresh_failed(
            &state,
            "missing_refresh_token",
            "no refresh token was sent",
        ));
    };
    let presented = cookie.value().to_owned();
    let row = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(refresh::hash(&presented)))
        .one(&state.db)
        .await?;
    let Some(row) = row else {
        return Ok(refresh_failed(
            &state,
            "invalid_refresh_token",
            "the refresh token is not valid",
        ));
    };
    let now = Utc::now();
    if row.revoked_at.is_some() {
        return reused(&state, &row).await;
    }
    if let Some(rotated_at) = row.rotated_at {
        return again_within_window(&state, &row, rotated_at, &presented, now).await;
    }
    if row.expires_at <= now {
        return Ok(refresh_failed(
            &state,
            "refresh_token_expired",
            "the refresh token has expired",
        ));
    }
    let Some(account) = live_account(&state, row.account_id).await? else {
        revoke_family(&state.db, row.family_id).await?;
        return Ok(refresh_failed(
            &state,
            "invalid_refresh_token",
            "the refresh token is not valid",
        ));
    };

    let txn = engine::database::begin_write(&state.db).await?;
    // Only one exchange of a token can win, even when two requests race with it.
    let rotated = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RotatedAt, Expr::value(Some(now)))
        .filter(refresh_tokens::Column::Id.eq(row.id))
        .filter(refresh_tokens::Column::RotatedAt.is_null())
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if rotated.rows_affected != 1 {
        txn.rollback().await?;
        // A racing exchange of the same token won: within the window it gets the same
        // successor as the winner, as a second exchange moments later would.
        let current = refresh_tokens::Entity::find_by_id(row.id)
            .one(&state.db)
            .await?;
        return match current {
            Some(current) if current.revoked_at.is_none() => match current.rotated_at {
                Some(rotated_at) => {
                    again_within_window(&state, &current, rotated_at, &presented, Utc::now()).await
                }
                None => reused(&state, &current).await,
            },
            _ => reused(&state, &row).await,
        };
    }
    let next_token = refresh::successor(state.jwt.successor_key(), &presented);
    insert_refresh_token(&txn, &state, account.id, row.family_id, &next_token).await?;
    txn.commit().await?;
    token_response(&state, &account, &next_token)
}

/// The account of a refresh token, unless it is gone or disabled.
async fn live_account(
    state: &AppState,
    account_id: AccountId,
) -> Result<Option<accounts::Model>, ApiError> {
    Ok(accounts::Entity::find_by_id(account_id)
        .one(&state.db)
        .await?
        .filter(|a| a.disabled_at.is_none()))
}

/// A token presented again after it was exchanged, outside the reuse window (or in any way
/// that is not a plain second exchange): someone holds a copy, so the whole sign-in ends.
async fn reused(state: &AppState, row: &refresh_tokens::Model) -> Result<HttpResponse, ApiError> {
    revoke_family(&state.db, row.family_id).await?;
    tracing::warn!(account_id = %row.account_id, "refresh token reuse detected; session family revoked");
    Ok(refresh_failed(
        state,
        "refresh_token_reused",
        "this refresh token was already used; all sessions of this sign-in were revoked",
    ))
}

/// A token exchanged `rotated_at` and presented again: within
/// [`Settings::refresh_reuse_window_secs`](crate::configuration::Settings) it gets the same
/// successor (two tabs refreshing at once, a retried request whose answer was lost), as long as
/// that successor is itself still unused; otherwise it is reuse.
async fn again_within_window(
    state: &AppState,
    row: &refresh_tokens::Model,
    rotated_at: chrono::DateTime<Utc>,
    presented: &str,
    now: chrono::DateTime<Utc>,
) -> Result<HttpResponse, ApiError> {
    let window =
        Duration::seconds(i64::try_from(state.settings.refresh_reuse_window_secs).unwrap_or(0));
    if now - rotated_at > window || now < rotated_at - Duration::seconds(5) {
        return reused(state, row).await;
    }
    let successor = refresh::successor(state.jwt.successor_key(), presented);
    let next = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(refresh::hash(&successor)))
        .one(&state.db)
        .await?;
    let usable = next.is_some_and(|next| {
        next.family_id == row.family_id
            && next.rotated_at.is_none()
            && next.revoked_at.is_none()
            && next.expires_at > now
    });
    if !usable {
        return reused(state, row).await;
    }
    match live_account(state, row.account_id).await? {
        Some(account) => token_response(state, &account, &successor),
        None => {
            revoke_family(&state.db, row.family_id).await?;
            Ok(refresh_failed(
                state,
                "invalid_refresh_token",
                "the refresh token is not valid",
            ))
        }
    }
}

/// Revokes every live token of a family (one sign-in and all its rotations).
pub async fn revoke_family(db: &impl ConnectionTrait, family_id: Uuid) -> Result<(), ApiError> {
    refresh_tokens::Entity::update_many()
        .col_expr(
            refresh_tokens::Column::RevokedAt,
            Expr::value(Some(Utc::now())),
        )
        .filter(refresh_tokens::Column::FamilyId.eq(family_id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// `POST /api/v1/auth/logout`: revokes the presented refresh token's family and clears the cookie.
/// Answers 204 whether or not a valid cookie came, so it reveals nothing.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204, description = "Signed out; cookie cleared")))]
pub async fn logout(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if let Some(cookie) = request.cookie(refresh::COOKIE_NAME) {
        let row = refresh_tokens::Entity::find()
            .filter(refresh_tokens::Column::TokenHash.eq(refresh::hash(cookie.value())))
            .one(&state.db)
            .await?;
        if let Some(row) = row {
            revoke_family(&state.db, row.family_id).await?;
            tracing::info!(account_id = %row.account_id, "signed out");
        }
    }
    Ok(HttpResponse::NoContent()
        .cookie(cleared_refresh_cookie(&state))
        .finish())
}
